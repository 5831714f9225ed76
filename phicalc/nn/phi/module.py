"""The Φ-Module: learned charges and potentials that satisfy Poisson's equation on the graph.

Physics (Zhdanov & Kurenkov, arXiv:2505.14606, our formulation):

* L = D − W is the weighted graph Laplacian of each structure (PSD, L·1 = 0,
  :mod:`phicalc.nn.phi.laplacian`); it is the graph analogue of −∇².
* After every interaction block t the backbone's scalar features h⁽ᵗ⁾ give per-atom sources
  s = Σ_t MLP_t([h⁽ᵗ⁾, Q/n]); the total charge per atom Q/n is an input so charged and neutral
  species differ.
* A low-pass filter gives the reduced potential φ̂ = h(L) s with h(0) = 0
  (:mod:`phicalc.nn.phi.filters`). Because h(0) = 0, φ̂ has no component along L's zero modes:
  its (D + ε)-weighted sum vanishes on every connected fragment (the spectral filter) or its
  plain sum does (the eigenbasis window), a gauge that is local and smooth in the geometry
  (``gauge="fragment"``). Files of model format ≤ 3 shift φ̂ to zero mean over the whole
  structure instead (``gauge="structure"``), which moves the energy of a charged fragment by
  −½ κ c Q_A when another fragment changes the mean c: not size-consistent. The charges are ρ = L φ̂ + q⁰ with q⁰ = Q/n, or the equilibrated charges of
  :mod:`phicalc.nn.electrostatics.equilibration` when the potential has them. L φ̂ sums to zero
  on every connected fragment and q⁰ carries the total charge, so Σ_i ρ_i = Q exactly.
* The potential in volts is φ = κ φ̂ with a learned κ = softplus(·) > 0 (a learned inverse
  permittivity), so Poisson reads L φ = κ (ρ − q⁰) on the graph.
* E_ES = ½ Σ_i φ_i ρ_i in eV. With q⁰ = Q/n it is ½ κ φ̂ᵀ L φ̂ ≥ 0 (Σ φ̂ = 0, so Q adds
  nothing); equilibrated q⁰ adds ½ κ φ̂ᵀ q⁰, which can have either sign.

Everything is computed per structure: no quantity of one structure depends on the rest of a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from phicalc.config import check_choice, check_int_at_least, check_positive
from phicalc.graph.batch import AtomGraph
from phicalc.nn.phi.filters import ChebyshevFilter, EigenbasisWindow
from phicalc.nn.phi.laplacian import GraphLaplacian, LaplacianWeights
from phicalc.nn.scatter import scatter_sum

PHI_METHODS = ("spectral", "eigenbasis")
#: Values of :attr:`PhiConfig.gauge`.
PHI_GAUGES = ("fragment", "structure")


@dataclass(frozen=True)
class PhiConfig:
    """Φ-Module options.

    Args:
        method: "spectral" (Chebyshev filter on the sparse L; default, linear cost) or
            "eigenbasis" (dense eigh per structure, k lowest modes; small molecules).
        filter_degree: Chebyshev degree K of the spectral path (default: 8).
        num_modes: k of the eigenbasis path (default: 8; the paper used 5 or 9).
        head_hidden: hidden width of the per-block source heads (default: 32).
        initial_scale: initial κ in V per unit of φ̂ (default: 0.5).
        gauge: the constant added to φ̂ on each connected fragment: "fragment" (none: the
            filter's own, zero weighted mean per fragment; size-consistent) or "structure"
            (zero mean over the whole structure; what model files of format ≤ 3 computed).
    """

    method: str = "spectral"
    filter_degree: int = 8
    num_modes: int = 8
    head_hidden: int = 32
    initial_scale: float = 0.5
    gauge: str = "fragment"

    def __post_init__(self) -> None:
        check_choice("PhiConfig.method", self.method, PHI_METHODS)
        check_choice("PhiConfig.gauge", self.gauge, PHI_GAUGES)
        for name in ("filter_degree", "num_modes", "head_hidden"):
            check_int_at_least(f"PhiConfig.{name}", getattr(self, name), 1)
        check_positive("PhiConfig.initial_scale", self.initial_scale)


@dataclass
class PhiOutput:
    """Per-atom and per-structure electrostatics of a batch.

    Attributes:
        charges: [n_atoms] ρ in e (Σ per structure = Q).
        potentials: [n_atoms] φ in V.
        energy: [n_graphs] E_ES in eV.
    """

    charges: torch.Tensor
    potentials: torch.Tensor
    energy: torch.Tensor


class PhiModule(nn.Module):
    """Φ-Module plug-in; reads the backbone's features after every block (see module docstring)."""

    def __init__(
        self, config: PhiConfig, *, cutoff: float, feature_dim: int, num_blocks: int
    ) -> None:
        super().__init__()
        self.config = config
        self.weights = LaplacianWeights(cutoff)
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Linear(feature_dim + 1, config.head_hidden),
                nn.SiLU(),
                nn.Linear(config.head_hidden, 1),
            )
            for _ in range(num_blocks)
        )
        if config.method == "spectral":
            self.filter: nn.Module = ChebyshevFilter(config.filter_degree)
        else:
            self.filter = EigenbasisWindow(config.num_modes)
        raw = math.log(math.expm1(config.initial_scale))
        self.raw_scale = nn.Parameter(torch.tensor(raw, dtype=torch.float32))

    @property
    def scale(self) -> torch.Tensor:
        """κ > 0 (V per unit of φ̂)."""
        return nn.functional.softplus(self.raw_scale)

    def laplacian(
        self, edge_lengths: torch.Tensor, edge_index: torch.Tensor, n_atoms: int
    ) -> GraphLaplacian:
        """L of a batch of ``n_atoms`` with this module's weights w_ij = u(r_ij)/r_ij
        (edge_lengths [n_edges], Å)."""
        return GraphLaplacian.of(self.weights(edge_lengths), edge_index, n_atoms)

    def forward(
        self,
        graph: AtomGraph,
        edge_lengths: torch.Tensor,
        block_features: list[torch.Tensor],
        base_charges: torch.Tensor | None = None,
        head_charges: torch.Tensor | None = None,
        laplacian: GraphLaplacian | None = None,
    ) -> PhiOutput:
        """Charges ρ = L φ̂ + q⁰, potentials φ = κ φ̂ and E_ES = ½ Σ φρ per structure.

        Args:
            graph: the batch.
            edge_lengths: [n_edges] Å.
            block_features: one [n_atoms, F] tensor per backbone block.
            base_charges: [n_atoms] q⁰ in e, the zero mode carrying the total charge (e.g.
                equilibrated charges, Σ q⁰ = Q per structure); default Q/n on every atom.
            head_charges: [n_atoms] the per-atom charge the source heads read (e); default Q/n.
            laplacian: the batch's L where the caller has made it (:meth:`laplacian`), else made
                here.
        """
        if len(block_features) != len(self.heads):
            raise ValueError(
                f"PhiModule expects {len(self.heads)} blocks, got {len(block_features)}"
            )
        batch, n_graphs, edge_index = graph.batch, graph.n_graphs, graph.edge_index
        dtype = edge_lengths.dtype
        counts = graph.n_atoms_per_graph.to(dtype)
        charge_per_atom = (graph.total_charge.to(dtype) / counts)[batch]  # [n_atoms]

        head_input = (charge_per_atom if head_charges is None else head_charges).to(dtype)
        sources = sum(
            head(torch.cat([h, head_input.unsqueeze(-1)], dim=-1)).squeeze(-1)
            for head, h in zip(self.heads, block_features)
        )  # [n_atoms]
        if laplacian is None:
            laplacian = self.laplacian(edge_lengths, edge_index, graph.n_atoms)
        phi_hat = self.filter(sources, laplacian, batch, n_graphs)  # [n_atoms]
        if self.config.gauge == "structure":  # format ≤ 3: zero mean over the structure
            phi_hat = phi_hat - (scatter_sum(phi_hat, batch, n_graphs) / counts)[batch]
        l_phi_hat = laplacian.matvec(phi_hat)
        charges = l_phi_hat + (charge_per_atom if base_charges is None else base_charges)
        kappa = self.scale.to(dtype)
        potentials = kappa * phi_hat
        energy = 0.5 * scatter_sum(potentials * charges, batch, n_graphs)
        return PhiOutput(charges=charges, potentials=potentials, energy=energy)
