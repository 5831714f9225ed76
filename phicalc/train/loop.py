"""The run loop of a :class:`~phicalc.train.trainer.Trainer`: epochs until done, out of time or
``stop_after``; after each epoch the history row, the best model, ``checkpoint.pt``,
``log.csv`` and the learning curve; at the end ``metrics.json`` and the test metrics.

:class:`RunLoop` is the trainer's base class; the trainer builds the state it works on (model,
optimiser, schedule, EMA, graphs, distributed context) and saves it
(``_checkpoint_state``, ``_metadata``, ``_evaluate_test``, ``_release``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from phicalc.data import plan_batches
from phicalc.data.splits import derive_seed
from phicalc.serialization import save_model
from phicalc.train.checkpoint import save_checkpoint
from phicalc.train.epoch import train_epoch, validate
from phicalc.train.history import plot_learning_curve, write_csv
from phicalc.train.outputs import (
    BEST_MODEL_NAME,
    CHECKPOINT_NAME,
    attach_log_file,
    detach_log_file,
    write_summary,
)

logger = logging.getLogger(__name__)

#: The learning curve is redrawn at most this often (seconds), and at the end of each call.
PLOT_INTERVAL_S = 60.0


@dataclass
class TrainResult:
    """What a call of :func:`train` produced.

    Attributes:
        out: output folder.
        best_model: path of ``best_model.pt``.
        best_epoch: epoch of the best validation ``selection_metric``.
        val_metrics: validation metrics of the best epoch.
        test_metrics: test metrics of the best model (None: no test data or run not finished).
        epochs_done: epochs completed so far (over all resumptions).
        finished: all configured epochs are done.
        history: one row per epoch (as in ``log.csv``).
    """

    out: Path
    best_model: Path
    best_epoch: int
    val_metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    epochs_done: int
    finished: bool
    history: list[dict[str, Any]] = field(default_factory=list)


class RunLoop:
    """Epochs, per-epoch outputs and the time limit of a training run (see the module docstring)."""

    def fit(
        self, *, stop_after: int | None = None, time_limit_s: float | None = None
    ) -> TrainResult:
        """Train until ``config.epochs`` (or for at most ``stop_after`` more epochs).

        Args:
            stop_after: run at most this many epochs in this call; the schedule still spans
                ``config.epochs``, so a later ``resume`` continues it.
            time_limit_s: wall-clock seconds this call may spend on epochs. After every epoch
                the run's total epochs are cut to what still fits (:meth:`_fit_to_time`),
                so a cosine schedule still anneals to ``min_lr`` before the limit;
                ``config.epochs`` is the upper bound.

        Returns:
            A :class:`TrainResult`; the test split is evaluated only once all epochs are done.
        """
        handler = attach_log_file(self.out / "train.log") if self.ctx.is_main else None
        try:
            call_start, first = time.monotonic(), self.epoch
            while self.epoch < self.config.epochs and (
                stop_after is None or self.epoch - first < stop_after
            ):
                self._run_epoch(self.epoch + 1)
                if time_limit_s is not None and not self._fit_to_time(
                    call_start, call_start + time_limit_s, self.epoch - first
                ):
                    break
            if self.ctx.is_main and self._plotted_epoch != self.epoch:
                self._plot_learning_curve()
            c = self.config
            finished = self.epoch >= c.epochs
            test_metrics = None
            if finished and c.data.evaluate_test:
                test_metrics = self._evaluate_test()
            if self.ctx.is_main:
                write_summary(
                    self.out / "metrics.json",
                    epochs_done=self.epoch,
                    finished=finished,
                    best_epoch=self.best_epoch,
                    selection_metric=c.selection_metric,
                    val=self.best_val,
                    test=test_metrics,
                )
            return TrainResult(
                out=self.out,
                best_model=self.out / BEST_MODEL_NAME,
                best_epoch=self.best_epoch,
                val_metrics=dict(self.best_val),
                test_metrics=test_metrics,
                epochs_done=self.epoch,
                finished=finished,
                history=list(self.history),
            )
        finally:
            if handler is not None:
                detach_log_file(handler)
            self._release()

    def _fit_to_time(self, call_start: float, deadline: float, epochs_this_call: int) -> bool:
        """Cut the run's total epochs to what still fits before ``deadline`` (time.monotonic).

        Fitting epochs = ⌊time left / epoch time⌋, the epoch time being the larger of this
        call's mean and its last epoch (epochs slow down when a shared machine fills up).
        Times are averaged over processes, so every rank takes the same decision. The schedule
        is re-stretched at the current step exactly as a ``resume`` with fewer ``epochs``
        would, and the new total is what ``checkpoint.pt`` and ``config.yaml`` record. Never
        lengthens the run. When no further epoch fits, the total stays (an un-annealed run is
        not called finished) and the call stops, as ``stop_after`` would: a later ``resume``
        continues the schedule.

        Returns:
            Whether this call may run another epoch.
        """
        now = time.monotonic()
        timings = torch.tensor(
            [now - call_start, float(self.history[-1]["time_s"]), deadline - now],
            dtype=torch.float64,
        )
        spent, last, left = (
            self.ctx.all_reduce_sum(timings.to(self.device)) / self.ctx.world_size
        ).tolist()
        per_epoch = max(spent / epochs_this_call, last)
        fitting = max(0, math.floor(left / per_epoch))
        total = min(self.config.epochs, self.epoch + fitting)
        if total == self.config.epochs:
            return True
        if fitting == 0:
            logger.warning(
                "time limit: %.0f s left, %.0f s per epoch; stopping after epoch %d of %d "
                "(resume to continue)",
                left,
                per_epoch,
                self.epoch,
                self.config.epochs,
            )
            return False
        logger.warning(
            "time limit: %.0f s left, %.0f s per epoch; the run now ends after epoch %d "
            "instead of %d",
            left,
            per_epoch,
            total,
            self.config.epochs,
        )
        self.config = dataclasses.replace(self.config, epochs=total)
        self.schedule.set_epochs(total)
        if self.ctx.is_main:
            self.config.write_yaml(self.out / "config.yaml")
            save_checkpoint(self.out / CHECKPOINT_NAME, self._checkpoint_state())
        return True

    def _plot_learning_curve(self) -> None:
        plot_learning_curve(self.out / "learning_curve.png", self.history)
        self._last_plot, self._plotted_epoch = time.monotonic(), self.epoch

    def _run_epoch(self, epoch: int) -> None:
        c = self.config
        started = time.perf_counter()
        train_metrics = self._train_epoch(epoch)
        val_metrics = self._validate()
        self.schedule.step_epoch(val_metrics.get("loss", math.nan))
        elapsed = time.perf_counter() - started
        self.train_time_s += elapsed
        self.epoch = epoch
        row: dict[str, Any] = {"epoch": epoch, "step": self.step, "lr": self.schedule.lr}
        row["time_s"] = elapsed
        row.update({f"train_{k}": v for k, v in train_metrics.items()})
        row.update({f"val_{k}": v for k, v in val_metrics.items()})
        self.history.append(row)
        metric = val_metrics[c.selection_metric]
        improved = self.best_epoch == 0 or metric < self.best_metric
        if improved:
            self.best_metric, self.best_epoch, self.best_val = metric, epoch, dict(val_metrics)
        spread = self.ctx.max_parameter_spread(self.model)
        if spread > 0:
            raise RuntimeError(
                f"weights differ between processes by {spread:.3g} after epoch {epoch}"
            )
        if self.ctx.is_main:
            if improved:
                save_model(
                    self.ema.model,
                    self.out / BEST_MODEL_NAME,
                    metadata=self._metadata(train_metrics),
                )
            save_checkpoint(self.out / CHECKPOINT_NAME, self._checkpoint_state())
            write_csv(self.out / "log.csv", self.history)
            if time.monotonic() - self._last_plot >= PLOT_INTERVAL_S:
                self._plot_learning_curve()
            selected = (
                "" if c.selection_metric == "loss" else f", val {c.selection_metric} {metric:.4g}"
            )
            logger.info(
                "epoch %d/%d: train loss %.4g, val loss %.4g%s%s (%.1f s, %.2f structures/s)",
                epoch,
                c.epochs,
                train_metrics.get("loss", math.nan),
                val_metrics.get("loss", math.nan),
                selected,
                " (best)" if improved else "",
                elapsed,
                len(self.train_graphs) / elapsed,
            )

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        c = self.config
        plan = plan_batches(
            len(self.train_graphs),
            c.optim.batch_size,
            shuffle=True,
            seed=derive_seed(c.seed, "epoch", epoch),
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
        )
        metrics = train_epoch(
            self.model,
            self.train_graphs,
            plan,
            loss=self.loss,
            optimizer=self.optimizer,
            ema=self.ema,
            schedule=self.schedule,
            ctx=self.ctx,
            device=self.device,
            grad_clip=c.optim.grad_clip,
            epoch=epoch,
            epochs=c.epochs,
            first_step=self.step,
            progress=c.progress and self.ctx.is_main,
        )
        self.step += len(plan)
        return metrics

    def _validate(self) -> dict[str, float]:
        return validate(
            self.ema.model,
            self.val_batches,
            loss=self.loss,
            compute_forces=self.val_forces,
            ctx=self.ctx,
            device=self.device,
        )
