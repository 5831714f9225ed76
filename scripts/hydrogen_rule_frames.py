"""How many frames of a data set get other molecules under the one-bond-per-hydrogen rule?

``phicalc.nn.electrostatics.fragments.bonded_pairs`` lets a hydrogen bond only to its nearest
candidate (relative to the covalent radii). This counts, per extxyz file, the frames whose
molecule labels differ from those of the plain threshold rule (every pair with
r_ij < BOND_FACTOR · (R_i + R_j) bonded), i.e. the frames whose per-molecule charges the rule
changes for a model with ``equilibration_scope="molecule"``
(:func:`~phicalc.nn.electrostatics.fragments.candidate_bonds` is the threshold rule).

    python scripts/hydrogen_rule_frames.py data/charged_pilot_train.extxyz data/water_clusters.extxyz
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from ase.io import read

from phicalc.graph.batch import atoms_to_graph
from phicalc.molecule_charges import edge_lengths
from phicalc.nn.electrostatics import fragments


def labels_both_ways(atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Molecule labels of one structure under the threshold rule and under the hydrogen rule."""
    graph = atoms_to_graph(atoms, cutoff, dtype=torch.float64)
    lengths = edge_lengths(graph)
    candidates, _ = fragments.candidate_bonds(graph.numbers, graph.edge_index, lengths)
    i, j = graph.edge_index.numpy()
    n_atoms = graph.numbers.shape[0]
    threshold = fragments.molecules_of_bonds(np.stack([i[candidates], j[candidates]]), n_atoms)
    ruled = fragments.molecules_of_bonds(
        fragments.bonded_pairs(graph.numbers, graph.edge_index, lengths), n_atoms
    )
    return threshold, ruled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--cutoff", type=float, default=5.0, help="graph cutoff, Å")
    args = parser.parse_args()
    for path in args.files:
        frames = read(path, ":")
        changed = sum(not np.array_equal(*labels_both_ways(atoms, args.cutoff)) for atoms in frames)
        print(f"{path}: {len(frames)} frames, {changed} with other molecules under the rule")


if __name__ == "__main__":
    main()
