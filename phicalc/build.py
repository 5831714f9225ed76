"""Build an untrained :class:`~phicalc.potential.Potential` from keyword options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from phicalc.config import optional_options
from phicalc.potential import Potential
from phicalc.potential_config import PotentialConfig


def build_model(
    backbone: str = "painn",
    phi: bool | dict[str, Any] = True,
    elements: Sequence[str] = ("H", "C", "N", "O"),
    cutoff: float = 5.0,
    *,
    readout_hidden: int = 32,
    charge_spin: bool = False,
    charge_equilibration: bool = False,
    coulomb: bool | dict[str, Any] = False,
    charge_input: str = "global",
    charge_state_energy: bool = False,
    equilibration_scope: str = "structure",
    pair_repulsion: bool = False,
    seed: int | None = None,
    **hyperparameters: Any,
) -> Potential:
    """Build an untrained Potential.

    Args:
        backbone: "painn", "schnet", "erwin" or "clifford".
        phi: True for the default Φ-Module, False for none, or a dict of :class:`PhiConfig`
            options (e.g. ``{"method": "eigenbasis", "num_modes": 5}``).
        elements: chemical symbols the model supports.
        cutoff: radius in Å.
        readout_hidden: hidden width of the energy readout.
        charge_spin: total charge and spin multiplicity as inputs of the atom features.
        charge_equilibration: equilibrated charges (learned χ, J; Σq = Q) as the charges' zero
            mode instead of Q/n.
        coulomb: True for the default Coulomb term on the charges, False for none, or a dict
            of :class:`~phicalc.nn.electrostatics.CoulombConfig` options (e.g. ``{"sigma": 1.0}``).
            Needs charges: a Φ-Module or ``charge_equilibration``.
        charge_input, charge_state_energy, equilibration_scope, pair_repulsion: as in
            :class:`PotentialConfig`.
        seed for the initial weights (None: torch's current RNG).
        **hyperparameters: options of the backbone's config (e.g. ``num_features=64``).

    Example:
        >>> model = build_model("painn", phi=True, elements=["H", "O"], cutoff=4.0, num_features=8)
        >>> model.elements
        ['H', 'O']
    """
    config = PotentialConfig(
        backbone=backbone,
        elements=tuple(elements),
        cutoff=float(cutoff),
        backbone_config=dict(hyperparameters),
        phi=optional_options("phi", phi, "PhiConfig"),
        readout_hidden=readout_hidden,
        charge_spin=bool(charge_spin),
        charge_equilibration=bool(charge_equilibration),
        coulomb=optional_options("coulomb", coulomb, "CoulombConfig"),
        charge_input=charge_input,
        charge_state_energy=bool(charge_state_energy),
        equilibration_scope=equilibration_scope,
        pair_repulsion=bool(pair_repulsion),
    )
    if seed is None:
        return Potential(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Potential(config)
