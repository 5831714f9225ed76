"""Learning-rate schedule: linear warm-up, then cosine decay, plateau decay or a constant rate.

The schedule owns the learning rate of every parameter group and keeps its state in plain
numbers, so a checkpoint restores it exactly::

    cosine:    lr(s) = min_lr + ½ (lr − min_lr)(1 + cos(π (s − s_w)/(S − s_w)))   for s ≥ s_w
    plateau:   lr = max(min_lr, lr · factor^k), k = number of plateaus so far
    warm-up:   lr(s) = lr · (a + (1 − a) s / s_w) for s < s_w (a = ``warmup_start``)

with s the optimisation step, s_w the warm-up steps and S the total steps of the run.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from phicalc.train.config import OptimSection


class LRSchedule:
    """Sets ``optimizer``'s learning rate every step (and, for "plateau", every epoch).

    Args:
        optimizer: the optimiser whose parameter groups it drives.
        config: lr, min_lr, scheduler kind, warm-up and plateau options.
        steps_per_epoch: optimisation steps per epoch.
        epochs: epochs of the whole run (cosine reaches ``min_lr`` at the last step).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        config: OptimSection,
        *,
        steps_per_epoch: int,
        epochs: int,
    ) -> None:
        self.optimizer = optimizer
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
        self.total_steps = max(1, steps_per_epoch * epochs)
        self.step_count = 0
        self.plateau_scale = 1.0
        self.best = math.inf
        self.bad_epochs = 0
        self._apply()

    def __repr__(self) -> str:
        return (
            f"LRSchedule({self.config.scheduler}, lr={self.config.lr}, "
            f"warmup_steps={self.warmup_steps}, total_steps={self.total_steps})"
        )

    @property
    def lr(self) -> float:
        """Learning rate at the current step."""
        c = self.config
        s = self.step_count
        warm = 1.0
        if s < self.warmup_steps:
            warm = c.warmup_start + (1.0 - c.warmup_start) * s / self.warmup_steps
        if c.scheduler == "cosine":
            if s < self.warmup_steps:
                return c.lr * warm
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, (s - self.warmup_steps) / span)
            return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1.0 + math.cos(math.pi * progress))
        if c.scheduler == "plateau":
            return max(c.min_lr, c.lr * self.plateau_scale) * warm
        return c.lr * warm

    def _apply(self) -> None:
        lr = self.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def set_epochs(self, epochs: int) -> None:
        """Re-stretch the cosine to end after ``epochs`` at the current step (as a resume with
        another ``epochs`` does); the rate changes from the next value on."""
        self.total_steps = max(1, self.steps_per_epoch * epochs)
        self._apply()

    def step(self) -> None:
        """Advance one optimisation step."""
        self.step_count += 1
        self._apply()

    def step_epoch(self, metric: float) -> None:
        """End of an epoch with validation ``metric`` (lower is better); drives "plateau"."""
        c = self.config
        if c.scheduler != "plateau" or not math.isfinite(metric):
            return
        if metric < self.best * (1.0 - c.threshold):
            self.best = metric
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > c.patience:
                self.plateau_scale *= c.factor
                self.bad_epochs = 0
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "plateau_scale": self.plateau_scale,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.plateau_scale = float(state["plateau_scale"])
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self._apply()
