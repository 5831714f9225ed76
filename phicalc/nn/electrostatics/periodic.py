"""Damped Coulomb potentials of one 3D-periodic structure through torch-pme (Ewald or PME).

The damped kernel erf(r/(√2σ))/r is split as

    erf(r/(√2σ))/r = [1/r] − erfc(r/(√2σ))/r
                   = LR_s(r) + [erfc(r/(√2s))/r − erfc(r/(√2σ))/r],

where LR_s(r) = erf(r/(√2s))/r is the reciprocal-space part of torch-pme's range-separated full
1/r (``CoulombPotential(smearing=s)``) and the bracket is the real-space part of the full 1/r
(torch-pme's SR term) minus the short-range correction erfc(r/(√2σ))/r.  The bracket equals
[erf(r/(√2σ)) − erf(r/(√2s))]/r, which is evaluated here in that form over one neighbour list
(cutoff r_c = √2·max(s, σ)·η, periodic self-images included): it is finite at r = 0, so two
coincident atoms give no 1/r blow-up or cancellation.  torch-pme is called with an empty
neighbour list and therefore returns exactly its reciprocal-space part (minus its Gaussian self
term and, for a charged cell, its uniform-background term).

Parameter rule (no timing-based tuning, deterministic and cheap): with η = √(−ln ε) for the
accuracy target ε, the real-space error ~ erfc(η) and the reciprocal-space error
~ exp(−k_c² s²/2) = ε.
  * Ewald: s = max(σ, (V²/N)^{1/6}/√(2π)) (the classic cost balance of real and reciprocal work),
    k_c = √2·η/s, ``lr_wavelength`` as in :func:`ewald_parameters` so every |k| ≤ k_c is summed.
  * PME: s = max(σ, 1.2 Å), ``mesh_spacing`` = s/2 (torch-pme then uses ≥ 2/mesh_spacing points
    per Å, rounded up to a power of 2), 6 interpolation nodes.

Charged cells: torch-pme's uniform neutralising background is applied (``background_correction``).
The result is independent of the splitting s (the k = 0 term of the absolutely convergent bracket
sum, 2π(s² − σ²)Q/V, cancels the s-dependence of the background term) and equals the Ewald sum of
the Gaussian charges with the k = 0 term omitted, i.e. V_i contains −2πσ² k_e Q/V.
"""

from __future__ import annotations

import math

import torch
from torchpme import CoulombPotential, EwaldCalculator, PMECalculator

from phicalc.graph.neighbors import build_neighbor_list, edge_vectors
from phicalc.nn.electrostatics.kernels import COULOMB_CONSTANT, erf_over_r, safe_norm_sq

PME_MIN_SMEARING = 1.2  # Å
PME_INTERPOLATION_NODES = 6
#: torch-pme's mesh_spacing over the smearing s (it lays ≥ 2 points per mesh_spacing, rounded up
#: to a power of 2): 0.5 keeps forces within ~2e-5 of a converged sum for a 1,536-atom water box;
#: 0.75 and 1.0 halve the mesh and are 2.7x faster there but 20x less accurate
#: (``benchmarks/pme_mesh.py``).
PME_MESH_PER_SMEARING = 0.5


def accuracy_eta(accuracy: float) -> float:
    """η = √(−ln ε): Gaussian tails exp(−η²) = ε set both cutoffs."""
    return math.sqrt(-math.log(accuracy))


def ewald_parameters(
    n_atoms: int, volume: float, lengths: list[float], sigma: float, accuracy: float
) -> tuple[float, float, float]:
    """(smearing s Å, lr_wavelength Å, real-space cutoff Å) for the Ewald path.

    torch-pme takes n_i = ceil(|a_i|/lr_wavelength) k-points along reciprocal axis i, i.e.
    integer indices up to ⌊(n_i − 1)/2⌋; the wavelength is chosen so that this reaches
    k_c|a_i|/(2π) on every axis, which covers the sphere |k| ≤ k_c = √2 η/s also in a
    triclinic cell (the index of k along b_i is k·a_i/2π ≤ k_c|a_i|/2π).
    """
    eta = accuracy_eta(accuracy)
    s = max(sigma, (volume**2 / max(n_atoms, 1)) ** (1.0 / 6.0) / math.sqrt(2.0 * math.pi))
    k_cut = math.sqrt(2.0) * eta / s
    wavelength = min(length / (k_cut * length / math.pi + 2.0) for length in lengths)
    return s, wavelength, math.sqrt(2.0) * max(s, sigma) * eta


