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
  * Ewald: structure factors over every k ≠ 0 with |k| ≤ k_c = √2·η/s; the k-vectors are
    k = n₁b₁ + n₂b₂ + n₃b₃ (b_a the rows of 2π·cell⁻ᵀ, fixed integers n), so they follow the
    cell and stresses are exact derivatives. The phase factors factorise,
    e^{ik·r} = e^{in₁θ₁} e^{in₂θ₂} e^{in₃θ₃} with θ_a = b_a·r, so the sums over atoms and k
    are two complex matrix products over the last order n₃ instead of a cosine and a sine per
    (k, atom) pair; n₁ < 0 is folded onto n₁ > 0 (equal terms). Cost ∝ N·V.
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

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

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


@functools.lru_cache(maxsize=32)
def coulomb_potential(
    smearing: float, dtype: torch.dtype, device: torch.device
) -> CoulombPotential:
    """torch-pme's range-separated 1/r with splitting width ``smearing`` (Å), made once per
    (width, dtype, device): it has no state a call changes, and making it costs ~0.1 ms."""
    return CoulombPotential(smearing=smearing).to(device=device, dtype=dtype)


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


class EwaldGrid(NamedTuple):
    """The k-vectors of one cell's Ewald sum, as integer orders per reciprocal axis.

    k = n₁b₁ + n₂b₂ + n₃b₃ over n₁ ∈ [0, m₁], n₂ ∈ [−m₂, m₂], n₃ ∈ [−m₃, m₃]; of the (n₁, n₂)
    pairs only those whose line over n₃ reaches into the sphere 0 < |k| ≤ k_c.

    Attributes:
        reciprocal: [3, 3] rows b_a = 2π (cell⁻ᵀ)_a (Å⁻¹), differentiable in the cell.
        orders: the integer orders n₁ [M₁], n₂ [M₂], n₃ [M₃] (in the cell's dtype).
        pairs: [2, R] indices into n₁ and n₂ of the (n₁, n₂) pairs kept.
        green: [R, M₃] w(n₁) G(k) (Å²): G(k) = 4π exp(−k²s²/2)/k² inside the sphere, 0
            outside; w = 2 for n₁ > 0 (it stands for −k too), 1 on the plane n₁ = 0 (which holds
            both k and −k).
    """

    reciprocal: torch.Tensor
    orders: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    pairs: torch.Tensor
    green: torch.Tensor


