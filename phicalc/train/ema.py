"""Exponential moving average (EMA) of model weights.

After every optimisation step θ̄ ← d θ̄ + (1 − d) θ with d = min(decay, (1 + n)/(10 + n)) (n the
number of updates so far), so the average follows the weights closely early in training. Buffers
(E0, σ, ...) are copied, not averaged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ExponentialMovingAverage:
    """Keeps an averaged copy of ``model`` in :attr:`model` (the model itself when decay is None).

    Args:
        model: the model being trained.
        decay: target decay d in (0, 1), or None for no averaging.
    """

    def __init__(self, model: nn.Module, decay: float | None) -> None:
        self.decay = decay
        self.num_updates = 0
        if decay is None:
            self.model = model
        else:
            self.model = copy.deepcopy(model)
            self.model.requires_grad_(False)

    def __repr__(self) -> str:
        return f"ExponentialMovingAverage(decay={self.decay}, num_updates={self.num_updates})"

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average."""
        if self.decay is None:
            return
        n = self.num_updates
        decay = min(self.decay, (1.0 + n) / (10.0 + n))
        for averaged, current in zip(self.model.parameters(), model.parameters()):
            averaged.lerp_(current, 1.0 - decay)
        for averaged, current in zip(self.model.buffers(), model.buffers()):
            averaged.copy_(current)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        if self.decay is None:
            return {"num_updates": self.num_updates}
        return {"num_updates": self.num_updates, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_updates = int(state["num_updates"])
        if self.decay is not None:
            self.model.load_state_dict(state["model"])
