"""Label frames of an MD run with GFN2-xTB, so a model can be scored on its own trajectory.

A potential is only as good as the configurations its dynamics visits; this takes every k-th
frame of ``<run>/trajectory.traj`` (or of a trajectory file) (skipping the first ``--skip-ps``), labels it with tblite's
GFN2-xTB (periodic when the run is), and writes an extxyz that ``phicalc eval`` scores:

    python scripts/label_md_frames.py md_runs/nacl_water_nvt --frames 8 --skip-ps 0.5 \
        --out data/md_check_nacl_water.extxyz
    phicalc eval --model phi-painn-organic --data data/md_check_nacl_water.extxyz

``--shard K/N`` labels every N-th of the picked frames from the K-th (N processes side by side).
The total charge is the trajectory's ``info["charge"]`` when stored, else ``--charge``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ase.io
import numpy as np
from ase.io import Trajectory
from tqdm.auto import tqdm

from phicalc.data import write_structures
from phicalc.data.xtb.single_point import label_structure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run", type=Path, help="an md_runs/<name> folder, or a trajectory file (any ASE format)"
    )
    parser.add_argument("--frames", type=int, default=8, help="frames to label, evenly spaced")
    parser.add_argument("--skip-ps", type=float, default=0.0, help="leave out the first ps")
    parser.add_argument("--timestep-fs", type=float, default=0.5)
    parser.add_argument("--traj-every", type=int, default=10, help="MD steps per stored frame")
    parser.add_argument("--charge", type=float, default=0.0)
    parser.add_argument("--shard", default="0/1", help="K/N: label every N-th pick from the K-th")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    if args.run.is_dir():
        frames = Trajectory(str(args.run / "trajectory.traj"))
    else:
        frames = ase.io.read(args.run, index=":")
    first = int(round(args.skip_ps * 1000 / (args.timestep_fs * args.traj_every)))
    if first >= len(frames):
        raise SystemExit(f"{args.run}: {len(frames)} frames, none after {args.skip_ps} ps")
    picks = np.unique(np.linspace(first, len(frames) - 1, args.frames).round().astype(int))
    shard, n_shards = (int(x) for x in args.shard.split("/"))
    picks = picks[shard::n_shards]
    records = []
    for index in tqdm(picks, desc="GFN2-xTB labels", unit="frame"):
        atoms = frames[int(index)]
        atoms.info.setdefault("charge", args.charge)
        atoms.info["charge"] = float(atoms.info["charge"])
        info = {"source": str(args.run), "md_frame": int(index), "molecule": args.run.name}
        records.append(label_structure(atoms, info=info))
    write_structures(args.out, records)
    print(f"{args.out}: {len(records)} frames of {args.run} (frames {picks.tolist()})")


if __name__ == "__main__":
    main()
