"""Electrostatics: damped Coulomb energy (direct, DSF, Ewald/PME via torch-pme), charge
equilibration and a total-charge/spin embedding."""

from __future__ import annotations

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

__all__ = [
    "COULOMB_CONSTANT",
    "METHODS",
    "ChargeEquilibration",
    "ChargeSpinEmbedding",
    "Coulomb",
    "CoulombConfig",
    "CoulombOutput",
    "direct_potentials",
    "dsf_potentials",
    "equilibrate",
    "periodic_potentials",
]
