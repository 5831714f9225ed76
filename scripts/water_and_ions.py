"""Did the waters stay whole and where were the ions? One line per MD run.

    python scripts/water_and_ions.py md_runs/nacl_water_dq_nvt md_runs/nacl_water_dq_nve

For each run folder (its ``trajectory.traj``), over every stored frame, minimum image: the Na–Cl
distance (smallest, largest, last; Å) when the box holds one of each, each hydrogen's distance to
its nearest oxygen (the largest over all frames: above ~1.25 Å a water has lost a proton) and the
smallest H–H distance (below ~1.2 Å two hydrogens of one water have folded together).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase.io import read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    for run in args.runs:
        frames = read(run / "trajectory.traj", ":")
        numbers = frames[0].numbers
        oxygen, hydrogen = np.flatnonzero(numbers == 8), np.flatnonzero(numbers == 1)
        sodium, chlorine = np.flatnonzero(numbers == 11), np.flatnonzero(numbers == 17)
        ion_pair, h_to_o, h_h = [], 0.0, np.inf
        for atoms in frames:
            distances = atoms.get_all_distances(mic=True)
            if len(sodium) == 1 and len(chlorine) == 1:
                ion_pair.append(distances[sodium[0], chlorine[0]])
            h_to_o = max(h_to_o, float(distances[np.ix_(hydrogen, oxygen)].min(axis=1).max()))
            pairs = distances[np.ix_(hydrogen, hydrogen)]
            np.fill_diagonal(pairs, np.inf)
            h_h = min(h_h, float(pairs.min()))
        ions = (
            f"Na-Cl {min(ion_pair):.2f}-{max(ion_pair):.2f} Å (last {ion_pair[-1]:.2f}), "
            if ion_pair
            else ""
        )
        print(
            f"{run}: {len(frames)} frames, {ions}largest H-nearest-O {h_to_o:.2f} Å, "
            f"smallest H-H {h_h:.2f} Å"
        )


if __name__ == "__main__":
    main()
