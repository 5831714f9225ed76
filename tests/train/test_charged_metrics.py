"""Charge-aware metrics: a model scored on frames labelled by itself has zero error everywhere,
and the pairing of dimer triples and vertical states is what the definitions say."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from phicalc import build_model
from phicalc.batch_inference import predict
from phicalc.data import make_record
from phicalc.testing import ammonium_and_water
from phicalc.train.charged_metrics import charged_metrics, vertical_pairs


def model(seed: int):
    return build_model(
        "painn",
        phi=False,
        charge_spin=True,
        charge_equilibration=True,
        coulomb=True,
        cutoff=4.0,
        num_features=8,
        num_blocks=1,
        seed=seed,
    ).double()


def frames() -> list[Atoms]:
    """A dimer triple at 7 Å (NH4⁺ + H2O), a neutral water and its vertical cation."""
    pair = ammonium_and_water(7.0)
    ammonium, water = pair[:5], pair[5:]
    base = {"dimer_id": "nh4-h2o/o0/p0", "category": "dimer", "distance": 7.0, "n_atoms_A": 5,
            "charge_A": 1, "charge_B": 0}  # fmt: skip
    out = [
        Atoms(ammonium + water, info={**base, "fragment": "complex", "charge": 1}),
        Atoms(ammonium, info={**base, "fragment": "A", "charge": 1}),
        Atoms(water, info={**base, "fragment": "B", "charge": 0}),
    ]
    neutral = molecule("H2O")
    neutral.info.update(species="water", category="species", charge=0)
    cation = neutral.copy()
    cation.info.update(category="vertical", charge=1, spin=2)
    return out + [neutral, cation]


def labelled_by(reference_model) -> list[Atoms]:
    structures = frames()
    labelled = []
    for atoms, p in zip(structures, predict(reference_model, structures)):
        record = make_record(atoms, energy=p["energy"], forces=p["forces"], charges=p["charges"],
                             dipole=p["dipole"])  # fmt: skip
        if record.info.get("fragment") == "complex":
            parts = predict(reference_model, structures[1:3])
            record.info["interaction_energy"] = (
                p["energy"] - parts[0]["energy"] - parts[1]["energy"]
            )
        labelled.append(record)
    return labelled


def test_self_labelled_frames_score_zero() -> None:
    reference = model(0)
    metrics = charged_metrics(reference, labelled_by(reference))
    assert metrics["n_frames"] == 5
    assert metrics["energy_mae_meV_atom"] == pytest.approx(0, abs=1e-9)
    assert metrics["interaction_n"] == 1 and metrics["interaction_mae_meV"] == pytest.approx(
        0, abs=1e-9
    )
    assert metrics["vertical_n"] == 1 and metrics["vertical_mae_eV"] == pytest.approx(0, abs=1e-12)
    assert metrics["charges_pearson_r"] == pytest.approx(1.0)
    assert metrics["dipole_mae_eA"] == pytest.approx(0, abs=1e-12)
    assert metrics["fragment_charge_n"] == 1


def test_another_model_scores_the_differences() -> None:
    reference, other = model(0), model(1)
    labelled = labelled_by(reference)
    metrics = charged_metrics(other, labelled)
    mine, theirs = predict(other, labelled), predict(reference, labelled)
    e_int = [p[0]["energy"] - p[1]["energy"] - p[2]["energy"] for p in (mine, theirs)]
    assert metrics["interaction_mae_meV"] == pytest.approx(1e3 * abs(e_int[0] - e_int[1]))
    vertical = [p[4]["energy"] - p[3]["energy"] for p in (mine, theirs)]
    assert metrics["vertical_mae_eV"] == pytest.approx(abs(vertical[0] - vertical[1]))
    assert metrics["fragment_charge_max_dev_e"] == pytest.approx(
        abs(mine[0]["charges"][:5].sum() - 1)
    )
    assert metrics["dimer/n"] == 3 and np.isfinite(metrics["vertical/energy_mae_meV_atom"])


def test_dimer_triples_take_whole_geometries_in_the_window() -> None:
    """A geometry counts only with its complex, A and B frames; the window is on the complex's
    closest-atom distance; other frames are ignored."""
    from phicalc.train.charged_metrics import dimer_triples

    structures = frames()
    assert dimer_triples(structures) == [(0, 1, 2)]
    assert dimer_triples(structures, (6.0, 15.0)) == [(0, 1, 2)]
    assert dimer_triples(structures, (8.0, 15.0)) == []
    assert dimer_triples(structures[:2] + structures[3:]) == []  # B missing


def test_vertical_pairs_and_their_signed_errors() -> None:
    """Each vertical frame pairs with the neutral at its positions, none with a moved one; the
    script's signed error is model minus reference, per charge."""
    import importlib.util
    from pathlib import Path

    from ase.calculators.singlepoint import SinglePointCalculator

    path = Path(__file__).parents[2] / "scripts" / "vertical_errors.py"
    spec = importlib.util.spec_from_file_location("vertical_errors", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    structures = frames()[3:]  # the neutral water and its cation
    anion = structures[0].copy()
    anion.info.update(category="vertical", charge=-1, spin=2)
    moved = structures[1].copy()
    moved.positions[0, 0] += 0.1  # no neutral at these positions
    structures += [anion, moved]
    for atoms, energy in zip(structures, (0.0, 10.0, -2.0, 11.0)):
        atoms.calc = SinglePointCalculator(atoms, energy=energy)
    assert vertical_pairs(structures) == [(1, 0), (2, 0)]
    errors = script.signed_errors(structures, [1.0, 12.0, -0.5, 0.0])
    assert errors == {1: [(1.0, 10.0, "water")], -1: [(0.5, -2.0, "water")]}
    assert "| +1 | 1 | +1.000 | 1.000 | 0.000 | +10.00 | water +1.00 |" in script.table(errors, 2)
