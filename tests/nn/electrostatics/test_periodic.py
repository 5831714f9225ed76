"""Ewald and PME paths against an independent reciprocal-space reference written here."""

from __future__ import annotations

import itertools
import math

import ase.units
import numpy as np
import pytest
import torch
from es_helpers import energy_of, rattled_nacl
from scipy.special import erf

from phicalc.data.structures import water_box
from phicalc.nn.electrostatics import Coulomb, CoulombConfig, periodic

K_E = ase.units.Hartree * ase.units.Bohr
METHODS = ("ewald", "pme")


def reference_energy(q: torch.Tensor, pos: torch.Tensor, cell: torch.Tensor, sigma: float) -> float:
    """Damped-kernel lattice energy of a neutral cell, summed entirely in reciprocal space.

    erf(r/(√2σ))/r has the Fourier transform 4π exp(−k²σ²/2)/k², so for a neutral cell
    E = (2π k_e/V) Σ_{k≠0} e^{−k²σ²/2}/k² |Σ_j q_j e^{ik·r_j}|² − ½ k_e √(2/π)/σ Σ_i q_i²,
    the last term removing each charge's own zero-shift interaction (the r → 0 limit of the
    kernel). Summed until k²σ²/2 > 40.
    """
    q, pos, cell = q.numpy(), pos.numpy(), cell.numpy()
    recip = 2 * math.pi * np.linalg.inv(cell).T
    k_max = math.sqrt(80.0) / sigma
    n_max = [int(math.ceil(k_max * np.linalg.norm(a) / (2 * math.pi))) + 1 for a in cell]
    total = 0.0
    for n in itertools.product(*(range(-m, m + 1) for m in n_max)):
        if n == (0, 0, 0):
            continue
        k = np.array(n) @ recip
        k2 = k @ k
        if k2 > k_max**2:
            continue
        s = np.sum(q * np.exp(1j * pos @ k))
        total += math.exp(-0.5 * k2 * sigma**2) / k2 * abs(s) ** 2
    volume = abs(np.linalg.det(cell))
    return K_E * (
        2 * math.pi / volume * total - math.sqrt(2 / math.pi) / sigma * 0.5 * np.sum(q**2)
    )


@pytest.mark.parametrize("triclinic", [False, True])
@pytest.mark.parametrize("sigma", [0.7, 1.0])
def test_ewald_and_pme_equal_reference(triclinic, sigma):
    q, pos, cell = rattled_nacl(triclinic=triclinic)
    ref = reference_energy(q, pos, cell, sigma)
    ewald = energy_of(CoulombConfig(sigma=sigma, method="ewald", accuracy=1e-8), q, pos, cell)
    pme = energy_of(CoulombConfig(sigma=sigma, method="pme", accuracy=1e-8), q, pos, cell)
    assert ewald.item() == pytest.approx(ref, rel=1e-8)
    assert pme.item() == pytest.approx(ref, rel=1e-5)
    ewald_default = energy_of(CoulombConfig(sigma=sigma, method="ewald"), q, pos, cell)
    assert ewald_default.item() == pytest.approx(ref, rel=1e-5)


def _strained(cell, pos, eps):
    strain = torch.eye(3) + 0.5 * (eps + eps.T)
    return pos @ strain, cell @ strain


@pytest.mark.parametrize("method", ["ewald", "pme"])
@pytest.mark.parametrize("triclinic", [False, True])
def test_forces_and_stress_match_finite_differences(method, triclinic):
    q, pos, cell = rattled_nacl(seed=3, triclinic=triclinic)
    cfg = CoulombConfig(method=method, accuracy=1e-8)
    pos_r = pos.clone().requires_grad_(True)
    eps = torch.zeros(3, 3, requires_grad=True)
    p_s, c_s = _strained(cell, pos_r, eps)
    e = energy_of(cfg, q, p_s, c_s)
    g_pos, g_eps = torch.autograd.grad(e, (pos_r, eps))
    h = 1e-5
    for a, c in ((0, 0), (5, 2)):
        dp = torch.zeros_like(pos)
        dp[a, c] = h
        fd = (energy_of(cfg, q, pos + dp, cell) - energy_of(cfg, q, pos - dp, cell)) / (2 * h)
        assert g_pos[a, c].item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-6)
    for a, b in ((0, 0), (1, 2), (2, 0)):
        d = torch.zeros(3, 3)
        d[a, b] = h
        ep, em = (energy_of(cfg, q, *_strained(cell, pos, s * d)) for s in (1, -1))
        fd = (ep - em) / (2 * h)
        grad = g_eps[a, b]
        assert grad.item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-6)


