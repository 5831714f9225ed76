"""Weighted training loss over energy, forces, charges and dipoles.

    L = Σ_k w_k · (1/N_k) Σ_n p(ŷ_n − y_n),   p ∈ {|d|, d², Huber_δ(d)}

with N_k the number of compared values of target k: structures (energy, per atom by default),
force components, atoms (charges) and dipole components. Every term is returned as a (sum,
count) pair so that the same numbers give the exact loss over a whole validation set.
"""

from __future__ import annotations

import torch

from phicalc.graph.batch import PARTIAL_TARGETS, AtomGraph
from phicalc.train.config import LossSection

#: Model output key of each target.
OUTPUT_KEYS = {"energy": "energy", "forces": "forces", "charges": "charges", "dipole": "dipole"}


def penalty(diff: torch.Tensor, kind: str, delta: float = 0.01) -> torch.Tensor:
    """Elementwise penalty of a difference: "l1" |d|, "l2" d², "huber" (½d² if |d| < δ else δ(|d|−½δ))."""
    if kind == "l1":
        return diff.abs()
    if kind == "l2":
        return diff * diff
    if kind == "huber":
        absolute = diff.abs()
        return torch.where(absolute < delta, 0.5 * diff * diff, delta * (absolute - 0.5 * delta))
    raise ValueError(f"unknown penalty {kind!r}; allowed: l1, l2, huber")


def target_differences(
    outputs: dict[str, torch.Tensor], batch: AtomGraph, *, energy_per_atom: bool = True
) -> dict[str, torch.Tensor]:
    """Prediction − reference for every target present in both ``outputs`` and ``batch.targets``.

    Returns:
        ``energy`` [n_graphs] (eV, or eV/atom with ``energy_per_atom``), ``forces`` [n_atoms, 3]
        (eV/Å), ``charges`` [n_atoms] (e), ``dipole`` [n_with_reference, 3] (e·Å; structures
        whose reference is NaN, periodic ones in a mixed batch, are left out).
    """
    targets = batch.targets or {}
    diffs: dict[str, torch.Tensor] = {}
    for name, key in OUTPUT_KEYS.items():
        if key not in outputs or name not in targets:
            continue
        prediction = outputs[key]
        reference = targets[name].to(device=prediction.device, dtype=prediction.dtype)
        diff = prediction - reference.reshape(prediction.shape)
        if name == "energy" and energy_per_atom:
            diff = diff / batch.n_atoms_per_graph.to(diff.dtype)
        if name in PARTIAL_TARGETS:  # structures without a reference (NaN rows) are skipped
            diff = diff[~torch.isnan(reference.reshape(prediction.shape)).any(dim=-1)]
        diffs[name] = diff
    return diffs


class WeightedLoss:
    """The training loss of a :class:`LossSection` (see the module docstring).

    Args:
        config: kind, Huber δ, weights and the per-atom energy switch.
    """

    def __init__(self, config: LossSection) -> None:
        self.config = config
        self.weights = config.weights()

    def __repr__(self) -> str:
        return (
            f"WeightedLoss(kind={self.config.kind!r}, weights={self.weights}, "
            f"energy_per_atom={self.config.energy_per_atom})"
        )

    def terms(
        self, outputs: dict[str, torch.Tensor], batch: AtomGraph
    ) -> dict[str, tuple[torch.Tensor, int]]:
        """(sum of penalties, number of values) of every weighted target.

        Raises:
            ValueError: a weighted target is missing from the outputs or the batch targets.
        """
        diffs = target_differences(outputs, batch, energy_per_atom=self.config.energy_per_atom)
        for name, width in PARTIAL_TARGETS.items():  # e.g. a batch of periodic cells only
            key = OUTPUT_KEYS[name]
            if name in self.weights and name not in diffs and key in outputs:
                diffs[name] = outputs[key].new_zeros((0, width))  # an empty term
        missing = sorted(set(self.weights) - set(diffs))
        if missing:
            raise ValueError(
                f"loss targets {missing} are missing from the model outputs or reference data"
            )
        return {
            name: (
                penalty(diffs[name], self.config.kind, self.config.huber_delta)
                .to(torch.float64)
                .sum(),
                diffs[name].numel(),
            )
            for name in self.weights
        }

    def combine(self, terms: dict[str, tuple[torch.Tensor, int]]) -> torch.Tensor:
        """L = Σ_k w_k · sum_k / count_k (a float64 scalar); empty terms contribute 0."""
        total = None
        for name, (value, count) in terms.items():
            if count == 0:
                continue
            part = self.weights[name] * value / count
            total = part if total is None else total + part
        if total is None:
            return torch.zeros((), dtype=torch.float64)
        return total

    def __call__(self, outputs: dict[str, torch.Tensor], batch: AtomGraph) -> torch.Tensor:
        return self.combine(self.terms(outputs, batch))
