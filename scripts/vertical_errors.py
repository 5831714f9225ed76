"""Signed errors of the vertical ΔE = E(Q) − E(0) at fixed geometry, per charge and per species:
whether a model's miss is an offset (a mean it could shift away) or scatter between molecules.

    python scripts/vertical_errors.py data/vertical_v2_val.extxyz --model v8=phi-painn-organic \\
        [--model NAME=MODEL ...] [--worst 4]

Pairs each vertical frame with its neutral as ``default_model_report.py`` does
(:func:`phicalc.train.charged_metrics.vertical_pairs`) and predicts both through
:func:`phicalc.batch_inference.predict`. Prints a markdown table per model: for Q = −1 and +1 the
number of pairs, mean signed error, MAE and spread (eV), the reference ΔE's mean, and the
species with the largest errors.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from phicalc.batch_inference import predict
from phicalc.data import read_structures
from phicalc.serialization import load_model
from phicalc.train.charged_metrics import vertical_pairs


def signed_errors(frames, energies: list[float]) -> dict[int, list[tuple[float, float, str]]]:
    """Per total charge Q: (ΔE_model − ΔE_ref, ΔE_ref, species) of each vertical pair (eV)."""
    out: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
    for charged, neutral in vertical_pairs(frames):
        reference = float(frames[charged].calc.results["energy"]) - float(
            frames[neutral].calc.results["energy"]
        )
        predicted = energies[charged] - energies[neutral]
        species = str(frames[charged].info.get("species"))
        out[int(frames[charged].info["charge"])].append((predicted - reference, reference, species))
    return dict(out)


def table(errors: dict[int, list[tuple[float, float, str]]], worst: int) -> list[str]:
    lines = [
        "| Q | pairs | mean signed error (eV) | MAE (eV) | std (eV) | mean ΔE_ref (eV) | largest |",
        "|---|---|---|---|---|---|---|",
    ]
    for q, rows in sorted(errors.items()):
        e = np.array([row[0] for row in rows])
        reference = np.array([row[1] for row in rows])
        largest = sorted(rows, key=lambda row: -abs(row[0]))[:worst]
        names = ", ".join(f"{species} {err:+.2f}" for err, _, species in largest)
        lines.append(
            f"| {q:+d} | {len(rows)} | {e.mean():+.3f} | {np.abs(e).mean():.3f} | {e.std():.3f} "
            f"| {reference.mean():+.2f} | {names} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="labelled extxyz file holding vertical frames and neutrals")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=MODEL")
    parser.add_argument("--worst", type=int, default=4, help="species listed per row")
    args = parser.parse_args()
    frames = read_structures(args.file)
    for spec in args.model:
        name, _, path = spec.partition("=")
        model = load_model(path or name).eval()
        energies = [float(p["energy"]) for p in predict(model, frames, min_distance=None)]
        print(f"\n{name} ({args.file}):\n")
        print("\n".join(table(signed_errors(frames, energies), args.worst)))


if __name__ == "__main__":
    main()