def test_supercell_rotation_permutation_and_batch():
    q, pos, cell = rattled_nacl(seed=1)
    cfg = CoulombConfig(method="ewald", accuracy=1e-8)
    e0 = energy_of(cfg, q, pos, cell).item()
    shifts = torch.tensor(list(itertools.product(range(2), repeat=3)), dtype=pos.dtype) @ cell
    big_pos = (pos[None] + shifts[:, None]).reshape(-1, 3)
    e8 = energy_of(cfg, q.repeat(8), big_pos, 2 * cell).item()
    assert e8 == pytest.approx(8 * e0, rel=1e-6)
    e8_pme = energy_of(CoulombConfig(method="pme"), q.repeat(8), big_pos, 2 * cell).item()
    assert e8_pme == pytest.approx(8 * e0, rel=2e-5)
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(4)))[0]
    e_rot = energy_of(cfg, q, pos @ rot.T + 1.3, cell @ rot.T).item()
    assert e_rot == pytest.approx(e0, rel=1e-6)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(5))
    assert energy_of(cfg, q[perm], pos[perm], cell).item() == pytest.approx(e0, rel=1e-9)
    q2, pos2, cell2 = rattled_nacl(seed=2, triclinic=True)
    out = Coulomb(cfg)(
        torch.cat([q, q2]),
        torch.cat([pos, pos2]),
        torch.stack([cell, cell2]),
        torch.ones(2, 3, dtype=torch.bool),
        torch.repeat_interleave(torch.arange(2), 8),
        2,
    )
    assert out.energy[0].item() == pytest.approx(e0, rel=1e-12)
    assert out.energy[1].item() == pytest.approx(energy_of(cfg, q2, pos2, cell2).item(), rel=1e-12)


