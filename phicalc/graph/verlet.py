"""Verlet neighbour lists: one list with cutoff + skin, reused while no atom moved skin/2.

A :class:`NeighborCache` belongs to its caller (a calculator, an MD run); the model keeps no
per-call state. :func:`cached_neighbor_list` builds the candidate list with
:func:`~phicalc.graph.neighbors.build_neighbor_list` at ``cutoff + skin`` and, on every call,
keeps the candidates whose current distance is below ``cutoff``. While every atom has moved
less than ``skin``/2 Å since the build (same numbers, cell and pbc), any pair now closer than
``cutoff`` was closer than ``cutoff + skin`` at the build, so the kept edges are exactly the
pairs of a fresh list.

Edge order: the candidates are sorted once per build by (i, j, shift), and the filter keeps
that order, so the edges of a call are the fresh list's pairs in one canonical order, whatever
call built the candidates. Results are therefore a function of the current structure alone
(bit-identical whether the list was built now or steps ago); against a fresh vesin list they
differ only in summation order (≲ 1e-12 relative in float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from phicalc.errors import ConfigError
from phicalc.graph.neighbors import build_neighbor_list


@dataclass
class NeighborCache:
    """The candidate list kept by one caller and the skin (Å, ≥ 0, finite) that governs it.

    Attributes:
        skin: Verlet skin in Å; candidates are listed to ``cutoff + skin``.
        builds: how many candidate lists were built (a counter for tests and benchmarks).
    """

    skin: float
    builds: int = 0
    _key: tuple | None = field(default=None, repr=False)
    _positions: np.ndarray | None = field(default=None, repr=False)
    _edge_index: torch.Tensor | None = field(default=None, repr=False)
    _unit_shifts: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.skin = float(self.skin)
        if not math.isfinite(self.skin) or self.skin < 0:
            raise ConfigError(f"neighbor_skin must be a finite number >= 0 Å, got {self.skin!r}")

    def clear(self) -> None:
        """Drop the kept candidates: the next call builds a new list."""
        self._key = self._positions = self._edge_index = self._unit_shifts = None

    def _valid(self, key: tuple, positions: np.ndarray) -> bool:
        if self._key != key or self._positions is None or self._positions.shape != positions.shape:
            return False
        if positions.size == 0:
            return True
        moved = np.sqrt(((positions - self._positions) ** 2).sum(-1))
        return float(moved.max()) < 0.5 * self.skin


def _canonical_order(edge_index: torch.Tensor, unit_shifts: torch.Tensor) -> torch.Tensor:
    """Permutation sorting edges by (i, j, shift_x, shift_y, shift_z), shape [n_edges]."""
    i, j = edge_index.numpy()
    s = unit_shifts.numpy()
    return torch.from_numpy(np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i)))


def cached_neighbor_list(
    cache: NeighborCache,
    positions: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    cutoff: float,
    numbers: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Full neighbour list of one structure (pairs with r < cutoff), through ``cache``.

    Args:
        cache: the caller's :class:`NeighborCache`; updated when the candidates are rebuilt.
        positions: [n_atoms, 3] Cartesian positions in Å (on the CPU).
        cell: [3, 3] lattice rows in Å.
        pbc: [3] periodic flags.
        cutoff: radius in Å.
        numbers: [n_atoms] atomic numbers (part of what identifies the structure).

    Returns:
        edge_index [2, n_edges] int64 and unit_shifts [n_edges, 3] int64 with the conventions of
        :func:`~phicalc.graph.neighbors.build_neighbor_list`, sorted by (i, j, shift).
    """
    # NumPy on the host: this runs every MD step, on arrays too small for torch's op overhead
    pos = positions.detach().to("cpu", torch.float64).numpy()
    box = cell.detach().to("cpu", torch.float64).numpy()
    flags = pbc.detach().to("cpu", torch.bool).numpy()
    key = (numbers.detach().cpu().numpy().tobytes(), box.tobytes(), flags.tobytes(), float(cutoff))
    if not cache._valid(key, pos):
        edge_index, unit_shifts = build_neighbor_list(
            torch.from_numpy(pos),
            torch.from_numpy(box),
            torch.from_numpy(flags),
            cutoff + cache.skin,
        )
        order = _canonical_order(edge_index, unit_shifts)
        cache._edge_index = edge_index[:, order].contiguous()
        cache._unit_shifts = unit_shifts[order].contiguous()
        cache._key = key
        cache._positions = pos.copy()
        cache.builds += 1
    edge_index, unit_shifts = cache._edge_index, cache._unit_shifts
    i, j = edge_index.numpy()
    vectors = pos[j] - pos[i]
    if flags.any():
        periodic_box = np.where(flags[:, None], box, 0.0)
        vectors += unit_shifts.numpy().astype(np.float64) @ periodic_box
    keep = torch.from_numpy((vectors * vectors).sum(-1) < cutoff * cutoff)
    return edge_index[:, keep], unit_shifts[keep]
