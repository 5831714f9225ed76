"""Erwin (Zhdanov et al., ICML 2025, arXiv:2502.17019) made into an invariant, smooth backbone.

Layout: a PaiNN encoder inside the cutoff gives per-atom scalars s and vectors v; an invariant
Erwin trunk (ball attention on a rotation-invariant ball tree, pooling, unpooling) mixes
[s, ‖v‖] over a longer range; the output features are s + W·h_trunk.

Differences from the published Erwin, and why:

* **Invariance.** The tree splits along principal axes (:mod:`phicalc.nn.backbones.erwin_tree`),
  and every geometric input is a distance: the positional term uses ‖r_i − c_i‖, the attention
  bias −softplus(σ_h)·d_ij/r_l, pooling and unpooling ‖r_child − r_parent‖. Pooling is a masked
  mean over children (not an order-dependent concatenation), so E is O(3)-invariant.
* **Gradients.** Only the tree indices are computed without gradients; ball centroids, pooled
  positions and all distances are differentiable, so F = −∂E/∂r is exact for a fixed partition.
* **Smoothness.** Attention weights are enveloped: α_ij = u(d_ij/r_l) e^{ℓ_ij} / Σ_k u(d_ik/r_l)
  e^{ℓ_ik} with the polynomial cutoff envelope u and r_l = r_0·s^{l/3} (s = pool stride; pooled
  nodes spread as the cube root of the atoms they hold), so pairs enter and leave attention
  smoothly, and the positional centroid c_i is weighted by the same envelope. The partition
  itself is piecewise constant, so we keep the energy from depending on its fragile parts:
  (1) a structure of at most ``ball_size`` atoms is one ball, with no partition at all, so its
  energy is an exact smooth function of the positions; (2) by default a whole ball is pooled
  into one node (``pool_stride = ball_size``) and attention and pooling are symmetric within a
  ball, so only splits of nodes of capacity ≥ ball_size/2 matter (the many flips of 2–8 atom
  nodes in MD change nothing); (3) the caller may keep a partition between calls
  (:class:`~phicalc.nn.backbones.partition.PartitionCache` in ``Geometry.partition_cache``,
  Verlet-list style): ``PhiCalculator(partition_skin=...)``; ``phicalc md`` keeps one tree per
  run, which is what NVE needs. Where a ball boundary does move, E jumps; F = −∇E holds between
  such events (measured drift: ``reports/erwin_partition.md``).
* **Periodicity.** A ball tree of a periodic cell is not consistent with its supercells, so for
  periodic structures (any pbc) the trunk attends over the local neighbour graph (every image
  within the cutoff is its own key: edge vectors include the lattice shifts) with the same
  weights and no pooling. Such structures are exactly extensive (2×2×2 supercell = 8× energy).
* **Batches.** One tree per structure, balls never straddle structures, RMSNorm (no BatchNorm)
  and masked padding slots: results never depend on the rest of a batch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from phicalc.errors import ConfigError
from phicalc.nn.backbones.base import Backbone, BackboneOutput, Geometry
from phicalc.nn.backbones.erwin_tree import (
    BallContext,
    BallTree,
    GraphContext,
    TreeLevel,
    ball_context,
    build_ball_tree,
    pair_norm,
    smooth_norm,
)
from phicalc.nn.backbones.painn import NORM_EPS, PaiNNMessage, PaiNNUpdate, painn_encode
from phicalc.nn.radial import PolynomialEnvelope, RadialEmbedding
from phicalc.nn.scatter import scatter_sum

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErwinConfig:
    """Erwin backbone hyperparameters (defaults sized for CPU).

    Args:
        num_features: width F of the PaiNN features and of the trunk (default: 64).
        num_local_blocks: PaiNN message + update blocks inside the cutoff (default: 2).
        num_radial: Bessel basis size of the local encoder (default: 16).
        ball_size: atoms (nodes) per ball, a power of two ≥ 4 (default: 32).
        pool_stride: nodes pooled into one node of the next level, a power of two in
            [2, ball_size] (None, the default: ``ball_size``, a whole ball, so splits of small
            nodes never change the energy; Erwin's own choice is 2).
        num_levels: maximum number of coarsening steps (default: 3; with the defaults a
            top-level ball spans 32³ atoms).
        num_trunk_layers: attention blocks per encoder level, alternating the tree's balls and
            the shifted balls (default: 2).
        num_decoder_layers: attention blocks per level after unpooling (default: 1).
        num_heads: attention heads; must divide ``num_features`` (default: 4).
        mlp_ratio: hidden width of the SwiGLU MLPs in units of F (default: 2).
        attention_radius: envelope radius r_0 of level-0 attention in Å (None: the model
            cutoff); level l uses r_0·s^(l/3) (s = pool_stride). Periodic structures use
            min(r_0, cutoff).
        num_distance_basis: Gaussians encoding distances for positions and pooling (default: 8).
        degeneracy_tolerance: relative eigenvalue gap under which a tree node is split by the
            distance to its centroid instead of a principal axis (default: 1e-2).
        partition_skin: Å, read from model files and validated (≥ 0) but not used: only the
            caller's :class:`~phicalc.nn.backbones.partition.PartitionCache` decides whether a
            partition is kept between calls (``PhiCalculator(partition_skin=...)``). Default: 0.
        partition_jitter: Å; in training mode the tree is built from the positions plus
            Gaussian noise of this size, so a model is trained on many partitions of each
            geometry and learns not to depend on where ball boundaries fall, which shrinks the
            energy jumps at partition changes in MD (default: 0, off; eval mode never jitters).
    """

    num_features: int = 64
    num_local_blocks: int = 2
    num_radial: int = 16
    ball_size: int = 32
    pool_stride: int | None = None
    num_levels: int = 3
    num_trunk_layers: int = 2
    num_decoder_layers: int = 1
    num_heads: int = 4
    mlp_ratio: int = 2
    attention_radius: float | None = None
    num_distance_basis: int = 8
    degeneracy_tolerance: float = 1e-2
    partition_skin: float = 0.0
    partition_jitter: float = 0.0

    def __post_init__(self) -> None:
        m = self.ball_size
        if m < 4 or m & (m - 1):
            raise ConfigError(f"ErwinConfig.ball_size must be a power of two ≥ 4, got {m}")
        s = m if self.pool_stride is None else self.pool_stride
        if s < 2 or s > m or s & (s - 1):
            raise ConfigError(
                f"ErwinConfig.pool_stride must be a power of two in [2, ball_size={m}], got {s}"
            )
        if self.num_features < 1 or self.num_features % self.num_heads:
            raise ConfigError(
                f"ErwinConfig.num_heads={self.num_heads} must divide "
                f"num_features={self.num_features}"
            )
        for name in ("num_local_blocks", "num_trunk_layers", "num_heads", "mlp_ratio"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ErwinConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("num_levels", "num_decoder_layers", "partition_skin", "partition_jitter"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ErwinConfig.{name} must be ≥ 0, got {getattr(self, name)}")
        if self.attention_radius is not None and not self.attention_radius > 0:
            raise ConfigError(
                f"ErwinConfig.attention_radius must be > 0 or None, got {self.attention_radius}"
            )


class GaussianDistances(nn.Module):
    """Gaussians on a scaled distance x = d / r: exp(−((x − μ_k)/w)²), μ_k on [0, 2], [..., K]."""

    def __init__(self, num_basis: int) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, 2.0, num_basis))
        self.width = 2.0 / max(num_basis - 1, 1)

    def forward(self, scaled: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(((scaled.unsqueeze(-1) - self.centers) / self.width) ** 2))


class SwiGLU(nn.Module):
    """W_3 (SiLU(W_1 x) ∘ W_2 x), hidden width ``ratio``·F."""

    def __init__(self, num_features: int, ratio: int) -> None:
        super().__init__()
        hidden = ratio * num_features
        self.gate = nn.Linear(num_features, hidden)
        self.value = nn.Linear(num_features, hidden)
        self.out = nn.Linear(hidden, num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(nn.functional.silu(self.gate(x)) * self.value(x))


class BallAttention(nn.Module):
    """Pre-norm transformer block: x ← x + MSA(RMSNorm(x)), x ← x + SwiGLU(RMSNorm(x)).

    Logits ℓ_ij = q_i·k_j/√d_h − softplus(σ_h)·d_ij/r and weights
    α_ij = u_ij e^{ℓ_ij} / Σ_k u_ik e^{ℓ_ik} (u: distance envelope, 0 on padding), over the
    nodes of a ball or, for periodic structures, over an atom and its graph neighbours. Queries
    get a positional term Linear(G(‖r_i − c_i‖/r)) first.
    """

    def __init__(self, num_features: int, num_heads: int, mlp_ratio: int, num_basis: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = num_features // num_heads
        self.norm_attention = nn.RMSNorm(num_features)
        self.norm_mlp = nn.RMSNorm(num_features)
        self.basis = GaussianDistances(num_basis)
        self.position = nn.Linear(num_basis, num_features)
        self.qkv = nn.Linear(num_features, 3 * num_features)
        self.out = nn.Linear(num_features, num_features)
        self.raw_slope = nn.Parameter(torch.zeros(num_heads))
        self.mlp = SwiGLU(num_features, mlp_ratio)

    def forward(
        self, x: torch.Tensor, ball: BallContext | None, graph: GraphContext | None
    ) -> torch.Tensor:
        """Update node features x [n_nodes, F] (ball and/or graph nodes)."""
        h = self.norm_attention(x)
        update = torch.zeros_like(x)
        if ball is not None and ball.balls.numel():
            update = update.index_add(0, ball.nodes, self._ball(h, ball))
        if graph is not None and graph.atoms.numel():
            update = update.index_add(0, graph.atoms, self._graph(h, graph))
        x = x + update
        return x + self.mlp(self.norm_mlp(x))

    def _ball(self, h: torch.Tensor, ball: BallContext) -> torch.Tensor:
        n_balls, m = ball.balls.shape
        heads, dim = self.num_heads, self.head_dim
        padded = torch.cat([h, h.new_zeros((1, h.shape[1]))])
        features = padded[ball.balls] + self.position(self.basis(ball.centroid_distance))
        q, k, v = self.qkv(features).view(n_balls, m, 3, heads, dim).unbind(2)  # [B, m, H, d]
        logits = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(dim)
        slope = nn.functional.softplus(self.raw_slope).view(1, heads, 1, 1)
        logits = logits - slope * ball.distances.unsqueeze(1)  # [B, H, m, m]
        # Softmax shift: the largest logit among keys with u > 0 (never a far or padding key).
        key_used = (ball.weights > 0).unsqueeze(1)  # [B, 1, m, m]
        shift = logits.detach().masked_fill(~key_used, -torch.inf).amax(-1, keepdim=True)
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        exponent = torch.where(key_used, logits - shift, torch.full_like(logits, -30.0))
        weights = ball.weights.unsqueeze(1) * torch.exp(exponent)  # [B, H, m, m]
        # Real queries always have their own key (u = 1); the clamp only guards padding rows.
        total = weights.sum(-1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)
        attention = weights / total
        out = torch.einsum("bhij,bjhd->bihd", attention, v).reshape(n_balls, m, heads * dim)
        return self.out(out)[ball.valid]  # [n_real, F]

    def _graph(self, h: torch.Tensor, graph: GraphContext) -> torch.Tensor:
        heads, dim = self.num_heads, self.head_dim
        n = h.shape[0]
        position = self.position(self.basis(graph.centroid_distance))  # [n_periodic, F]
        features = h.index_add(0, graph.atoms, position)
        q, k, v = self.qkv(features).view(n, 3, heads, dim).unbind(1)  # [n, H, d]
        slope = nn.functional.softplus(self.raw_slope)
        i, j = graph.senders, graph.receivers
        edge_logits = (q[j] * k[i]).sum(-1) / math.sqrt(dim) - slope * graph.distances.unsqueeze(
            -1
        )  # [n_edges, H]
        self_logits = (q * k).sum(-1) / math.sqrt(dim)  # [n, H]
        used = edge_logits.detach().masked_fill((graph.weights <= 0).unsqueeze(-1), -torch.inf)
        shift = self_logits.detach().scatter_reduce(
            0, j.unsqueeze(-1).expand(-1, heads), used, "amax"
        )  # [n, H] largest logit among the atom itself and its enveloped neighbours
        exponent = torch.where(
            graph.weights.unsqueeze(-1) > 0,
            edge_logits - shift[j],
            torch.full_like(edge_logits, -30.0),
        )
        edge_weights = graph.weights.unsqueeze(-1) * torch.exp(exponent)  # [n_edges, H]
        self_weights = torch.exp(self_logits - shift)  # [n, H]
        numerator = self_weights.unsqueeze(-1) * v + scatter_sum(
            edge_weights.unsqueeze(-1) * v[i], j, n
        )  # [n, H, d]
        denominator = self_weights + scatter_sum(edge_weights, j, n)  # [n, H]
        out = (numerator / denominator.unsqueeze(-1)).reshape(n, heads * dim)
        return self.out(out[graph.atoms])


class Pooling(nn.Module):
    """Parent = masked mean over children of MLP([RMSNorm(x_c), G(‖r_c − r_p‖/r)]).

    r_p is the mean of the real children's positions; the mean makes pooling symmetric in the
    children, so their order in the tree does not matter.
    """

    def __init__(self, num_features: int, num_basis: int) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(num_features)
        self.basis = GaussianDistances(num_basis)
        self.mlp = nn.Sequential(
            nn.Linear(num_features + num_basis, num_features),
            nn.SiLU(),
            nn.Linear(num_features, num_features),
        )

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor, children: torch.Tensor, radius: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool level nodes (x [n, F], positions [n, 3]) into [n_next, F], [n_next, 3]."""
        n = x.shape[0]
        real = (children < n).to(x.dtype).unsqueeze(-1)  # [n_next, stride, 1]
        count = real.sum(1)  # [n_next, 1]
        child_positions = torch.cat([positions, positions.new_zeros((1, 3))])[children]
        parent_positions = (child_positions * real).sum(1) / count  # [n_next, 3]
        distance = pair_norm(child_positions - parent_positions.unsqueeze(1)) / radius
        child_features = torch.cat([self.norm(x), x.new_zeros((1, x.shape[1]))])[children]
        h = self.mlp(torch.cat([child_features, self.basis(distance)], dim=-1))  # [n_next, s, F]
        return (h * real).sum(1) / count, parent_positions


class Unpooling(nn.Module):
    """x_c ← x_c + MLP([RMSNorm(x_p), G(‖r_c − r_p‖/r)]) for every child c of a parent p."""

    def __init__(self, num_features: int, num_basis: int) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(num_features)
        self.basis = GaussianDistances(num_basis)
        self.mlp = nn.Sequential(
            nn.Linear(num_features + num_basis, num_features),
            nn.SiLU(),
            nn.Linear(num_features, num_features),
        )

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        parent_x: torch.Tensor,
        parent_positions: torch.Tensor,
        parents: torch.Tensor,
        radius: float,
    ) -> torch.Tensor:
        children = (parents >= 0).nonzero().squeeze(1)
        parent = parents[children]
        distance = pair_norm(positions[children] - parent_positions[parent]) / radius
        h = self.mlp(torch.cat([self.norm(parent_x)[parent], self.basis(distance)], dim=-1))
        return x.index_add(0, children, h)