def ewald_grid(cell: torch.Tensor, k_cut: float, potential: CoulombPotential) -> EwaldGrid:
    """The :class:`EwaldGrid` of ``cell`` [3, 3] (Å, rows) up to ``k_cut`` (Å⁻¹) for
    ``potential``'s G(k) (torch-pme's ``lr_from_k_sq``). The orders are chosen on the detached
    cell; ``reciprocal`` and ``green`` are differentiable in it."""
    reciprocal = 2.0 * math.pi * torch.linalg.inv(cell).transpose(0, 1)  # rows b_a
    lengths = torch.linalg.norm(cell.detach(), dim=1)
    # the order of k along b_a is k·a_a/2π ≤ k_cut|a_a|/2π, also in a triclinic cell
    m = [int(math.floor(k_cut * float(a) / (2.0 * math.pi))) for a in lengths]
    options = {"device": cell.device, "dtype": cell.dtype}
    orders = (
        torch.arange(0, m[0] + 1, **options),
        torch.arange(-m[1], m[1] + 1, **options),
        torch.arange(-m[2], m[2] + 1, **options),
    )
    n = torch.stack(torch.meshgrid(*orders, indexing="ij"), dim=-1)  # [M1, M2, M3, 3]
    k_sq = ((n @ reciprocal) ** 2).sum(-1)
    inside = (k_sq.detach() <= k_cut * k_cut) & (n != 0).any(-1)
    green = potential.lr_from_k_sq(torch.where(inside, k_sq, torch.ones_like(k_sq)))
    weight = torch.where(orders[0] > 0, 2.0, 1.0).to(cell.dtype)[:, None, None]
    green = torch.where(inside, green * weight, torch.zeros_like(green))
    m2, m3 = len(orders[1]), len(orders[2])
    kept = inside.reshape(-1, m3).any(dim=1).nonzero().squeeze(1)
    pairs = torch.stack([kept // m2, kept % m2])
    return EwaldGrid(reciprocal, orders, pairs, green.reshape(-1, m3).index_select(0, kept))


def _phase_factors(positions: torch.Tensor, grid: EwaldGrid) -> tuple[torch.Tensor, torch.Tensor]:
    """e^{i(n₁θ₁ + n₂θ₂)} [R, n_atoms] over the grid's (n₁, n₂) pairs and e^{in₃θ₃} [M₃, n_atoms]
    (complex), θ_a = b_a·r taken modulo 2π (the same phases, kept small in float32)."""
    theta = positions @ grid.reciprocal.transpose(0, 1)  # [n_atoms, 3]
    theta = theta - (2.0 * math.pi) * torch.round(theta.detach() / (2.0 * math.pi))
    first, second, third = (
        torch.polar(torch.ones_like(angle), angle)
        for angle in (n[:, None] * theta[None, :, axis] for axis, n in enumerate(grid.orders))
    )
    return first.index_select(0, grid.pairs[0]) * second.index_select(0, grid.pairs[1]), third


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


def structure_factor_sum(
    charges: torch.Tensor,
    positions: torch.Tensor,
    grid: EwaldGrid,
    own_positions: bool = False,
) -> torch.Tensor:
    """Σ_k G(k) Re[e^{−ik·r_i} S(k)] [n_atoms] over the k-sphere, S(k) = Σ_j q_j e^{ik·r_j}: the
    Ewald sum's reciprocal part (Å⁻²·e·Å³ before the 1/V), differentiable in every input; with
    ``own_positions`` S is held fixed, so atom i's value is differentiable only in r_i
    (:func:`periodic_potentials`). S over the grid is one complex product
    [R, n_atoms]·[n_atoms, M₃], its sum back to the atoms another."""
    if own_positions:
        with torch.no_grad():
            pairs, last = _phase_factors(positions.detach(), grid)
            structure = (pairs * charges.detach()) @ last.transpose(0, 1)
    pairs, last = _phase_factors(positions, grid)
    if not own_positions:
        structure = (pairs * charges) @ last.transpose(0, 1)  # [R, M3]
    return (pairs.conj() * ((grid.green * structure) @ last.conj())).sum(dim=0).real


def _kspace_filter(
    cell: torch.Tensor, mesh: torch.Tensor, potential: CoulombPotential
) -> KSpaceFilter:
    """torch-pme's k-space filter of ``potential`` on ``mesh`` for ``cell`` (its kernel G(k)
    on the mesh's Fourier grid, differentiable in the cell)."""
    return KSpaceFilter(
        cell=cell, ns_mesh=mesh, kernel=potential, fft_norm="backward", ifft_norm="forward"
    )


Kept = TypeVar("Kept")


class KeptForCell:
    """One object made from a cell (a PME k-space filter, an Ewald grid) and kept by its caller
    between calls: a call with the cell, settings, dtype and device of the last one gets it back
    (MD at a fixed cell: the PME kernel is about a quarter of the PME sum of a 1,536-atom water
    box, benchmarks/pme_kspace.py); a cell that carries gradients (the stress) always gets a
    fresh one, differentiable in the cell. The numbers are the same either way."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._kept: Any = None

    def get(self, cell: torch.Tensor, settings: tuple, make: Callable[[], Kept]) -> Kept:
        """``make()``'s object for ``cell`` [3, 3] (Å) and ``settings`` (hashable), kept."""
        if cell.requires_grad:
            return make()
        key = (cell.detach().cpu().numpy().tobytes(), settings, cell.dtype, cell.device)
        if key != self._key or self._kept is None:
            self._kept, self._key = make(), key
        return self._kept

    def clear(self) -> None:
        """Forget the kept object."""
        self._key = self._kept = None


@dataclass
class PeriodicSums:
    """What a caller keeps between calls of the periodic Coulomb sums (each optional;
    ``None``: made afresh at every call).

    Attributes:
        kspace_filters: PME k-space filters (:class:`KeptForCell`).
        ewald_grids: Ewald k-vector grids with G(k) (:class:`KeptForCell` of
            :class:`EwaldGrid`).
    """

    kspace_filters: KeptForCell | None = None
    ewald_grids: KeptForCell | None = None

    @classmethod
    def kept(cls) -> PeriodicSums:
        """Sums that keep both, what a calculator or an engine adapter holds."""
        return cls(kspace_filters=KeptForCell(), ewald_grids=KeptForCell())

    def clear(self) -> None:
        """Forget what is kept between calls."""
        for kept in (self.kspace_filters, self.ewald_grids):
            if kept is not None:
                kept.clear()


def _ewald_sum(
    charges: torch.Tensor,
    positions: torch.Tensor,
    cell: torch.Tensor,
    volume: torch.Tensor,
    potential: CoulombPotential,
    accuracy: float,
    ewald_grids: KeptForCell | None,
    own_positions: bool,
) -> torch.Tensor:
    """Σ_{j, n} q_j LR_s(r_ij) over all images with the j = i, n = 0 term included (Å⁻¹·e):
    V_i = (1/V) :func:`structure_factor_sum` with G = 4π exp(−k²s²/2)/k² (torch-pme's
    ``lr_from_k_sq``), the grid from ``ewald_grids`` where the caller keeps them. Its cutoff
    takes ε/:data:`EWALD_TAIL_MARGIN`: the k-shell beyond it holds many terms.
    """
    smearing = float(potential.smearing)
    k_cut = ewald_cutoff(accuracy, smearing)

    def make() -> EwaldGrid:
        return ewald_grid(cell, k_cut, potential)

    grid = make() if ewald_grids is None else ewald_grids.get(cell, (k_cut, smearing), make)
    return structure_factor_sum(charges, positions, grid, own_positions) / volume


def _pme_sum(
    charges: torch.Tensor,
    positions: torch.Tensor,
    cell: torch.Tensor,
    volume: torch.Tensor,
    potential: CoulombPotential,
    kspace_filters: KeptForCell | None,
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

    def make() -> KSpaceFilter:
        return _kspace_filter(cell, mesh, potential)

    settings = (tuple(mesh.tolist()), float(potential.smearing))
    kspace = make() if kspace_filters is None else kspace_filters.get(cell, settings, make)
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
        sums: what the caller keeps between calls (:class:`PeriodicSums`: Ewald grids, PME
            filters); ``None``: nothing kept.
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
    potential = coulomb_potential(s, positions.dtype, positions.device)
    sums = PeriodicSums() if sums is None else sums
    if method == "ewald":
        lattice = _ewald_sum(
            charges, positions, cell, volume, potential, accuracy, sums.ewald_grids, own_positions
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
