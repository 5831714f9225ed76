"""``phicalc eval``: errors of a model on labelled structures, as a table and JSON.

Examples::

    phicalc eval --model runs/ala3_phi/best_model.pt --data data/ac_ala3_500K_test.extxyz
    phicalc eval --model phi-painn-organic --data data/organic_heldout.extxyz --json out.json
    phicalc eval --model runs/oe62/best_model.pt --data df_62k.json --dataset oe62 --split test

Metrics: energy MAE/RMSE per structure (meV) and per atom (meV/atom), force MAE/RMSE (eV/Å,
per component) when the data have forces, charge MAE and Pearson r when the data have reference
charges and the model has a Φ-Module, dipole MAE (e·Å) likewise.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DATASETS = ("structures", "oe62", "md22")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model on labelled structures",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="shipped model name or model file")
    parser.add_argument("--data", required=True, help="labelled structures (extxyz, .db, ...)")
    parser.add_argument(
        "--dataset",
        default="structures",
        choices=DATASETS,
        help="how to read --data: any ASE file, an OE62 table or an MD22 archive",
    )
    parser.add_argument(
        "--split", default="test", help="oe62/md22: train | val | test | all (standard splits)"
    )
    parser.add_argument("--seed", type=int, default=0, help="md22: split seed")
    parser.add_argument("--budget", type=int, default=None, help="md22: train + val frames")
    parser.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    parser.add_argument("--batch-size", type=int, default=16, help="structures per batch")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N only")
    parser.add_argument(
        "--no-forces", action="store_true", help="skip force prediction even if data have forces"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from phicalc.errors import ConfigError

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.split not in ("train", "val", "test", "all"):
        raise ConfigError(f"--split={args.split!r} is not one of train, val, test, all")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    if not Path(args.data).exists():
        raise FileNotFoundError(f"no such data file: {args.data}")
    if args.json:
        _check_json_path(Path(args.json))

    from phicalc.data import GraphDataset
    from phicalc.device import resolve_device
    from phicalc.serialization import load_model, resolve_model_path
    from phicalc.train.evaluation import evaluate
    from phicalc.train.metrics import format_metrics_table

    device = resolve_device(args.device)
    model_path = resolve_model_path(args.model)
    model = load_model(model_path, device=device)
    records = _read(args)
    if args.limit is not None:
        records = records[: args.limit]
    graphs = list(GraphDataset(records, model.cutoff))
    if not any(g.targets and "energy" in g.targets for g in graphs):
        from phicalc.errors import DatasetError

        raise DatasetError(f"{args.data}: no structure has a reference energy to compare with")
    forces = None if not args.no_forces else False
    metrics = evaluate(model, graphs, batch_size=args.batch_size, compute_forces=forces)
    print(f"model {model_path} on {len(graphs)} structures from {args.data}")
    print(format_metrics_table(metrics))
    if args.json:
        report = {
            "model": str(model_path),
            "data": str(args.data),
            "dataset": args.dataset,
            "split": args.split if args.dataset != "structures" else None,
            "n_structures": len(graphs),
            "n_atoms": sum(g.n_atoms for g in graphs),
            "metrics": metrics,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _check_json_path(path: Path) -> None:
    """Raise :class:`~phicalc.errors.ConfigError` before any work if ``--json`` cannot be
    written: a directory, or a parent that is a file."""
    from phicalc.errors import ConfigError

    if path.is_dir():
        raise ConfigError(f"--json {path} is a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--json {path}: {parent} is a file, not a directory")
            break


def _read(args: argparse.Namespace) -> list:
    split = None if args.split == "all" else args.split
    if args.dataset == "oe62":
        from phicalc.data import load_oe62

        return load_oe62(args.data, split)
    if args.dataset == "md22":
        from phicalc.data import load_md22

        return load_md22(args.data, split, seed=args.seed, budget=args.budget)
    from phicalc.data import read_structures

    return read_structures(args.data, require_labels=False)
