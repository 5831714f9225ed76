"""The dipole moment of a batch's charges about each structure's centre of mass."""

from __future__ import annotations

import torch

from phicalc.graph.batch import AtomGraph
from phicalc.nn.scatter import scatter_sum


def dipole_about_com(
    charges: torch.Tensor, positions: torch.Tensor, graph: AtomGraph, masses_of_z: torch.Tensor
) -> torch.Tensor:
    """μ = Σ_i q_i (r_i − r_com), [n_graphs, 3] in e·Å (origin-independent for neutral systems).

    ``masses_of_z``: [n_Z] atomic mass of each atomic number (u), on the positions' device."""
    masses = masses_of_z.to(positions.dtype)[graph.numbers]
    total_mass = scatter_sum(masses, graph.batch, graph.n_graphs)
    com = scatter_sum(
        masses.unsqueeze(-1) * positions, graph.batch, graph.n_graphs
    ) / total_mass.unsqueeze(-1)
    return scatter_sum(
        charges.unsqueeze(-1) * (positions - com[graph.batch]), graph.batch, graph.n_graphs
    )
