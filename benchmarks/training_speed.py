"""Training throughput on this machine: structures per second of full optimisation steps.

    python benchmarks/training_speed.py --batch-size 8 --threads 1 [--backbone erwin]

Times the trainer's own epoch loop (collate, forward with forces and ``create_graph``, loss,
backward, clipping, AdamW, EMA, schedule) on rattled copies of Ac-Ala3-NHMe (42 atoms) with
placeholder labels, for PaiNN with and without the Φ-Module. Reports the median over steps.
Erwin and Clifford use their default sizes.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)


def measure(
    *,
    phi: bool,
    backbone: str = "painn",
    backbone_config: dict[str, Any] | None = None,
    batch_size: int = 8,
    num_features: int = 64,
    num_blocks: int = 3,
    cutoff: float = 5.0,
    steps: int = 8,
    forces: bool = True,
    num_threads: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict[str, Any]:
    """Median time of one training step and structures/s for a batch of Ac-Ala3-NHMe copies.

    ``backbone_config`` replaces the PaiNN-style ``num_features``/``num_blocks`` pair when given.
    """
    from phicalc.data import make_record, structure_from_string, write_structures
    from phicalc.train.config import TrainConfig
    from phicalc.train.trainer import Trainer

    base = structure_from_string("ac-ala3", seed=0)
    rng = np.random.default_rng(0)
    records = []
    for _ in range(batch_size * steps + 2):
        atoms = base.copy()
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        records.append(make_record(atoms, energy=0.0, forces=np.zeros((len(atoms), 3))))
    with tempfile.TemporaryDirectory() as folder:
        write_structures(Path(folder) / "train.extxyz", records[:-2])
        write_structures(Path(folder) / "val.extxyz", records[-2:])
        config = TrainConfig.from_dict(
            {
                "epochs": 2,
                "out": str(Path(folder) / "run"),
                "progress": False,
                "num_threads": num_threads,
                "device": device,
                "dtype": dtype,
                "model": {
                    "backbone": backbone,
                    "phi": phi,
                    "cutoff": cutoff,
                    "elements": ["H", "C", "N", "O"],
                    "backbone_config": backbone_config
                    if backbone_config is not None
                    else {"num_features": num_features, "num_blocks": num_blocks},
                    "energy_scale": 1.0,
                },
                "data": {
                    "format": "extxyz",
                    "train": str(Path(folder) / "train.extxyz"),
                    "val": str(Path(folder) / "val.extxyz"),
                },
                "loss": {"energy_weight": 1.0, "forces_weight": 1.0 if forces else 0.0},
                "optim": {"batch_size": batch_size, "ema_decay": 0.999},
            }
        )
        trainer = Trainer(config)
        try:
            trainer._train_epoch(1)  # warm-up (allocator, first-call overheads)
            times = []
            original = trainer.optimizer.step

            def timed_step(*args: Any, **kwargs: Any) -> Any:
                result = original(*args, **kwargs)
                times.append(time.perf_counter())
                return result

            trainer.optimizer.step = timed_step  # type: ignore[method-assign]
            start = time.perf_counter()
            trainer._train_epoch(2)
            marks = [start, *times]
            per_step = [b - a for a, b in zip(marks, marks[1:])]
        finally:
            trainer._release()
    median = statistics.median(per_step)
    return {
        "backbone": backbone,
        "phi": phi,
        "batch_size": batch_size,
        "atoms_per_structure": len(base),
        "edges_per_structure": int(trainer.train_graphs[0].edge_index.shape[1]),
        "threads": torch.get_num_threads() if num_threads is None else num_threads,
        "step_s_median": median,
        "step_s_all": per_step,
        "structures_per_s": batch_size / median,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backbone", default="painn", choices=("painn", "schnet", "erwin", "clifford")
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--features", type=int, default=64, help="PaiNN and SchNet width")
    parser.add_argument("--blocks", type=int, default=3, help="PaiNN and SchNet blocks")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--energy-only", action="store_true", help="no force loss")
    args = parser.parse_args(argv)
    for phi in (False, True):
        result = measure(
            phi=phi,
            backbone=args.backbone,
            backbone_config=None if args.backbone in ("painn", "schnet") else {},
            batch_size=args.batch_size,
            num_features=args.features,
            num_blocks=args.blocks,
            steps=args.steps,
            forces=not args.energy_only,
            num_threads=args.threads,
            device=args.device,
        )
        steps = ", ".join(f"{t:.3f}" for t in result["step_s_all"])
        print(
            f"{args.backbone}{' + Φ' if phi else '    '}: "
            f"{result['structures_per_s']:.2f} structures/s (median step {result['step_s_median']:.3f} s"
            f" for {args.batch_size} x {result['atoms_per_structure']} atoms, "
            f"{result['edges_per_structure']} edges each, {result['threads']} thread(s); steps: {steps})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
