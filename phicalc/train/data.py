"""Training data of a :class:`~phicalc.train.config.DataSection`: records per split, via phicalc.data.

* "extxyz": :func:`phicalc.data.read_structures` on ``train`` / ``val`` / ``test``. Without a
  ``val`` file, ``val_fraction`` of the training file is held out: single frames by a seeded
  permutation, or whole groups (``val_group``, e.g. the molecule) by a salted hash.
* "oe62": :func:`phicalc.data.load_oe62` (standard split; the table is read once).
* "md22": :func:`phicalc.data.load_md22` per split (budget split 95 / 5, the rest test).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms

from phicalc.data.datasets import records_fingerprint
from phicalc.errors import ConfigError, DatasetError
from phicalc.train.config import DataSection

logger = logging.getLogger(__name__)


class TrainingData:
    """Records of the train / val / test splits of a data section, loaded on first use.

    Args:
        section: the data section.
    """

    def __init__(self, section: DataSection) -> None:
        self.section = section
        self._splits: dict[str, list[Atoms] | None] = {}

    def split(self, name: str) -> list[Atoms] | None:
        """Records of "train", "val" or "test" (None: no test split), capped by ``max_*``."""
        if name not in self._splits:
            self._load(name)
        return self._splits[name]

    def _cap(self, name: str, records: list[Atoms] | None) -> list[Atoms] | None:
        limit = getattr(self.section, f"max_{name}")
        if records is not None and limit is not None:
            records = records[:limit]
        if name in ("train", "val") and not records:
            raise DatasetError(f"the {name} split is empty")
        return records

    def _load(self, name: str) -> None:
        s = self.section
        if s.format == "oe62":
            from phicalc.data import load_oe62

            records = load_oe62(s.path, None, linear_reference=s.linear_reference)
            for part in ("train", "val", "test"):
                chosen = [r for r in records if r.info.get("split") == part]
                self._splits[part] = self._cap(part, chosen if chosen or part != "test" else None)
        elif s.format == "md22":
            from phicalc.data import load_md22

            self._splits[name] = self._cap(
                name, load_md22(s.path, name, seed=s.seed, budget=s.budget) or None
            )
        elif name == "test":
            self._splits["test"] = self._cap("test", self._read("test") or None)
        else:
            self._load_extxyz_train_val()

    def _read(self, name: str) -> list[Atoms]:
        from phicalc.data import read_structures

        records: list[Atoms] = []
        for path in self.section.split_files(name):
            records.extend(read_structures(path, require_labels=True))
        return records

    def _load_extxyz_train_val(self) -> None:
        s = self.section
        train = self._read("train")
        if s.val:
            val = self._read("val")
        else:
            train, val = hold_out(train, s.val_fraction, seed=s.seed, group=s.val_group)
            logger.info(
                "held out %d of %d structures of %s for validation%s",
                len(val),
                len(train) + len(val),
                s.train,
                f" (by {s.val_group!r})" if s.val_group else "",
            )
        self._splits["train"] = self._cap("train", train)
        self._splits["val"] = self._cap("val", val)

    def describe(self) -> dict[str, Any]:
        """Provenance for model metadata: format, files, split options, sizes, fingerprint."""
        s = self.section
        out: dict[str, Any] = {"format": s.format}
        if s.format == "extxyz":
            out.update({k: s.split_files(k) for k in ("train", "val", "test")})
            if not s.val:
                out.update(val_fraction=s.val_fraction, val_group=s.val_group, seed=s.seed)
        else:
            out["path"] = s.path
            if s.format == "md22":
                out.update(seed=s.seed, budget=s.budget)
            else:
                out["linear_reference"] = s.linear_reference
        for name in ("train", "val"):
            out[f"n_{name}"] = len(self.split(name))
        out["fingerprint"] = records_fingerprint(self.split("train") + self.split("val"))
        return out


def hold_out(
    records: Sequence[Atoms], fraction: float, *, seed: int, group: str | None = None
) -> tuple[list[Atoms], list[Atoms]]:
    """Split records into (train, val) keeping the file order inside each part.

    Args:
        records: labelled structures.
        fraction: share held out (at least one structure, at least one kept).
        seed: permutation seed (frames) or hash salt (groups).
        group: ``atoms.info`` key whose value is held out as a whole, by
            :func:`phicalc.data.split_by_hash`.

    Raises:
        ConfigError: fewer than two structures or groups, or a record without the group key.
    """
    n = len(records)
    if group is None:
        if n < 2:
            raise ConfigError(f"cannot hold out validation structures from {n} structure(s)")
        n_val = min(n - 1, max(1, int(round(fraction * n))))
        order = np.random.default_rng(seed).permutation(n)
        held = set(order[:n_val].tolist())
    else:
        from phicalc.data import split_by_hash

        missing = [i for i, r in enumerate(records) if group not in r.info]
        if missing:
            raise ConfigError(
                f"data.val_group={group!r}: structure {missing[0]} has no such info key"
            )
        values = sorted({str(r.info[group]) for r in records})
        if len(values) < 2:
            raise ConfigError(f"data.val_group={group!r}: need >= 2 groups, found {values}")
        _, held_values = split_by_hash(
            values, heldout_fraction=fraction, salt=f"phicalc-validation-{seed}"
        )
        if not held_values or len(held_values) == len(values):
            raise ConfigError(
                f"data.val_group={group!r}: val_fraction={fraction} holds out "
                f"{len(held_values)} of {len(values)} groups; change val_fraction or use a val file"
            )
        chosen = set(held_values)
        held = {i for i, r in enumerate(records) if str(r.info[group]) in chosen}
    train = [r for i, r in enumerate(records) if i not in held]
    val = [r for i, r in enumerate(records) if i in held]
    return train, val
