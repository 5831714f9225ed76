"""Data-parallel training with ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Launched by ``torchrun --nproc_per_node N -m phicalc.cli.main train cfg.yaml``, which sets
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``. Every process builds the same model from the same
seed, takes a disjoint share of every global batch (:func:`phicalc.data.plan_batches`)
and, after its backward pass, joins one all-reduce of its flattened gradients weighted by its
number of structures:

    g = Σ_r n_r g_r / Σ_r n_r

so that the update equals single-process training on the global batch for a per-structure loss
(and for a force loss when the processes hold equally many atoms). Gradients are reduced by hand
rather than by ``DistributedDataParallel``: force training differentiates twice
(``create_graph=True``), which DDP's autograd hooks do not officially support, and one
flattened all-reduce per step costs the same. Only rank 0 writes files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)


@dataclass
class DistributedContext:
    """Rank, world size and the collective operations the trainer needs (no-ops when alone).

    Attributes:
        rank: this process (0 writes files and shows progress).
        world_size: number of processes.
        local_rank: index on this node (selects the GPU).
        owns_group: this context created the process group and destroys it in :meth:`close`.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum of ``tensor`` over processes (returned; the input is not modified)."""
        if not self.enabled:
            return tensor
        total = tensor.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    def average_gradients(self, parameters: Iterable[nn.Parameter], n_local: int) -> None:
        """Replace each gradient by Σ_r n_r g_r / Σ_r n_r (a missing gradient counts as zero)."""
        if not self.enabled:
            return
        params = [p for p in parameters if p.requires_grad]
        grads = [
            (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params
        ]
        weight = torch.tensor([float(n_local)], dtype=grads[0].dtype, device=grads[0].device)
        flat = torch.cat([torch.cat(grads) * weight, weight])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        total = flat[-1]
        if total <= 0:
            raise RuntimeError("no process had a structure in this global batch")
        flat = flat[:-1] / total
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every process."""
        if not self.enabled:
            return
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def max_parameter_spread(self, module: nn.Module) -> float:
        """max over parameters of (max over processes − min over processes); 0 when in sync."""
        if not self.enabled:
            return 0.0
        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1).double() for p in module.parameters()])
            high, low = flat.clone(), flat.clone()
            dist.all_reduce(high, op=dist.ReduceOp.MAX)
            dist.all_reduce(low, op=dist.ReduceOp.MIN)
            return float((high - low).abs().max())

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def init_distributed(device: str) -> DistributedContext:
    """Join the process group described by torchrun's environment (or run alone without one).

    Args:
        device: "cuda..." selects NCCL, anything else gloo.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
        owns = True
        logger.debug("rank %d/%d joined the %s process group", rank, world_size, backend)
    return DistributedContext(
        rank=rank, world_size=world_size, local_rank=local_rank, owns_group=owns
    )
