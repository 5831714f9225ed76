"""What a training run leaves besides its checkpoint: the best model and its metadata, the
test metrics written into it, ``metrics.json``, ``train.log`` and where it ran."""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from phicalc.graph.batch import AtomGraph
from phicalc.serialization import load_model, save_model
from phicalc.train.distributed import DistributedContext
from phicalc.train.epoch import validate
from phicalc.train.evaluation import collate_batches

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
BEST_MODEL_NAME = "best_model.pt"


def machine_info(device: torch.device) -> dict[str, Any]:
    """Where a model was trained: host, OS, CPU, GPU, library versions, threads."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def attach_log_file(path: Path) -> logging.Handler:
    """Copy phicalc's INFO-and-above log records to ``path`` until :func:`detach_log_file`."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger("phicalc").addHandler(handler)
    return handler


def detach_log_file(handler: logging.Handler) -> None:
    """Stop and close a handler of :func:`attach_log_file`."""
    logging.getLogger("phicalc").removeHandler(handler)
    handler.close()


def best_model_metadata(
    *,
    config: dict[str, Any],
    data_description: dict[str, Any],
    best_epoch: int,
    best_val: dict[str, float],
    train_metrics: dict[str, float],
    epochs: int,
    steps: int,
    wall_time_s: float,
    world_size: int,
    device: torch.device,
) -> dict[str, Any]:
    """The metadata saved with ``best_model.pt``: data, metrics, hyperparameters, time, machine.

    Args:
        config: the run's config as a plain dict (its hyperparameters).
    """
    return {
        "training_data": data_description,
        "metrics": {
            "epoch": best_epoch,
            "selection_metric": config["selection_metric"],
            "val": dict(best_val),
            "train": dict(train_metrics),
        },
        "hyperparameters": config,
        "training_time": {
            "epochs": epochs,
            "steps": steps,
            "wall_time_s": wall_time_s,
            "world_size": world_size,
        },
        "machine": machine_info(device),
    }


def evaluate_best_model(
    path: Path,
    graphs: Sequence[AtomGraph],
    *,
    batch_size: int,
    ctx: DistributedContext,
    device: torch.device,
) -> dict[str, float]:
    """Test metrics of the model file ``path``, which rank 0 then saves into its metadata.

    Forces are evaluated when every test structure has reference forces.
    """
    best = load_model(path, device=device)
    batches = collate_batches(
        graphs, batch_size, device=device, rank=ctx.rank, world_size=ctx.world_size
    )
    forces = all("forces" in g.targets for g in graphs)
    metrics = validate(best, batches, loss=None, compute_forces=forces, ctx=ctx, device=device)
    if ctx.is_main:
        metadata = dict(best.metadata)
        metadata["metrics"] = {**metadata.get("metrics", {}), "test": metrics}
        metadata["metrics"]["n_test"] = len(graphs)
        save_model(best, path, metadata=metadata)
    return metrics


def write_summary(path: Path, **summary: Any) -> None:
    """``metrics.json``: the run's state, best epoch, and best validation and test metrics."""
    path.write_text(json.dumps(summary, indent=2) + "\n")
