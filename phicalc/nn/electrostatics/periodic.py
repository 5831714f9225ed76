"""Damped Coulomb potentials of one 3D-periodic structure through torch-pme (Ewald or PME).

The damped kernel of Gaussian charges, erf(r/(√2σ))/r, is the long-range part LR_s of
torch-pme's range-separated 1/r (``CoulombPotential(smearing=s)``) with s = σ: its Fourier
transform 4π exp(−k²σ²/2)/k² decays fast, so for σ ≥ :data:`MIN_SMEARING` the whole lattice sum
is a reciprocal-space sum, with no neighbour list and no real-space term. For narrower charges,
and in sparse cells (s ≥ :data:`SPARSE_SMEARING_PER_SPACING`·(V/N)^{1/3}, a molecule in a large
box), the split is made at s > σ and the remainder

    erf(r/(√2σ))/r − erf(r/(√2s))/r = [erf(r/(√2σ)) − erf(r/(√2s))]/r

is summed in real space over one neighbour list (cutoff √2·s·η, periodic self-images included);
it is finite at r = 0, so coincident atoms give no 1/r blow-up.

Reciprocal sums, with η = √(−ln ε) for the accuracy target ε:
  * Ewald: structure factors over every k ≠ 0 with |k| ≤ k_c = √2·η/s, one of each ±k pair (the
    two give equal terms); the k-vectors are 2π·n·cell⁻ᵀ for fixed integer n, so they follow the
    cell and stresses are exact derivatives. Cost ∝ N·V.
  * PME: torch-pme's Lagrange mesh interpolation and k-space filter (``MeshInterpolator``,
    ``KSpaceFilter``, as in its ``PMECalculator``) on a mesh of spacing
    h = :data:`PME_MESH_PER_SMEARING`·s, each axis rounded up to an FFT-friendly size (factors
    2, 3, 5) rather than torch-pme's power of 2. Cost ∝ N + V log V.

Energy-only gradients (``own_positions``, what a force call without the stress asks for): the
lattice energy E = ½ Σ_i q_i V_i is a symmetric quadratic form in the charges, so the gradient of
E in the charges and positions equals that of Σ_i q_i Ṽ_i, where Ṽ_i is V_i differentiated only
through atom i's own position (its phases, its mesh stencil), every charge and every other
position held fixed. The structure factors, the spread charge density and its FFTs then need no
backward pass (benchmarks/energy_only_sums.py).

Charged cells: torch-pme's uniform neutralising background is applied. The result is independent
of the splitting s and equals the Ewald sum of the Gaussian charges with the k = 0 term omitted,
i.e. V_i contains −2πσ² k_e Q/V.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torchpme import CoulombPotential
from torchpme.lib import KSpaceFilter, MeshInterpolator

from phicalc.graph.neighbors import build_neighbor_list, edge_vectors
from phicalc.nn.electrostatics.kernels import COULOMB_CONSTANT, erf_over_r, safe_norm_sq

#: Smallest splitting width s (Å): charges at least this wide are summed in reciprocal space
#: alone; narrower ones get a real-space remainder with cutoff √2·s·η.
MIN_SMEARING = 1.0
#: In a sparse cell s grows with the mean spacing, s ≥ this × (V/N)^{1/3}, so the reciprocal
#: work (∝ N·V/s³ for Ewald, V/s³ mesh points for PME) stays ∝ N²/∝ N instead of growing with
#: empty volume; at 0.35 condensed phases (V/N ≤ 23 Å³: water 10, rock salt 22) keep s = σ = 1 Å.
SPARSE_SMEARING_PER_SPACING = 0.35
#: The Ewald k-sum is cut at the accuracy target over this: with ε itself its energy and virial
#: errors were ~10x those of a real/reciprocal split at ε (``benchmarks/pme_mesh.py``).
EWALD_TAIL_MARGIN = 10.0
#: PME Lagrange interpolation nodes per axis (odd orders are the accurate ones).
PME_INTERPOLATION_NODES = 7
#: PME mesh spacing over the smearing s: 0.5 keeps energy, force and virial errors of a
#: 1,536-atom water box at or below the earlier split's (``benchmarks/pme_mesh.py``).
PME_MESH_PER_SMEARING = 0.5


def accuracy_eta(accuracy: float) -> float:
    """η = √(−ln ε): Gaussian tails exp(−η²) = ε set the cutoffs."""
    return math.sqrt(-math.log(accuracy))


def smearing_and_cutoff(
    sigma: float, accuracy: float, volume: float, n_atoms: int
) -> tuple[float, float]:
    """(splitting width s Å, real-space cutoff Å; 0 when s = σ and there is no real space)
    for ``n_atoms`` atoms in a cell of ``volume`` Å³."""
    spacing = (volume / max(n_atoms, 1)) ** (1.0 / 3.0)
    s = max(sigma, MIN_SMEARING, SPARSE_SMEARING_PER_SPACING * spacing)
    return s, (math.sqrt(2.0) * s * accuracy_eta(accuracy) if s != sigma else 0.0)


def ewald_cutoff(accuracy: float, smearing: float) -> float:
    """The Ewald sum's k-cutoff √2·η/s (Å⁻¹) at ε/:data:`EWALD_TAIL_MARGIN` for splitting
    width ``smearing`` s (Å)."""
    return math.sqrt(2.0) * accuracy_eta(accuracy / EWALD_TAIL_MARGIN) / smearing


def ewald_kvectors(cell: torch.Tensor, k_cut: float) -> torch.Tensor:
    """[n_k, 3] reciprocal vectors k = 2π n·cell⁻ᵀ (Å⁻¹), 0 < |k| ≤ k_cut, one of each ±k.

    The integer set n is chosen on the detached cell; k itself is differentiable in ``cell``.
    """
    reciprocal = 2.0 * math.pi * torch.linalg.inv(cell).transpose(0, 1)  # rows b_i
    lengths = torch.linalg.norm(cell.detach(), dim=1)
    # the index of k along b_i is k·a_i/2π ≤ k_cut|a_i|/2π, also in a triclinic cell
    n_max = [int(math.floor(k_cut * float(a) / (2.0 * math.pi))) for a in lengths]
    axes = [torch.arange(-m, m + 1, device=cell.device) for m in n_max]
    n = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    first = torch.where(n[:, 0] != 0, n[:, 0], torch.where(n[:, 1] != 0, n[:, 1], n[:, 2]))
    n = n[first > 0].to(cell.dtype)  # the half space: first non-zero index positive
    inside = ((n @ reciprocal.detach()) ** 2).sum(-1) <= k_cut * k_cut
    return n[inside] @ reciprocal


def fft_friendly(n: int) -> int:
    """Smallest integer ≥ n whose only prime factors are 2, 3 and 5."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def pme_mesh(cell: torch.Tensor, spacing: float) -> torch.Tensor:
    """[3] mesh points per axis: at least 2|a_i|/h + 1 (torch-pme's rule), FFT-friendly."""
    lengths = torch.linalg.norm(cell.detach(), dim=1).tolist()
    return torch.tensor(
        [fft_friendly(math.ceil(2.0 * a / spacing + 1.0)) for a in lengths], device=cell.device
    )


