"""Batched evaluation of a Potential on labelled graphs (batches: :func:`phicalc.data.plan_batches`).

Evaluation goes through :meth:`Potential.forward` in eval mode (no calculator, no per-structure
loop): graphs are collated into batches, moved to the model's device, and every batch's errors
are added to a :class:`~phicalc.train.metrics.MetricAccumulator`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from phicalc.data.datasets import plan_batches
from phicalc.graph.batch import AtomGraph, collate
from phicalc.train.loss import WeightedLoss
from phicalc.train.metrics import MetricAccumulator


def evaluate_batches(
    model: torch.nn.Module,
    batches: Iterable[AtomGraph],
    *,
    compute_forces: bool,
    loss: WeightedLoss | None = None,
) -> MetricAccumulator:
    """Sum the errors of ``model`` (put in eval mode) over ``batches``.

    Args:
        model: a :class:`~phicalc.potential.Potential`.
        batches: collated graphs with ``targets``, on the model's device.
        compute_forces: predict forces (needed for force metrics; costs a backward pass).
        loss: also sum the terms of this loss, to report the exact loss of the set.

    Returns:
        The accumulator (call ``compute()``; all-reduce ``sums`` first when distributed).
    """
    model.eval()
    accumulator = MetricAccumulator(loss.weights if loss is not None else None)
    for batch in batches:
        outputs = model(batch, compute_forces=compute_forces, training=False)
        terms = loss.terms(outputs, batch) if loss is not None else None
        accumulator.update(outputs, batch, terms)
    return accumulator


def collate_batches(
    graphs: Sequence[AtomGraph],
    batch_size: int,
    *,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world_size: int = 1,
) -> list[AtomGraph]:
    """Fixed-order batches of ``graphs`` (this process's share), collated once and moved."""
    plan = plan_batches(len(graphs), batch_size, rank=rank, world_size=world_size)
    return [collate([graphs[int(i)] for i in idx]).to(device) for idx in plan if len(idx)]


def evaluate(
    model: torch.nn.Module,
    graphs: Sequence[AtomGraph],
    *,
    batch_size: int = 32,
    compute_forces: bool | None = None,
    loss: WeightedLoss | None = None,
) -> dict[str, float]:
    """Metrics of ``model`` on labelled graphs (see :mod:`phicalc.train.metrics` for names).

    Args:
        model: a :class:`~phicalc.potential.Potential`; evaluated on its device, in eval mode.
        graphs: one-structure graphs with ``targets`` (e.g. a :class:`phicalc.data.GraphDataset`).
        batch_size: structures per forward pass.
        compute_forces: predict forces; default: when every graph has reference forces.
        loss: also report this loss over the set.

    Returns:
        ``energy_mae_meV``, ``energy_mae_per_atom_meV``, ``forces_mae_eV_A``,
        ``charges_pearson_r``, ... for the targets present.
    """
    if len(graphs) == 0:
        raise ValueError("evaluate needs at least one structure")
    if compute_forces is None:
        compute_forces = all(g.targets is not None and "forces" in g.targets for g in graphs)
    device = next(model.parameters()).device
    batches = (
        collate([graphs[int(i)] for i in idx]).to(device)
        for idx in plan_batches(len(graphs), batch_size)
    )
    accumulator = evaluate_batches(model, batches, compute_forces=compute_forces, loss=loss)
    return accumulator.compute()
