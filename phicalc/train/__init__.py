"""Training and evaluation of phicalc potentials.

Importing the package loads nothing heavy; the public names load on first use::

    from phicalc.train import TrainConfig, train, evaluate

Modules: :mod:`~phicalc.train.config` (YAML → frozen dataclasses), :mod:`~phicalc.train.trainer`
(the loop), :mod:`~phicalc.train.loss`, :mod:`~phicalc.train.metrics`,
:mod:`~phicalc.train.evaluation` (batched evaluation), :mod:`~phicalc.train.checkpoint`,
:mod:`~phicalc.train.distributed` (torchrun data parallelism), :mod:`~phicalc.train.schedule`,
:mod:`~phicalc.train.ema`, :mod:`~phicalc.train.statistics`, :mod:`~phicalc.train.data`,
:mod:`~phicalc.train.history` (CSV log, learning curve).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrainConfig": "phicalc.train.config",
    "Trainer": "phicalc.train.trainer",
    "TrainResult": "phicalc.train.trainer",
    "train": "phicalc.train.trainer",
    "evaluate": "phicalc.train.evaluation",
    "WeightedLoss": "phicalc.train.loss",
    "MetricAccumulator": "phicalc.train.metrics",
    "load_checkpoint": "phicalc.train.checkpoint",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'phicalc.train' has no attribute {name!r}")
