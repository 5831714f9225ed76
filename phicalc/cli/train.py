"""``phicalc train``: train a potential from a YAML config (see :mod:`phicalc.train.config`).

Examples::

    phicalc train recipes/md22_ac_ala3_painn_phi.yaml --out runs/ala3_phi
    phicalc train recipes/md22_ac_ala3_painn_phi.yaml --out runs/ala3_phi --resume
    phicalc train recipes/md22_ac_ala3_painn_phi.yaml --epochs 200 --time-limit 2h
    torchrun --nproc_per_node 2 -m phicalc.cli.main train recipes/oe62_painn.yaml

Exit codes: 0 done (or stopped by --stop-after), 1 training failed (e.g. diverged), 2 bad config
or input file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a potential from a YAML config",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("config", help="training config (YAML)")
    parser.add_argument("--out", default=None, help="output folder (default: the config's out)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in the output folder"
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument(
        "--stop-after", type=int, default=None, help="stop after this many epochs of this call"
    )
    parser.add_argument(
        "--time-limit",
        type=_duration_s,
        default=None,
        metavar="DURATION",
        help="wall time for this call (e.g. 5400, 90m, 1.5h): epochs are cut so that the "
        "learning-rate schedule still ends in time; the config's epochs are the upper bound",
    )
    parser.add_argument("--device", default=None, help="override the config's device")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="override the config's seed (initial weights, data order, validation hold-out)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def _duration_s(text: str) -> float:
    """Seconds of a duration written as ``90``, ``90s``, ``30m`` or ``1.5h``."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (e.g. 5400, 90m, 1.5h)"
        ) from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"the duration must be positive, not {text!r}")
    return seconds


def run(args: argparse.Namespace) -> int:
    from phicalc.train import TrainConfig, train

    overrides: dict[str, Any] = {}
    if args.out is not None:
        overrides["out"] = args.out
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.device is not None:
        overrides["device"] = args.device
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.no_progress:
        overrides["progress"] = False
    config = TrainConfig.from_yaml(args.config, overrides=overrides)
    if args.stop_after is not None and args.stop_after < 1:
        print("phicalc train: error: --stop-after must be >= 1", file=sys.stderr)
        return 2
    try:
        result = train(
            config,
            resume=args.resume,
            stop_after=args.stop_after,
            time_limit_s=args.time_limit,
        )
    except FloatingPointError as error:
        print(f"phicalc train: training failed: {error}", file=sys.stderr)
        return 1
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        state = "finished" if result.finished else f"stopped after epoch {result.epochs_done}"
        print(f"{state}; best epoch {result.best_epoch}: {result.best_model}")
    return 0
