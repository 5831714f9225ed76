"""ASE drivers for :mod:`phicalc.md.run`: building them, their thermostat state, the energy
each conserves, the starting momenta, and stepping them until done or interrupted.

Drivers (``ensemble``): ``nve`` velocity Verlet; ``langevin`` :class:`ase.md.langevin.Langevin`
with ``fixcm=False`` and :class:`ase.constraints.FixCom`; ``nose-hoover``
:class:`ase.md.nose_hoover_chain.NoseHooverChainNVT` (chain of 3); ``bussi``
:class:`ase.md.bussi.Bussi`. Initial momenta are Maxwell–Boltzmann at ``temperature_K`` from
``numpy.random.default_rng(seed)`` with zero total momentum; the stochastic drivers draw from the
same generator, so one seed fixes the whole run.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms, units

from phicalc.md.config import MDConfig

if TYPE_CHECKING:
    from ase.md.md import MolecularDynamics

    from phicalc.md.checkpoint import Checkpoint

logger = logging.getLogger(__name__)


def make_dynamics(atoms: Atoms, config: MDConfig, rng: np.random.Generator) -> MolecularDynamics:
    """Build the ASE driver for ``config.ensemble`` on ``atoms`` (momenta must be set).

    For Langevin, ``atoms`` must already carry :class:`ase.constraints.FixCom`.
    """
    dt = config.timestep_fs * units.fs
    if config.ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, dt)
    if config.ensemble == "langevin":
        from ase.md.langevin import Langevin

        return Langevin(
            atoms,
            dt,
            temperature_K=config.temperature_K,
            friction=config.friction_per_fs / units.fs,
            fixcm=False,
            rng=rng,
        )
    if config.ensemble == "nose-hoover":
        from ase.md.nose_hoover_chain import NoseHooverChainNVT

        return NoseHooverChainNVT(
            atoms, dt, temperature_K=config.temperature_K, tdamp=config.tdamp * units.fs
        )
    from ase.md.bussi import Bussi

    return Bussi(
        atoms, dt, temperature_K=config.temperature_K, taut=config.taut * units.fs, rng=rng
    )


def thermostat_state(dyn: MolecularDynamics) -> dict[str, Any]:
    """Driver state beyond positions, momenta and the generator: Nose–Hoover chain positions
    and momenta (``nhc_eta``, ``nhc_p_eta`` [n_chain]) or the Bussi ``transferred_energy`` (eV)."""
    thermostat = getattr(dyn, "_thermostat", None)
    if thermostat is not None:  # NoseHooverChainNVT keeps its chain in private attributes
        return {"nhc_eta": thermostat._eta.copy(), "nhc_p_eta": thermostat._p_eta.copy()}
    if hasattr(dyn, "transferred_energy"):
        return {"transferred_energy": float(dyn.transferred_energy)}
    return {}


def restore_thermostat_state(dyn: MolecularDynamics, state: Mapping[str, Any]) -> None:
    """Inverse of :func:`thermostat_state`; also resyncs the Nose–Hoover ``_q``/``_p`` copies."""
    thermostat = getattr(dyn, "_thermostat", None)
    if thermostat is not None:
        thermostat._eta[:] = state["nhc_eta"]
        thermostat._p_eta[:] = state["nhc_p_eta"]
        dyn._q = dyn.atoms.get_positions()
        dyn._p = dyn.atoms.get_momenta()
    if "transferred_energy" in state:
        dyn.transferred_energy = float(state["transferred_energy"])


def conserved_energy(dyn: MolecularDynamics, ensemble: str) -> Callable[[], float]:
    """Energy conserved by the driver (eV): total energy (NVE), total minus the energy the
    thermostat put in (Bussi), the extended Hamiltonian (Nose–Hoover); NaN for Langevin."""
    atoms = dyn.atoms
    if ensemble == "nve":
        return lambda: atoms.get_potential_energy() + atoms.get_kinetic_energy()
    if ensemble == "bussi":
        return lambda: (
            atoms.get_potential_energy() + atoms.get_kinetic_energy() - dyn.transferred_energy
        )
    if ensemble == "nose-hoover":
        return dyn.get_conserved_energy
    return lambda: math.nan


def initialize(
    atoms: Atoms, config: MDConfig, checkpoint: Checkpoint | None
) -> np.random.Generator:
    """Set the starting state of ``atoms`` and return the run's generator.

    A new run draws Maxwell–Boltzmann momenta at ``config.temperature_K`` from
    ``default_rng(seed)`` and removes the total momentum; a continuation restores positions,
    momenta, cell and the generator state. Langevin runs get :class:`~ase.constraints.FixCom`.
    """
    from ase.constraints import FixCom

    rng = np.random.default_rng(config.seed)
    if checkpoint is not None:
        checkpoint.apply_to(atoms)
        rng.bit_generator.state = checkpoint.rng_state
    if config.ensemble == "langevin":
        atoms.set_constraint(FixCom())
    if checkpoint is None:
        draw_thermal_momenta(atoms, config.temperature_K, rng)
    return rng


def draw_thermal_momenta(
    atoms: Atoms,
    temperature_K: float,
    rng: np.random.Generator,
    *,
    preserve_temperature: bool = True,
) -> None:
    """Set Maxwell–Boltzmann momenta at ``temperature_K`` with zero total momentum (ASE's
    ``thermalize_momenta`` + ``Stationary``); ``preserve_temperature`` rescales the kinetic
    energy back after removing the centre-of-mass motion."""
    from ase.md.velocitydistribution import Stationary

    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ase < 3.29: same distribution under its old name
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms, preserve_temperature=preserve_temperature)


def integrate(
    dyn: MolecularDynamics, total_steps: int, *, progress: bool, finish: Callable[[], None]
) -> tuple[int | None, float]:
    """Step ``dyn`` up to ``total_steps``, stopping early on SIGINT/SIGTERM, then call
    ``finish`` (still shielded from a first signal).

    Returns:
        The signal number that stopped the run (``None`` if it completed) and the wall time of
        the steps in s.
    """
    bar = _progress_bar(progress, total=total_steps, initial=dyn.nsteps)
    interrupted: int | None = None
    started = time.perf_counter()
    try:
        with _SignalFlag() as flag:
            for _ in dyn.irun(total_steps - dyn.nsteps):
                bar.update(dyn.nsteps - bar.n)
                if flag.received is not None:
                    interrupted = flag.received
                    break
            wall_s = time.perf_counter() - started
            finish()
    finally:
        bar.close()
    return interrupted, wall_s


class _SignalFlag:
    """Context manager that turns SIGINT/SIGTERM into a flag checked between MD steps.

    A second signal raises :class:`KeyboardInterrupt` at once. Outside the main thread
    (where Python cannot install handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _SignalFlag:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        logger.warning(
            "%s received: finishing the step, writing files and a checkpoint",
            signal.Signals(signum).name,
        )


def _progress_bar(enabled: bool, *, total: int, initial: int) -> Any:
    if enabled:
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
    return _NoBar(initial)


class _NoBar:
    def __init__(self, initial: int) -> None:
        self.n = initial

    def update(self, n: int) -> None:
        self.n += n

    def close(self) -> None:
        pass
