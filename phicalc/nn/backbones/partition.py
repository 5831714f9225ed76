"""A spatial partition kept between calls, owned by the caller (a calculator, an MD run).

Backbones whose energy depends on a discrete, position-dependent choice (Erwin's ball tree) take
a :class:`PartitionCache` through :class:`~phicalc.nn.backbones.base.Geometry`. The module itself
keeps no per-call state, so one Potential can serve several calculators at once.

``skin`` has one meaning everywhere: a partition is reused until an atom has moved more than
``skin``/2 Å since it was built (for the same atoms: numbers, batch layout and which structures
are partitioned); ``float("inf")`` keeps it for good, so E is one smooth function of the
positions along an MD run. No cache (``None``) means a fresh partition every call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from phicalc.errors import ConfigError


@dataclass
class PartitionCache:
    """The partition kept by one caller and the skin (Å, ≥ 0 or ``inf``) that governs it."""

    skin: float
    _key: tuple[torch.Tensor, ...] | None = field(default=None, repr=False)
    _positions: torch.Tensor | None = field(default=None, repr=False)
    _partition: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.skin = float(self.skin)
        if math.isnan(self.skin) or self.skin < 0:
            raise ConfigError(f"partition_skin must be >= 0 Å (or inf), got {self.skin!r}")

    @property
    def partition(self) -> Any:
        """The kept partition (``None`` before the first call or after :meth:`clear`)."""
        return self._partition

    @property
    def built_from(self) -> torch.Tensor | None:
        """[n_atoms, 3] positions (Å) the kept partition was built from (``None`` if none):
        what a restart needs to rebuild the very same partition."""
        return None if self._partition is None else self._positions

    def clear(self) -> None:
        """Drop the kept partition: the next call builds a new one."""
        self._key = self._positions = self._partition = None

    def lookup(self, key: tuple[torch.Tensor, ...], positions: torch.Tensor) -> Any:
        """The kept partition if it was built for ``key`` and no atom has moved ≥ skin/2 Å since;
        else ``None``. ``key``: tensors that identify the atoms (numbers, batch, ...)."""
        if self._partition is None or self._key is None or len(key) != len(self._key):
            return None
        for kept, new in zip(self._key, key):
            if kept.shape != new.shape or not torch.equal(kept, new):
                return None
        if positions.shape != self._positions.shape:
            return None
        if positions.numel() == 0:
            return self._partition
        moved = torch.linalg.norm(positions - self._positions, dim=-1)
        return self._partition if float(moved.max()) < 0.5 * self.skin else None

    def store(self, key: tuple[torch.Tensor, ...], positions: torch.Tensor, partition: Any) -> None:
        """Keep ``partition``, built from ``positions`` [n_atoms, 3] (Å) for ``key``."""
        self._key = tuple(tensor.detach().clone() for tensor in key)
        self._positions = positions.detach().clone()
        self._partition = partition
