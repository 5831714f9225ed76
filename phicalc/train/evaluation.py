"""Batched evaluation of a Potential on labelled graphs, and the batch plan shared with training.

Evaluation goes through :meth:`Potential.forward` in eval mode (no calculator, no per-structure
loop): graphs are collated into batches, moved to the model's device, and every batch's errors
are added to a :class:`~phicalc.train.metrics.MetricAccumulator`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from phicalc.graph.batch import AtomGraph, collate
from phicalc.train.loss import WeightedLoss
from phicalc.train.metrics import MetricAccumulator


def plan_batches(
    n: int,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> list[np.ndarray]:
    """Indices of this process's share of every global batch of one pass over ``n`` structures.

    The order is ``numpy.random.default_rng(seed).permutation(n)`` when ``shuffle`` (as in
    :func:`phicalc.data.iterate_batches`), else ``arange(n)``. It is cut into global batches of
    ``batch_size × world_size`` structures, and each global batch into ``world_size`` contiguous
    parts (``numpy.array_split``); process ``rank`` gets part ``rank``. Every process gets the
    same number of entries (possibly empty ones at the end), so collective calls stay matched,
    and with ``world_size=1`` the batches are those of ``iterate_batches``.

    Args:
        n: number of structures.
        batch_size: structures per batch and process.
        shuffle: permute the order.
        seed: permutation seed (e.g. ``seed + epoch``).
        rank: this process.
        world_size: number of processes.

    Returns:
        One int64 index array per optimisation step.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    step = batch_size * world_size
    return [
        np.array_split(order[start : start + step], world_size)[rank].astype(np.int64)
        for start in range(0, n, step)
    ]


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
