"""Physical Coulomb energy of Gaussian-damped charges for open and 3D-periodic structures.

Pair energy k_e q_i q_j erf(r_ij/(√2σ))/r_ij (eV; k_e from ASE, r in Å, q in e): the Coulomb
energy of Gaussian charges of combined width σ.  It is bare Coulomb beyond a few σ and finite at
r → 0, where it tends to k_e q_i q_j √(2/π)/σ (no singularity when atoms overlap).

Per-atom potentials V_i = k_e Σ_{j≠i} q_j f(r_ij)/r_ij (V) and per-structure energies
E = ½ Σ_i q_i V_i (eV) are returned; both are differentiable w.r.t. charges, positions and cell.

Methods (chosen per structure):
  * ``direct``: open structures, all pairs, no cutoff; O(n²) time and memory per structure.
  * ``ewald`` / ``pme``: 3D-periodic structures through torch-pme (see :mod:`.periodic`).
  * ``dsf``: open structures, damped shifted force truncated at ``dsf_cutoff`` over a vesin
    neighbour list; linear cost.  Pair kernel g(r) − g(r_c) − g'(r_c)(r − r_c) with the screened
    damped kernel g(r) = [erf(r/(√2σ)) − erf(α r)]/r (= erf(r/(√2σ)) erfc(α r)/r up to
    erf(α r) erfc(r/(√2σ))/r, which only matters inside ~3σ) plus the Fennell–Gezelter self term
    −½ k_e q_i² (g(r_c) + 2α/√π).  The screening removes exactly the smooth erf(α r)/r, whose
    pair sum over a neutral structure is ≈ −(α/√π) Σ q_i² (its r → 0 value), which the self term
    restores; the error is O(α³ μ²) for a compact neutral structure of dipole μ.  The difference
    form (instead of the product erf·erfc) keeps that self term exact when atoms overlap.
  * ``auto``: open → direct up to ``direct_max_atoms`` atoms, else dsf; 3D-periodic → ewald up to
    ``ewald_max_atoms`` atoms, else pme.
Mixed periodicity (e.g. a slab) raises ValueError.

With ``switch_radius`` r_s the pair energy is multiplied by a switch s(r) that is 0 at r = 0 and
1 from r_s on (:mod:`.short_range`), which hands the short range to the backbone; the returned
potentials stay those of the unswitched kernel (the potential of the charges an atom sits in),
while the energy and its shares are the switched ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from phicalc.config import check_choice
from phicalc.errors import ConfigError
from phicalc.graph.neighbors import build_neighbor_list, edge_vectors
from phicalc.nn.electrostatics.kernels import (
    COULOMB_CONSTANT,
    damped_coulomb,
    dsf_kernel,
    dsf_scalar,
    safe_norm_sq,
)
from phicalc.nn.electrostatics.periodic import PeriodicSums, periodic_potentials
from phicalc.nn.electrostatics.short_range import short_range_potentials
from phicalc.nn.scatter import scatter_sum

METHODS = ("auto", "direct", "dsf", "ewald", "pme")


@dataclass(frozen=True)
class CoulombConfig:
    """Settings of :class:`Coulomb`.

    Attributes:
        sigma: Gaussian damping width σ in Å (> 0).
        method: one of ``METHODS``.
        dsf_cutoff: DSF truncation radius r_c in Å (> 0); default 12 Å.
        dsf_alpha: DSF screening α in Å⁻¹, 0 ≤ α < 1/(√2σ); default 0.2 Å⁻¹ (erfc(α r_c) ≈ 6e-4).
        accuracy: relative tail target ε of the periodic sums, 0 < ε < 1: the Ewald k-sum and,
            where the sum is split, the real-space remainder are cut where their Gaussian tails
            fall to ε (the PME mesh is set by ``periodic.PME_MESH_PER_SMEARING``); default 1e-5:
            energies within 3e-7 relative of a converged sum for rattled NaCl cells, forces within
            4e-5 eV/Å for water boxes (``tests/nn/electrostatics/test_periodic.py``).
        direct_max_atoms: ``auto`` uses direct for open structures up to this many atoms.
        ewald_max_atoms: ``auto`` uses Ewald for periodic structures up to this many atoms.
        switch_radius: r_s in Å (> 0, at most the model's cutoff): the pair energy is switched
            off smoothly inside it (:mod:`.short_range`); ``None`` (default): no switch.
    """

    sigma: float = 1.0
    method: str = "auto"
    dsf_cutoff: float = 12.0
    dsf_alpha: float = 0.2
    accuracy: float = 1e-5
    direct_max_atoms: int = 1000
    ewald_max_atoms: int = 200
    switch_radius: float | None = None

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        if self.switch_radius is not None and not float(self.switch_radius) > 0:
            raise ConfigError(f"switch_radius={self.switch_radius!r} must be > 0 Å (or None)")
        for name in ("sigma", "dsf_cutoff"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be > 0")
        a_max = 1.0 / (math.sqrt(2.0) * float(self.sigma))
        if not 0 <= float(self.dsf_alpha) < a_max:
            raise ConfigError(
                f"dsf_alpha={self.dsf_alpha!r} must be in [0, 1/(√2·sigma)) = [0, {a_max:.4g})"
            )
        if not 0 < float(self.accuracy) < 1:
            raise ConfigError(f"accuracy={self.accuracy!r} must be in (0, 1)")
        for name in ("direct_max_atoms", "ewald_max_atoms"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 1")


class CoulombOutput(NamedTuple):
    """energy [n_graphs] in eV; potentials [n_atoms] in V (= eV/e); shares [n_atoms] in eV,
    each atom's share ½ q_i V_i of the energy, whose sum has the energy's gradient (with
    ``energy_only`` the potentials alone do not: :meth:`Coulomb.forward`; with a switch the
    shares are ½ q_i (V_i − ΔV_i): :mod:`.short_range`)."""

    energy: torch.Tensor
    potentials: torch.Tensor
    shares: torch.Tensor


def direct_potentials(
    charges: torch.Tensor,
    positions: torch.Tensor,
    sigma: float,
    pairs: torch.Tensor | None = None,
) -> torch.Tensor:
    """V_i = k_e Σ_{j≠i} q_j erf(r_ij/(√2σ))/r_ij (V) over all pairs of one open structure, or
    over the given ``pairs`` [2, n_pairs] (i < j; :func:`intra_structure_pairs` of a batch).

    Args:
        charges: [n] e; positions: [n, 3] Å; sigma: Å.
    """
    if pairs is None:
        n = positions.shape[0]
        pairs = torch.triu_indices(n, n, offset=1, device=positions.device)
    i, j = pairs
    r2, _ = safe_norm_sq(positions[j] - positions[i])
    kernel = damped_coulomb(r2, sigma)
    out = torch.zeros_like(charges).index_add(0, i, kernel * charges[j])
    return COULOMB_CONSTANT * out.index_add(0, j, kernel * charges[i])


def intra_structure_pairs(counts: Sequence[int]) -> torch.Tensor:
    """[2, n_pairs] int64: every pair (i < j) of atoms within a structure of a batch whose
    structures hold ``counts`` atoms each, in order (atoms numbered structure after structure)."""
    blocks, offset = [torch.zeros((2, 0), dtype=torch.int64)], 0
    for n in counts:
        blocks.append(torch.triu_indices(n, n, offset=1) + offset)
        offset += n
    return torch.cat(blocks, dim=1)


def dsf_potentials(
    charges: torch.Tensor,
    positions: torch.Tensor,
    sigma: float,
    alpha: float,
    cutoff: float,
) -> torch.Tensor:
    """Damped-shifted-force potentials V_i (V) of one open structure (see module docstring).

    Args:
        charges: [n] e; positions: [n, 3] Å; sigma: Å; alpha: Å⁻¹; cutoff: Å.
    """
    n = positions.shape[0]
    device = positions.device
    cell = torch.zeros((3, 3), dtype=positions.dtype, device=device)
    pbc = torch.zeros(3, dtype=torch.bool, device=device)
    edge_index, shifts = build_neighbor_list(positions, cell, pbc, cutoff, full_list=False)
    batch = torch.zeros(n, dtype=torch.int64, device=device)
    d = edge_vectors(positions, cell[None], edge_index, shifts, batch)
    r2, r = safe_norm_sq(d)
    kernel = dsf_kernel(r2, r, sigma, alpha, cutoff)
    i, j = edge_index
    out = torch.zeros_like(charges).index_add(0, i, kernel * charges[j])
    out = out.index_add(0, j, kernel * charges[i])
    g_c, _ = dsf_scalar(cutoff, sigma, alpha)
    out = out - (g_c + 2.0 * alpha / math.sqrt(math.pi)) * charges
    return COULOMB_CONSTANT * out


class Coulomb(nn.Module):
    """Coulomb energy and potentials of given charges (no learnable parameters, no state).

    Args:
        config: :class:`CoulombConfig`.
    """

    def __init__(self, config: CoulombConfig | None = None) -> None:
        super().__init__()
        self.config = config or CoulombConfig()

    def _structure_potentials(
        self,
        charges: torch.Tensor,
        positions: torch.Tensor,
        cell: torch.Tensor,
        pbc: Sequence[bool],
        periodic_sums: PeriodicSums | None,
        energy_only: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Potentials [n] (V) and energy shares [n] (eV) of one structure's charges [n] (e) at
        positions [n, 3] (Å) in its cell [3, 3] (Å) by :meth:`method_for`'s method."""
        cfg = self.config
        method = self.method_for(charges.shape[0], pbc)
        if method == "direct":
            v = direct_potentials(charges, positions, cfg.sigma)
        elif method == "dsf":
            v = dsf_potentials(charges, positions, cfg.sigma, cfg.dsf_alpha, cfg.dsf_cutoff)
        elif energy_only:  # V_i differentiable in r_i alone: Σ q_i V_i = 2E has E's gradient
            v = periodic_potentials(
                charges, positions, cell, cfg.sigma, method, cfg.accuracy, periodic_sums, True
            )
            product = charges * v
            return v, product - 0.5 * product.detach()  # values ½ q V, gradient E's
        else:
            v = periodic_potentials(
                charges, positions, cell, cfg.sigma, method, cfg.accuracy, periodic_sums
            )
        return v, 0.5 * charges * v

    def method_for(self, n_atoms: int, pbc: torch.Tensor | Sequence[bool]) -> str:
        """Method used for one structure of ``n_atoms`` atoms with periodic flags ``pbc`` [3]."""
        flags = [bool(p) for p in (pbc.tolist() if isinstance(pbc, torch.Tensor) else pbc)]
        if any(flags) and not all(flags):
            raise ValueError(
                f"Coulomb supports open (pbc=[False, False, False]) or 3D-periodic "
                f"(pbc=[True, True, True]) structures, not pbc={flags}"
            )
        periodic = all(flags)
        method = self.config.method
        if method == "auto":
            if periodic:
                return "ewald" if n_atoms <= self.config.ewald_max_atoms else "pme"
            return "direct" if n_atoms <= self.config.direct_max_atoms else "dsf"
        if periodic != (method in ("ewald", "pme")):
            kind = "3D-periodic" if periodic else "open"
            raise ValueError(f"method={method!r} cannot treat a {kind} structure (pbc={flags})")
        return method

    def forward(
        self,
        charges: torch.Tensor,
        positions: torch.Tensor,
        cell: torch.Tensor,
        pbc: torch.Tensor,
        batch: torch.Tensor,
        n_graphs: int,
        layout: Sequence[tuple[int, Sequence[bool]]] | None = None,
        pairs: torch.Tensor | None = None,
        periodic_sums: PeriodicSums | None = None,
        energy_only: bool = False,
        edges: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> CoulombOutput:
        """Energies and potentials of a flattened batch, each structure on its own.

        Args:
            charges: [n_atoms] partial charges in e.
            positions: [n_atoms, 3] in Å.
            cell: [n_graphs, 3, 3] lattice vectors as rows in Å (zeros for open structures).
            pbc: [n_graphs, 3] bool periodic flags.
            batch: [n_atoms] int64 structure index of each atom.
            n_graphs: number of structures.
            layout: per structure (atom count, periodic flags) known on the host
                (:attr:`~phicalc.graph.batch.AtomGraph.host_layout`); ``None``: read from
                ``batch`` and ``pbc`` (a device read on a GPU).
            pairs: [2, n_pairs] every pair within a structure (:func:`intra_structure_pairs`),
                for a batch whose every structure takes the direct sum: one sum over them
                all, with no loop over the structures (compiled batches); ``None``: the loop.
            periodic_sums: what the caller keeps between calls of the periodic sums
                (:class:`~phicalc.nn.electrostatics.periodic.PeriodicSums`: Ewald grids, PME
                filters); ``None``: nothing kept.
            energy_only: the caller differentiates the energy (the shares' sum) alone, at a
                fixed cell: periodic structures then sum with
                :func:`~phicalc.nn.electrostatics.periodic.periodic_potentials`'
                ``own_positions`` (no structure factors or mesh in the backward pass), and only
                the shares carry the energy's gradient. Not for a stress or a second derivative.
            edges: (edge_index [2, n_edges], lengths [n_edges] Å) of the model's full
                neighbour list, needed with ``switch_radius`` (which must not exceed its
                cutoff); ignored without.

        Returns:
            :class:`CoulombOutput` (energy [n_graphs] eV, potentials [n_atoms] V, shares
            [n_atoms] eV).
        """
        cfg = self.config
        if pairs is not None:
            potentials = direct_potentials(charges, positions, cfg.sigma, pairs)
            shares = self._switched(0.5 * charges * potentials, charges, edges)
            return CoulombOutput(scatter_sum(shares, batch, n_graphs), potentials, shares)
        if layout is None:
            counts = torch.bincount(batch, minlength=n_graphs).tolist()
            layout = list(zip(counts, pbc.tolist()))
        if n_graphs == 1 and layout[0][0]:  # one structure: nothing to gather out of the batch
            potentials, shares = self._structure_potentials(
                charges, positions, cell[0], layout[0][1], periodic_sums, energy_only
            )
        else:
            potentials, shares = torch.zeros_like(charges), torch.zeros_like(charges)
            order = torch.argsort(batch, stable=True)
            start = 0
            for g, (count, flags) in enumerate(layout):
                idx = order[start : start + count]
                start += count
                if count == 0:
                    continue
                v, share = self._structure_potentials(
                    charges[idx], positions[idx], cell[g], flags, periodic_sums, energy_only
                )
                potentials = potentials.index_put((idx,), v)
                shares = shares.index_put((idx,), share)
        shares = self._switched(shares, charges, edges)
        return CoulombOutput(scatter_sum(shares, batch, n_graphs), potentials, shares)

    def _switched(
        self,
        shares: torch.Tensor,
        charges: torch.Tensor,
        edges: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> torch.Tensor:
        """Energy shares [n_atoms] (eV) less ½ q_i ΔV_i, the part the switch removes
        (:func:`~.short_range.short_range_potentials`); unchanged without ``switch_radius``."""
        radius = self.config.switch_radius
        if radius is None:
            return shares
        if edges is None:
            raise ValueError("a Coulomb term with switch_radius needs the neighbour list (edges)")
        edge_index, lengths = edges
        removed = short_range_potentials(charges, edge_index, lengths, self.config.sigma, radius)
        return shares - 0.5 * charges * removed
