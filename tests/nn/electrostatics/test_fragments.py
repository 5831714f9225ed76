"""The covalent-molecule partition behind per-molecule charge equilibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from phicalc.nn.electrostatics import fragments


def scipy_components(bonds: np.ndarray, n_atoms: int) -> np.ndarray:
    adjacency = coo_matrix((np.ones(bonds.shape[1]), (bonds[0], bonds[1])), shape=(n_atoms,) * 2)
    return connected_components(adjacency, directed=False)[1]


@pytest.mark.parametrize("seed", range(5))
def test_union_find_and_scipy_give_the_same_molecules(seed: int, monkeypatch) -> None:
    """Small bond lists (union-find) and large ones (SciPy) number the same components the same
    way, in order of their first atom: isolated atoms, self-bonds (an atom and its image),
    repeated and reversed bonds, long chains."""
    rng = np.random.default_rng(seed)
    n_atoms = int(rng.integers(30, 200))
    bonds = rng.integers(0, n_atoms, size=(2, int(rng.integers(0, n_atoms))))
    chain = np.stack([np.arange(n_atoms // 2), np.arange(1, n_atoms // 2 + 1)])[:, ::-1]
    bonds = np.concatenate([bonds, chain, bonds[::-1], [[3], [3]]], axis=1)
    expected = scipy_components(bonds, n_atoms)
    assert bonds.shape[1] <= fragments.UNION_FIND_MAX_BONDS
    small = fragments.molecules_of_bonds(bonds, n_atoms)
    monkeypatch.setattr(fragments, "UNION_FIND_MAX_BONDS", -1)
    large = fragments.molecules_of_bonds(bonds, n_atoms)
    assert small.dtype == large.dtype == np.int64
    np.testing.assert_array_equal(small, expected)
    np.testing.assert_array_equal(large, expected)
    first_atoms = [int(np.flatnonzero(small == label)[0]) for label in range(small.max() + 1)]
    assert first_atoms == sorted(first_atoms)


def test_no_bonds_and_no_atoms() -> None:
    empty = np.zeros((2, 0), dtype=np.int64)
    np.testing.assert_array_equal(fragments.molecules_of_bonds(empty, 4), [0, 1, 2, 3])
    assert fragments.molecules_of_bonds(empty, 0).shape == (0,)
