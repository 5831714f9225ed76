"""The Coulomb term switched off inside r_s: the switched pair sum, periodic images, and what a
whole Potential reports with it."""

from __future__ import annotations

import itertools
import math

import ase.units
import numpy as np
import pytest
import torch
from es_helpers import rattled_nacl, water_cluster
from scipy.special import erf

from phicalc import build_model
from phicalc.errors import ConfigError
from phicalc.graph.batch import atoms_list_to_graph
from phicalc.graph.neighbors import build_neighbor_list
from phicalc.nn.electrostatics import Coulomb, CoulombConfig
from phicalc.nn.electrostatics.coulomb import intra_structure_pairs
from phicalc.testing import MODEL_VARIANTS, ammonium_and_water

K_E = ase.units.Hartree * ase.units.Bohr


def switch(r: np.ndarray, radius: float) -> np.ndarray:
    """s(r) = 1 − u(r/r_s), u = 1 − 28x⁶ + 48x⁷ − 21x⁸ (p = 6), written out independently."""
    x = np.minimum(r / radius, 1.0)
    return 28 * x**6 - 48 * x**7 + 21 * x**8


def call(config: CoulombConfig, q, pos, cell=None, radius: float | None = None):
    """Energy and potentials of one structure, with the full neighbour list to ``radius``."""
    n = len(pos)
    periodic = cell is not None
    cell = cell if periodic else torch.zeros(3, 3, dtype=pos.dtype)
    pbc = torch.full((3,), periodic)
    edges = None
    if radius is not None:
        edge_index, shifts = build_neighbor_list(pos, cell, pbc, radius)
        lengths = (pos[edge_index[1]] - pos[edge_index[0]] + shifts.to(pos) @ cell).norm(dim=-1)
        edges = (edge_index, lengths)
    batch = torch.zeros(n, dtype=torch.int64)
    out = Coulomb(config)(q, pos, cell[None], pbc[None], batch, 1, edges=edges)
    return out.energy[0], out.potentials, out.shares


@pytest.mark.parametrize("radius", [2.0, 4.0])
def test_open_energy_is_the_switched_pair_sum(radius: float) -> None:
    q, pos = water_cluster(2, spacing=2.9)
    sigma = 0.9
    energy, potentials, shares = call(
        CoulombConfig(sigma=sigma, method="direct", switch_radius=radius), q, pos, radius=radius
    )
    p, c = pos.numpy(), q.numpy()
    r = np.linalg.norm(p[:, None] - p[None], axis=-1)
    i, j = np.triu_indices(len(p), 1)
    rij = r[i, j]
    pair = K_E * c[i] * c[j] * erf(rij / (math.sqrt(2) * sigma)) / rij
    assert float(energy) == pytest.approx(float((pair * switch(rij, radius)).sum()), rel=1e-12)
    assert float(energy) != pytest.approx(float(pair.sum()), rel=1e-3)  # the switch did act
    assert float(shares.sum()) == pytest.approx(float(energy), rel=1e-12)
    # the potentials stay the unswitched kernel's: V_i = k_e Σ_j q_j erf(r/√2σ)/r
    np.fill_diagonal(r, 1.0)
    kernel = erf(r / (math.sqrt(2) * sigma)) / r
    np.fill_diagonal(kernel, 0.0)
    np.testing.assert_allclose(potentials.numpy(), K_E * kernel @ c, rtol=1e-12)


def test_periodic_switch_removes_pairs_with_images() -> None:
    """A 5.64 Å cell with r_s = 4.5 Å: each ion's own images (5.64 Å) lie beyond r_s but the
    neighbours' images within, so the correction must go through the lattice shifts."""
    q, pos, cell = rattled_nacl(1, triclinic=True)
    radius, sigma = 4.5, 1.0
    plain = CoulombConfig(sigma=sigma, method="ewald", accuracy=1e-10)
    switched = CoulombConfig(sigma=sigma, method="ewald", accuracy=1e-10, switch_radius=radius)
    e_plain, v_plain, _ = call(plain, q, pos, cell)
    e_switched, v_switched, _ = call(switched, q, pos, cell, radius=radius)
    p, c, lattice = pos.numpy(), q.numpy(), cell.numpy()
    removed = 0.0
    for shift in itertools.product(range(-2, 3), repeat=3):
        d = p[None] - p[:, None] + np.array(shift) @ lattice  # [i, j]: r_j + S − r_i
        r = np.linalg.norm(d, axis=-1)
        inside = (r > 0) & (r < radius)
        u = 1.0 - switch(r[inside], radius)
        kernel = erf(r[inside] / (math.sqrt(2) * sigma)) / r[inside]
        removed += 0.5 * K_E * float((np.outer(c, c)[inside] * u * kernel).sum())
    assert abs(removed) > 0.01  # something within r_s to take away
    assert float(e_plain - e_switched) == pytest.approx(removed, rel=1e-9)
    torch.testing.assert_close(v_switched, v_plain)


