"""Energy error per species of a labelled file, for models side by side: where a category's MAE
comes from (an offset on one molecule, or spread over all).

    python scripts/species_errors.py data/charged_v2_val.extxyz --categories neutral ion \\
        --model v7=phi-painn-organic --model pilot=runs/pilot/fpscl_supplement_seed0/best_model.pt

Every frame of the chosen categories (``info["category"]``; all frames without the option) is
evaluated through :class:`phicalc.PhiCalculator` in float64 at its own total charge and spin.
Prints a markdown table: per species (``info["species"]``), the frames and, per model, the mean
absolute and the mean signed error of the energy per atom (model − reference, meV/atom).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from ase.io import read

from phicalc import PhiCalculator


def species_errors(frames: list, model: str) -> dict[str, np.ndarray]:
    """Signed energy errors per atom (meV) of ``frames`` grouped by species."""
    calculator = PhiCalculator(model, dtype="float64")
    errors: dict[str, list[float]] = defaultdict(list)
    for reference in frames:
        atoms = reference.copy()
        atoms.info = dict(reference.info)
        atoms.calc = calculator
        error = atoms.get_potential_energy() - reference.get_potential_energy()
        errors[str(reference.info.get("species", "?"))].append(1000.0 * error / len(atoms))
    return {name: np.asarray(values) for name, values in errors.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="labelled extxyz file")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=MODEL")
    parser.add_argument("--categories", nargs="*", default=None, help="categories to keep")
    args = parser.parse_args()
    frames = [
        atoms
        for atoms in read(args.file, ":")
        if args.categories is None or atoms.info.get("category") in args.categories
    ]
    models = dict(item.split("=", 1) for item in args.model)
    results = {name: species_errors(frames, path) for name, path in models.items()}
    species = list(next(iter(results.values())))
    print("| species | frames | " + " | ".join(f"{n} MAE / bias" for n in models) + " |")
    print("|---|---|" + "---|" * len(models))
    for name in species:
        cells = [f"{np.abs(r[name]).mean():.1f} / {r[name].mean():+.1f}" for r in results.values()]
        print(f"| {name} | {len(results[next(iter(models))][name])} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