#: The Ewald structure-factor sum's signature: (charges [n], positions [n, 3], k-vectors
#: [n_k, 3], G(k) [n_k], own_positions) → [n]; :func:`structure_factor_sum` or a compiled
#: version of it.
StructureFactorSum = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, bool], torch.Tensor
]


def structure_factor_sum(
    charges: torch.Tensor,
    positions: torch.Tensor,
    kvectors: torch.Tensor,
    green: torch.Tensor,
    own_positions: bool = False,
) -> torch.Tensor:
    """Σ_k G(k) [cos(k·r_i) C(k) + sin(k·r_i) S(k)] [n_atoms] with C, S = Σ_j q_j cos, sin(k·r_j):
    the Ewald sum's [n_k, n_atoms] part (Å⁻²·e·Å³ before the 2/V), differentiable in every
    input; with ``own_positions`` C and S are held fixed, so atom i's value is differentiable
    only in r_i (:func:`periodic_potentials`). Compiled by
    :class:`~phicalc.compiled.CompiledEwaldSum`, which fuses the phases, their cosines and sines
    and both contractions into loops over k and atoms."""
    phase = kvectors @ positions.transpose(0, 1)  # [n_k, n_atoms]
    cos, sin = torch.cos(phase), torch.sin(phase)
    if own_positions:
        fixed = charges.detach()
        return (green * (cos.detach() @ fixed)) @ cos + (green * (sin.detach() @ fixed)) @ sin
    return (green * (cos @ charges)) @ cos + (green * (sin @ charges)) @ sin


def _kspace_filter(
    cell: torch.Tensor, mesh: torch.Tensor, potential: CoulombPotential
) -> KSpaceFilter:
    """torch-pme's k-space filter of ``potential`` on ``mesh`` for ``cell`` (its kernel G(k)
    on the mesh's Fourier grid, differentiable in the cell)."""
    return KSpaceFilter(
        cell=cell, ns_mesh=mesh, kernel=potential, fft_norm="backward", ifft_norm="forward"
    )


