"""Weighted graph Laplacian of the molecular graph, L = D − W (symmetric, positive semi-definite).

Edge weights are smooth, w_ij = u(r_ij) · r₀ / r_ij with u the polynomial cutoff envelope and
r₀ = 1 Å, so L (and everything built on it) changes continuously when a pair crosses the cutoff
(the public reference used w = r with a hard cutoff). Periodic images are ordinary edges; an
atom's bond to its own image adds equally to D_ii and W_ii and so cancels in L.

Units: weights and eigenvalues of L in 1/Å (times r₀ = 1 Å, i.e. dimensionless numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from phicalc.nn.radial import PolynomialEnvelope
from phicalc.nn.scatter import scatter_sum

#: Batches of at most this many atoms apply L as one dense [n, n] matrix-vector product (each
#: step of the Φ filter, L φ̂, the charge transfer) instead of a gather and a scatter over the
#: edges: a few large operations in place of many small ones, where dispatch costs more than
#: arithmetic (0.78-0.86x the filter's time from 42 to 192 atoms of water, 1.14x at 258;
#: benchmarks/phi_filter.py). Memory n².
DENSE_MAX_ATOMS = 200


class LaplacianWeights(torch.nn.Module):
    """w_ij = u(r_ij) / r_ij (r in Å), shape [n_edges]."""

    def __init__(self, cutoff: float) -> None:
        super().__init__()
        self.envelope = PolynomialEnvelope(cutoff)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.envelope(lengths) / lengths


def laplacian_matvec(
    x: torch.Tensor, weights: torch.Tensor, edge_index: torch.Tensor
) -> torch.Tensor:
    """(L x)_j = Σ_i w_ij (x_j − x_i) over the full (symmetric) edge list; x: [n_atoms, ...]."""
    i, j = edge_index
    w = weights.reshape(-1, *([1] * (x.dim() - 1)))
    return scatter_sum(w * (x.index_select(0, j) - x.index_select(0, i)), j, x.shape[0])


def adjacency_matrix(weights: torch.Tensor, edge_index: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Dense weighted adjacency W [n_atoms, n_atoms] of a batch: W_ji = Σ w_e over the edges
    e = (i, j) (several images of one pair add up; a self-image lands on the diagonal), so that
    W.sum(1) are the :func:`degrees` and (D − W) x = :func:`laplacian_matvec`."""
    i, j = edge_index
    return weights.new_zeros((n_atoms, n_atoms)).index_put((j, i), weights, accumulate=True)


def degrees(weights: torch.Tensor, edge_index: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """d_j = Σ_i w_ij, shape [n_atoms]."""
    return scatter_sum(weights, edge_index[1], n_atoms)


@dataclass(frozen=True)
class GraphLaplacian:
    """L = D − W of a batch, made once per forward pass for everything that applies it (the Φ
    filter, L φ̂, the charge transfer between molecules).

    Attributes:
        weights: [n_edges] w_ij (1/Å); edge_index: [2, n_edges] (i, j) over the full list.
        degree: [n_atoms] d_j = Σ_i w_ij.
        adjacency: dense W [n_atoms, n_atoms] (:func:`adjacency_matrix`) for batches of at
            most :data:`DENSE_MAX_ATOMS` atoms, else ``None`` (products go over the edges).
    """

    weights: torch.Tensor
    edge_index: torch.Tensor
    degree: torch.Tensor
    adjacency: torch.Tensor | None

    @classmethod
    def of(cls, weights: torch.Tensor, edge_index: torch.Tensor, n_atoms: int) -> GraphLaplacian:
        """The Laplacian of the edges ``edge_index`` with weights ``weights`` on ``n_atoms``."""
        if n_atoms <= DENSE_MAX_ATOMS:
            adjacency = adjacency_matrix(weights, edge_index, n_atoms)
            return cls(weights, edge_index, adjacency.sum(1), adjacency)
        return cls(weights, edge_index, degrees(weights, edge_index, n_atoms), None)

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """L x for x [n_atoms]: d x − W x (equal to :func:`laplacian_matvec` to rounding)."""
        if self.adjacency is None:
            return laplacian_matvec(x, self.weights, self.edge_index)
        return torch.addmv(self.degree * x, self.adjacency, x, alpha=-1.0)


def spectral_bound(
    degree: torch.Tensor, batch: torch.Tensor, n_graphs: int, sharpness: float = 2.0
) -> torch.Tensor:
    """Smooth per-structure upper bound of the spectrum of L, shape [n_graphs].

    Gershgorin gives λ_max ≤ 2 max_i d_i. The max is replaced by the smooth log-sum-exp
    smax(d) = log Σ_i exp(β d_i) / β ≥ max_i d_i, so the bound (and every filter scaled by it)
    is differentiable everywhere; a floor of 0.1 keeps single atoms finite.
    """
    shift = torch.zeros(n_graphs, dtype=degree.dtype, device=degree.device)
    shift = shift.scatter_reduce(0, batch, degree.detach(), reduce="amax", include_self=False)
    summed = scatter_sum(torch.exp(sharpness * (degree - shift[batch])), batch, n_graphs)
    smooth_max = shift + torch.log(summed) / sharpness
    return 2.0 * smooth_max + 0.1


def dense_laplacian(
    weights: torch.Tensor,
    edge_index: torch.Tensor,
    batch: torch.Tensor,
    n_graphs: int,
    n_max: int,
    local_index: torch.Tensor,
) -> torch.Tensor:
    """Per-structure dense L, zero-padded to [n_graphs, n_max, n_max].

    Args:
        local_index: [n_atoms] index of each atom inside its structure.
    """
    i, j = edge_index
    g = batch[i]
    w_dense = weights.new_zeros((n_graphs, n_max, n_max))
    w_dense = w_dense.index_put((g, local_index[i], local_index[j]), weights, accumulate=True)
    return torch.diag_embed(w_dense.sum(-1)) - w_dense
