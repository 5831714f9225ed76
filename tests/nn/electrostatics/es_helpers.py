"""Structures and a call wrapper for the Coulomb tests."""

from __future__ import annotations

import numpy as np
import torch

from phicalc.nn.electrostatics import Coulomb, CoulombConfig


def energy_of(
    config: CoulombConfig,
    charges: torch.Tensor,
    positions: torch.Tensor,
    cell: torch.Tensor | None = None,
) -> torch.Tensor:
    """Energy (eV, scalar) of one structure; periodic iff a cell is given."""
    n = len(positions)
    if cell is None:
        cell_b = torch.zeros(1, 3, 3)
        pbc = torch.zeros(1, 3, dtype=torch.bool)
    else:
        cell_b = cell[None]
        pbc = torch.ones(1, 3, dtype=torch.bool)
    batch = torch.zeros(n, dtype=torch.int64)
    return Coulomb(config)(charges, positions, cell_b, pbc, batch, 1).energy[0]


def rattled_nacl(seed: int = 0, triclinic: bool = False) -> tuple[torch.Tensor, ...]:
    """8-ion rock-salt cell (a = 5.64 Å), rattled by 0.1 Å; charges ±0.8 e (neutral)."""
    rng = np.random.default_rng(seed)
    a = 5.64
    frac = np.array(
        [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
        + [[0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
    )
    cell = np.eye(3) * a
    if triclinic:
        cell = np.array([[a, 0.0, 0.0], [1.1, 0.95 * a, 0.0], [-0.7, 0.9, 1.05 * a]])
    pos = frac @ cell + 0.1 * rng.standard_normal((8, 3))
    q = np.array([0.8] * 4 + [-0.8] * 4)
    return torch.tensor(q), torch.tensor(pos), torch.tensor(cell)


def water_cluster(n_side: int, spacing: float = 3.1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """n_side³ randomly oriented waters on a cubic grid; random charges ±0.4 e, neutral per water."""
    from ase.build import molecule
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    h2o = molecule("H2O").positions
    pos, q = [], []
    for ix in range(n_side):
        for iy in range(n_side):
            for iz in range(n_side):
                rot = Rotation.random(random_state=rng).as_matrix()
                pos.append(h2o @ rot.T + spacing * np.array([ix, iy, iz]))
                qh = rng.uniform(0.2, 0.4, size=2)
                q.append([-qh.sum(), *qh])
    return torch.tensor(np.concatenate(q)), torch.tensor(np.concatenate(pos))
