"""Direct and DSF paths on open structures: analytic values, r → 0, forces, invariances."""

from __future__ import annotations

import math

import ase.units
import pytest
import torch
from es_helpers import energy_of, water_cluster

from phicalc.errors import ConfigError
from phicalc.nn.electrostatics import Coulomb, CoulombConfig

K_E = ase.units.Hartree * ase.units.Bohr
DIRECT = CoulombConfig(sigma=1.0, method="direct")


def _pair(q1: float, q2: float, r: float, sigma: float) -> float:
    return K_E * q1 * q2 * math.erf(r / (math.sqrt(2) * sigma)) / r


def test_direct_matches_hand_computed_three_and_four_charges():
    pos = torch.tensor([[0.0, 0, 0], [1.2, 0, 0], [0, 2.0, 0.5], [-1.0, -0.3, 3.0]])
    q = torch.tensor([0.7, -0.4, 0.5, -0.8])
    cfg = CoulombConfig(sigma=0.8, method="direct")
    for n in (2, 3, 4):
        out = Coulomb(cfg)(
            q[:n],
            pos[:n],
            torch.zeros(1, 3, 3),
            torch.zeros(1, 3, dtype=torch.bool),
            torch.zeros(n, dtype=torch.int64),
            1,
        )
        e = sum(
            _pair(q[i].item(), q[j].item(), (pos[i] - pos[j]).norm().item(), 0.8)
            for i in range(n)
            for j in range(i + 1, n)
        )
        assert out.energy.item() == pytest.approx(e, rel=1e-12)
        for i in range(n):
            v = sum(
                _pair(1.0, q[j].item(), (pos[i] - pos[j]).norm().item(), 0.8)
                for j in range(n)
                if j != i
            )
            assert out.potentials[i].item() == pytest.approx(v, rel=1e-12)


def test_large_separation_is_bare_coulomb():
    pos = torch.tensor([[0.0, 0, 0], [0, 0, 20.0]])
    e = energy_of(DIRECT, torch.tensor([1.0, -1.0]), pos)
    assert e.item() == pytest.approx(-K_E / 20.0, rel=1e-12)


def test_approach_to_zero_is_finite_and_smooth():
    rs = torch.cat([torch.linspace(2.0, 1e-3, 60), torch.tensor([1e-6, 0.0])])
    energies, grads = [], []
    for r in rs:
        pos = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, r.item()]], requires_grad=True)
        e = energy_of(DIRECT, torch.tensor([0.5, -0.5]), pos)
        (g,) = torch.autograd.grad(e, pos)
        energies.append(e.item())
        grads.append(g)
    energies = torch.tensor(energies)
    assert torch.isfinite(energies).all() and all(torch.isfinite(g).all() for g in grads)
    assert (energies[1:] <= energies[:-1] + 1e-12).all()  # attraction deepens monotonically
    limit = -K_E * 0.25 * math.sqrt(2 / math.pi) / 1.0
    assert energies[-1].item() == pytest.approx(limit, rel=1e-12)
    assert grads[-1].abs().max().item() == 0.0


