"""PaiNN (Schütt, Unke & Gastegger, 2021): equivariant message passing with scalar and vector features."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from phicalc.config import check_int_at_least
from phicalc.nn.backbones.base import Backbone, BackboneOutput, Geometry
from phicalc.nn.edge_chunks import ReceiverChunks, chunked_receiver_sums, receiver_chunks
from phicalc.nn.radial import RadialEmbedding
from phicalc.nn.scatter import scatter_sum

#: ε inside square roots: keeps ‖v‖ and its derivatives finite at v = 0 (double backprop too).
NORM_EPS = 1e-8


@dataclass(frozen=True)
class PaiNNConfig:
    """PaiNN hyperparameters.

    Args:
        num_features: width F of scalar and vector features (default: 64).
        num_blocks: number of message + update blocks (default: 3).
        num_radial: Bessel basis size (default: 16).
    """

    num_features: int = 64
    num_blocks: int = 3
    num_radial: int = 16

    def __post_init__(self) -> None:
        for name in ("num_features", "num_blocks", "num_radial"):
            check_int_at_least(f"PaiNNConfig.{name}", getattr(self, name), 1)


class PaiNNMessage(nn.Module):
    """Message block: for each edge i→j, with φ = MLP(s_i) and W = Linear(e(r_ij))·u(r_ij),

    Δs_j = Σ_i φ_s W_s,   Δv_j = Σ_i [v_i ∘ φ_vv W_vv + r̂_ij ∘ φ_vs W_vs].

    ``v = None`` stands for all-zero vector features (the first block): the v_i term, which
    would add exact zeros, is skipped, and the new v is the r̂ term alone (same numbers).
    """

    def __init__(self, num_features: int, num_radial: int) -> None:
        super().__init__()
        f = num_features
        self.scalar_mlp = nn.Sequential(nn.Linear(f, f), nn.SiLU(), nn.Linear(f, 3 * f))
        self.filter = nn.Linear(num_radial, 3 * f)

    def forward(
        self,
        s: torch.Tensor,
        v: torch.Tensor | None,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        unit_vectors: torch.Tensor,
        edge_index: torch.Tensor,
        chunks: ReceiverChunks | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """New (s [n_atoms, F], v [n_atoms, 3, F]); with ``chunks`` the edge tensors are in
        ``chunks.order`` and the sums run over receivers in chunks (:mod:`~phicalc.nn.edge_chunks`)."""
        scalars = self.scalar_mlp(s)  # [n_atoms, 3F]
        edges = (radial, envelope, unit_vectors)
        if chunks is None:
            i, j = edge_index
            rows = (scalars.index_select(0, i), None if v is None else v.index_select(0, i))
            ds, dv = self.receiver_sums(*rows, *edges, j, s.shape[0])
        else:
            ds, dv = chunked_receiver_sums(self, (scalars, v), edges, chunks)
        return s + ds, dv if v is None else v + dv

    def receiver_sums(
        self,
        sender_scalars: torch.Tensor,
        sender_vectors: torch.Tensor | None,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        unit_vectors: torch.Tensor,
        receivers: torch.Tensor,
        n_receivers: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Σ_i φ_s W_s and Σ_i [v_i ∘ φ_vv W_vv + r̂_ij ∘ φ_vs W_vs] per receiver over the edges
        given, from each edge's sender rows φ_i = MLP(s_i) [n_edges, 3F] and v_i [n_edges, 3, F]:
        [n_receivers, F], [n_receivers, 3, F]."""
        f = sender_scalars.shape[-1] // 3
        x = sender_scalars * self.filter(radial) * envelope.unsqueeze(-1)  # [n_edges, 3F]
        ds, dvv, dvs = torch.split(x, f, dim=-1)
        dv = unit_vectors.unsqueeze(-1) * dvs.unsqueeze(1)  # [n_edges, 3, F]
        if sender_vectors is not None:
            dv = sender_vectors * dvv.unsqueeze(1) + dv
        return scatter_sum(ds, receivers, n_receivers), scatter_sum(dv, receivers, n_receivers)


