"""PotentialConfig: everything needed to rebuild a :class:`~phicalc.potential.Potential`
(stored in model files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phicalc.config import config_from_dict, config_to_dict

#: Values of :attr:`PotentialConfig.charge_input`.
CHARGE_INPUTS = ("global", "equilibrated")
#: Values of :attr:`PotentialConfig.equilibration_scope`.
EQUILIBRATION_SCOPES = ("structure", "molecule")


@dataclass(frozen=True)
class PotentialConfig:
    """Everything needed to rebuild a Potential (stored in model files).

    Args:
        backbone: registered backbone name ("schnet", "painn", "erwin", "clifford").
        elements: chemical symbols the model knows, in embedding order.
        cutoff: neighbour-list radius in Å.
        backbone_config: options of the backbone's config dataclass.
        phi: options of :class:`PhiConfig`, or None for no Φ-Module.
        readout_hidden: hidden width of the per-atom energy MLP (and the charge heads).
        charge_spin: total charge and spin multiplicity are inputs of every atom's features;
            without it a structure with Q ≠ 0 or M ≠ 1 is refused.
        charge_equilibration: charges q⁰ from learned electronegativity and hardness with
            Σq⁰ = Q per structure (the Φ charges' zero mode), instead of Q/n.
        coulomb: options of :class:`~phicalc.nn.electrostatics.CoulombConfig` for the physical
            Coulomb energy on the charges, or None for none.
        charge_input: how the total charge Q reaches the atoms. ``"global"``: Q enters every
            atom's initial features and Q/n the Φ source heads. ``"equilibrated"``: only through
            the equilibrated charges q⁰ (Σq⁰ = Q): the backbone sees no Q (spin still enters),
            the Φ heads read q⁰_i, and q⁰_i·a[Z] + q⁰_i²·b[Z] is added to the features the
            energy is read from, so a fragment's energy depends on its own charges (needs
            ``charge_spin`` and ``charge_equilibration``). Same parameters either way.
        charge_state_energy: add the equilibration energy E_Q = Σ_i (χ_i + μ) q⁰_i + ½ J_i q⁰_i²
            (eV; χ in V and J in V/e from the equilibration heads, μ a learned offset in V,
            parameter ``charge_potential``; per molecule, plus the transfer's cost ½ s μᵀ L_w μ).
            Its sum over a fragment depends only on that fragment's atoms and charges, so the
            energy of a charge state is owned by the fragment that carries it (needs
            ``charge_equilibration``).
        equilibration_scope: where the charge equilibration balances electronegativity:
            ``"structure"`` (one level per structure; a fraction of an ion's charge leaks to
            molecules beyond the cutoff) or ``"molecule"`` (each covalent molecule at an
            integer charge, plus smooth charge transfer between neighbours within the cutoff:
            :mod:`~phicalc.nn.electrostatics.fragments`; parameter ``raw_transfer_strength``).
        pair_repulsion: add the screened nuclear repulsion (ZBL) of pairs closer than 0.8 × their
            covalent radii, a wall at short range that needs no data
            (:class:`~phicalc.nn.repulsion.NuclearRepulsion`; no parameters).
    """

    backbone: str
    elements: tuple[str, ...]
    cutoff: float = 5.0
    backbone_config: dict[str, Any] = field(default_factory=dict)
    phi: dict[str, Any] | None = None
    readout_hidden: int = 32
    charge_spin: bool = False
    charge_equilibration: bool = False
    coulomb: dict[str, Any] | None = None
    charge_input: str = "global"
    charge_state_energy: bool = False
    equilibration_scope: str = "structure"
    pair_repulsion: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PotentialConfig:
        values = dict(values)
        if "elements" in values:
            values["elements"] = tuple(values["elements"])
        return config_from_dict(cls, values)

    def to_dict(self) -> dict[str, Any]:
        out = config_to_dict(self)
        out["elements"] = list(self.elements)
        return out