def test_charged_cell_uses_background_independent_of_splitting(monkeypatch):
    q, pos, cell = rattled_nacl(seed=6)
    q = q + 0.1  # net charge 0.8 e
    # σ = 1 Å: Ewald and PME sum everything in reciprocal space (s = σ); with the floor raised
    # to 1.6 Å the sum is split (s = 1.6 Å, a real-space remainder). With the background the
    # result must not depend on the split.
    cfg = {method: CoulombConfig(sigma=1.0, method=method, accuracy=1e-10) for method in METHODS}
    unsplit = {method: energy_of(c, q, pos, cell) for method, c in cfg.items()}
    monkeypatch.setattr(periodic, "MIN_SMEARING", 1.6)
    split = {method: energy_of(c, q, pos, cell) for method, c in cfg.items()}
    assert torch.isfinite(unsplit["ewald"])
    assert split["ewald"].item() == pytest.approx(unsplit["ewald"].item(), rel=1e-9)
    assert unsplit["pme"].item() == pytest.approx(unsplit["ewald"].item(), rel=1e-5)
    assert split["pme"].item() == pytest.approx(unsplit["ewald"].item(), rel=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_default_accuracy_against_a_converged_sum(method):
    """A 64-water box with water-like charges: energy, forces and virial at the default accuracy
    against Ewald at ε = 1e-13 (the bounds are ~2x what the sums gave: the earlier real/reciprocal
    split, 2026-11-30, gave 5e-5 / 1.7e-5 / 6.6e-4 for Ewald, 1e-4 / 3.1e-5 / 3.6e-4 for PME)."""
    atoms = water_box(64, seed=0)
    pos = torch.tensor(atoms.positions)
    cell = torch.tensor(atoms.cell.array)
    q = torch.tensor([-0.8 if z == 8 else 0.4 for z in atoms.numbers], dtype=torch.float64)

    def energy_forces_virial(config):
        p = pos.clone().requires_grad_(True)
        eps = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
        e = energy_of(config, q, *_strained(cell, p, eps))
        return (e.detach(), *torch.autograd.grad(e, (p, eps)))

    e_ref, g_ref, v_ref = energy_forces_virial(CoulombConfig(method="ewald", accuracy=1e-13))
    e, g, v = energy_forces_virial(CoulombConfig(method=method))
    assert abs(e - e_ref).item() < 2e-4  # eV, of -112 eV
    assert (g - g_ref).abs().max().item() < 1e-4  # eV/Å
    assert (v - v_ref).abs().max().item() < 2e-3  # eV


def test_charges_as_wide_as_the_floor_need_no_neighbour_list(monkeypatch):
    q, pos, cell = rattled_nacl(seed=8)
    wide = {m: energy_of(CoulombConfig(sigma=1.0, method=m), q, pos, cell) for m in METHODS}

    def refuse(*args, **kwargs):
        raise AssertionError("a neighbour list was built")

    monkeypatch.setattr(periodic, "build_neighbor_list", refuse)
    for method in METHODS:
        again = energy_of(CoulombConfig(sigma=1.0, method=method), q, pos, cell)
        assert again.item() == wide[method].item()
        with pytest.raises(AssertionError, match="neighbour list"):
            energy_of(CoulombConfig(sigma=0.7, method=method), q, pos, cell)


def _sphere(cell: torch.Tensor, k_cut: float) -> torch.Tensor:
    """[n_k, 3] every k = 2π n·cell⁻ᵀ with 0 < |k| ≤ k_cut, by brute force over n."""
    recip = 2 * math.pi * torch.linalg.inv(cell).T
    n_max = 14
    grid = torch.tensor(
        list(itertools.product(range(-n_max, n_max + 1), repeat=3)), dtype=cell.dtype
    )
    k = grid @ recip
    norms = k.norm(dim=1)
    assert norms[grid.abs().max(dim=1).values == n_max].min() > k_cut  # n_max was enough
    return k[(norms > 0) & (norms <= k_cut)]


@pytest.mark.parametrize("triclinic", [False, True])
def test_ewald_grid_holds_the_sphere_once_with_its_weights(triclinic):
    """The grid's non-zero terms, n₁ > 0 counted with their mirror −k and the plane n₁ = 0 as
    it is, are every k of the sphere exactly once, each with w·G(k)."""
    _, _, cell = rattled_nacl(triclinic=triclinic)
    k_cut = 3.0
    potential = periodic.CoulombPotential(smearing=1.0).to(dtype=torch.float64)
    grid = periodic.ewald_grid(cell, k_cut, potential)
    n1, n2, n3 = grid.orders
    orders = torch.stack(
        [
            n1[grid.pairs[0]][:, None].expand_as(grid.green),
            n2[grid.pairs[1]][:, None].expand_as(grid.green),
            n3[None, :].expand_as(grid.green),
        ],
        dim=-1,
    )[grid.green != 0]
    k = orders @ grid.reciprocal
    weight = torch.where(orders[:, 0] > 0, 2.0, 1.0).to(torch.float64)
    expected = weight * potential.lr_from_k_sq((k * k).sum(-1))
    torch.testing.assert_close(grid.green[grid.green != 0], expected, rtol=1e-14, atol=0)
    both = torch.cat([k, -k[orders[:, 0] > 0]])
    sphere = _sphere(cell, k_cut)
    assert len(both) == len(sphere)
    distance = torch.cdist(both, sphere)
    assert (distance.min(dim=1).values < 1e-6).all() and (distance.min(dim=0).values < 1e-6).all()


@pytest.mark.parametrize("own_positions", [False, True])
def test_structure_factor_sum_equals_the_sum_over_k_and_pairs(own_positions):
    """The factorised sum equals Σ_k G(k) Σ_j q_j cos(k·(r_i − r_j)) written out over the
    sphere and the pairs, in value and in its gradients in the charges, positions and cell
    (float64), also with atoms far outside the cell (their phases taken modulo 2π); with
    ``own_positions`` the gradient of Σ q_i V_i is that of the full sum's ½ Σ q_i V_i."""
    q, pos, cell = rattled_nacl(seed=5, triclinic=True)
    pos = pos + torch.tensor([3.0, -2.0, 0.0]) @ cell  # unwrapped, as in a long MD run
    potential = periodic.CoulombPotential(smearing=1.0).to(dtype=torch.float64)
    k_cut = 3.5

    def gradients(factorised: bool):
        strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
        charges = q.clone().requires_grad_(True)
        positions = pos.clone().requires_grad_(True)
        deformed = cell @ (torch.eye(3, dtype=torch.float64) + strain)
        moved = positions @ (torch.eye(3, dtype=torch.float64) + strain)
        if factorised:
            grid = periodic.ewald_grid(deformed, k_cut, potential)
            v = periodic.structure_factor_sum(charges, moved, grid, own_positions)
        else:
            k = _sphere(deformed, k_cut)
            green = potential.lr_from_k_sq((k * k).sum(-1))
            phase = (moved[:, None, :] - moved[None, :, :]) @ k.T  # [n, n, n_k]
            v = (green * torch.cos(phase)).sum(-1) @ charges
        energy = (charges * v).sum() * (1.0 if own_positions or not factorised else 0.5)
        if not factorised:
            energy = 0.5 * energy
        wrt = (charges, positions) if own_positions else (charges, positions, strain)
        return [v.detach(), *torch.autograd.grad(energy, wrt)]

    got, expected = gradients(True), gradients(False)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def test_pme_mesh_is_fft_friendly_and_fine_enough():
    assert [periodic.fft_friendly(n) for n in (1, 7, 97, 101, 128, 121)] == [
        1,
        8,
        100,
        108,
        128,
        125,
    ]
    _, _, cell = rattled_nacl(triclinic=True)
    mesh = periodic.pme_mesh(cell, 0.5)
    lengths = torch.linalg.norm(cell, dim=1)
    assert (mesh >= 2 * lengths / 0.5 + 1).all()
    assert (mesh < 1.1 * (2 * lengths / 0.5 + 1) + 1).all()


def test_coincident_atoms_in_a_cell_are_finite():
    q, pos, cell = rattled_nacl(seed=7)
    pos = pos.clone()
    pos[1] = pos[0]
    pos.requires_grad_(True)
    e = energy_of(CoulombConfig(method="ewald"), q, pos, cell)
    (g,) = torch.autograd.grad(e, pos)
    assert torch.isfinite(e) and torch.isfinite(g).all()


def test_ewald_equals_a_converged_direct_lattice_sum():
    """A neutral, dipole-free triclinic cell summed image by image in real space (spherical
    shells of cells; no surface term without a cell dipole) converges to the Ewald energy."""
    cell = torch.tensor([[5.0, 0.0, 0.0], [1.2, 5.5, 0.0], [-0.8, 0.9, 6.0]], dtype=torch.float64)
    centre, d = torch.tensor([2.4, 2.9, 3.1]), torch.tensor([0.9, -0.5, 0.7])
    pos = torch.stack([centre, centre + d, centre - d]).double()
    q = torch.tensor([-0.8, 0.4, 0.4], dtype=torch.float64)  # Σq = 0 and Σ q r = 0
    sigma = 1.0
    ewald = float(
        energy_of(CoulombConfig(sigma=sigma, method="ewald", accuracy=1e-10), q, pos, cell)
    )

    def direct(n_max: int) -> float:
        rng = np.arange(-n_max, n_max + 1)
        shifts = np.array(np.meshgrid(rng, rng, rng, indexing="ij")).reshape(3, -1).T
        lattice = shifts @ cell.numpy()
        lattice = lattice[np.linalg.norm(lattice, axis=1) <= n_max * 5.0]  # a sphere of cells
        p, charges = pos.numpy(), q.numpy()
        total = 0.0
        for i in range(3):
            for j in range(3):
                r = np.linalg.norm(p[j] + lattice - p[i], axis=1)
                if i == j:
                    r = r[r > 1e-12]  # an atom's own zero-shift pair is not an interaction
                total += charges[i] * charges[j] * np.sum(erf(r / (math.sqrt(2) * sigma)) / r)
        return 0.5 * K_E * total

    coarse, fine = direct(12), direct(24)
    assert abs(fine - ewald) < abs(coarse - ewald) + 1e-12  # converging towards Ewald
    assert fine == pytest.approx(ewald, rel=1e-7)  # 1.6e-7 eV off at 24 cells, 5.8e-6 at 6


@pytest.mark.parametrize("method", METHODS)
def test_a_sparse_cell_is_split_and_keeps_its_sum_small(method, monkeypatch):
    """Rock salt's 8 ions in a cell 3x as long (V/N 27x rock salt's): s grows with the mean
    spacing, so the reciprocal work stays that of a dense cell, and the energy equals the
    unsplit reciprocal sum (everything in k-space, s = σ)."""
    q, pos, cell = rattled_nacl(seed=9, triclinic=True)
    big = 3.0 * cell
    cfg = CoulombConfig(sigma=1.0, method=method, accuracy=1e-8)
    sizes = []
    ewald_grid, mesh = periodic.ewald_grid, periodic.pme_mesh

    def counting_grid(*args):
        grid = ewald_grid(*args)
        sizes.append(int((grid.green != 0).sum()))
        return grid

    def counting_mesh(*args):
        m = mesh(*args)
        sizes.append(int(m.prod()))
        return m

    monkeypatch.setattr(periodic, "ewald_grid", counting_grid)
    monkeypatch.setattr(periodic, "pme_mesh", counting_mesh)
    split = energy_of(cfg, q, pos, big).item()
    monkeypatch.setattr(periodic, "SPARSE_SMEARING_PER_SPACING", 0.0)
    unsplit = energy_of(CoulombConfig(sigma=1.0, method="ewald", accuracy=1e-10), q, pos, big)
    assert split == pytest.approx(unsplit.item(), rel=1e-6)
    energy_of(cfg, q, pos, cell)  # the dense cell, for its count
    assert sizes[0] < 2 * sizes[-1]  # the sparse cell's k-vectors or mesh ~ the dense cell's


def test_pme_stencil_spreads_and_interpolates_as_torchpme_does():
    """The flat-index spreading and interpolation of the PME sum give torch-pme's
    ``points_to_mesh`` / ``mesh_to_points`` numbers (triclinic cell, float64)."""
    from torchpme.lib import MeshInterpolator

    generator = torch.Generator().manual_seed(3)
    cell = torch.tensor([[9.0, 0.0, 0.0], [1.5, 8.0, 0.0], [-0.7, 0.9, 10.0]], dtype=torch.float64)
    positions = torch.rand(40, 3, generator=generator, dtype=torch.float64) @ cell
    charges = torch.randn(40, generator=generator, dtype=torch.float64)
    mesh = periodic.pme_mesh(cell, 0.5)
    interpolator = MeshInterpolator(
        cell=cell,
        ns_mesh=mesh,
        interpolation_nodes=periodic.PME_INTERPOLATION_NODES,
        method="Lagrange",
    )
    interpolator.compute_weights(positions)
    points, weights = periodic._mesh_stencil(interpolator, mesh)
    density = torch.zeros(int(mesh.prod()), dtype=torch.float64).index_add(
        0, points, (weights * charges).reshape(-1)
    )
    expected = interpolator.points_to_mesh(charges[:, None])
    torch.testing.assert_close(density.view_as(expected), expected, rtol=0, atol=1e-14)
    field = torch.randn(expected.shape, generator=generator, dtype=torch.float64)
    values = (field.reshape(-1).index_select(0, points).view_as(weights) * weights).sum(0)
    torch.testing.assert_close(values, interpolator.mesh_to_points(field)[:, 0], rtol=0, atol=1e-13)


@pytest.mark.parametrize("method", METHODS)
def test_kept_grids_and_filters_give_the_same_sums_and_follow_the_cell(method):
    """Ewald grids and PME filters kept between calls: the numbers of fresh ones (potentials
    and gradients, float64), the same object again for the same cell, a new one for another
    cell, and a fresh, cell-differentiable one whenever the cell carries gradients (the
    stress)."""
    q, positions, cell = rattled_nacl(seed=1, triclinic=True)
    sums = periodic.PeriodicSums.kept()
    kept = sums.ewald_grids if method == "ewald" else sums.kspace_filters
    assert kept is not None
    made = []

    def potentials_and_gradients(cell, sums):
        strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=cell.requires_grad)
        pos = positions.clone().requires_grad_(True)
        charges = q.clone().requires_grad_(True)
        deformed = (
            cell @ (torch.eye(3, dtype=torch.float64) + strain) if strain.requires_grad else cell
        )
        v = periodic.periodic_potentials(charges, pos, deformed, 1.0, method, 1e-6, sums)
        made.append(kept._kept)
        wrt = (pos, charges, strain) if strain.requires_grad else (pos, charges)
        return [v.detach(), *torch.autograd.grad((charges * v).sum(), wrt)]

    for current in (cell, 1.05 * cell, 1.05 * cell):  # the third call reuses the second's
        expected = potentials_and_gradients(current, None)
        got = potentials_and_gradients(current, sums)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    assert made[1] is not None and made[3] is not made[1] and made[5] is made[3]
    # a cell with gradients: a fresh object each time (nothing kept), and the stress of a fresh one
    with_stress = cell.clone().requires_grad_(True)
    assert kept.get(with_stress, (), list) is not kept.get(with_stress, (), list)
    expected = potentials_and_gradients(with_stress, None)
    for a, b in zip(potentials_and_gradients(with_stress, sums), expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    assert made[-1] is made[5]
    sums.clear()
    assert kept._kept is None


@pytest.mark.parametrize(
    "method,sigma,scale",
    [("ewald", 1.0, 1.0), ("pme", 1.0, 1.0), ("ewald", 0.7, 1.0), ("pme", 1.0, 3.0)],
    ids=["ewald", "pme", "ewald-narrow-charges", "pme-sparse-cell"],
)
def test_energy_only_sums_have_the_energy_and_its_gradient(method, sigma, scale):
    """energy_only (each V_i differentiable in its own position alone; no structure factors or
    mesh in the backward pass) gives the same energy, potentials and shares, and the shares'
    sum the same gradient in charges and positions as the full sums; with a real-space
    remainder too (narrow charges, a sparse cell). Two cells in one batch take the loop."""
    q0, pos0, cell = rattled_nacl(seed=3, triclinic=True)
    q0 = q0 + 0.05 * torch.sin(torch.arange(8.0))  # a charged cell: the background term too
    q1, pos1, cell1 = rattled_nacl(seed=4)
    charges = torch.cat([q0, q1])
    positions = torch.cat([pos0, pos1])
    cells = torch.stack([scale * cell, cell1])
    coulomb = Coulomb(CoulombConfig(sigma=sigma, method=method, accuracy=1e-8))

    def run(energy_only: bool, n: int):
        q = charges[:n].clone().requires_grad_(True)
        pos = positions[:n].clone().requires_grad_(True)
        out = coulomb(
            q,
            pos,
            cells[: n // 8],
            torch.ones(n // 8, 3, dtype=torch.bool),
            torch.arange(n) // 8,
            n // 8,
            energy_only=energy_only,
        )
        gradients = torch.autograd.grad(out.shares.sum(), (q, pos))
        return out, gradients

    for n in (8, 16):
        (full, full_grad), (only, only_grad) = run(False, n), run(True, n)
        for a, b in [*zip(full, only), *zip(full_grad, only_grad)]:
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12)
        half_qv = 0.5 * charges[:n] * only.potentials.detach()
        torch.testing.assert_close(only.shares.detach(), half_qv, rtol=1e-12, atol=1e-14)
    # the potentials themselves no longer depend on the charges: only the shares carry them
    q = charges[:8].clone().requires_grad_(True)
    pos = positions[:8].clone().requires_grad_(True)
    v = periodic.periodic_potentials(q, pos, scale * cell, sigma, method, 1e-8, None, True)
    assert torch.autograd.grad(v.sum(), q, allow_unused=True)[0] is None
