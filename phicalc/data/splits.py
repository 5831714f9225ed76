"""Train / validation / test splits as pure functions on indices (and on strings, by hash).

Nothing here reads files or touches global random state: every split is a function of its
arguments (sizes, seed), so the same call always gives the same indices.

* OE62 (:func:`oe62_split_sizes`): 50,000 / 6,000 / rest of the 61,489 molecules, after the
  pandas shuffle ``df.sample(frac=1, random_state=42)`` done by :mod:`phicalc.data.oe62`.
* MD22 (:func:`md22_split`): a per-molecule training budget, 95 % train / 5 % validation, every
  other frame test, from a seeded permutation.
* Held-out molecules (:func:`hash_fraction`, :func:`split_by_hash`): a string goes to the held-out
  set when a salted SHA-256 of it falls below the fraction, so the assignment of one molecule never
  depends on which other molecules are in the list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Size of the released OE62 table (``df_62k.json``) and of its standard train / val splits.
OE62_N_TOTAL: int = 61_489
OE62_N_TRAIN: int = 50_000
OE62_N_VAL: int = 6_000

#: MD22 training budgets (train + validation frames) per molecule, keyed by canonical name.
MD22_BUDGETS: dict[str, int] = {
    "Ac-Ala3-NHMe": 6000,
    "DHA": 8000,
    "stachyose": 8000,
    "AT-AT": 3000,
    "AT-AT-CG-CG": 2000,
    "buckyball-catcher": 600,
    "double-walled_nanotube": 800,
}
#: Fraction of an MD22 budget used for training; the rest of the budget is validation.
MD22_TRAIN_FRACTION: float = 0.95


def check_split(split: str | None) -> None:
    """Raise ``ValueError`` unless ``split`` is ``None``, ``"train"``, ``"val"`` or ``"test"``."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be None or one of {SPLITS}, got {split!r}")


def oe62_split_sizes(n_total: int) -> tuple[int, int, int]:
    """Sizes (train, val, test) of the OE62 split for a table of ``n_total`` molecules.

    For the released table (61,489 rows) this is exactly 50,000 / 6,000 / 5,489. Tables of another
    size (subsets, test files) keep the same fractions, 50000/61489 and 6000/61489, rounded half up
    in integer arithmetic; the test split takes the remainder.

    Args:
        n_total: number of molecules.

    Returns:
        ``(n_train, n_val, n_test)``, summing to ``n_total``.
    """
    if n_total < 0:
        raise ValueError(f"n_total must be >= 0, got {n_total}")
    n_train = (n_total * OE62_N_TRAIN * 2 + OE62_N_TOTAL) // (2 * OE62_N_TOTAL)
    n_val = (n_total * OE62_N_VAL * 2 + OE62_N_TOTAL) // (2 * OE62_N_TOTAL)
    n_val = min(n_val, n_total - n_train)
    return n_train, n_val, n_total - n_train - n_val


def split_ordered(order: Sequence[int] | np.ndarray, sizes: Sequence[int]) -> dict[str, np.ndarray]:
    """Cut an already shuffled index order into consecutive train / val / test blocks.

    Args:
        order: [n] shuffled indices.
        sizes: ``(n_train, n_val)`` or ``(n_train, n_val, n_test)``; without ``n_test`` the test
            block is everything after train and val.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, int64 arrays in the order given.
    """
    order = np.asarray(order, dtype=np.int64)
    if len(sizes) not in (2, 3) or any(s < 0 for s in sizes):
        raise ValueError(f"sizes must be 2 or 3 non-negative ints, got {tuple(sizes)}")
    n_train, n_val = int(sizes[0]), int(sizes[1])
    end = len(order) if len(sizes) == 2 else n_train + n_val + int(sizes[2])
    if n_train + n_val > len(order) or end > len(order):
        raise ValueError(f"split sizes {tuple(sizes)} exceed the {len(order)} available indices")
    return {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val : end],
    }


def md22_budget(molecule: str) -> int:
    """Training budget (train + val frames) of an MD22 molecule, by canonical name.

    Raises:
        KeyError: for a name that is not one of :data:`MD22_BUDGETS`.
    """
    return MD22_BUDGETS[molecule]


def md22_split(
    n_frames: int,
    budget: int,
    *,
    seed: int = 0,
    train_fraction: float = MD22_TRAIN_FRACTION,
) -> dict[str, np.ndarray]:
    """MD22 split of ``n_frames`` frames: ``budget`` frames for train + val, the rest test.

    A permutation of ``range(n_frames)`` from ``numpy.random.default_rng(seed)``; its first
    ``round(train_fraction * budget)`` entries are train, the rest of the first ``budget`` are
    validation, everything else is test. Each block is returned sorted (time order).

    Args:
        n_frames: number of frames in the trajectory.
        budget: train + validation frames (e.g. 6000 for Ac-Ala3-NHMe).
        seed: permutation seed.
        train_fraction: share of the budget used for training (default 0.95).

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, sorted int64 arrays, disjoint, covering
        ``range(n_frames)``.
    """
    if not 0 < budget <= n_frames:
        raise ValueError(f"budget must be in [1, n_frames={n_frames}], got {budget}")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
    n_train = int(np.floor(train_fraction * budget + 0.5))
    order = np.random.default_rng(seed).permutation(n_frames)
    parts = split_ordered(order, (n_train, budget - n_train))
    return {name: np.sort(idx) for name, idx in parts.items()}


def hash_fraction(text: str, *, salt: str = "") -> float:
    """A number in [0, 1) fixed by ``salt`` and ``text`` (first 8 bytes of SHA-256)."""
    digest = hashlib.sha256(f"{salt}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_by_hash(
    items: Iterable[str], *, heldout_fraction: float, salt: str
) -> tuple[list[str], list[str]]:
    """Split strings into (kept, held out) by :func:`hash_fraction`; order is preserved.

    An item is held out when ``hash_fraction(item, salt=salt) < heldout_fraction``. Adding or
    removing other items never moves an item between the two sets.
    """
    if not 0.0 <= heldout_fraction <= 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1], got {heldout_fraction}")
    kept: list[str] = []
    heldout: list[str] = []
    for item in items:
        (heldout if hash_fraction(item, salt=salt) < heldout_fraction else kept).append(item)
    return kept, heldout


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed derived from ``seed`` and ``keys`` (their ``repr``), stable across runs.

    Used to give each (molecule, temperature) job its own random stream that does not change
    when other jobs are added, removed or reordered.
    """
    text = repr((int(seed), *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