def test_fine_tuning_may_add_the_switch_but_not_change_the_width(tmp_path) -> None:
    from phicalc.serialization import save_model
    from phicalc.train.preparation import initialise_from

    options = {"phi": False, "charge_equilibration": True, "cutoff": 4.0, "num_features": 8}
    source = build_model("painn", coulomb=True, seed=1, **options)
    save_model(source, tmp_path / "plain.pt")
    target = build_model("painn", coulomb={"switch_radius": 3.0}, seed=2, **options)
    initialise_from(target, str(tmp_path / "plain.pt"))
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)
    wider = build_model("painn", coulomb={"sigma": 1.5, "switch_radius": 3.0}, **options)
    with pytest.raises(ConfigError, match="coulomb.sigma"):
        initialise_from(wider, str(tmp_path / "plain.pt"))


def test_switch_radius_is_checked() -> None:
    with pytest.raises(ConfigError, match="switch_radius"):
        CoulombConfig(switch_radius=0.0)
    options = {"phi": False, "charge_equilibration": True, "cutoff": 4.0, "num_features": 8}
    with pytest.raises(ConfigError, match="exceeds the cutoff"):
        build_model("painn", coulomb={"switch_radius": 4.5}, **options)
    q, pos = water_cluster(1)
    with pytest.raises(ValueError, match="needs the neighbour list"):
        call(CoulombConfig(method="direct", switch_radius=2.0), q, pos)


def test_a_potential_with_the_switch_keeps_charges_potentials_and_long_range() -> None:
    """Same weights with and without the switch: the same charges and potentials; energies
    differ by the short-range pairs alone, so fragments apart by more than r_s interact alike
    (the "local" variant: charges per molecule, Q only through them, so each fragment's charges
    are its own)."""
    options = {**MODEL_VARIANTS["local"], "cutoff": 4.0, "num_features": 16, "seed": 3}
    options.pop("coulomb")
    plain = build_model("painn", coulomb=True, **options).double().eval()
    switched = build_model("painn", coulomb={"switch_radius": 3.0}, **options).double().eval()
    switched.load_state_dict(plain.state_dict())
    pair = ammonium_and_water(5.0)
    ion, water = pair[:5], pair[5:]
    for atoms, q in ((pair, 1), (ion, 1), (water, 0)):
        atoms.info["charge"] = q
    graph = atoms_list_to_graph([pair, ion, water], 4.0)
    a = plain(graph, compute_forces=False)
    b = switched(graph, compute_forces=False)
    torch.testing.assert_close(a["charges"], b["charges"])
    torch.testing.assert_close(a["potentials"], b["potentials"])
    # every structure has bonded pairs inside r_s (the untrained water's charges are small)
    assert (a["energy"] - b["energy"]).abs().min() > 1e-5
    interaction = [float(e[0] - e[1] - e[2]) for e in (a["energy"], b["energy"])]
    assert abs(interaction[0]) > 1e-5  # Coulomb only: the untrained water is nearly neutral
    assert interaction[1] == pytest.approx(interaction[0], rel=1e-9, abs=1e-12)


def test_the_all_pairs_batch_path_is_switched_alike() -> None:
    """Compiled batches sum every pair at once (``pairs``): the same switched energies as the
    per-structure loop."""
    q1, p1 = water_cluster(1, seed=1)
    q2, p2 = water_cluster(2, seed=2)
    q, pos = torch.cat([q1, q2]), torch.cat([p1, p2 + 50.0])
    batch = torch.cat([torch.zeros(len(p1)), torch.ones(len(p2))]).long()
    cell, pbc = torch.zeros(2, 3, 3, dtype=pos.dtype), torch.zeros(2, 3, dtype=torch.bool)
    edge_index, _ = build_neighbor_list(pos, cell[0], pbc[0], 3.0)
    edges = (edge_index, (pos[edge_index[1]] - pos[edge_index[0]]).norm(dim=-1))
    coulomb = Coulomb(CoulombConfig(method="direct", switch_radius=3.0))
    looped = coulomb(q, pos, cell, pbc, batch, 2, edges=edges)
    pairs = intra_structure_pairs([len(p1), len(p2)])
    summed = coulomb(q, pos, cell, pbc, batch, 2, pairs=pairs, edges=edges)
    torch.testing.assert_close(summed.energy, looped.energy)
    torch.testing.assert_close(summed.shares, looped.shares)
    unswitched = Coulomb(CoulombConfig(method="direct"))(q, pos, cell, pbc, batch, 2, pairs=pairs)
    assert (unswitched.energy - summed.energy).abs().min() > 1e-3