def _fd_forces(config, q, pos, idx=((0, 0), (1, 2), (4, 1)), h=1e-5):
    pos = pos.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(energy_of(config, q, pos), pos)
    for a, c in idx:
        p, m = pos.detach().clone(), pos.detach().clone()
        p[a, c] += h
        m[a, c] -= h
        fd = (energy_of(config, q, p) - energy_of(config, q, m)) / (2 * h)
        assert g[a, c].item() == pytest.approx(fd.item(), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("method", ["direct", "dsf"])
def test_forces_match_finite_differences(method):
    q, pos = water_cluster(2)
    _fd_forces(CoulombConfig(method=method, dsf_cutoff=5.0), q, pos)


def test_dsf_continuous_at_cutoff():
    cfg = CoulombConfig(method="dsf", dsf_cutoff=6.0, dsf_alpha=0.2)
    q = torch.tensor([0.6, -0.6])
    es, fs = [], []
    for r in (6.0 - 1e-7, 6.0 + 1e-7):
        pos = torch.tensor([[0.0, 0, 0], [r, 0, 0]], requires_grad=True)
        e = energy_of(cfg, q, pos)
        (g,) = torch.autograd.grad(e, pos)
        es.append(e.item())
        fs.append(g[1, 0].item())
    assert es[0] == pytest.approx(es[1], abs=1e-9)
    assert fs[0] == pytest.approx(fs[1], abs=1e-7)


def test_dsf_approaches_direct_for_large_cutoff():
    q, pos = water_cluster(3)
    ref = energy_of(DIRECT, q, pos).item()
    errors = [
        abs(energy_of(CoulombConfig(method="dsf", dsf_cutoff=rc, dsf_alpha=0.05), q, pos) - ref)
        for rc in (8.0, 20.0, 60.0)
    ]
    assert errors[2] < errors[0] and errors[2] < 2e-3 * abs(ref)


def test_invariances_and_batch_independence():
    q, pos = water_cluster(2)
    e0 = energy_of(DIRECT, q, pos)
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))[0]
    assert energy_of(DIRECT, q, pos @ rot.T + torch.tensor([3.0, -1, 2])).item() == pytest.approx(
        e0.item(), rel=1e-12
    )
    perm = torch.randperm(len(q), generator=torch.Generator().manual_seed(2))
    assert energy_of(DIRECT, q[perm], pos[perm]).item() == pytest.approx(e0.item(), rel=1e-12)
    q2, pos2 = water_cluster(1, seed=5)
    for method in ("direct", "dsf"):
        cfg = CoulombConfig(method=method, dsf_cutoff=5.0)
        out = Coulomb(cfg)(
            torch.cat([q2, q]),
            torch.cat([pos2, pos]),
            torch.zeros(2, 3, 3),
            torch.zeros(2, 3, dtype=torch.bool),
            torch.cat([torch.zeros(3, dtype=torch.int64), torch.ones(len(q), dtype=torch.int64)]),
            2,
        )
        assert out.energy[0].item() == pytest.approx(energy_of(cfg, q2, pos2).item(), rel=1e-12)
        assert out.energy[1].item() == pytest.approx(energy_of(cfg, q, pos).item(), rel=1e-12)
        alone = Coulomb(cfg)(
            q,
            pos,
            torch.zeros(1, 3, 3),
            torch.zeros(1, 3, dtype=torch.bool),
            torch.zeros(len(q), dtype=torch.int64),
            1,
        )  # one structure skips the gather into and out of the batch: the same potentials
        torch.testing.assert_close(out.potentials[3:], alone.potentials, rtol=1e-12, atol=0)


def test_one_sum_over_intra_structure_pairs_equals_the_loop():
    """The batch-wide direct sum (compiled batches) over intra_structure_pairs gives each
    structure its own energy and potentials, as the loop over structures does; no pair
    crosses structures."""
    from phicalc.nn.electrostatics.coulomb import intra_structure_pairs

    clusters = [water_cluster(1, seed=5), water_cluster(2), water_cluster(1, seed=7)]
    q = torch.cat([c[0] for c in clusters])
    pos = torch.cat([c[1] for c in clusters])
    counts = [len(c[0]) for c in clusters]
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(counts))
    pairs = intra_structure_pairs(counts)
    assert pairs.shape[1] == sum(n * (n - 1) // 2 for n in counts)
    assert bool((batch[pairs[0]] == batch[pairs[1]]).all()) and bool((pairs[0] < pairs[1]).all())
    args = (q, pos, torch.zeros(3, 3, 3), torch.zeros(3, 3, dtype=torch.bool), batch, 3)
    loop, summed = Coulomb(DIRECT)(*args), Coulomb(DIRECT)(*args, pairs=pairs)
    torch.testing.assert_close(summed.energy, loop.energy, rtol=1e-12, atol=0)
    torch.testing.assert_close(summed.potentials, loop.potentials, rtol=1e-12, atol=1e-12)


def test_config_validation_and_mixed_pbc():
    with pytest.raises(ConfigError, match="ewlad"):
        CoulombConfig(method="ewlad")
    with pytest.raises(ConfigError, match="sigma"):
        CoulombConfig(sigma=0.0)
    slab = torch.tensor([[True, True, False]])
    with pytest.raises(ValueError, match="True, True, False"):
        Coulomb()(torch.zeros(2), torch.rand(2, 3), torch.eye(3)[None] * 5, slab,
                  torch.zeros(2, dtype=torch.int64), 1)  # fmt: skip
    assert Coulomb().method_for(2001, torch.zeros(3, dtype=torch.bool)) == "dsf"
    assert Coulomb().method_for(1001, torch.ones(3, dtype=torch.bool)) == "pme"