def pme_parameters(sigma: float, accuracy: float) -> tuple[float, float, float]:
    """(smearing s Å, mesh_spacing Å, real-space cutoff Å) for the PME path."""
    eta = accuracy_eta(accuracy)
    s = max(sigma, PME_MIN_SMEARING)
    return s, s * PME_MESH_PER_SMEARING, math.sqrt(2.0) * s * eta


def periodic_potentials(
    charges: torch.Tensor,
    positions: torch.Tensor,
    cell: torch.Tensor,
    sigma: float,
    method: str,
    accuracy: float,
) -> torch.Tensor:
    """Per-atom damped-Coulomb potentials V_i (V) of one 3D-periodic structure.

    V_i = k_e Σ_{j, n} q_j erf(|r_j − r_i + n·cell|/(√2σ))/|…|, summed over all lattice images n
    (the j = i, n = 0 term excluded), with a uniform background for a charged cell.

    Args:
        charges: [n_atoms] in e.
        positions: [n_atoms, 3] in Å.
        cell: [3, 3] lattice vectors as rows, Å (non-singular).
        sigma: Gaussian width σ in Å.
        method: "ewald" or "pme".
        accuracy: target ε of the Gaussian tails (relative), e.g. 1e-6.

    Returns:
        [n_atoms] potentials in V; differentiable w.r.t. charges, positions and cell.
    """
    n_atoms = positions.shape[0]
    dtype, device = positions.dtype, positions.device
    if method == "ewald":
        volume = float(torch.abs(torch.linalg.det(cell.detach())))
        lengths = torch.linalg.norm(cell.detach(), dim=1).tolist()
        s, resolution, cutoff = ewald_parameters(n_atoms, volume, lengths, sigma, accuracy)
        calculator = EwaldCalculator(
            CoulombPotential(smearing=s), lr_wavelength=resolution, full_neighbor_list=True
        )
    elif method == "pme":
        s, resolution, cutoff = pme_parameters(sigma, accuracy)
        calculator = PMECalculator(
            CoulombPotential(smearing=s),
            mesh_spacing=resolution,
            interpolation_nodes=PME_INTERPOLATION_NODES,
            full_neighbor_list=True,
        )
    else:  # pragma: no cover - guarded by CoulombConfig
        raise ValueError(f"periodic method {method!r} is not one of ['ewald', 'pme']")
    calculator = calculator.to(device=device, dtype=dtype)
    no_pairs = torch.zeros((0, 2), dtype=torch.int64, device=device)
    no_dist = torch.zeros((0,), dtype=dtype, device=device)
    # torch-pme returns ½ Σ_j q_j v_LR(r_ij) per atom (its energy is Σ_i q_i·out_i).
    reciprocal = 2.0 * calculator(charges[:, None], cell, positions, no_pairs, no_dist)[:, 0]
    potentials = reciprocal
    if s != sigma:
        pbc = torch.ones(3, dtype=torch.bool, device=device)
        # each pair (and each atom-image pair) once, added to both ends
        edge_index, shifts = build_neighbor_list(positions, cell, pbc, cutoff, full_list=False)
        batch = torch.zeros(n_atoms, dtype=torch.int64, device=device)
        d = edge_vectors(positions, cell[None], edge_index, shifts, batch)
        r2, _ = safe_norm_sq(d)
        a_sigma, a_s = 1.0 / (math.sqrt(2.0) * sigma), 1.0 / (math.sqrt(2.0) * s)
        kernel = erf_over_r(r2, a_sigma) - erf_over_r(r2, a_s)
        i, j = edge_index
        real = torch.zeros_like(charges).index_add(0, i, kernel * charges[j])
        potentials = potentials + real.index_add(0, j, kernel * charges[i])
    return COULOMB_CONSTANT * potentials
