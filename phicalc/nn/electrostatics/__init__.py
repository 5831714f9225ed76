"""Electrostatics: damped Coulomb energy (direct, DSF, Ewald/PME via torch-pme), charge
equilibration and a total-charge/spin embedding."""

from __future__ import annotations

import torch

from phicalc.nn.electrostatics.coulomb import (
    METHODS,
    Coulomb,
    CoulombConfig,
    CoulombOutput,
    direct_potentials,
    dsf_potentials,
)
from phicalc.nn.electrostatics.embedding import ChargeSpinEmbedding
from phicalc.nn.electrostatics.equilibration import ChargeEquilibration, equilibrate
from phicalc.nn.electrostatics.kernels import COULOMB_CONSTANT
from phicalc.nn.electrostatics.periodic import periodic_potentials
from phicalc.nn.scatter import scatter_sum


def dipole(
    charges: torch.Tensor, positions: torch.Tensor, batch: torch.Tensor, n_graphs: int
) -> torch.Tensor:
    """Dipole moments μ_g = Σ_{i∈g} q_i r_i in e·Å, shape [n_graphs, 3].

    Origin-independent only for neutral structures; meaningful for open structures only.
    """
    return scatter_sum(charges[:, None] * positions, batch, n_graphs)


__all__ = [
    "COULOMB_CONSTANT",
    "METHODS",
    "ChargeEquilibration",
    "ChargeSpinEmbedding",
    "Coulomb",
    "CoulombConfig",
    "CoulombOutput",
    "dipole",
    "direct_potentials",
    "dsf_potentials",
    "equilibrate",
    "periodic_potentials",
]
