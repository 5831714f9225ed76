"""The backbone contract: every backbone maps a geometry to per-atom invariant features.

A backbone never computes energies. It returns the scalar (rotation-invariant) features after
each interaction block; the Potential feeds the last ones to the energy readout and all of them
to the Φ-Module (which reads every block, as in the paper). Forces and stress come from autograd
through ``Geometry.positions`` and ``Geometry.edge_vectors``, so a backbone must use only those
(and the topology in ``graph``) and keep them differentiable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from phicalc.graph.batch import AtomGraph


@dataclass
class Geometry:
    """Differentiable geometry of a batch, computed once per forward by the Potential.

    Attributes:
        graph: topology and metadata (numbers, batch, edge_index, cell, pbc, ...).
        species: [n_atoms] int64 index of each atom's element in the model's element list.
        positions: [n_atoms, 3] Å, strained by the stress displacement when stress is requested.
        cell: [n_graphs, 3, 3] Å, strained likewise.
        edge_vectors: [n_edges, 3] r_j − r_i + shift, Å.
        edge_lengths: [n_edges] |edge_vectors|, Å.
    """

    graph: AtomGraph
    species: torch.Tensor
    positions: torch.Tensor
    cell: torch.Tensor
    edge_vectors: torch.Tensor
    edge_lengths: torch.Tensor


@dataclass
class BackboneOutput:
    """Features a backbone hands to the readout and the Φ-Module.

    Attributes:
        node_features: [n_atoms, feature_dim] final invariant features.
        block_features: one [n_atoms, feature_dim] invariant tensor after each interaction block
            (the last entry may equal ``node_features``).
    """

    node_features: torch.Tensor
    block_features: list[torch.Tensor]


class Backbone(nn.Module, ABC):
    """Base class of all backbones.

    Subclasses are built as ``Cls(config, *, cutoff, num_elements)`` from their frozen config
    dataclass, set ``cutoff`` (Å), ``feature_dim`` and ``num_blocks`` and implement
    :meth:`forward`. They must be invariant to rotations, translations and permutations (their
    scalar outputs), use sum aggregation with a smooth envelope at ``cutoff`` and treat every
    structure of a batch independently.
    """

    cutoff: float
    feature_dim: int
    num_blocks: int

    @abstractmethod
    def forward(self, geometry: Geometry) -> BackboneOutput:
        """Per-atom invariant features of a batch."""

    def keep_partition(self, skin: float | None) -> bool:
        """Keep a discrete, position-dependent choice (a spatial partition) between calls.

        Backbones whose energy depends on such a choice (Erwin's ball tree) keep it, in eval
        mode, until an atom has moved more than ``skin``/2 Å since it was made; ``float("inf")``
        keeps it for good, so E is one smooth function of the positions along an MD run, and
        ``None`` restores the backbone's own setting. Any kept partition is dropped.

        Returns:
            Whether this backbone has a partition (the base class has none: a no-op).
        """
        return False
