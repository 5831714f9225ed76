"""One pass over the training data: a step per batch, then the validation of the EMA weights.

A step: collate the batch's graphs, forward with ``training=True`` (so the energy keeps its
graph even without forces), backward the weighted loss, average gradients across processes,
clip, AdamW, update the EMA and step the learning-rate schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from phicalc.graph.batch import AtomGraph, collate
from phicalc.train.distributed import DistributedContext
from phicalc.train.ema import ExponentialMovingAverage
from phicalc.train.evaluation import evaluate_batches
from phicalc.train.loss import WeightedLoss
from phicalc.train.metrics import MetricAccumulator
from phicalc.train.schedule import LRSchedule


def train_epoch(
    model: torch.nn.Module,
    graphs: Sequence[AtomGraph],
    plan: Sequence[np.ndarray],
    *,
    loss: WeightedLoss,
    optimizer: torch.optim.Optimizer,
    ema: ExponentialMovingAverage,
    schedule: LRSchedule,
    ctx: DistributedContext,
    device: torch.device,
    grad_clip: float | None,
    epoch: int,
    epochs: int,
    first_step: int,
    progress: bool,
) -> dict[str, float]:
    """Take one optimisation step per entry of ``plan`` (indices into ``graphs``).

    Every process takes a step for every entry, an empty one included, so collective calls
    stay matched. ``epoch`` / ``epochs`` and ``first_step`` (steps done before) name the
    progress bar and the step of a non-finite loss.

    Returns:
        The epoch's training metrics, summed over all processes.
    """
    model.train()
    compute_forces = "forces" in loss.weights
    accumulator = MetricAccumulator(loss.weights)
    params = [p for p in model.parameters() if p.requires_grad]
    bar = tqdm(
        total=len(plan),
        desc=f"epoch {epoch}/{epochs}",
        unit="batch",
        leave=False,
        disable=not progress,
    )
    for step, indices in enumerate(plan, start=first_step + 1):
        optimizer.zero_grad(set_to_none=True)
        loss_value = math.nan
        if len(indices):
            batch = collate([graphs[int(i)] for i in indices])
            outputs = model(batch, compute_forces=compute_forces, training=True)
            terms = loss.terms(outputs, batch)
            total = loss.combine(terms)
            loss_value = float(total.detach())
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"training loss is {loss_value} at epoch {epoch}, step {step}"
                )
            total.backward()
            accumulator.update(outputs, batch, terms)
        ctx.average_gradients(params, len(indices))
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        ema.update(model)
        schedule.step()
        bar.set_postfix(loss=f"{loss_value:.4g}", lr=f"{schedule.lr:.2e}", refresh=False)
        bar.update()
    bar.close()
    return _reduced(accumulator, ctx, device)


def validate(
    model: torch.nn.Module,
    batches: Sequence[AtomGraph],
    *,
    loss: WeightedLoss | None,
    compute_forces: bool,
    ctx: DistributedContext,
    device: torch.device,
) -> dict[str, float]:
    """Metrics (and the loss, if given) of ``model`` over every process's ``batches``."""
    accumulator = evaluate_batches(model, batches, compute_forces=compute_forces, loss=loss)
    return _reduced(accumulator, ctx, device)


def _reduced(
    accumulator: MetricAccumulator, ctx: DistributedContext, device: torch.device
) -> dict[str, float]:
    accumulator.merge_(ctx.all_reduce_sum(accumulator.sums.to(device)))
    return accumulator.compute()
