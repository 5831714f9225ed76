"""``phicalc label``: sample molecules with xTB dynamics and write GFN2-xTB labels as extxyz.

Examples::

    phicalc label --smiles CCO "c1ccccc1O" --temperatures 300 500 --frames 50 --out data/a.extxyz
    phicalc label --organic-set train --temperatures 300 500 800 --frames 20 --interval 20 \\
        --out data/organic_train.extxyz --resume
    phicalc label --structure ac-ala3 --temperatures 500 --frames 6000 --interval 10 \\
        --seed 1 --out data/ac_ala3_500K_train.extxyz

Charged / long-range set (``--charged-set``; :mod:`phicalc.data.xtb.charged`): ions, zwitterions,
vertical charge states (Q = ±1, multiplicity 2), dimer scans labelled as complex and monomers
(fragment-charge artefact filter), Na⁺/Cl⁻ water clusters; split by species into
``STEM_{train,val,test}.extxyz`` plus ``STEM_summary.json``, where ``--out STEM[.extxyz]``::

    phicalc label --charged-set --temperatures 300 600 --frames 3 --seed 0 \
        --out data/charged_pilot
    phicalc label --charged-set my_list.txt --dimer-orientations 6 --out data/charged

Exit codes: 0 success, 1 some jobs failed (SCF or exploding dynamics; the rest are written),
2 bad input (missing file, invalid SMILES or name, bad option).
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "label",
        help="make GFN2-xTB reference data (energy, forces, charges, dipole) by xTB sampling",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--smiles", nargs="+", metavar="SMILES", help="molecules as SMILES")
    source.add_argument("--smiles-file", metavar="FILE", help="one SMILES per line (# comments)")
    source.add_argument(
        "--structure",
        nargs="+",
        metavar="SPEC",
        help="structure files or names (e.g. ac-ala3, aspirin, H2O, water-box:32)",
    )
    source.add_argument(
        "--organic-set",
        choices=("all", "train", "heldout"),
        help="the curated organic SMILES list shipped with phicalc, or its train/held-out part",
    )
    source.add_argument(
        "--charged-set",
        nargs="?",
        const="",
        metavar="FILE",
        help="the charged / long-range set (default list phicalc/data/charged_set.txt, or FILE)",
    )
    charged = parser.add_argument_group("charged set (--charged-set only)")
    charged.add_argument(
        "--dimer-orientations", type=int, default=2, help="orientations per dimer pair (2)"
    )
    charged.add_argument(
        "--dimer-distances",
        nargs="+",
        type=float,
        default=[4.5, 6.0, 8.0, 11.0, 15.0],
        metavar="Å",
        help="closest-atom distances beyond contact (4.5 6 8 11 15)",
    )
    charged.add_argument(
        "--contact-scales",
        nargs="+",
        type=float,
        default=[0.75, 0.9, 1.1],
        metavar="S",
        help="contact points: closest pair at S × sum of vdW radii (0.75 0.9 1.1)",
    )
    charged.add_argument(
        "--vertical-frames", type=int, default=1, help="frames per neutral relabelled at ±1 (1)"
    )
    charged.add_argument("--max-waters", type=int, default=6, help="waters in clusters, 1..N (6)")
    charged.add_argument(
        "--transfer-tolerance",
        type=float,
        default=0.01,
        metavar="E",
        help="drop complexes whose fragment charge is off by more than E e (0.01)",
    )
    charged.add_argument(
        "--transfer-check-from",
        type=float,
        default=4.0,
        metavar="Å",
        help="apply that filter from this closest-atom distance on (4.0; 0 = every frame)",
    )
    charged.add_argument(
        "--stages",
        nargs="+",
        choices=("species", "vertical", "dimers", "clusters"),
        default=["species", "vertical", "dimers", "clusters"],
        help="parts to make (all)",
    )
    parser.add_argument(
        "--temperatures",
        nargs="+",
        type=float,
        default=[300.0],
        metavar="K",
        help="K (default 300)",
    )
    parser.add_argument(
        "--frames", type=int, default=10, help="frames per molecule and temperature (default 10)"
    )
    parser.add_argument(
        "--interval", type=int, default=10, help="MD steps between kept frames (default 10)"
    )
    parser.add_argument(
        "--timestep", type=float, default=0.5, help="MD time step, fs (default 0.5)"
    )
    parser.add_argument(
        "--equilibration",
        type=int,
        default=200,
        help="MD steps before the first frame (default 200)",
    )
    parser.add_argument(
        "--friction", type=float, default=0.01, help="Langevin friction, 1/fs (default 0.01)"
    )
    parser.add_argument(
        "--rattle", type=float, default=0.0, help="Gaussian rattle of kept frames, Å (default 0)"
    )
    parser.add_argument("--sampler", choices=("md", "normal-modes"), default="md")
    parser.add_argument(
        "--method", choices=("GFN2-xTB", "GFN1-xTB", "IPEA1-xTB"), default="GFN2-xTB"
    )
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP threads for xTB (default 1; 0 = library default)",
    )
    parser.add_argument("--out", required=True, help="output extxyz file")
    parser.add_argument(
        "--resume", action="store_true", help="keep finished jobs already in --out, do the rest"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out (without it, or --resume, an existing file is refused)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)
    return parser


def check_output(out: str, *, resume: bool, overwrite: bool) -> None:
    """Refuse to replace an existing, non-empty ``out`` unless ``resume`` or ``overwrite``.

    Raises:
        ConfigError: ``out`` exists and neither flag is given, both are, or ``out`` is a
            directory.
    """
    from pathlib import Path

    from phicalc.errors import ConfigError

    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"--out {out} is a directory, not an extxyz file")
    if path.exists() and path.stat().st_size > 0 and not (resume or overwrite):
        raise ConfigError(
            f"--out {out} exists; pass --resume to keep its finished jobs or --overwrite to "
            "replace it"
        )


def run(args: argparse.Namespace) -> int:
    from phicalc.data.xtb.jobs import label_molecules
    from phicalc.data.xtb.smiles import load_organic_smiles, read_smiles_file
    from phicalc.errors import ConfigError

    for name, value, minimum in (
        ("--frames", args.frames, 1),
        ("--interval", args.interval, 1),
        ("--equilibration", args.equilibration, 0),
        ("--threads", args.threads, 0),
    ):
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if any(t <= 0 for t in args.temperatures):
        raise ConfigError(f"--temperatures must be positive, got {args.temperatures}")
    if args.timestep <= 0 or args.friction < 0 or args.rattle < 0:
        raise ConfigError("--timestep must be > 0, --friction and --rattle >= 0")
    check_output(args.out, resume=args.resume, overwrite=args.overwrite)

    if args.charged_set is not None:
        return _run_charged(args)
    if args.smiles:
        molecules = [f"smiles:{s}" for s in args.smiles]
    elif args.smiles_file:
        molecules = [f"smiles:{s}" for s in read_smiles_file(args.smiles_file)]
    elif args.organic_set:
        molecules = [f"smiles:{s}" for s in load_organic_smiles(args.organic_set)]
    else:
        molecules = list(args.structure)

    summary = label_molecules(
        molecules,
        args.temperatures,
        args.frames,
        interval_steps=args.interval,
        timestep_fs=args.timestep,
        seed=args.seed,
        out_path=args.out,
        sampler=args.sampler,
        equilibration_steps=args.equilibration,
        friction_per_fs=args.friction,
        rattle_A=args.rattle,
        method=args.method,
        resume=args.resume,
        keep_records=False,
        threads=args.threads or None,
        progress=not args.no_progress,
    )
    print(
        f"phicalc label: {summary.n_frames} frames written to {args.out} "
        f"({len(summary.skipped_jobs)} jobs already done, {len(summary.failed_jobs)} failed)"
    )
    for molecule, temperature, error in summary.failed_jobs:
        print(f"  failed: {molecule} at {temperature:g} K: {error}")
    return 1 if summary.failed_jobs else 0


def _run_charged(args: argparse.Namespace) -> int:
    from phicalc.data.xtb.charged import ChargedSettings, label_charged_set
    from phicalc.data.xtb.charged_species import load_charged_set
    from phicalc.errors import ConfigError

    if args.resume or args.sampler != "md" or args.rattle:
        raise ConfigError("--charged-set supports neither --resume, --rattle nor normal modes")
    for name, value, minimum in (
        ("--dimer-orientations", args.dimer_orientations, 0),
        ("--vertical-frames", args.vertical_frames, 0),
        ("--max-waters", args.max_waters, 0),
    ):
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if args.max_waters > 6:
        raise ConfigError(f"--max-waters must be <= 6, got {args.max_waters}")
    if any(d <= 0 for d in args.dimer_distances) or any(s <= 0 for s in args.contact_scales):
        raise ConfigError("--dimer-distances and --contact-scales must be positive")
    if args.transfer_tolerance < 0 or args.transfer_check_from < 0:
        raise ConfigError("--transfer-tolerance and --transfer-check-from must be >= 0")
    charged_set = load_charged_set(args.charged_set or None)
    settings = ChargedSettings(
        temperatures_K=tuple(args.temperatures),
        frames=args.frames,
        interval_steps=args.interval,
        timestep_fs=args.timestep,
        equilibration_steps=args.equilibration,
        vertical_frames=args.vertical_frames,
        dimer_orientations=args.dimer_orientations,
        contact_scales=tuple(args.contact_scales),
        dimer_distances=tuple(args.dimer_distances),
        max_waters=args.max_waters,
        transfer_tolerance=args.transfer_tolerance,
        transfer_check_from=args.transfer_check_from,
        stages=tuple(args.stages),
        method=args.method,
        threads=args.threads or None,
    )
    summary = label_charged_set(
        charged_set, args.out, settings=settings, seed=args.seed, progress=not args.no_progress
    ).as_dict()
    print(
        f"phicalc label --charged-set: {summary['frames_total']} frames, "
        f"{summary['dropped_total']} dropped {summary['dropped']}, {summary['wall_s']} s; "
        f"files {summary['files']}"
    )
    return 0
