"""Message sums in chunks of receivers, recomputed in the backward pass (inference memory O(chunk)).

A message block sums edge terms m_ij onto receivers: out_j = Σ_i m_ij. Kept for the backward
pass, its edge tensors ([n_edges, 3F] and [n_edges, 3, F] per block) are nearly all the memory of
a force call: about 0.7 MB per atom for PaiNN in dense water. Here the edges are sorted by
receiver (stably, so each receiver's terms keep their order and its sum the same value), cut
into runs of whole receivers of at most ``max_edges`` edges. The forward pass keeps none of a
run's edge tensors; the backward pass recomputes each run from its senders' rows and adds the
run's gradients into the inputs' in place, so only one run's edge tensors live at a time and the
work stays O(n_edges). The price is the message forward computed twice. For forces and stress
(one backward pass); not for training, whose force loss differentiates the forces again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from phicalc.errors import ConfigError

#: Edges per run when a caller asks for chunks without a size: 8,192 edges keep each recomputed
#: edge tensor of a PaiNN block (F = 64) at 6 MB in float32, under glibc's mmap threshold.
DEFAULT_EDGES_PER_CHUNK = 1 << 13


#: ``sums(module, *args)``: a message module's ``receiver_sums(*args)``, or a compiled version.
MessageSums = Callable[..., tuple[torch.Tensor, ...]]
#: ``gradients(module, ...)``: :func:`run_gradients`, or a compiled version.
RunGradients = Callable[..., list]


def plain_sums(module: nn.Module, *args: Any) -> tuple[torch.Tensor, ...]:
    """``module.receiver_sums(*args)``, evaluated as it is."""
    return module.receiver_sums(*args)


def run_gradients(
    module: nn.Module,
    node_inputs: Sequence[torch.Tensor | None],
    edge_inputs: Sequence[torch.Tensor],
    parameters: Sequence[torch.Tensor],
    senders: torch.Tensor,
    receivers: torch.Tensor,
    n_receivers: int,
    grad_outputs: Sequence[torch.Tensor],
    needs: Sequence[bool],
) -> list[torch.Tensor | None]:
    """The gradients of one run's sums (``module.receiver_sums``, recomputed) given the
    gradients of its outputs [n_receivers, ...]: with respect to the senders' rows of each node
    input [n_run_edges, ...], the run's edge inputs and ``parameters``, in that order, where
    ``needs`` marks them (None elsewhere and for absent node inputs). The backward pass adds the
    rows' gradients into the node inputs' at ``senders``."""
    with torch.enable_grad():
        rows = [
            None if t is None else t.detach().index_select(0, senders).requires_grad_(need)
            for t, need in zip(node_inputs, needs, strict=False)
        ]
        edge_needs = needs[len(rows) : len(rows) + len(edge_inputs)]
        edges = [
            t.detach().requires_grad_(need) for t, need in zip(edge_inputs, edge_needs, strict=True)
        ]
        outputs = module.receiver_sums(*rows, *edges, receivers, n_receivers)
        candidates = [*rows, *edges, *parameters]
        wanted = [t for t, need in zip(candidates, needs, strict=True) if need and t is not None]
        found = iter(torch.autograd.grad(outputs, wanted, grad_outputs, allow_unused=True))
    return [
        next(found) if need and t is not None else None
        for t, need in zip(candidates, needs, strict=True)
    ]


@dataclass(frozen=True)
class EdgeChunking:
    """A caller's request to sum messages in runs of receivers (owned by the caller, e.g. a
    calculator; passed to :meth:`~phicalc.potential.Potential.forward`).

    Attributes:
        max_edges: edges per run (default :data:`DEFAULT_EDGES_PER_CHUNK`).
        sums: how a run is evaluated, ``sums(module, *args)``: the caller's compiled receiver
            sums (:class:`~phicalc.compiled.CompiledReceiverSums`) or :func:`plain_sums`.
        gradients: how a run's gradients are recomputed in the backward pass: the caller's
            compiled :func:`run_gradients` (:class:`~phicalc.compiled.CompiledRunGradients`) or
            :func:`run_gradients` itself.
    """

    max_edges: int = DEFAULT_EDGES_PER_CHUNK
    sums: MessageSums = plain_sums
    gradients: RunGradients = run_gradients

    def __post_init__(self) -> None:
        if isinstance(self.max_edges, bool) or not isinstance(self.max_edges, int):
            raise ConfigError(f"max_edges must be a whole number of edges, got {self.max_edges!r}")
        if self.max_edges < 1:
            raise ConfigError(f"max_edges must be at least 1, got {self.max_edges}")

    def check(self, backbone: nn.Module, training: bool) -> None:
        """Refuse a pass that cannot honour the chunking (:class:`ConfigError`): training (a
        force loss differentiates the forces again, through the recomputed runs) or a backbone
        without ``supports_edge_chunks``."""
        if training:
            raise ConfigError(
                "edge chunking is for inference only: a force loss differentiates the forces "
                "again, through the recomputed messages"
            )
        if not getattr(backbone, "supports_edge_chunks", False):
            raise ConfigError(
                f"the {type(backbone).__name__} backbone does not sum messages in runs"
            )


@dataclass(frozen=True)
class ReceiverChunks:
    """Edges sorted by receiver and cut into runs of whole receivers.

    Attributes:
        order: [n_edges] int64, a stable permutation sorting the edges by receiver: edge
            tensors are indexed with it once, before the blocks.
        edge_index: [2, n_edges] the sorted (sender, receiver) pairs.
        edge_bounds: run r holds sorted edges ``edge_bounds[r]:edge_bounds[r + 1]``.
        atom_bounds: ... and receivers ``atom_bounds[r]:atom_bounds[r + 1]`` (every atom in
            exactly one run, also atoms without edges).
        chunking: how each run is evaluated (:class:`EdgeChunking`).
    """

    order: torch.Tensor
    edge_index: torch.Tensor
    edge_bounds: tuple[int, ...]
    atom_bounds: tuple[int, ...]
    chunking: EdgeChunking

    @property
    def num_chunks(self) -> int:
        return len(self.edge_bounds) - 1


def receiver_chunks(
    edge_index: torch.Tensor, n_atoms: int, chunking: EdgeChunking
) -> ReceiverChunks:
    """Sort ``edge_index`` [2, n_edges] by receiver and cut it into runs of whole receivers, each
    of at most ``chunking.max_edges`` edges (one receiver with more makes a run of its own)."""
    receivers = edge_index[1]
    order = torch.argsort(receivers, stable=True)
    counts = torch.bincount(receivers, minlength=n_atoms).tolist()  # the one host read
    edge_bounds, atom_bounds, run_edges, start = [0], [0], 0, 0
    for atom, count in enumerate(counts):
        if run_edges and run_edges + count > chunking.max_edges:
            edge_bounds.append(start)
            atom_bounds.append(atom)
            run_edges = 0
        run_edges += count
        start += count
    edge_bounds.append(start)
    atom_bounds.append(n_atoms)
    return ReceiverChunks(
        order, edge_index[:, order], tuple(edge_bounds), tuple(atom_bounds), chunking
    )


def chunked_receiver_sums(
    module: nn.Module,
    node_inputs: Sequence[torch.Tensor | None],
    edge_inputs: Sequence[torch.Tensor],
    chunks: ReceiverChunks,
) -> tuple[torch.Tensor, ...]:
    """Per-receiver sums of a message block, one run of receivers at a time.

    Args:
        module: a message block with ``receiver_sums(*sender_rows, *edge_inputs_of_run,
            local_receivers, n_receivers)`` returning tensors [n_receivers, ...]: the run's
            sums from its edges' sender rows, receivers counted from the run's first atom. The
            same method serves an unchunked call (all edges, receivers as they are), so both
            compute the same terms.
        node_inputs: per-atom tensors [n_atoms, ...] whose sender rows ``receiver_sums`` takes
            (or None).
        edge_inputs: per-edge tensors [n_edges, ...] already in ``chunks.order``.
        chunks: from :func:`receiver_chunks`.

    Returns:
        The sums [n_atoms, ...] of all runs, in atom order. With gradients enabled the backward
        pass recomputes each run (:class:`_RunSums`) instead of keeping its edge tensors.
    """
    if not torch.is_grad_enabled():
        return _sum_runs(module, node_inputs, edge_inputs, chunks)
    parameters = [p for p in module.parameters() if p.requires_grad]
    return _RunSums.apply(
        module, chunks, len(node_inputs), len(edge_inputs), *node_inputs, *edge_inputs, *parameters
    )


def _sum_runs(
    module: nn.Module,
    node_inputs: Sequence[torch.Tensor | None],
    edge_inputs: Sequence[torch.Tensor],
    chunks: ReceiverChunks,
) -> tuple[torch.Tensor, ...]:
    """Every run's sums, concatenated in atom order (no gradients kept)."""
    senders, receivers = chunks.edge_index
    parts = []
    for e0, e1, a0, a1 in _runs(chunks):
        rows = [None if t is None else t.index_select(0, senders[e0:e1]) for t in node_inputs]
        edges = _run_edges(edge_inputs, e0, e1)
        parts.append(chunks.chunking.sums(module, *rows, *edges, receivers[e0:e1] - a0, a1 - a0))
    return tuple(torch.cat(run, dim=0) for run in zip(*parts, strict=True))


