"""Verlet neighbour lists (phicalc.graph.verlet): the same edges and forces as a fresh list."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from phicalc import PhiCalculator, build_model
from phicalc.errors import ConfigError
from phicalc.graph import atoms_to_graph
from phicalc.graph.verlet import NeighborCache

CUTOFF = 3.0


def edge_set(graph) -> set[tuple[int, ...]]:
    i, j = graph.edge_index.tolist()
    return {(a, b, *s) for a, b, s in zip(i, j, graph.unit_shifts.tolist())}


def triclinic_box() -> Atoms:
    """27 atoms on a rattled 3×3×3 grid of a triclinic cell (shortest pair ≈ 1.7 Å)."""
    rng = np.random.default_rng(1)
    cell = np.array([[6.0, 0.0, 0.0], [1.5, 5.5, 0.0], [0.8, 1.1, 5.8]])
    grid = np.array(np.meshgrid(*[np.arange(3)] * 3, indexing="ij")).reshape(3, -1).T
    fractions = (grid + 0.5) / 3 + rng.normal(scale=0.01, size=grid.shape)
    return Atoms(rng.choice([1, 6, 8], size=27), scaled_positions=fractions, cell=cell, pbc=True)


def molecule_pair() -> Atoms:
    atoms = molecule("CH3CH2OH") + molecule("H2O")
    atoms.positions[-3:] += [3.0, 0.5, 0.0]
    return atoms


def moves(atoms: Atoms, skin: float, seed: int = 0) -> list[Atoms]:
    """The structure, then moves of every atom well below skin/2, then one atom past it."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=atoms.positions.shape)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    frames = [atoms.copy()]
    for _ in range(4):
        step = frames[-1].copy()
        step.positions += 0.1 * skin * direction  # cumulative 0.4 skin < skin/2 per atom
        frames.append(step)
    past = frames[-1].copy()
    past.positions[0] += 0.3 * skin * direction[0]  # atom 0 now 0.7 skin from the build
    frames.append(past)
    return frames


@pytest.mark.parametrize("make", [molecule_pair, triclinic_box])
def test_edge_sets_equal_a_fresh_list(make) -> None:
    skin = 1.0
    cache = NeighborCache(skin)
    frames = moves(make(), skin)
    for frame in frames:
        cached = atoms_to_graph(frame, CUTOFF, neighbor_cache=cache)
        fresh = atoms_to_graph(frame, CUTOFF)
        assert edge_set(cached) == edge_set(fresh)
        assert cached.edge_index.shape == fresh.edge_index.shape
    assert cache.builds == 2  # the first frame, and once atom 0 passed skin/2


def test_cell_change_rebuilds() -> None:
    cache = NeighborCache(0.5)
    atoms = triclinic_box()
    atoms_to_graph(atoms, CUTOFF, neighbor_cache=cache)
    atoms.set_cell(atoms.cell.array * 0.97, scale_atoms=False)
    cached = atoms_to_graph(atoms, CUTOFF, neighbor_cache=cache)
    assert cache.builds == 2
    assert edge_set(cached) == edge_set(atoms_to_graph(atoms, CUTOFF))


@pytest.mark.parametrize("make", [molecule_pair, triclinic_box])
def test_calculator_forces_equal_a_fresh_list(make) -> None:
    """Energies, forces (and stress) with a skin equal a fresh list's to 1e-12 in float64
    (only the summation order differs), before and after skin/2 and a cell change."""
    model = build_model("painn", phi=True, cutoff=CUTOFF, seed=0, num_features=16)
    with_skin = PhiCalculator(
        model, device="cpu", dtype="float64", neighbor_skin=1.0, min_distance=None
    )
    fresh = PhiCalculator(model, device="cpu", dtype="float64", min_distance=None)
    frames = moves(make(), 1.0)
    if frames[0].pbc.any():
        strained = frames[-1].copy()
        strained.set_cell(strained.cell.array * 1.02, scale_atoms=True)
        frames.append(strained)
    for frame in frames:
        a, b = frame.copy(), frame.copy()
        a.calc, b.calc = with_skin, fresh
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=0, atol=1e-12)
        if frame.pbc.all():
            np.testing.assert_allclose(a.get_stress(), b.get_stress(), rtol=0, atol=1e-12)
    assert with_skin.neighbor_cache.builds == (3 if frames[0].pbc.any() else 2)


def test_results_do_not_depend_on_when_the_list_was_built() -> None:
    """Canonical edge order: a kept list and a new one give bit-identical results."""
    model = build_model("painn", phi=True, cutoff=CUTOFF, seed=0, num_features=16)
    frames = moves(triclinic_box(), 1.0)
    kept = PhiCalculator(model, device="cpu", dtype="float64", neighbor_skin=1.0, min_distance=None)
    for frame in frames[:-1]:
        kept.get_forces(frame.copy())
    last = frames[-2].copy()
    new = PhiCalculator(model, device="cpu", dtype="float64", neighbor_skin=0.3, min_distance=None)
    np.testing.assert_array_equal(kept.get_forces(last), new.get_forces(last.copy()))
    assert kept.neighbor_cache.builds == 1


def test_float32_edges_and_reset() -> None:
    atoms = molecule_pair()
    calc = PhiCalculator(
        build_model("painn", phi=False, cutoff=CUTOFF, seed=0, num_features=8),
        device="cpu",
        neighbor_skin=0.5,
    )
    calc.get_forces(atoms)
    cached = atoms_to_graph(atoms, CUTOFF, dtype=torch.float32, neighbor_cache=calc.neighbor_cache)
    assert edge_set(cached) == edge_set(atoms_to_graph(atoms, CUTOFF, dtype=torch.float32))
    calc.reset()
    assert calc.neighbor_cache._edge_index is None


@pytest.mark.parametrize("skin", [-0.1, float("inf"), float("nan")])
def test_bad_skin(skin: float) -> None:
    with pytest.raises(ConfigError):
        NeighborCache(skin)
