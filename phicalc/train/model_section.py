"""The ``model`` section of a training config: the arguments of
:func:`phicalc.build.build_model` plus E0 and σ, validated without building weights."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from phicalc.config import check_choice, check_int_at_least, check_positive, config_from_dict
from phicalc.errors import ConfigError
from phicalc.potential_config import EQUILIBRATION_SCOPES

ENERGY_SCALES = ("auto", "residual_std", "residual_rms", "force_rms")
ATOMIC_ENERGIES = ("fit", "zero")


@dataclass(frozen=True)
class ModelSection:
    """The model to train; all but the last two keys are :func:`build_model` arguments.

    Args:
        backbone: registered backbone name ("schnet", "painn", ...).
        phi: False for no Φ-Module, True for the default one, or a dict of PhiConfig options.
        elements: chemical symbols the model supports; None takes those of the training and
            validation data (sorted by atomic number).
        cutoff: neighbour-list radius in Å.
        readout_hidden: hidden width of the energy readout.
        charge_spin: total charge and spin multiplicity as inputs (``atoms.info``).
        charge_equilibration: equilibrated charges as the charges' zero mode.
        coulomb: False, True or a dict of CoulombConfig options (needs phi or
            charge_equilibration).
        charge_input: "global" or "equilibrated" (how the total charge reaches the atoms,
            :class:`~phicalc.potential.PotentialConfig`).
        charge_state_energy: add the equilibration energy Σ (χ_i + μ) q⁰_i + ½ J_i q⁰_i² (needs
            charge_equilibration); μ starts from the least-squares slope of the training
            energies (after E0) on the total charge.
        equilibration_scope: "structure" or "molecule" (integer charges per molecule, charge
            transfer between neighbours, :class:`~phicalc.potential.PotentialConfig`).
        pair_repulsion: add the screened nuclear repulsion at short range (ZBL, no parameters;
            :class:`~phicalc.potential.PotentialConfig`).
        backbone_config: options of the backbone's config dataclass (e.g. ``num_features``).
        atomic_energies: per-element reference energies E0 (eV): "fit" (least squares of the
            training energies on the element counts), "zero", or a ``{symbol: eV}`` dict.
        energy_scale: σ (eV) of the learned per-atom energy: "auto" (``force_rms`` when the
            force loss is on, else ``residual_std``), "residual_std" / "residual_rms" (of the
            per-atom energy left after E0), "force_rms" (RMS force component, eV/Å × 1 Å), or a
            number in eV.
    """

    backbone: str = "painn"
    phi: bool | dict[str, Any] = False
    elements: tuple[str, ...] | None = None
    cutoff: float = 5.0
    readout_hidden: int = 32
    charge_spin: bool = False
    charge_equilibration: bool = False
    coulomb: bool | dict[str, Any] = False
    charge_input: str = "global"
    charge_state_energy: bool = False
    equilibration_scope: str = "structure"
    pair_repulsion: bool = False
    backbone_config: dict[str, Any] = field(default_factory=dict)
    atomic_energies: str | dict[str, float] = "fit"
    energy_scale: str | float = "auto"

    def __post_init__(self) -> None:
        if self.elements is not None:
            object.__setattr__(self, "elements", tuple(self.elements))
        check_positive("model.cutoff", self.cutoff)
        check_int_at_least("model.readout_hidden", self.readout_hidden, 1)
        for name in ("phi", "coulomb"):
            if not isinstance(getattr(self, name), (bool, dict)):
                raise ConfigError(
                    f"model.{name} must be true, false or a mapping, got {getattr(self, name)!r}"
                )
        for name in (
            "charge_spin",
            "charge_equilibration",
            "charge_state_energy",
            "pair_repulsion",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"model.{name} must be true or false, got {getattr(self, name)!r}"
                )
        if self.coulomb is not False and self.phi is False and not self.charge_equilibration:
            raise ConfigError("model.coulomb needs charges: set model.phi or charge_equilibration")
        if self.charge_state_energy and not self.charge_equilibration:
            raise ConfigError("model.charge_state_energy needs model.charge_equilibration: true")
        check_choice("model.equilibration_scope", self.equilibration_scope, EQUILIBRATION_SCOPES)
        if self.equilibration_scope == "molecule" and not self.charge_equilibration:
            raise ConfigError(
                "model.equilibration_scope: molecule needs model.charge_equilibration: true"
            )
        if isinstance(self.atomic_energies, str):
            check_choice("model.atomic_energies", self.atomic_energies, ATOMIC_ENERGIES)
        elif not isinstance(self.atomic_energies, dict):
            raise ConfigError(
                f"model.atomic_energies must be 'fit', 'zero' or a mapping, got "
                f"{self.atomic_energies!r}"
            )
        if isinstance(self.energy_scale, str):
            check_choice("model.energy_scale", self.energy_scale, ENERGY_SCALES)
        elif isinstance(self.energy_scale, bool) or not (
            isinstance(self.energy_scale, (int, float)) and 0 < self.energy_scale < math.inf
        ):
            raise ConfigError(
                f"model.energy_scale must be one of {list(ENERGY_SCALES)} or a positive number "
                f"in eV, got {self.energy_scale!r}"
            )
        self.check_architecture()

    def check_architecture(self) -> None:
        """Validate backbone name and options and Φ options without building any weights."""
        from phicalc.nn.backbones import backbone_classes
        from phicalc.nn.electrostatics import CoulombConfig
        from phicalc.nn.phi import PhiConfig

        config_cls, _ = backbone_classes(self.backbone)
        config_from_dict(config_cls, self.backbone_config)
        if isinstance(self.phi, dict):
            config_from_dict(PhiConfig, self.phi)
        if isinstance(self.coulomb, dict):
            config_from_dict(CoulombConfig, self.coulomb)

    def build_kwargs(self, elements: tuple[str, ...]) -> dict[str, Any]:
        """Arguments of :func:`phicalc.build.build_model` for the given elements."""
        return {
            "backbone": self.backbone,
            "phi": dict(self.phi) if isinstance(self.phi, dict) else self.phi,
            "elements": list(elements),
            "cutoff": float(self.cutoff),
            "readout_hidden": self.readout_hidden,
            "charge_spin": self.charge_spin,
            "charge_equilibration": self.charge_equilibration,
            "coulomb": dict(self.coulomb) if isinstance(self.coulomb, dict) else self.coulomb,
            "charge_input": self.charge_input,
            "charge_state_energy": self.charge_state_energy,
            "equilibration_scope": self.equilibration_scope,
            "pair_repulsion": self.pair_repulsion,
            **self.backbone_config,
        }