class Erwin(Backbone):
    """Invariant Erwin backbone: PaiNN inside the cutoff, ball-tree attention beyond it.

    See the module docstring for the design. ``block_features`` are the PaiNN scalars after
    each local block followed by the final features, so ``num_blocks`` = local blocks + 1.
    """

    supports_edge_chunks = True  # in its PaiNN encoder, where its edge tensors are

    def __init__(self, config: ErwinConfig, *, cutoff: float, num_elements: int) -> None:
        super().__init__()
        self.config = config
        self.cutoff = float(cutoff)
        f = config.num_features
        self.feature_dim = f
        self.num_blocks = config.num_local_blocks + 1
        self.attention_radius = float(config.attention_radius or cutoff)
        self.pool_stride = config.pool_stride or config.ball_size
        self.embedding = nn.Embedding(num_elements, f)
        self.radial = RadialEmbedding(cutoff, config.num_radial)
        self.messages = nn.ModuleList(
            PaiNNMessage(f, config.num_radial) for _ in range(config.num_local_blocks)
        )
        self.updates = nn.ModuleList(PaiNNUpdate(f) for _ in range(config.num_local_blocks))
        self.trunk_in = nn.Linear(2 * f, f)
        levels = config.num_levels

        def blocks(count: int) -> nn.ModuleList:
            return nn.ModuleList(
                BallAttention(f, config.num_heads, config.mlp_ratio, config.num_distance_basis)
                for _ in range(count)
            )

        self.encoder = nn.ModuleList(blocks(config.num_trunk_layers) for _ in range(levels + 1))
        self.decoder = nn.ModuleList(blocks(config.num_decoder_layers) for _ in range(levels))
        self.pooling = nn.ModuleList(Pooling(f, config.num_distance_basis) for _ in range(levels))
        self.unpooling = nn.ModuleList(
            Unpooling(f, config.num_distance_basis) for _ in range(levels)
        )
        self.trunk_norm = nn.RMSNorm(f)
        self.trunk_out = nn.Linear(f, f)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, attention_radius={self.attention_radius}, {self.config}"

    def level_radius(self, level: int) -> float:
        """Attention radius r_l = r_0·s^(l/3) of a level (s = pool_stride), Å."""
        return self.attention_radius * self.pool_stride ** (level / 3.0)

    # ------------------------------------------------------------------ tree
    def ball_tree(self, geometry: Geometry) -> BallTree:
        """The partition of the open structures of a batch: the one kept in
        ``geometry.partition_cache`` while it is valid (in eval mode), else a new one."""
        graph = geometry.graph
        include = ~graph.pbc.any(dim=1)  # [n_graphs] open structures get a tree
        positions = geometry.positions.detach()
        if self.training and self.config.partition_jitter > 0:
            positions = positions + self.config.partition_jitter * torch.randn_like(positions)
        cache = None if self.training else geometry.partition_cache
        key = (graph.numbers, graph.batch, include)
        if cache is not None:
            kept = cache.lookup(key, positions)
            if kept is not None:
                return kept
            logger.debug("Erwin: (re)building the ball tree of %d atoms", positions.shape[0])
        tree = build_ball_tree(
            positions,
            graph.batch,
            graph.n_graphs,
            include,
            ball_size=self.config.ball_size,
            num_levels=self.config.num_levels,
            stride=self.pool_stride,
            degeneracy_tolerance=self.config.degeneracy_tolerance,
        )
        if cache is not None:
            cache.store(key, positions, tree)
        return tree

    def _graph_context(self, geometry: Geometry) -> GraphContext | None:
        graph = geometry.graph
        periodic = graph.pbc.any(dim=1)  # [n_graphs]
        if not bool(periodic.any()):
            return None
        atoms = periodic[graph.batch].nonzero().squeeze(1)
        senders, receivers = graph.edge_index
        keep = periodic[graph.batch[receivers]]
        senders, receivers = senders[keep], receivers[keep]
        vectors = geometry.edge_vectors[keep]  # [n_edges, 3] r_j − r_i + shift
        radius = min(self.attention_radius, self.cutoff)
        distance = geometry.edge_lengths[keep]  # [n_edges] Å, never 0
        weights = PolynomialEnvelope(radius)(distance)
        n = geometry.positions.shape[0]
        offset = scatter_sum(-weights.unsqueeze(-1) * vectors, receivers, n)  # Σ u (r_i − r_j)
        total = 1.0 + scatter_sum(weights, receivers, n)
        centroid_distance = smooth_norm(offset / total.unsqueeze(-1))[atoms] / radius
        return GraphContext(
            atoms=atoms,
            senders=senders,
            receivers=receivers,
            weights=weights,
            distances=distance / radius,
            centroid_distance=centroid_distance,
        )

    # ------------------------------------------------------------------ forward
    def forward(self, geometry: Geometry) -> BackboneOutput:
        s, v, blocks = painn_encode(self, geometry)  # PaiNN local encoder
        vector_norm = torch.sqrt((v * v).sum(dim=1) + NORM_EPS)  # [n_atoms, F]
        x = self.trunk_in(torch.cat([s, vector_norm], dim=-1))  # [n_atoms, F]
        x = self._trunk(x, geometry)
        features = s + self.trunk_out(self.trunk_norm(x))  # [n_atoms, F]
        return BackboneOutput(node_features=features, block_features=[*blocks, features])

    def _contexts(
        self, positions: torch.Tensor, tree_level: TreeLevel, level: int, count: int
    ) -> list[BallContext]:
        """Ball contexts for ``count`` blocks: the tree's balls, then the shifted balls."""
        radius = self.level_radius(level)
        envelope = PolynomialEnvelope(radius)
        partitions = (tree_level.balls, tree_level.shifted_balls)[: min(count, 2)]
        return [
            ball_context(positions, balls, tree_level.num_nodes, envelope, radius)
            for balls in partitions
        ]

    def _trunk(self, x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        """Encoder (blocks, pool) up the tree, then (unpool, blocks) down; x [n_atoms, F]."""
        tree = self.ball_tree(geometry)
        graph_context = self._graph_context(geometry)
        positions = geometry.positions
        skips: list[tuple[torch.Tensor, torch.Tensor]] = []
        top = len(tree.levels) - 1
        for level, tree_level in enumerate(tree.levels):
            blocks = self.encoder[level]
            contexts = self._contexts(positions, tree_level, level, len(blocks))
            graph = graph_context if level == 0 else None
            for index, block in enumerate(blocks):
                x = block(x, contexts[index % 2], graph)
            skips.append((x, positions))
            if tree_level.children is not None:
                radius = self.level_radius(level)
                x, positions = self.pooling[level](x, positions, tree_level.children, radius)
        # Decoder: every level from the batch's top down, so a structure whose own top is
        # level l gets the same decoder blocks whatever else is in the batch.
        for level in range(top, -1, -1):
            tree_level = tree.levels[level]
            if level < top:
                skip, skip_positions = skips[level]
                x = self.unpooling[level](
                    skip, skip_positions, x, positions, tree_level.parents, self.level_radius(level)
                )
                positions = skip_positions
            if level >= len(self.decoder):
                continue
            blocks = self.decoder[level]
            contexts = self._contexts(positions, tree_level, level, len(blocks))
            graph = graph_context if level == 0 else None
            for index, block in enumerate(blocks):
                x = block(x, contexts[index % 2], graph)
        return x
