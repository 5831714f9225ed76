"""Neighbour lists from vesin-torch for open, mixed and fully periodic structures.

vesin is O(N) (cell list), handles cells smaller than twice the cutoff (several images of one
atom) and triclinic cells. The list is computed without gradients; edge vectors are rebuilt from
positions, cell and integer shifts by :func:`edge_vectors`, so autograd sees them.
"""

from __future__ import annotations

import torch

try:  # vesin >= 0.6 ships the module as ``vesin_torch``
    from vesin_torch import NeighborList as _VesinNeighborList
except ImportError:  # pragma: no cover - older releases
    from vesin.torch import NeighborList as _VesinNeighborList


def build_neighbor_list(
    positions: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    cutoff: float,
    *,
    full_list: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbour list of one structure.

    Args:
        positions: [n_atoms, 3] Cartesian positions in Å.
        cell: [3, 3] lattice vectors as rows in Å (ignored along non-periodic directions).
        pbc: [3] periodic flags.
        cutoff: radius in Å; pairs with distance < cutoff are listed.
        full_list: list both directions (i, j, S) and (j, i, −S) of every pair; ``False``: each
            pair once (half the edges, for symmetric pair sums).

    Returns:
        edge_index: [2, n_edges] int64 (i, j), both directions listed unless ``full_list`` is
            false.
        unit_shifts: [n_edges, 3] int64 lattice shifts so that
            r_ij = positions[j] - positions[i] + unit_shifts @ cell.
    """
    device = positions.device
    pos = positions.detach().to("cpu", torch.float64)
    pbc_cpu = pbc.detach().to("cpu", torch.bool)
    box = cell.detach().to("cpu", torch.float64).clone()
    # vesin needs a box only along periodic directions; zero it elsewhere.
    box[~pbc_cpu] = 0.0
    if len(pos) < 2 and not bool(pbc_cpu.any()):
        empty = torch.zeros((2, 0), dtype=torch.int64, device=device)
        return empty, torch.zeros((0, 3), dtype=torch.int64, device=device)
    calculator = _VesinNeighborList(cutoff=float(cutoff), full_list=full_list)
    i, j, shifts = calculator.compute(pos, box, pbc_cpu, "ijS")
    edge_index = torch.stack([i.to(torch.int64), j.to(torch.int64)]).to(device)
    return edge_index, shifts.to(torch.int64).to(device)


def edge_vectors(
    positions: torch.Tensor,
    cell: torch.Tensor,
    edge_index: torch.Tensor,
    unit_shifts: torch.Tensor,
    batch: torch.Tensor,
) -> torch.Tensor:
    """Differentiable edge vectors r_ij = r_j - r_i + S_ij · cell (Å), shape [n_edges, 3].

    Args:
        positions: [n_atoms, 3] in Å.
        cell: [n_graphs, 3, 3] rows are lattice vectors, Å.
        edge_index: [2, n_edges] (i, j).
        unit_shifts: [n_edges, 3] integer shifts.
        batch: [n_atoms] structure index of each atom.
    """
    i, j = edge_index
    shift = torch.einsum("ea,eab->eb", unit_shifts.to(positions.dtype), cell[batch[i]])
    return positions[j] - positions[i] + shift
