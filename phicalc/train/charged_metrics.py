"""Metrics that only a charge-aware model can score: interaction energies of separated fragments,
vertical charge-state energies, fragment charges, and charge/dipole agreement with a reference.

The inputs are labelled frames as :mod:`phicalc.data.xtb.charged` writes them:

* dimer scans: three frames per geometry sharing ``info["dimer_id"]`` with ``info["fragment"]``
  in {"complex", "A", "B"}; the reference E_int = E_complex − E_A − E_B (eV);
  ``info["distance"]`` is the closest-atom distance (Å), ``info["n_atoms_A"]`` the number of
  leading atoms that belong to A (the complex lists A first) and ``info["charge_A"]`` /
  ``info["charge_B"]`` the fragments' formal charges (e);
* vertical charge states: a frame with Q ≠ 0 (``info["category"] == "vertical"``) whose positions
  equal those of a neutral frame of the same species;
* reference charges (e) in ``atoms.arrays["ref_charges"]`` or the calculator results, and
  dipoles (e·Å, about the centre of mass) in the calculator results.

Predictions come from :func:`phicalc.batch_inference.predict` (batched forward passes, one
graph builder), in the model's dtype.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms

from phicalc.batch_inference import predict
from phicalc.graph.batch import reference_targets


def charged_metrics(
    model: torch.nn.Module, frames: Sequence[Atoms], *, long_range_A: tuple[float, float] = (6, 15)
) -> dict[str, Any]:
    """Every metric of the module docstring on ``frames`` (keys absent where no frame fits).

    Returns:
        ``energy_mae_meV_atom``, ``forces_mae_eV_A`` over all frames and per
        ``info["category"]`` (``<category>/energy_mae_meV_atom`` ...); ``interaction_mae_meV``,
        ``interaction_mean_abs_meV`` and ``interaction_mae_percent`` over complexes with
        closest-atom distance in ``long_range_A``; ``vertical_mae_eV``;
        ``fragment_charge_max_dev_e`` / ``fragment_charge_mean_dev_e`` (separated complexes,
        |Σ_A q − Q_A|); ``charges_pearson_r``; ``dipole_mae_eA`` (per component).
    """
    model.eval()
    predictions = predict(model, frames, min_distance=None)  # contact geometries are data
    references = [reference_targets(a) for a in frames]
    metrics: dict[str, Any] = {"n_frames": len(frames)}
    errors: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for atoms, pred, ref in zip(frames, predictions, references):
        e_err = abs(pred["energy"] - float(ref["energy"][0])) / len(atoms) * 1e3
        f_err = float(np.abs(pred["forces"] - ref["forces"].numpy()).mean())
        for key in ("all", str(atoms.info.get("category", "other"))):
            errors[key].append((e_err, f_err))
    for key, values in sorted(errors.items()):
        prefix = "" if key == "all" else f"{key}/"
        array = np.array(values)
        metrics[f"{prefix}energy_mae_meV_atom"] = float(array[:, 0].mean())
        metrics[f"{prefix}forces_mae_eV_A"] = float(array[:, 1].mean())
        metrics[f"{prefix}n"] = len(values)
    metrics.update(_interaction_metrics(frames, predictions, long_range_A))
    metrics.update(_vertical_metrics(frames, predictions))
    if all("charges" in p for p in predictions):
        metrics.update(_charge_metrics(frames, predictions, references))
    return metrics


def dimer_triples(
    frames: Sequence[Atoms], window: tuple[float, float] = (0.0, np.inf)
) -> list[tuple[int, int, int]]:
    """(complex, A, B) indices into ``frames`` of every dimer geometry labelled whole (the three
    frames sharing ``info["dimer_id"]``) whose closest-atom distance lies in ``window`` (Å)."""
    parts: dict[str, dict[str, int]] = defaultdict(dict)
    for index, atoms in enumerate(frames):
        if "dimer_id" in atoms.info and "fragment" in atoms.info:
            parts[str(atoms.info["dimer_id"])][str(atoms.info["fragment"])] = index
    return [
        (found["complex"], found["A"], found["B"])
        for found in parts.values()
        if set(found) == {"complex", "A", "B"}
        and window[0] <= float(frames[found["complex"]].info.get("distance", np.inf)) <= window[1]
    ]


def _interaction_metrics(frames, predictions, window) -> dict[str, Any]:
    predicted, reference = [], []
    for pair, a, b in dimer_triples(frames, window):
        energy = [predictions[i]["energy"] for i in (pair, a, b)]
        predicted.append(energy[0] - energy[1] - energy[2])
        reference.append(float(frames[pair].info["interaction_energy"]))
    if not reference:
        return {}
    predicted, reference = np.array(predicted), np.array(reference)
    mae = float(np.abs(predicted - reference).mean())
    mean_abs = float(np.abs(reference).mean())
    return {
        "interaction_n": len(reference),
        "interaction_mae_meV": 1e3 * mae,
        "interaction_mean_abs_meV": 1e3 * mean_abs,
        "interaction_mae_percent": 100 * mae / mean_abs if mean_abs > 0 else float("nan"),
    }


def vertical_pairs(frames: Sequence[Atoms]) -> list[tuple[int, int]]:
    """(charged, neutral) frame indices of each vertical charge state (``info["category"] ==
    "vertical"``) and the neutral frame of the same species at the same positions (1e-6 Å);
    a vertical frame without its neutral is left out."""
    neutral: dict[tuple[str, int], list[int]] = defaultdict(list)
    for index, atoms in enumerate(frames):
        if float(atoms.info.get("charge", 0)) == 0 and atoms.info.get("category") != "vertical":
            neutral[(str(atoms.info.get("species")), len(atoms))].append(index)
    pairs = []
    for index, atoms in enumerate(frames):
        if atoms.info.get("category") != "vertical":
            continue
        for j in neutral.get((str(atoms.info.get("species")), len(atoms)), []):
            if np.allclose(frames[j].positions, atoms.positions, atol=1e-6):
                pairs.append((index, j))
                break
    return pairs


def _vertical_metrics(frames, predictions) -> dict[str, Any]:
    errors = []
    for index, j in vertical_pairs(frames):
        predicted = predictions[index]["energy"] - predictions[j]["energy"]
        reference = float(frames[index].calc.results["energy"]) - float(
            frames[j].calc.results["energy"]
        )
        errors.append(abs(predicted - reference))
    if not errors:
        return {}
    return {"vertical_n": len(errors), "vertical_mae_eV": float(np.mean(errors))}


def _charge_metrics(frames, predictions, references) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pairs = [
        (p["charges"], r["charges"].numpy())
        for p, r in zip(predictions, references)
        if "charges" in r
    ]
    if pairs:
        x = np.concatenate([a for a, _ in pairs])
        y = np.concatenate([b for _, b in pairs])
        out["charges_pearson_r"] = float(np.corrcoef(x, y)[0, 1])
        out["charges_mae_e"] = float(np.abs(x - y).mean())
    dipoles = [
        np.abs(p["dipole"] - r["dipole"].numpy().reshape(3)).mean()
        for p, r in zip(predictions, references)
        if "dipole" in r
    ]
    if dipoles:
        out["dipole_mae_eA"] = float(np.mean(dipoles))
    deviations = []  # separated ion–neutral complexes: |Σ_A q − Q_A|
    for atoms, pred in zip(frames, predictions):
        info = atoms.info
        if info.get("fragment") != "complex" or float(info.get("distance", 0)) < 6:
            continue
        if (int(info.get("charge_A", 0)) == 0) == (int(info.get("charge_B", 0)) == 0):
            continue
        n_a = int(info["n_atoms_A"])
        deviations.append(abs(pred["charges"][:n_a].sum() - float(info["charge_A"])))
    if deviations:
        out["fragment_charge_n"] = len(deviations)
        out["fragment_charge_max_dev_e"] = float(np.max(deviations))
        out["fragment_charge_mean_dev_e"] = float(np.mean(deviations))
    return out
