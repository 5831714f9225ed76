from __future__ import annotations

import numpy as np
import pytest

from phicalc.data.splits import (
    MD22_BUDGETS,
    derive_seed,
    hash_fraction,
    md22_split,
    oe62_split_sizes,
    split_by_hash,
    split_ordered,
)


def test_oe62_sizes_exact_for_release_table():
    assert oe62_split_sizes(61_489) == (50_000, 6_000, 5_489)


@pytest.mark.parametrize("n", [0, 1, 10, 40, 1000, 12_345])
def test_oe62_sizes_proportional(n):
    n_train, n_val, n_test = oe62_split_sizes(n)
    assert n_train + n_val + n_test == n
    assert min(n_train, n_val, n_test) >= 0
    assert abs(n_train - n * 50_000 / 61_489) <= 0.5
    assert abs(n_val - n * 6_000 / 61_489) <= 0.5 or n_val == n - n_train


def test_split_ordered_blocks():
    parts = split_ordered([5, 3, 1, 0, 2, 4], (3, 2))
    assert parts["train"].tolist() == [5, 3, 1]
    assert parts["val"].tolist() == [0, 2]
    assert parts["test"].tolist() == [4]
    with pytest.raises(ValueError):
        split_ordered([0, 1], (2, 1))


def test_md22_split_sizes_disjoint_deterministic():
    parts = md22_split(1000, 200, seed=3)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [190, 10, 800]
    union = np.concatenate(list(parts.values()))
    assert sorted(union.tolist()) == list(range(1000))
    again = md22_split(1000, 200, seed=3)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    other = md22_split(1000, 200, seed=4)
    assert not np.array_equal(parts["train"], other["train"])
    for k in parts:
        assert np.all(np.diff(parts[k]) > 0)  # sorted, time order


def test_md22_standard_budgets():
    assert MD22_BUDGETS["Ac-Ala3-NHMe"] == 6000
    assert MD22_BUDGETS["buckyball-catcher"] == 600
    parts = md22_split(85_109, MD22_BUDGETS["Ac-Ala3-NHMe"], seed=0)
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (5700, 300, 79_109)
    with pytest.raises(ValueError):
        md22_split(10, 11)


def test_hash_split_is_stable_under_list_changes():
    items = [f"mol{i}" for i in range(400)]
    kept, held = split_by_hash(items, heldout_fraction=0.1, salt="s")
    assert set(kept).isdisjoint(held) and len(kept) + len(held) == 400
    assert 20 <= len(held) <= 60
    kept2, held2 = split_by_hash(items[::-1][:200], heldout_fraction=0.1, salt="s")
    assert set(held2) == set(held) & set(items[::-1][:200])
    assert 0.0 <= hash_fraction("x", salt="a") < 1.0
    assert hash_fraction("x", salt="a") != hash_fraction("x", salt="b")


def test_derive_seed():
    assert derive_seed(0, "md", "CCO", 300.0) == derive_seed(0, "md", "CCO", 300.0)
    assert derive_seed(0, "md", "CCO", 300.0) != derive_seed(1, "md", "CCO", 300.0)
    assert 0 <= derive_seed(7, "x") < 2**63