class KSpaceFilters:
    """PME k-space filters kept by their caller between calls: a call with the cell, mesh,
    smearing, dtype and device of the last one reuses its filter (MD at a fixed cell; computing
    the kernel is about a quarter of the PME sum of a 1,536-atom water box,
    benchmarks/pme_kspace.py). A cell that carries gradients (the stress) always gets a fresh
    filter, differentiable in the cell. The numbers are the same either way."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._filter: KSpaceFilter | None = None

    def get(
        self, cell: torch.Tensor, mesh: torch.Tensor, potential: CoulombPotential
    ) -> KSpaceFilter:
        """The filter of ``potential`` on ``mesh`` [3] for ``cell`` [3, 3] (Å)."""
        if cell.requires_grad:
            return _kspace_filter(cell, mesh, potential)
        key = (
            cell.detach().cpu().numpy().tobytes(),
            tuple(mesh.tolist()),
            float(potential.smearing),
            cell.dtype,
            cell.device,
        )
        if key != self._key or self._filter is None:
            self._filter, self._key = _kspace_filter(cell, mesh, potential), key
        return self._filter

    def clear(self) -> None:
        """Forget the kept filter."""
        self._key = self._filter = None


@dataclass
class PeriodicSums:
    """What a caller brings to the periodic Coulomb sums (each optional; ``None``: plain).

    Attributes:
        structure_sum: the Ewald sum's [n_k, n_atoms] part in place of
            :func:`structure_factor_sum`: a compiled one
            (:class:`~phicalc.compiled.CompiledEwaldSum`; inference only).
        kspace_filters: PME k-space filters kept between calls (:class:`KSpaceFilters`).
    """

    structure_sum: StructureFactorSum | None = None
    kspace_filters: KSpaceFilters | None = None

    def clear(self) -> None:
        """Forget what is kept between calls."""
        if self.kspace_filters is not None:
            self.kspace_filters.clear()


def _ewald_sum(
    charges: torch.Tensor,
    positions: torch.Tensor,
    cell: torch.Tensor,
    volume: torch.Tensor,
    potential: CoulombPotential,
    accuracy: float,
    structure_sum: StructureFactorSum,
    own_positions: bool,
) -> torch.Tensor:
    """Σ_{j, n} q_j LR_s(r_ij) over all images with the j = i, n = 0 term included (Å⁻¹·e):
    structure factors over half the k-sphere, V_i = (2/V) :func:`structure_factor_sum` with
    G = 4π exp(−k²s²/2)/k² (torch-pme's ``lr_from_k_sq``); the factor 2 counts −k. Its cutoff
    takes ε/:data:`EWALD_TAIL_MARGIN`: the k-shell beyond it holds many terms.
    """
    kvectors = ewald_kvectors(cell, ewald_cutoff(accuracy, float(potential.smearing)))
    green = potential.lr_from_k_sq((kvectors * kvectors).sum(-1))
    return (2.0 / volume) * structure_sum(charges, positions, kvectors, green, own_positions)


def _pme_sum(
    charges: torch.Tensor,
    positions: torch.Tensor,
    cell: torch.Tensor,
    volume: torch.Tensor,
    potential: CoulombPotential,
    kspace_filters: KSpaceFilters | None,
    own_positions: bool,
) -> torch.Tensor:
    """The same sum as :func:`_ewald_sum`, on a PME mesh (Å⁻¹·e); the k-space filter from
    ``kspace_filters`` where the caller keeps them. With ``own_positions`` the mesh potential
    is made without autograd (the charges and their spreading held fixed; no FFT in the
    backward pass) and only its interpolation at each atom is differentiable."""
    mesh = pme_mesh(cell, PME_MESH_PER_SMEARING * float(potential.smearing))
    interpolator = MeshInterpolator(
        cell=cell, ns_mesh=mesh, interpolation_nodes=PME_INTERPOLATION_NODES, method="Lagrange"
    )
    if kspace_filters is None:
        kspace = _kspace_filter(cell, mesh, potential)
    else:
        kspace = kspace_filters.get(cell, mesh, potential)
    interpolator.compute_weights(positions)
    points, weights = _mesh_stencil(interpolator, mesh)
    with torch.set_grad_enabled(torch.is_grad_enabled() and not own_positions):
        spread = (weights * charges).reshape(-1)
        density = charges.new_zeros(int(mesh.prod())).index_add(0, points, spread)
        filtered = kspace.forward(density.view(1, *mesh.tolist())).reshape(-1)
    values = filtered.index_select(0, points).view_as(weights) * weights
    return values.sum(dim=0) / volume


def _mesh_stencil(
    interpolator: MeshInterpolator, mesh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each atom's interpolation stencil from torch-pme's computed weights: flat mesh indices
    [n_nodes³ · n_atoms] (stencil point major) and weights w_x w_y w_z [n_nodes³, n_atoms].
    The same spreading and interpolation as ``points_to_mesh``/``mesh_to_points``, with one
    flat index_add / index_select in place of three-index advanced indexing (a third of the
    PME sum's time at 1,536 atoms)."""
    ny, nz = int(mesh[1]), int(mesh[2])
    points = (interpolator.x_indices * ny + interpolator.y_indices) * nz + interpolator.z_indices
    w = interpolator.interpolation_weights  # [n_nodes, n_atoms, 3]
    shifts = (interpolator.x_shifts, interpolator.y_shifts, interpolator.z_shifts)
    wx, wy, wz = (w[:, :, axis].index_select(0, shifts[axis]) for axis in range(3))
    weights = wx * wy * wz
    return points.reshape(-1), weights


def periodic_potentials(
    charges: torch.Tensor,
    positions: torch.Tensor,
    cell: torch.Tensor,
    sigma: float,
    method: str,
    accuracy: float,
    sums: PeriodicSums | None = None,
    own_positions: bool = False,
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
        sums: what the caller brings (:class:`PeriodicSums`: a compiled Ewald sum, kept PME
            filters); ``None``: plain sums.
        own_positions: make each V_i differentiable only in its own atom's position, with
            every charge and every other position held fixed (not in the cell). The energy
            E = ½ Σ q_i V_i is a symmetric quadratic form in the charges, so Σ_i q_i V_i then
            has exactly E's gradient in the charges and the positions (the backward pass skips
            the structure factors, the mesh and its FFTs): for a caller that differentiates E
            alone, at a fixed cell.

    Returns:
        [n_atoms] potentials in V; differentiable w.r.t. charges, positions and cell (with
        ``own_positions``: as said there).
    """
    volume = torch.abs(torch.linalg.det(cell))  # Å³, differentiable in the cell
    s, cutoff = smearing_and_cutoff(sigma, accuracy, float(volume.detach()), positions.shape[0])
    potential = CoulombPotential(smearing=s).to(device=positions.device, dtype=positions.dtype)
    sums = PeriodicSums() if sums is None else sums
    if method == "ewald":
        structure_sum = structure_factor_sum if sums.structure_sum is None else sums.structure_sum
        lattice = _ewald_sum(
            charges, positions, cell, volume, potential, accuracy, structure_sum, own_positions
        )
    elif method == "pme":
        lattice = _pme_sum(
            charges, positions, cell, volume, potential, sums.kspace_filters, own_positions
        )
    else:  # pragma: no cover - guarded by CoulombConfig
        raise ValueError(f"periodic method {method!r} is not one of ['ewald', 'pme']")
    sources = charges.detach() if own_positions else charges  # the charges V_i depends on
    # minus each charge's own Gaussian (the n = 0 self term), with the neutralising background
    potentials = lattice - potential.self_contribution() * sources
    potentials = potentials - 2.0 * potential.background_correction() * sources.sum() / volume
    if cutoff > 0.0:
        potentials = potentials + _real_space_remainder(
            charges, positions, cell, sigma, s, cutoff, own_positions
        )
    return COULOMB_CONSTANT * potentials


def _real_space_remainder(
    charges: torch.Tensor,
    positions: torch.Tensor,
    cell: torch.Tensor,
    sigma: float,
    smearing: float,
    cutoff: float,
    own_positions: bool,
) -> torch.Tensor:
    """Σ_j q_j [erf(r_ij/(√2σ)) − erf(r_ij/(√2s))]/r_ij over the pairs (and atom-image pairs)
    within ``cutoff`` (Å⁻¹·e, [n_atoms]); with ``own_positions`` each end's term holds the
    other end's position and charge fixed."""
    device = positions.device
    pbc = torch.ones(3, dtype=torch.bool, device=device)
    # each pair (and each atom-image pair) once, added to both ends
    edge_index, shifts = build_neighbor_list(positions, cell, pbc, cutoff, full_list=False)
    batch = torch.zeros(positions.shape[0], dtype=torch.int64, device=device)
    a_sigma, a_s = 1.0 / (math.sqrt(2.0) * sigma), 1.0 / (math.sqrt(2.0) * smearing)

    def weight(d: torch.Tensor) -> torch.Tensor:
        r2, _ = safe_norm_sq(d)
        return erf_over_r(r2, a_sigma) - erf_over_r(r2, a_s)

    i, j = edge_index
    if not own_positions:
        both = weight(edge_vectors(positions, cell[None], edge_index, shifts, batch))
        real = torch.zeros_like(charges).index_add(0, i, both * charges[j])
        return real.index_add(0, j, both * charges[i])
    fixed, sources = positions.detach(), charges.detach()
    offsets = edge_vectors(torch.zeros_like(fixed), cell[None], edge_index, shifts, batch)
    at_i = weight(fixed[j] - positions[i] + offsets)  # r_i free, r_j fixed
    at_j = weight(positions[j] - fixed[i] + offsets)  # r_j free, r_i fixed
    real = torch.zeros_like(charges).index_add(0, i, at_i * sources[j])
    return real.index_add(0, j, at_j * sources[i])
