"""SchNet (Schütt et al., 2017): continuous-filter convolutions on interatomic distances."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from phicalc.config import check_int_at_least
from phicalc.nn.backbones.base import Backbone, BackboneOutput, Geometry
from phicalc.nn.edge_chunks import ReceiverChunks, chunked_receiver_sums, receiver_chunks
from phicalc.nn.radial import RadialEmbedding, ShiftedSoftplus
from phicalc.nn.scatter import scatter_sum


@dataclass(frozen=True)
class SchNetConfig:
    """SchNet hyperparameters.

    Args:
        num_features: width of atom features (default: 64).
        num_filters: width of the continuous filters (default: 64).
        num_blocks: number of interaction blocks (default: 3).
        num_radial: Bessel basis size (default: 16).
    """

    num_features: int = 64
    num_filters: int = 64
    num_blocks: int = 3
    num_radial: int = 16

    def __post_init__(self) -> None:
        for name in ("num_features", "num_filters", "num_blocks", "num_radial"):
            check_int_at_least(f"SchNetConfig.{name}", getattr(self, name), 1)


class CFConv(nn.Module):
    """Continuous-filter convolution x_j' = Σ_i x_i ∘ W(r_ij), W = MLP(e(r_ij)) · u(r_ij).

    The envelope u multiplies the filter output (the MLP has biases), so W → 0 smoothly at r_c.
    """

    def __init__(self, num_features: int, num_filters: int, num_radial: int) -> None:
        super().__init__()
        self.filter = nn.Sequential(
            nn.Linear(num_radial, num_filters),
            ShiftedSoftplus(),
            nn.Linear(num_filters, num_filters),
        )
        self.lin_in = nn.Linear(num_features, num_filters, bias=False)
        self.lin_out = nn.Sequential(
            nn.Linear(num_filters, num_features),
            ShiftedSoftplus(),
            nn.Linear(num_features, num_features),
        )

    def forward(
        self,
        x: torch.Tensor,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        edge_index: torch.Tensor,
        chunks: ReceiverChunks | None = None,
    ) -> torch.Tensor:
        """The block's update [n_atoms, num_features]; with ``chunks`` the edge tensors are in
        ``chunks.order`` and the sums run over receivers in chunks (:mod:`~phicalc.nn.edge_chunks`)."""
        features = self.lin_in(x)  # [n_atoms, num_filters]
        if chunks is None:
            i, j = edge_index
            rows = features.index_select(0, i)
            (summed,) = self.receiver_sums(rows, radial, envelope, j, x.shape[0])
        else:
            (summed,) = chunked_receiver_sums(self, (features,), (radial, envelope), chunks)
        return self.lin_out(summed)  # [n_atoms, num_features]

    def receiver_sums(
        self,
        sender_features: torch.Tensor,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        receivers: torch.Tensor,
        n_receivers: int,
    ) -> tuple[torch.Tensor]:
        """Σ_i u(h_i) ∘ W(r_ij) per receiver [n_receivers, num_filters] over the edges given,
        from each edge's sender row u(h_i) [n_edges, num_filters]."""
        messages = sender_features * self.filter(radial) * envelope.unsqueeze(-1)
        return (scatter_sum(messages, receivers, n_receivers),)


class SchNet(Backbone):
    """SchNet backbone: embedding then residual continuous-filter interaction blocks.

    h_j ← h_j + v(Σ_i u(h_i) ∘ W(r_ij)), with W built from an enveloped Bessel basis, so every
    block's output is a smooth function of the distances inside the cutoff.
    """

    supports_edge_chunks = True

    def __init__(self, config: SchNetConfig, *, cutoff: float, num_elements: int) -> None:
        super().__init__()
        self.config = config
        self.cutoff = float(cutoff)
        self.feature_dim = config.num_features
        self.num_blocks = config.num_blocks
        self.embedding = nn.Embedding(num_elements, config.num_features)
        self.radial = RadialEmbedding(cutoff, config.num_radial)
        self.interactions = nn.ModuleList(
            CFConv(config.num_features, config.num_filters, config.num_radial)
            for _ in range(config.num_blocks)
        )

    def forward(self, geometry: Geometry) -> BackboneOutput:
        h = self.embed_atoms(geometry)  # [n_atoms, F]
        radial = self.radial(geometry.edge_lengths)  # [n_edges, num_radial]
        envelope = self.radial.envelope(geometry.edge_lengths)  # [n_edges]
        edge_index, chunks = geometry.graph.edge_index, None
        if geometry.edge_chunking is not None:
            chunks = receiver_chunks(edge_index, h.shape[0], geometry.edge_chunking)
            radial, envelope = (t.index_select(0, chunks.order) for t in (radial, envelope))
        blocks = []
        for interaction in self.interactions:
            h = h + interaction(h, radial, envelope, edge_index, chunks)
            blocks.append(h)
        return BackboneOutput(node_features=h, block_features=blocks)
