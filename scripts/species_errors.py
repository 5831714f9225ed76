"""Energy error per species of a labelled file, for models side by side: where a category's MAE
comes from (an offset on one molecule, or spread over all).

    python scripts/species_errors.py data/charged_v2_val.extxyz --categories neutral ion \\
        --model v7=phi-painn-organic --model pilot=runs/pilot/fpscl_supplement_seed0/best_model.pt

Every frame of the chosen categories (``info["category"]``; all frames without the option) is
evaluated in float64 at its own total charge and spin by :func:`phicalc.batch_inference.predict`
(the batched path of ``scripts/default_model_report.py``; contact geometries are data, so no
distance check).
Prints a markdown table: per species (``info["species"]``), the frames and, per model, the mean
absolute and the mean signed error of the energy per atom (model − reference, meV/atom). With
``--parts``, a second table per model: the species' mean electrostatic parts of the energy per
atom (meV/atom): E_Q (charge-state energy), E_C (Coulomb) and E_Φ (Φ-Module), where it has them.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from ase.io import read

from phicalc.batch_inference import predict
from phicalc.serialization import load_model

#: (calculator result, column title) of the electrostatic parts of the energy.
PARTS = (
    ("charge_state_energy", "E_Q"),
    ("coulomb_energy", "E_C"),
    ("phi_energy", "E_Φ"),
)


def species_errors(
    frames: list, model: str
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """Signed energy errors per atom (meV) of ``frames`` grouped by species, and each species'
    mean electrostatic parts per atom (meV, :data:`PARTS` the model has)."""
    potential = load_model(model).double().eval()
    errors: dict[str, list[float]] = defaultdict(list)
    parts: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for reference, result in zip(frames, predict(potential, frames, min_distance=None)):
        species = str(reference.info.get("species", "?"))
        n_atoms = len(reference)
        errors[species].append(
            1000.0 * (result["energy"] - reference.get_potential_energy()) / n_atoms
        )
        for key, title in PARTS:
            if key in result:
                parts[species][title].append(1000.0 * float(result[key]) / n_atoms)
    means = {n: {t: float(np.mean(v)) for t, v in by.items()} for n, by in parts.items()}
    return {name: np.asarray(values) for name, values in errors.items()}, means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="labelled extxyz file")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=MODEL")
    parser.add_argument("--categories", nargs="*", default=None, help="categories to keep")
    parser.add_argument("--parts", action="store_true", help="also the electrostatic parts")
    args = parser.parse_args()
    frames = [
        atoms
        for atoms in read(args.file, ":")
        if args.categories is None or atoms.info.get("category") in args.categories
    ]
    models = dict(item.split("=", 1) for item in args.model)
    scored = {name: species_errors(frames, path) for name, path in models.items()}
    results = {name: errors for name, (errors, _) in scored.items()}
    species = list(next(iter(results.values())))
    print("| species | frames | " + " | ".join(f"{n} MAE / bias" for n in models) + " |")
    print("|---|---|" + "---|" * len(models))
    for name in species:
        cells = [f"{np.abs(r[name]).mean():.1f} / {r[name].mean():+.1f}" for r in results.values()]
        print(f"| {name} | {len(results[next(iter(models))][name])} | " + " | ".join(cells) + " |")
    for model, (_, parts) in scored.items() if args.parts else ():
        titles = [t for _, t in PARTS if any(t in by for by in parts.values())]
        if not titles:
            continue
        print(f"\n{model}, electrostatic parts (meV/atom):\n")
        print("| species | " + " | ".join(titles) + " |")
        print("|---|" + "---|" * len(titles))
        for name in species:
            print(f"| {name} | " + " | ".join(f"{parts[name][t]:+.1f}" for t in titles) + " |")


if __name__ == "__main__":
    main()
