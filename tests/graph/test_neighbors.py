"""The vesin neighbour list against ASE's on random open, mixed and periodic (triclinic) cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.neighborlist import neighbor_list

from phicalc.errors import BadGeometryError
from phicalc.graph import atoms_list_to_graph, atoms_to_graph, collate
from phicalc.graph.neighbors import edge_vectors


def random_cell(seed: int, pbc, scale: float) -> Atoms:
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(0.8, 1.2, 3) * scale) + rng.uniform(-0.3, 0.3, (3, 3)) * scale
    n = int(rng.integers(2, 12))
    return Atoms(
        numbers=rng.integers(1, 9, n),
        scaled_positions=rng.uniform(0, 1, (n, 3)),
        cell=cell,
        pbc=pbc,
    )


def pair_set(i, j, shifts, distances) -> dict:
    return {
        (int(a), int(b), *map(int, s)): float(d)
        for a, b, s, d in zip(i, j, shifts, distances, strict=True)
    }


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "pbc",
    [(True, True, True), (True, False, True), (False, False, True), (False, False, False)],
    ids=["3d", "2d", "1d", "open"],
)
@pytest.mark.parametrize("scale", [2.5, 7.0], ids=["small-cell", "large-cell"])
def test_matches_ase_neighbor_list(seed: int, pbc, scale: float) -> None:
    cutoff = 4.0  # the small cells are shorter than 2 × cutoff: several images per pair
    atoms = random_cell(seed, pbc, scale)
    graph = atoms_to_graph(atoms, cutoff)
    vectors = edge_vectors(
        graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
    )
    ours = pair_set(*graph.edge_index, graph.unit_shifts, vectors.norm(dim=-1))
    i, j, shifts, distances = neighbor_list("ijSd", atoms, cutoff)
    theirs = pair_set(i, j, shifts, distances)
    assert ours.keys() == theirs.keys()
    np.testing.assert_allclose([ours[k] for k in theirs], list(theirs.values()), atol=1e-10)


def test_edge_vectors_carry_gradients_to_positions_and_cell() -> None:
    atoms = random_cell(0, True, 3.0)
    graph = atoms_to_graph(atoms, 4.0)
    positions = graph.positions.clone().requires_grad_(True)
    cell = graph.cell.clone().requires_grad_(True)
    vectors = edge_vectors(positions, cell, graph.edge_index, graph.unit_shifts, graph.batch)
    vectors.norm(dim=-1).sum().backward()
    assert positions.grad is not None and cell.grad is not None
    assert cell.grad.abs().sum() > 0


def test_collate_offsets_indices_and_keeps_structures_apart() -> None:
    structures = [molecule("H2O"), random_cell(1, True, 3.0), molecule("CH4")]
    graph = atoms_list_to_graph(structures, 4.0)
    assert graph.n_graphs == 3
    assert graph.n_atoms_per_graph.tolist() == [len(a) for a in structures]
    i, j = graph.edge_index
    assert torch.equal(graph.batch[i], graph.batch[j])  # no edge between structures
    single = [atoms_to_graph(a, 4.0) for a in structures]
    assert graph.edge_index.shape[1] == sum(g.edge_index.shape[1] for g in single)
    assert collate(single).edge_index.tolist() == graph.edge_index.tolist()


def test_total_charge_from_info() -> None:
    atoms = molecule("H2O")
    atoms.info["charge"] = -1
    assert atoms_to_graph(atoms, 4.0).total_charge.tolist() == [-1.0]
    assert atoms_to_graph(atoms, 4.0, total_charge=2.0).total_charge.tolist() == [2.0]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_positions_are_rejected(bad: float) -> None:
    atoms = molecule("H2O")
    atoms.positions[1, 2] = bad
    with pytest.raises(BadGeometryError, match="atoms \\[1\\]"):
        atoms_to_graph(atoms, 4.0)


def test_singular_periodic_cell_is_rejected() -> None:
    atoms = Atoms(
        "H2", positions=[[0, 0, 0], [0.7, 0, 0]], cell=[[3, 0, 0], [3, 0, 0], [0, 0, 3]], pbc=True
    )
    with pytest.raises(BadGeometryError, match="singular"):
        atoms_to_graph(atoms, 4.0)
