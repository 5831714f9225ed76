"""Run-time guards of :mod:`phicalc.md.run`: a run that blows up stops, it never passes as done.

:class:`RunGuard` is attached to the driver as an observer called after every step (before the
trajectory and log writers, so a bad step is never written) and raises :class:`BlowUp` when

* the potential energy or the temperature is not finite;
* the conserved energy (total energy for NVE; the driver's conserved quantity for Bussi and
  Nose–Hoover; not checked for Langevin) has moved more than ``max_energy_change_per_atom``
  eV per atom from its value at the start of the run;
* the temperature exceeds ``max(temperature_factor × target, temperature_floor_K)``;
* in a non-periodic system, an atom that had a neighbour within ``detach_factor × cutoff`` at
  the start of the run has none any more (the molecule is flying apart);
* the calculator says the structure is far outside what its model was trained on
  (:attr:`phicalc.PhiCalculator.extrapolation`: a pair closer than 0.6 × its covalent radii, an
  absurd atom energy), where its forces are not to be trusted: e.g. Na⁺ and Cl⁻ fallen
  together to 1.55 Å (reports/ion_pair_md.md). ``stop_on_extrapolation=False`` lets it run on.

Atoms that collide are caught by the calculator itself
(:class:`~phicalc.errors.BadGeometryError` below ``min_distance``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import units

if TYPE_CHECKING:
    from ase import Atoms
    from ase.md.md import MolecularDynamics


class BlowUp(Exception):
    """A guard tripped at ``step``; ``reason`` says which and by how much."""

    def __init__(self, step: int, reason: str) -> None:
        super().__init__(f"step {step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class GuardLimits:
    """Thresholds of :class:`RunGuard` (see the module docstring)."""

    max_energy_change_per_atom: float = 1.0
    temperature_factor: float = 5.0
    temperature_floor_K: float = 1000.0
    detach_factor: float = 2.0
    stop_on_extrapolation: bool = True


class RunGuard:
    """Observer that raises :class:`BlowUp` when the run leaves physical ground.

    Args:
        dyn: The ASE driver (its ``atoms`` carry the calculator).
        ensemble: ``MDConfig.ensemble``.
        target_K: Target (or starting, for NVE) temperature in K.
        conserved: Callable returning the conserved energy in eV (NaN where there is none).
        cutoff: Model cutoff in Å (scales the flying-apart distance).
        reference: State saved by :meth:`reference_state` of an earlier part of the run; ``None``
            takes the reference at the first call.
        limits: Thresholds. (default: ``GuardLimits()``)
    """

    def __init__(
        self,
        dyn: MolecularDynamics,
        *,
        ensemble: str,
        target_K: float,
        conserved: Callable[[], float],
        cutoff: float,
        reference: dict[str, Any] | None = None,
        limits: GuardLimits | None = None,
    ) -> None:
        self.dyn = dyn
        self.atoms: Atoms = dyn.atoms
        self.ensemble = ensemble
        self.conserved = conserved
        self.limits = limits or GuardLimits()
        self.max_temperature_K = max(
            self.limits.temperature_factor * target_K, self.limits.temperature_floor_K
        )
        self.detach_distance = self.limits.detach_factor * cutoff
        self.molecular = not bool(np.any(self.atoms.pbc)) and len(self.atoms) > 1
        self.conserved0: float | None = None
        self.bonded: np.ndarray | None = None
        if reference:
            value = reference.get("conserved0")
            self.conserved0 = None if value is None else float(value)
            bonded = reference.get("bonded")
            self.bonded = None if bonded is None else np.asarray(bonded, dtype=np.int64)

    def reference_state(self) -> dict[str, Any]:
        """JSON-ready state to store in a checkpoint, so a continuation checks against the
        start of the whole run."""
        return {
            "conserved0": self.conserved0,
            "bonded": None if self.bonded is None else self.bonded.tolist(),
        }

    def __call__(self) -> None:
        step = int(self.dyn.nsteps)
        atoms = self.atoms
        n_atoms = len(atoms)
        epot = atoms.get_potential_energy()
        if not math.isfinite(epot):
            raise BlowUp(step, f"the potential energy is {epot}")
        # first: it explains what tends to follow (heating, an energy jump)
        reason = getattr(atoms.calc, "extrapolation", None)
        if reason is not None and self.limits.stop_on_extrapolation:
            raise BlowUp(
                step,
                f"the structure left what the model was trained on ({reason}): its forces are "
                "not to be trusted",
            )
        if self.ensemble != "langevin":
            conserved = float(self.conserved())
            if not math.isfinite(conserved):
                raise BlowUp(step, f"the conserved energy is {conserved}")
            if self.conserved0 is None:
                self.conserved0 = conserved
            change = abs(conserved - self.conserved0) / n_atoms
            if change > self.limits.max_energy_change_per_atom:
                raise BlowUp(
                    step,
                    f"the conserved energy moved {change:.3g} eV/atom from the start "
                    f"(limit {self.limits.max_energy_change_per_atom:g} eV/atom): the run is "
                    "unstable (time step too large?)",
                )
        dof = _degrees_of_freedom(atoms)
        if dof > 0:
            temperature = 2.0 * atoms.get_kinetic_energy() / (dof * units.kB)
            if not math.isfinite(temperature):
                raise BlowUp(step, f"the temperature is {temperature}")
            if temperature > self.max_temperature_K:
                raise BlowUp(
                    step,
                    f"the temperature reached {temperature:.4g} K, above the limit of "
                    f"{self.max_temperature_K:.4g} K: the run is unstable (time step too large?)",
                )
        if self.molecular:
            self._check_detached(step)

    def _check_detached(self, step: int) -> None:
        from scipy.spatial import cKDTree

        positions = self.atoms.get_positions()
        if not np.all(np.isfinite(positions)):
            raise BlowUp(step, "positions are not finite")
        distances, _ = cKDTree(positions).query(positions, k=2)
        nearest = distances[:, 1]
        if self.bonded is None:
            self.bonded = np.flatnonzero(nearest <= self.detach_distance)
            return
        lost = self.bonded[nearest[self.bonded] > self.detach_distance]
        if lost.size:
            index = int(lost[0])
            raise BlowUp(
                step,
                f"atom {index} ({self.atoms[index].symbol}) has no neighbour within "
                f"{self.detach_distance:g} Å (nearest {nearest[index]:.3g} Å): the structure is "
                "flying apart",
            )


def _degrees_of_freedom(atoms: Atoms) -> int:
    counter = getattr(atoms, "get_number_of_degrees_of_freedom", None)
    if counter is not None:
        return int(counter())
    return 3 * len(atoms)
