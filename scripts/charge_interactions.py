"""How much of GFN2-xTB's long-range interaction energy point charges can give.

    python scripts/charge_interactions.py data/charged_v2_val_dq.extxyz [...] [--window 6 15]
        [--model phi-painn-organic]

For each dimer geometry of a charged set (complex, A and B labelled; closest-atom distance in
the window, where the models' cutoff leaves only their Coulomb term between the fragments) the
Coulomb energy between fragment A's and fragment B's charges, each from its monomer frame, with
the Gaussian damping of the models (σ = 1 Å), against GFN2-xTB's E_int = E_AB − E_A − E_B: with
GFN2-xTB's Mulliken charges (``mulliken_charges`` of a file made by scripts/dipole_charges.py)
and with the charges that carry each molecule's dipole (its ``ref_charges``). Prints the MAE per
pair in % of the pair's mean |E_int| and over the file (the metric of
:func:`phicalc.train.charged_metrics.charged_metrics`): a model whose Coulomb term runs on
charges fitted to one kind of target cannot do better on these pairs than that kind does here.
With ``--model`` also the model's E_int (its own dtype, batched as charged_metrics does) and the
slope of it on GFN2-xTB's (least squares through 0).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.special import erf

from phicalc.batch_inference import predict
from phicalc.data import read_structures
from phicalc.nn.electrostatics.kernels import COULOMB_CONSTANT
from phicalc.serialization import load_model
from phicalc.train.charged_metrics import dimer_triples

SIGMA = 1.0  # Å, the models' Gaussian charge width


def coulomb_meV(charges_a, positions_a, charges_b, positions_b) -> float:
    """k_e Σ_{i∈A, j∈B} q_i q_j erf(r_ij/√2σ)/r_ij in meV."""
    r = np.linalg.norm(positions_a[:, None] - positions_b[None], axis=-1)
    pair = charges_a[:, None] * charges_b[None] * erf(r / (np.sqrt(2.0) * SIGMA)) / r
    return 1e3 * COULOMB_CONSTANT * float(pair.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--window", type=float, nargs=2, default=[6.0, 15.0])
    parser.add_argument("--model", help="a model name or file whose E_int is scored too")
    args = parser.parse_args()
    model = load_model(args.model) if args.model else None
    for path in args.files:
        frames = read_structures(path)
        energies = None
        if model is not None:  # the model's energy of every frame, batched as charged_metrics
            energies = [p["energy"] for p in predict(model, frames, min_distance=None)]
        rows: dict[str, list[list[float]]] = defaultdict(list)
        for pair, a, b in dimer_triples(frames, tuple(args.window)):
            one, two = frames[a], frames[b]
            row = [1e3 * frames[pair].info["interaction_energy"]] + [
                coulomb_meV(one.arrays[key], one.positions, two.arrays[key], two.positions)
                for key in ("mulliken_charges", "ref_charges")
            ]
            if energies is not None:
                row.append(1e3 * (energies[pair] - energies[a] - energies[b]))
            rows[str(frames[pair].info["species"])].append(row)
        low, high = args.window
        print(f"{path} (closest-atom distance {low:g}-{high:g} Å)")
        model_columns = f"{'model %':>9s}{'model/GFN2':>11s}" if model is not None else ""
        print(
            f"  {'pair':36s}{'n':>3s}{'mean |E_int| meV':>18s}{'Mulliken %':>12s}{'dipole %':>10s}"
            + model_columns
        )
        every = []
        for species, values in sorted(rows.items()):
            table = np.array(values)
            every.append(table)
            print(f"  {species:36s}{len(table):3d}" + _errors(table))
        if every:
            table = np.concatenate(every)
            print(f"  {'all':36s}{len(table):3d}" + _errors(table))


def _errors(table: np.ndarray) -> str:
    """Mean |E_int|, the MAE of each charge kind (and the model) in % of it, and the slope of the
    model's E_int on GFN2-xTB's."""
    scale = np.abs(table[:, 0]).mean()
    errors = [100.0 * np.abs(table[:, k] - table[:, 0]).mean() / scale for k in (1, 2)]
    line = f"{scale:18.1f}{errors[0]:12.1f}{errors[1]:10.1f}"
    if table.shape[1] > 3:
        model = 100.0 * np.abs(table[:, 3] - table[:, 0]).mean() / scale
        slope = float(table[:, 3] @ table[:, 0] / (table[:, 0] @ table[:, 0]))
        line += f"{model:9.1f}{slope:11.2f}"
    return line


if __name__ == "__main__":
    main()