def _runs(chunks: ReceiverChunks):
    """(first edge, end edge, first atom, end atom) of each run."""
    bounds = chunks.edge_bounds, chunks.atom_bounds
    return zip(bounds[0][:-1], bounds[0][1:], bounds[1][:-1], bounds[1][1:], strict=True)


def _run_edges(edge_inputs: Sequence[torch.Tensor], e0: int, e1: int) -> list[torch.Tensor]:
    """A run's edge tensors, each in its own storage: for a compiled ``sums`` the first run's
    offset 0 would otherwise specialise a graph of its own."""
    return [t[e0:e1].detach().clone() for t in edge_inputs]


class _RunSums(torch.autograd.Function):
    """:func:`chunked_receiver_sums` with gradients: the forward pass keeps only its inputs; the
    backward pass recomputes one run at a time from the senders' rows gathered for it, and adds
    the run's gradients into the inputs' (rows of the senders, slices of the edges) in place, so
    the work stays O(n_edges) however many runs there are. Once differentiable (inference).
    Its inputs: node inputs (None where absent), edge inputs, then the module's parameters."""

    @staticmethod
    def forward(ctx, module, chunks, n_node, n_edge, *inputs):  # type: ignore[override]
        ctx.run_setup = (module, chunks, n_node, n_edge)
        ctx.save_for_backward(*inputs)
        return _sum_runs(module, inputs[:n_node], inputs[n_node : n_node + n_edge], chunks)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_outputs):  # type: ignore[override]
        module, chunks, n_node, n_edge = ctx.run_setup
        inputs = ctx.saved_tensors
        needs = [bool(need) for need in ctx.needs_input_grad[4:]]
        grads = [
            torch.zeros_like(t) if need else None for t, need in zip(inputs, needs, strict=True)
        ]
        node_inputs = [None if t is None else t.detach() for t in inputs[:n_node]]
        senders, receivers = chunks.edge_index
        for e0, e1, a0, a1 in _runs(chunks):
            run_senders = senders[e0:e1].clone()  # own storage, as _run_edges says
            run_grads = chunks.chunking.gradients(
                module,
                node_inputs,
                _run_edges(inputs[n_node : n_node + n_edge], e0, e1),
                list(inputs[n_node + n_edge :]),
                run_senders,
                receivers[e0:e1] - a0,
                a1 - a0,
                [g[a0:a1].clone() for g in grad_outputs],
                needs,
            )
            for k, grad in enumerate(run_grads):
                if grad is None:
                    continue
                if k < n_node:  # the senders' rows
                    grads[k].index_add_(0, run_senders, grad)
                elif k < n_node + n_edge:  # the run's edges
                    grads[k][e0:e1] = grad
                else:  # a parameter
                    grads[k] += grad
        return (None, None, None, None, *grads)
