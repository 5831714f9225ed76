"""The training loop: data → statistics → AdamW steps with EMA → validation → checkpoints.

Usage::

    from phicalc.train import TrainConfig, train

    config = TrainConfig.from_yaml("recipes/md22_ac_ala3_painn_phi.yaml",
                                   overrides={"epochs": 10, "out": "runs/quick"})
    result = train(config)               # or train(config, resume=True) to continue
    print(result.best_model, result.val_metrics)

One epoch: the training graphs (built once and cached on the device) are shuffled with a seed
derived from ``(seed, epoch)``, cut into batches (under torchrun: disjoint shares of each global
batch), and every batch takes one AdamW step on the weighted loss, followed by gradient
averaging across processes, optional clipping, the EMA update and the learning-rate step. The
EMA weights are then evaluated on the validation set; the best validation value of
``selection_metric`` is saved as ``best_model.pt`` (test data are evaluated only once, after the
last epoch, and never select anything). After every epoch rank 0 writes ``checkpoint.pt``
(atomically) and ``log.csv``, and redraws ``learning_curve.png`` (at most once a minute, and
after the last epoch of the call).

Output folder: ``config.yaml`` (resolved), ``checkpoint.pt``, ``best_model.pt``, ``log.csv``,
``learning_curve.png``, ``metrics.json`` (best validation and test metrics), ``train.log``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from ase import Atoms

from phicalc.build import build_model
from phicalc.data import plan_batches
from phicalc.device import resolve_device
from phicalc.errors import ConfigError
from phicalc.graph.batch import AtomGraph
from phicalc.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
)
from phicalc.train.config import TrainConfig
from phicalc.train.data import TrainingData
from phicalc.train.distributed import DistributedContext, init_distributed
from phicalc.train.ema import ExponentialMovingAverage
from phicalc.train.evaluation import collate_batches
from phicalc.train.loop import RunLoop, TrainResult
from phicalc.train.loss import WeightedLoss
from phicalc.train.outputs import (
    BEST_MODEL_NAME,
    CHECKPOINT_NAME,
    best_model_metadata,
    evaluate_best_model,
)
from phicalc.train.preparation import (
    build_graphs,
    check_resumable,
    check_targets,
    check_test_elements,
    choose_elements,
    initialise_from,
    set_charge_potential,
    set_statistics,
)
from phicalc.train.schedule import LRSchedule

logger = logging.getLogger(__name__)


class Trainer(RunLoop):
    """One training run (see the module docstring). Build it, then call :meth:`fit`.

    Args:
        config: the run.
        resume: continue from ``<out>/checkpoint.pt`` (bit for bit on the same machine and
            world size); without it an existing checkpoint in ``out`` is an error.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False) -> None:
        self.config = config
        self.resume = resume
        self.out = Path(config.out)
        self.device = resolve_device(
            config.device, local_rank=int(os.environ.get("LOCAL_RANK", "0"))
        )
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self._threads_before = torch.get_num_threads()
        self.ctx: DistributedContext = init_distributed(str(self.device))
        try:
            self._setup()
        except BaseException:
            self._release()
            raise

    # ------------------------------------------------------------------ setup
    def _release(self) -> None:
        """Leave the process group and give back the thread count this run changed."""
        self.ctx.close()
        if torch.get_num_threads() != self._threads_before:
            torch.set_num_threads(self._threads_before)

    def _setup(self) -> None:
        c = self.config
        if c.num_threads is not None:
            torch.set_num_threads(c.num_threads)
        checkpoint_path = self.out / CHECKPOINT_NAME
        if self.resume and not checkpoint_path.is_file():
            raise FileNotFoundError(f"cannot resume: no {CHECKPOINT_NAME} in {self.out}")
        if not self.resume and checkpoint_path.exists():
            raise ConfigError(
                f"{self.out} already holds a run ({CHECKPOINT_NAME}); use --resume to continue "
                "it or choose another --out"
            )
        c.data.check_files()
        checkpoint = load_checkpoint(checkpoint_path) if self.resume else None
        if checkpoint is not None:
            check_resumable(checkpoint, c, self.out, self.ctx.world_size)

        self.data = TrainingData(c.data)
        train_records, val_records = self.data.split("train"), self.data.split("val")
        self.data_description = self.data.describe()
        if (
            checkpoint is not None
            and checkpoint["data"]["fingerprint"] != self.data_description["fingerprint"]
        ):
            raise ConfigError(
                f"cannot resume: the training/validation data differ from the checkpoint's "
                f"({self.data_description['fingerprint']} != {checkpoint['data']['fingerprint']})"
            )
        if checkpoint is not None:
            self.elements = tuple(checkpoint["elements"])
        else:
            self.elements = choose_elements(c.model.elements, train_records + val_records)
        if c.data.evaluate_test:
            check_test_elements(self.data.split("test"), self.elements, self._test_source())
        self.train_graphs = self._build_graphs(train_records, "train")
        self.val_graphs = self._build_graphs(val_records, "val")
        self.loss = WeightedLoss(c.loss)
        check_targets(
            self.loss.weights,
            has_charges=c.model.phi is not False or c.model.charge_equilibration,
            train_graphs=self.train_graphs,
            val_graphs=self.val_graphs,
        )
        self.val_forces = all("forces" in g.targets for g in self.val_graphs)
        if c.selection_metric.startswith("forces") and not self.val_forces:
            raise ConfigError(
                f"selection_metric={c.selection_metric!r} but the validation data have no forces"
            )

        model = build_model(**c.model.build_kwargs(self.elements), seed=c.seed)
        self.model = model.to(device=self.device, dtype=self.dtype)
        if checkpoint is None and c.init_from is not None:
            if "charge_potential" in initialise_from(self.model, c.init_from):
                set_charge_potential(self.model, self.train_graphs)
        elif checkpoint is None:
            set_statistics(
                self.model,
                c.model,
                self.elements,
                self.train_graphs,
                forces_available=self.train_forces_available(),
            )
        self.ctx.broadcast_module(self.model)
        o = c.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=o.lr,
            betas=o.betas,
            eps=o.eps,
            weight_decay=o.weight_decay,
        )
        self.steps_per_epoch = len(
            plan_batches(len(self.train_graphs), o.batch_size, world_size=self.ctx.world_size)
        )
        self.schedule = LRSchedule(
            self.optimizer, o, steps_per_epoch=self.steps_per_epoch, epochs=c.epochs
        )
        self.ema = ExponentialMovingAverage(self.model, o.ema_decay)
        self.val_batches = collate_batches(
            self.val_graphs,
            o.val_batch_size or o.batch_size,
            device=self.device,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
        )
        self.epoch = 0
        self.step = 0
        self.best_metric = math.inf
        self.best_epoch = 0
        self.best_val: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.train_time_s = 0.0
        self._last_plot = -math.inf
        self._plotted_epoch = 0  # epochs in the learning curve last drawn
        if checkpoint is not None:
            self._restore(checkpoint)
        self.ctx.barrier()
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            c.write_yaml(self.out / "config.yaml")
            logger.info(
                "model %s%s, %d parameters, elements %s; %d train / %d val structures; "
                "%d steps per epoch on %s (%d process(es)); E0 %s eV, σ = %.4g eV",
                c.model.backbone,
                " + Φ" if self.model.has_phi else "",
                sum(p.numel() for p in self.model.parameters()),
                list(self.elements),
                len(self.train_graphs),
                len(self.val_graphs),
                self.steps_per_epoch,
                self.device,
                self.ctx.world_size,
                {s: round(float(e), 4) for s, e in zip(self.elements, self.model.atomic_energies)},
                float(self.model.energy_scale),
            )

    def _build_graphs(self, records: Sequence[Atoms], name: str) -> list[AtomGraph]:
        return build_graphs(
            records,
            self.config.model.cutoff,
            self.device,
            name=name,
            progress=self.config.progress and self.ctx.is_main,
        )

    def train_forces_available(self) -> bool:
        """The force loss is on and every training structure has reference forces."""
        return "forces" in self.loss.weights and all(
            "forces" in g.targets for g in self.train_graphs
        )

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.ema.load_state_dict(checkpoint["ema"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.schedule.load_state_dict(checkpoint["schedule"])
        restore_rng_state(checkpoint["rng"])
        self.epoch = int(checkpoint["epoch"])
        self.step = int(checkpoint["step"])
        best = checkpoint["best"]
        self.best_metric = float(best["metric"])
        self.best_epoch = int(best["epoch"])
        self.best_val = dict(best["val_metrics"])
        self.history = [dict(row) for row in checkpoint["history"]]
        self.train_time_s = float(checkpoint.get("train_time_s", 0.0))
        logger.info("resumed %s after epoch %d (step %d)", self.out, self.epoch, self.step)

    def _test_source(self) -> str:
        """The test files (extxyz) or the dataset path (oe62, md22), for messages."""
        section = self.config.data
        if section.format == "extxyz":
            return ", ".join(str(path) for path in section.split_files("test"))
        return f"{section.path} (test split)"

    def _evaluate_test(self) -> dict[str, float] | None:
        records = self.data.split("test")
        if not records:
            return None
        self.ctx.barrier()  # rank 0 has written best_model.pt
        metrics = evaluate_best_model(
            self.out / BEST_MODEL_NAME,
            self._build_graphs(records, "test"),
            batch_size=self.config.optim.val_batch_size or self.config.optim.batch_size,
            ctx=self.ctx,
            device=self.device,
        )
        if self.ctx.is_main:
            logger.info("test metrics of the best model (epoch %d): %s", self.best_epoch, metrics)
        return metrics

    # ------------------------------------------------------------------ files
    def _metadata(self, train_metrics: dict[str, float]) -> dict[str, Any]:
        return best_model_metadata(
            config=self.config.to_dict(),
            data_description=self.data_description,
            best_epoch=self.best_epoch,
            best_val=self.best_val,
            train_metrics=train_metrics,
            epochs=self.epoch,
            steps=self.step,
            wall_time_s=self.train_time_s,
            world_size=self.ctx.world_size,
            device=self.device,
        )

    def _checkpoint_state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "best": {
                "metric": self.best_metric,
                "epoch": self.best_epoch,
                "val_metrics": dict(self.best_val),
            },
            "history": list(self.history),
            "rng": capture_rng_state(),
            "data": self.data_description,
            "elements": list(self.elements),
            "train_time_s": self.train_time_s,
            "world_size": self.ctx.world_size,
        }


def train(
    config: TrainConfig | str | os.PathLike[str],
    *,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    stop_after: int | None = None,
    time_limit_s: float | None = None,
) -> TrainResult:
    """Run (or continue) a training run.

    Args:
        config: a :class:`TrainConfig` or the path of a YAML file.
        resume: continue from the checkpoint in ``config.out``.
        overrides: nested dict deep-merged over the config (e.g. ``{"epochs": 1,
            "data": {"train": "small.extxyz"}}``).
        stop_after: run at most this many epochs in this call (the schedule still spans
            ``config.epochs``), e.g. to split a run into jobs and resume later.
        time_limit_s: wall-clock seconds for this call, data loading included (the final
            test evaluation is not): the run's epochs are cut, at most to ``config.epochs``,
            so that its schedule still completes in time (:meth:`Trainer.fit`).

    Returns:
        The :class:`TrainResult`.
    """
    started = time.monotonic()
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_yaml(config, overrides=overrides)
    elif overrides:
        config = config.with_overrides(overrides)
    trainer = Trainer(config, resume=resume)
    if time_limit_s is not None:
        time_limit_s -= time.monotonic() - started
    return trainer.fit(stop_after=stop_after, time_limit_s=time_limit_s)