class PaiNNUpdate(nn.Module):
    """Update block: with U v, V v and a = MLP([s, ‖V v‖]) split in (a_vv, a_sv, a_ss),

    s ← s + a_ss + a_sv ⟨U v, V v⟩,   v ← v + a_vv ∘ U v.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        f = num_features
        self.lin_u = nn.Linear(f, f, bias=False)
        self.lin_v = nn.Linear(f, f, bias=False)
        self.mlp = nn.Sequential(nn.Linear(2 * f, f), nn.SiLU(), nn.Linear(f, 3 * f))

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = s.shape[-1]
        uv = self.lin_u(v)  # [n_atoms, 3, F]
        vv = self.lin_v(v)
        vv_norm = torch.sqrt((vv * vv).sum(dim=1) + NORM_EPS)  # [n_atoms, F]
        a = self.mlp(torch.cat([s, vv_norm], dim=-1))
        a_vv, a_sv, a_ss = torch.split(a, f, dim=-1)
        s = s + a_ss + a_sv * (uv * vv).sum(dim=1)
        v = v + a_vv.unsqueeze(1) * uv
        return s, v


class PaiNN(Backbone):
    """PaiNN backbone: rotation-equivariant vectors, rotation-invariant scalar outputs.

    Vector features start at zero and are created by the r̂_ij term of the first message, so
    outputs are invariant under O(3) (vectors flip with r̂ under reflections; scalars only see
    inner products).
    """

    supports_edge_chunks = True

    def __init__(self, config: PaiNNConfig, *, cutoff: float, num_elements: int) -> None:
        super().__init__()
        self.config = config
        self.cutoff = float(cutoff)
        self.feature_dim = config.num_features
        self.num_blocks = config.num_blocks
        self.embedding = nn.Embedding(num_elements, config.num_features)
        self.radial = RadialEmbedding(cutoff, config.num_radial)
        self.messages = nn.ModuleList(
            PaiNNMessage(config.num_features, config.num_radial) for _ in range(config.num_blocks)
        )
        self.updates = nn.ModuleList(
            PaiNNUpdate(config.num_features) for _ in range(config.num_blocks)
        )

    def forward(self, geometry: Geometry) -> BackboneOutput:
        s, _, blocks = painn_encode(self, geometry)
        return BackboneOutput(node_features=s, block_features=blocks)


def painn_encode(
    module: Backbone, geometry: Geometry
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Run PaiNN blocks: ``module`` has ``embed_atoms``, ``radial``, ``messages`` and ``updates``.

    Returns scalars s [n_atoms, F], vectors v [n_atoms, 3, F] and s after every block. Shared by
    :class:`PaiNN` and backbones that use PaiNN as their local encoder (Erwin).
    """
    s = module.embed_atoms(geometry)  # [n_atoms, F]
    v = None  # all-zero [n_atoms, 3, F] vectors; the first message creates them
    lengths = geometry.edge_lengths
    radial = module.radial(lengths)  # [n_edges, num_radial]
    envelope = module.radial.envelope(lengths)  # [n_edges]
    unit_vectors = geometry.edge_vectors / lengths.unsqueeze(-1)  # [n_edges, 3]
    edge_index = geometry.graph.edge_index
    chunks = None
    if geometry.edge_chunking is not None:
        chunks = receiver_chunks(edge_index, s.shape[0], geometry.edge_chunking)
        edges = (radial, envelope, unit_vectors)
        radial, envelope, unit_vectors = (t.index_select(0, chunks.order) for t in edges)
    blocks = []
    for message, update in zip(module.messages, module.updates):
        s, v = message(s, v, radial, envelope, unit_vectors, edge_index, chunks)
        s, v = update(s, v)
        blocks.append(s)
    return s, v, blocks
