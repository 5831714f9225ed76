"""Replay an MD run from its last checkpoint and store every step, up to where a guard stops it.

When ``phicalc md`` stops on a bad geometry (two atoms closer than ``min_distance``), the
trajectory holds only every ``traj_every``-th frame before it. This continues the run's
checkpoint with velocity Verlet (the NVE integrator of ``phicalc md``), in the run's model, dtype
and timestep, and writes each step's structure until the calculator refuses one, so the
configurations that lead into the failure can be labelled (``scripts/label_md_frames.py FILE``)
and added to training:

    python scripts/replay_md_checkpoint.py md_runs/nacl_water_nve --steps 40 \
        --out md_runs/nacl_water_nve_replay.extxyz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms, units
from ase.md.verlet import VelocityVerlet

from phicalc import PhiCalculator
from phicalc.errors import BadGeometryError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an md_runs/<name> folder with checkpoint.npz")
    parser.add_argument("--steps", type=int, default=40, help="most steps to replay")
    parser.add_argument("--out", type=Path, required=True, help="extxyz of the replayed steps")
    args = parser.parse_args()

    summary = json.loads((args.run / "summary.json").read_text())
    state = np.load(args.run / "checkpoint.npz", allow_pickle=False)
    atoms = Atoms(
        numbers=state["numbers"], positions=state["positions"], cell=state["cell"], pbc=state["pbc"]
    )
    atoms.set_momenta(state["momenta"])
    atoms.info["charge"] = float(summary["config"].get("charge") or 0.0)
    atoms.calc = PhiCalculator(summary["model"], dtype=summary["dtype"], device="cpu")
    dynamics = VelocityVerlet(atoms, summary["config"]["timestep_fs"] * units.fs)
    frames: list[Atoms] = []
    first = int(summary["steps_done"])
    for step in range(first, first + args.steps):
        frame = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        frame.info.update({"charge": atoms.info["charge"], "md_step": step})
        try:
            dynamics.run(1)  # forces at this step's positions, then the next positions
        except BadGeometryError as error:
            print(f"step {step}: {error}")
            break
        frames.append(frame)
    ase.io.write(args.out, frames, format="extxyz")
    print(f"{args.out}: steps {first}..{first + len(frames) - 1} of {args.run}")


if __name__ == "__main__":
    main()
