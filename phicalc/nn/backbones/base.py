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
from phicalc.nn.backbones.partition import PartitionCache
from phicalc.nn.edge_chunks import EdgeChunking
from phicalc.nn.electrostatics.embedding import ChargeSpinEmbedding


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
        partition_cache: the caller's kept spatial partition (:mod:`~phicalc.nn.backbones.partition`)
            for backbones that partition space; ``None``: a fresh partition. Others ignore it.
        edge_chunking: the caller's request to sum messages over runs of receivers, each
            recomputed in the backward pass (:mod:`~phicalc.nn.edge_chunks`): inference memory
            O(run) instead of O(n_edges), for backbones with ``supports_edge_chunks``; ``None``:
            all edges at once.
    """

    graph: AtomGraph
    species: torch.Tensor
    positions: torch.Tensor
    cell: torch.Tensor
    edge_vectors: torch.Tensor
    edge_lengths: torch.Tensor
    partition_cache: PartitionCache | None = None
    edge_chunking: EdgeChunking | None = None


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
    #: the element embedding every backbone starts from (``nn.Embedding(num_elements, dim)``)
    embedding: nn.Embedding
    #: whether the backbone honours ``Geometry.edge_chunking`` (message sums in runs of receivers)
    supports_edge_chunks: bool = False

    @property
    def charge_spin(self) -> ChargeSpinEmbedding | None:
        """The total-charge/spin term added to the element embedding, if enabled."""
        return self._modules.get("charge_spin")  # type: ignore[return-value]

    def enable_charge_spin(self, *, total_charge: bool = True) -> None:
        """Let the total charge Q and spin multiplicity M of each structure enter every atom's
        initial features: h⁰_i = Embedding(Z_i) + e(Q, M, Z_i), zero for a neutral singlet
        (:class:`~phicalc.nn.electrostatics.ChargeSpinEmbedding`, as SpookyNet and AIMNet2);
        ``total_charge=False``: M only."""
        module = ChargeSpinEmbedding(
            self.embedding.num_embeddings,
            self.embedding.embedding_dim,
            total_charge=total_charge,
        )
        self._modules["charge_spin"] = module.to(self.embedding.weight)

    def embed_atoms(self, geometry: Geometry) -> torch.Tensor:
        """Initial invariant atom features [n_atoms, dim]: the element embedding, plus the
        charge/spin term when enabled. Every backbone starts from this."""
        h = self.embedding(geometry.species)
        charge_spin = self.charge_spin
        if charge_spin is not None:
            graph = geometry.graph
            h = h + charge_spin(
                geometry.species,
                graph.total_charge.to(h.dtype),
                graph.multiplicity.to(h.dtype),
                graph.batch,
            )
        return h

    @abstractmethod
    def forward(self, geometry: Geometry) -> BackboneOutput:
        """Per-atom invariant features of a batch."""
