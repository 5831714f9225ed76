"""``phicalc md``: run or continue molecular dynamics with a phicalc model.

Example::

    phicalc md --model phi-painn-organic --structure aspirin --ensemble langevin \\
        --temperature 300 --timestep 0.5 --steps 2000 --out md_runs/aspirin --seed 0

Running the same command again continues from ``--out``'s checkpoint up to ``--steps``.
SIGINT/SIGTERM write a checkpoint and exit with 128 + the signal number. A run that blows up
(non-finite or exploding energy, runaway temperature, atoms flying apart or colliding) stops at
its last checkpoint and exits 1 naming the step; ``summary.json`` then says ``"failed"``.
Another model, dtype or settings on an existing run directory, a directory of other files, or
a second run into the same ``--out`` exit 2.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from phicalc.config import parse_edge_chunk


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "md",
        help="run (or continue) molecular dynamics",
        description="Run or continue molecular dynamics with a phicalc model. Running the same "
        "command again continues from --out's checkpoint up to --steps.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="shipped model name or model file")
    parser.add_argument(
        "--structure", required=True, help="structure file, SMILES or name (aspirin, water-box:64)"
    )
    parser.add_argument("--out", required=True, help="output directory (resumed if it exists)")
    parser.add_argument(
        "--ensemble", default="langevin", help="nve | langevin | nose-hoover | bussi"
    )
    parser.add_argument("--temperature", type=float, default=300.0, help="temperature in K")
    parser.add_argument("--timestep", type=float, default=0.5, help="time step in fs")
    parser.add_argument("--steps", type=int, default=1000, help="total number of steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of velocities and noise")
    parser.add_argument("--traj-every", type=int, default=10, help="trajectory interval (steps)")
    parser.add_argument("--log-every", type=int, default=10, help="md.log interval (steps)")
    parser.add_argument(
        "--checkpoint-every", type=int, default=100, help="checkpoint interval (steps; 0: at end)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument(
        "--dtype",
        default=None,
        help="float32 | float64 (default: a continued run's own, else float32)",
    )
    parser.add_argument(
        "--charge", type=float, default=None, help="total charge in e (default: from structure)"
    )
    parser.add_argument("--friction", type=float, default=0.01, help="Langevin friction (1/fs)")
    parser.add_argument(
        "--tdamp", type=float, default=None, help="Nose-Hoover time constant in fs (100 steps)"
    )
    parser.add_argument(
        "--taut", type=float, default=None, help="Bussi coupling time in fs (100 steps)"
    )
    parser.add_argument(
        "--partition-skin",
        type=float,
        default=math.inf,
        help="Erwin models: rebuild the ball tree once an atom moves more than half this "
        "distance in Å (default: inf, one tree for the whole run, so NVE conserves energy)",
    )
    parser.add_argument(
        "--neighbor-skin",
        type=float,
        default=0.5,
        help="Verlet skin in Å: the neighbour list is built to cutoff + skin and rebuilt once "
        "an atom moves more than half of it (default: 0.5; a negative value: a fresh list "
        "every step)",
    )
    parser.add_argument(
        "--edge-chunk",
        default="auto",
        help='sum the messages in runs of this many edges, recomputed for the forces: "auto" '
        "(default: structures above about 10^4 atoms, ~1/8 of the memory for ~1.5x the time), "
        '"none" (never) or a number',
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the model (PaiNN/SchNet models, CPU only: open structures on fixed "
        "shapes, periodic cells through a compiled backbone): about a minute to start, then "
        "2-3x faster per step (None: on for CPU runs of >= 20,000 steps)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)"
    )
    parser.add_argument(
        "--force-new",
        action="store_true",
        help="start over in an --out holding a phicalc run (another model or settings, or no "
        "checkpoint): its outputs are deleted; folders of other files are still refused",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from phicalc.errors import ConfigError
    from phicalc.md import MDConfig
    from phicalc.md import run as run_md

    if args.threads < 0:
        raise ConfigError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # this process is ours: the CLI may set it

    config = MDConfig(
        ensemble=args.ensemble,
        temperature_K=args.temperature,
        timestep_fs=args.timestep,
        steps=args.steps,
        seed=args.seed,
        traj_every=args.traj_every,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        friction_per_fs=args.friction,
        tdamp_fs=args.tdamp,
        taut_fs=args.taut,
        charge=args.charge,
        partition_skin=args.partition_skin,
        neighbor_skin=None if args.neighbor_skin < 0 else args.neighbor_skin,
        compile=args.compile,
        edge_chunk=parse_edge_chunk(args.edge_chunk),
    )
    summary = run_md(
        args.structure,
        args.model,
        args.out,
        config=config,
        device=args.device,
        dtype=args.dtype,
        progress=not args.no_progress,
        plots=not args.no_plots,
        force_new=args.force_new,
    )
    shown = (
        "steps_done",
        "completed",
        "interrupted_by",
        "ms_per_step",
        "ns_per_day",
        "temperature_mean",
        "temperature_std",
        "energy_drift_meV_per_atom_per_ps",
        "device",
    )
    print(json.dumps({key: summary[key] for key in shown}, indent=1))
    print(charge_table(args.out))
    if summary["interrupted_by"] is not None:
        import signal

        return 128 + int(signal.Signals[summary["interrupted_by"]])
    return 0


def charge_table(out_dir: str) -> str:
    """Per-atom learned charges over the run (mean ± std, e) and mean potential (V), as text."""
    from pathlib import Path

    import numpy as np
    from ase.data import chemical_symbols

    path = Path(out_dir) / "electrostatics.npz"
    if not path.exists():
        return "(no electrostatics: the model has no Φ-Module)"
    with np.load(path, allow_pickle=False) as data:
        if "charges" not in data or data["charges"].size == 0:
            return "(no electrostatics: the model has no Φ-Module)"
        charges, potentials, numbers = data["charges"], data["potentials"], data["numbers"]
    lines = [
        f"learned charges over {len(charges)} frames (e; Σ = {charges[-1].sum():+.4f} e):",
        " atom  el   mean q    std q    mean φ (V)",
    ]
    for index, z in enumerate(numbers):
        lines.append(
            f"{index:5d}  {chemical_symbols[int(z)]:2s} {charges[:, index].mean():+8.4f} "
            f"{charges[:, index].std():8.4f} {potentials[:, index].mean():+10.4f}"
        )
    return "\n".join(lines)
