"""Water clusters with one water bent to a small H–O–H angle, labelled by GFN2-xTB.

Liquid-water MD with a fitted potential can fold a water (the two H of one molecule drawn
together) where the training data hold no bent waters: GFN2-xTB puts a steep bending wall there
that the model never saw. This takes frames of a water-cluster set (open, so labelling is cheap),
picks one water per frame at random and turns its two O–H bonds in their plane about the angle
bisector to an angle drawn uniformly from ``--angles`` (bond lengths kept), and labels the result:

    python scripts/bend_waters.py data/water_clusters_fit.extxyz --frames 120 \
        --out data/water_bent.extxyz

Only frames from the training split belong in the input, so validation stays unseen. Geometries
whose GFN2 forces exceed the dataset limit are dropped and counted. Deterministic with ``--seed``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from phicalc.data import read_structures, write_structures
from phicalc.data.xtb.single_point import label_structure
from phicalc.errors import DatasetError


def waters(atoms: Atoms) -> list[tuple[int, int, int]]:
    """(O, H, H) index triples of the intact waters: an O with exactly two H within 1.25 Å."""
    distances = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    hydrogens = np.flatnonzero(atoms.numbers == 1)
    found = []
    for o in np.flatnonzero(atoms.numbers == 8):
        near = hydrogens[distances[o, hydrogens] < 1.25]
        if len(near) == 2:
            found.append((int(o), int(near[0]), int(near[1])))
    return found


def bend(atoms: Atoms, water: tuple[int, int, int], angle_deg: float) -> Atoms:
    """A copy of ``atoms`` with ``water``'s H–O–H angle set to ``angle_deg``, O–H lengths kept."""
    o, h1, h2 = water
    out = atoms.copy()
    pos = out.positions
    u1, u2 = pos[h1] - pos[o], pos[h2] - pos[o]
    r1, r2 = np.linalg.norm(u1), np.linalg.norm(u2)
    bisector = u1 / r1 + u2 / r2
    bisector /= np.linalg.norm(bisector)
    normal = np.cross(u1, u2)
    normal /= np.linalg.norm(normal)
    across = np.cross(normal, bisector)  # in the molecular plane, ⟂ bisector, towards H1
    half = np.radians(angle_deg) / 2
    pos[h1] = pos[o] + r1 * (np.cos(half) * bisector + np.sin(half) * across)
    pos[h2] = pos[o] + r2 * (np.cos(half) * bisector - np.sin(half) * across)
    out.positions = pos
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="extxyz of water clusters (training split)")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--angles", type=float, nargs=2, default=(35.0, 95.0), help="degrees")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    source = read_structures(args.source)
    picks = rng.choice(len(source), size=min(args.frames, len(source)), replace=False)
    records, dropped = [], 0
    for index in tqdm(picks, desc="bent waters, GFN2-xTB", unit="frame"):
        atoms = source[int(index)]
        candidates = waters(atoms)
        water = candidates[rng.integers(len(candidates))]
        angle = float(rng.uniform(*args.angles))
        bent = bend(Atoms(atoms.numbers, atoms.positions, cell=atoms.cell), water, angle)
        bent.info["charge"] = float(atoms.info.get("charge", 0))
        info = {
            "source": str(args.source),
            "molecule": f"{atoms.info.get('molecule', 'water')}-bent",
            "bent_angle_deg": round(angle, 2),
        }
        try:
            records.append(label_structure(bent, info=info))
        except DatasetError:
            dropped += 1
    write_structures(args.out, records)
    print(f"{args.out}: {len(records)} frames, {dropped} dropped (GFN2 force above the limit)")


if __name__ == "__main__":
    main()
