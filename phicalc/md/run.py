"""Restartable molecular dynamics over ASE drivers, with per-frame electrostatics.

:func:`run` integrates one structure with one of four ASE drivers and writes, into an output
directory:

* ``trajectory.traj``: ASE trajectory; each frame carries energy, forces, momenta and (models with
  Φ) charges.
* ``electrostatics.npz``: per frame ``step`` [n_frames], ``time_fs`` [n_frames], ``charges``
  [n_frames, n_atoms] (e), ``potentials`` [n_frames, n_atoms] (V), ``electrostatic_energy``
  [n_frames] (eV), plus ``numbers`` [n_atoms]. Frames are those of the trajectory.
* ``thermo.npz``: every ``log_every`` steps ``step``, ``time_fs``, ``epot``, ``ekin``, ``etot``,
  ``conserved`` (eV; NaN for Langevin) and ``temperature_K``, at full precision.
* ``md.log`` (ASE :class:`~ase.md.logger.MDLogger`), ``summary.json``, ``checkpoint.npz``
  (:mod:`phicalc.md.checkpoint`) and the figures ``energy.png``, ``temperature.png``,
  ``charges.png``.

Drivers (``ensemble``): ``nve`` velocity Verlet; ``langevin`` :class:`ase.md.langevin.Langevin`
with ``fixcm=False`` and :class:`ase.constraints.FixCom`; ``nose-hoover``
:class:`ase.md.nose_hoover_chain.NoseHooverChainNVT` (chain of 3); ``bussi``
:class:`ase.md.bussi.Bussi`. Initial momenta are Maxwell–Boltzmann at ``temperature_K`` from
``numpy.random.default_rng(seed)`` with zero total momentum; the stochastic drivers draw from the
same generator, so one seed fixes the whole run.

Restart: running again with the same output directory continues from ``checkpoint.npz`` up to
``steps`` in total. The trajectory, log and npz files are cut back to the checkpoint step first, and
positions, momenta, cell, thermostat variables and the generator state are restored exactly, so the
frames equal those of an uninterrupted run bit for bit (same model, device and dtype). SIGINT and
SIGTERM end the current step, write all files and a checkpoint, then return.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import BaseCalculator

from phicalc import __version__
from phicalc.errors import ConfigError, PhicalcError, UnknownElementError
from phicalc.md import checkpoint as ckpt
from phicalc.md.analysis import json_safe, linear_drift

if TYPE_CHECKING:
    from ase.md.md import MolecularDynamics

    from phicalc.potential import Potential

logger = logging.getLogger(__name__)

Ensemble = Literal["nve", "langevin", "nose-hoover", "bussi"]
ENSEMBLES: tuple[str, ...] = get_args(Ensemble)

TRAJECTORY = "trajectory.traj"
ELECTROSTATICS = "electrostatics.npz"
THERMO = "thermo.npz"
LOG = "md.log"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.npz"
#: Files a run writes; a new run (no checkpoint) removes those left by an earlier one.
OUTPUTS = (
    TRAJECTORY,
    ELECTROSTATICS,
    THERMO,
    LOG,
    SUMMARY,
    CHECKPOINT,
    "analysis.json",
    "energy.png",
    "temperature.png",
    "charges.png",
    "rmsd.png",
    "rmsf.png",
    "rdf.png",
    "temperature_acf.png",
    "charges_time.png",
)

#: MDConfig fields that may change between a run and its continuation.
RESUMABLE_CHANGES = ("steps", "checkpoint_every")

_THERMO_KEYS = ("step", "time_fs", "epot", "ekin", "etot", "conserved", "temperature_K")
_FRAME_KEYS = ("step", "time_fs", "charges", "potentials", "electrostatic_energy")


@dataclass(frozen=True)
class MDConfig:
    """Settings of one MD run; every field is validated on construction.

    Args:
        ensemble: ``"nve"``, ``"langevin"``, ``"nose-hoover"`` or ``"bussi"``.
            (default: ``"langevin"``)
        temperature_K: Thermostat target and Maxwell–Boltzmann start temperature in K; > 0 for
            the thermostats, >= 0 for NVE. (default: 300)
        timestep_fs: Time step in fs, > 0. (default: 0.5)
        steps: Total number of steps of the run (a continuation runs up to this), >= 0.
            (default: 1000)
        seed: Seed of the generator for initial momenta and thermostat noise. (default: 0)
        traj_every: Write a trajectory/electrostatics frame every this many steps. (default: 10)
        log_every: Write ``md.log`` and ``thermo.npz`` rows every this many steps. (default: 10)
        checkpoint_every: Write a checkpoint every this many steps; 0 writes one only at the
            end or on a signal. (default: 100)
        friction_per_fs: Langevin friction in 1/fs. (default: 0.01)
        tdamp_fs: Nose–Hoover chain time constant in fs; ``None`` is 100 time steps.
        taut_fs: Bussi coupling time in fs; ``None`` is 100 time steps.
        charge: Total charge in e; ``None`` keeps ``atoms.info["charge"]`` (else 0).
        partition_skin: Å, for models whose backbone partitions space (Erwin's ball tree): the
            partition is rebuilt only once an atom has moved more than half this distance.
            ``None`` keeps the first partition for the whole run, so the energy is one smooth
            function along the trajectory and NVE conserves it; a continuation rebuilds it from
            the checkpoint's positions. Other backbones ignore it. (default: ``None``)
    """

    ensemble: str = "langevin"
    temperature_K: float = 300.0
    timestep_fs: float = 0.5
    steps: int = 1000
    seed: int = 0
    traj_every: int = 10
    log_every: int = 10
    checkpoint_every: int = 100
    friction_per_fs: float = 0.01
    tdamp_fs: float | None = None
    taut_fs: float | None = None
    charge: float | None = None
    partition_skin: float | None = None

    def __post_init__(self) -> None:
        if self.ensemble not in ENSEMBLES:
            raise ConfigError(
                f"unknown ensemble {self.ensemble!r}; choose one of {', '.join(ENSEMBLES)}"
            )
        _require_int(self.steps, "steps", minimum=0)
        _require_int(self.seed, "seed", minimum=0)
        _require_int(self.traj_every, "traj_every", minimum=1)
        _require_int(self.log_every, "log_every", minimum=1)
        _require_int(self.checkpoint_every, "checkpoint_every", minimum=0)
        _require_positive(self.timestep_fs, "timestep_fs")
        _require_positive(self.friction_per_fs, "friction_per_fs")
        for name in ("tdamp_fs", "taut_fs"):
            if getattr(self, name) is not None:
                _require_positive(getattr(self, name), name)
        if not math.isfinite(self.temperature_K) or self.temperature_K < 0:
            raise ConfigError(f"temperature_K must be >= 0, got {self.temperature_K}")
        if self.ensemble != "nve" and self.temperature_K == 0:
            raise ConfigError(f"the {self.ensemble} thermostat needs temperature_K > 0")
        if self.charge is not None and not math.isfinite(self.charge):
            raise ConfigError(f"charge must be finite, got {self.charge}")
        if self.partition_skin is not None and not (
            math.isfinite(self.partition_skin) and self.partition_skin >= 0
        ):
            raise ConfigError(f"partition_skin must be >= 0 Å, got {self.partition_skin}")

    @property
    def tdamp(self) -> float:
        """Nose–Hoover chain time constant in fs."""
        return 100 * self.timestep_fs if self.tdamp_fs is None else self.tdamp_fs

    @property
    def taut(self) -> float:
        """Bussi coupling time in fs."""
        return 100 * self.timestep_fs if self.taut_fs is None else self.taut_fs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> MDConfig:
        """Build from a mapping, rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown MD settings {unknown}; known: {sorted(known)}")
        return cls(**values)


def _require_int(value: Any, name: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _require_positive(value: Any, name: str) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


# --------------------------------------------------------------------------- inputs


def load_structure(structure: Atoms | str | os.PathLike) -> Atoms:
    """Return a copy of ``structure`` or build one from a file path, SMILES or name.

    Strings go through :func:`phicalc.data.structures.structure_from_string`.

    Raises:
        FileNotFoundError: A path that does not exist (from the structure reader).
        ConfigError: Any other failure to read or build the structure.
    """
    if isinstance(structure, Atoms):
        return structure.copy()
    spec = os.fspath(structure)
    from phicalc.data.structures import structure_from_string

    try:
        atoms = structure_from_string(spec)
    except (PhicalcError, FileNotFoundError, IsADirectoryError):
        raise
    except Exception as error:  # ASE, RDKit and pymatgen raise many types on bad input
        raise ConfigError(f"cannot read structure {spec!r}: {error}") from error
    if len(atoms) == 0:
        raise ConfigError(f"structure {spec!r} has no atoms")
    return atoms


def make_calculator(
    model: str | os.PathLike | Potential | BaseCalculator,
    *,
    device: str = "auto",
    dtype: str = "float64",
    charge: float | None = None,
    partition_skin: float | None = None,
) -> BaseCalculator:
    """Wrap a model name, model file or :class:`~phicalc.potential.Potential` in a
    :class:`~phicalc.calculator.PhiCalculator` that keeps any spatial partition of the model
    for ``partition_skin`` Å (``None``: for good, as MD needs); an ASE calculator is returned
    unchanged."""
    if isinstance(model, BaseCalculator):
        return model
    from phicalc import PhiCalculator

    skin = math.inf if partition_skin is None else partition_skin
    options: dict[str, Any] = {"device": device, "dtype": dtype, "partition_skin": skin}
    if charge is not None:
        options["charge"] = float(charge)
    return PhiCalculator(model, **options)


def check_elements(atoms: Atoms, calc: BaseCalculator) -> None:
    """Raise :class:`~phicalc.errors.UnknownElementError` if the model lacks an element of
    ``atoms``; calculators without ``calc.model.elements`` are not checked."""
    elements = getattr(getattr(calc, "model", None), "elements", None)
    if elements is None:
        return
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise UnknownElementError(
            f"{atoms.get_chemical_formula()} contains {', '.join(unknown)}, which the model "
            f"does not support (it knows {', '.join(elements)})"
        )


def weights_fingerprint(calc: BaseCalculator) -> str | None:
    """16 hex digits of SHA-256 over the parameters and buffers of ``calc.model`` (names and
    values as float64, so the calculator's dtype does not change it); None for calculators
    without a torch model."""
    import hashlib

    import torch

    model = getattr(calc, "model", None)
    if not isinstance(model, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float64).numpy().tobytes())
    return digest.hexdigest()[:16]


def _describe_model(model: Any) -> str:
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    return type(model).__name__


# --------------------------------------------------------------------------- drivers


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


def _conserved_energy(dyn: MolecularDynamics, ensemble: str) -> Callable[[], float]:
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


# --------------------------------------------------------------------------- recording


class _Recorder:
    """Thermodynamics (every ``log_every`` steps) and electrostatics (every ``traj_every``
    steps) kept in memory and saved as ``thermo.npz`` / ``electrostatics.npz``."""

    def __init__(self, dyn: MolecularDynamics, conserved: Callable[[], float]) -> None:
        self.dyn = dyn
        self.atoms = dyn.atoms
        self.conserved = conserved
        self.thermo: dict[str, list[Any]] = {key: [] for key in _THERMO_KEYS}
        self.frames: dict[str, list[Any]] = {key: [] for key in _FRAME_KEYS}

    def record_thermo(self) -> None:
        epot = self.atoms.get_potential_energy()
        ekin = self.atoms.get_kinetic_energy()
        row = {
            "step": self.dyn.nsteps,
            "time_fs": self.dyn.get_time() / units.fs,
            "epot": epot,
            "ekin": ekin,
            "etot": epot + ekin,
            "conserved": self.conserved(),
            "temperature_K": self.atoms.get_temperature(),
        }
        for key, value in row.items():
            self.thermo[key].append(value)

    def record_frame(self) -> None:
        results = self.atoms.calc.results
        self.frames["step"].append(self.dyn.nsteps)
        self.frames["time_fs"].append(self.dyn.get_time() / units.fs)
        for key in ("charges", "potentials", "electrostatic_energy"):
            if key in results:
                self.frames[key].append(np.array(results[key], dtype=np.float64))

    def load(self, out: Path, step: int) -> None:
        """Read the saved arrays back, keeping rows at steps <= ``step``."""
        for name, store in ((THERMO, self.thermo), (ELECTROSTATICS, self.frames)):
            path = out / name
            if not path.exists():
                continue
            with np.load(path, allow_pickle=False) as data:
                keep = data["step"] <= step
                for key in store:
                    if key in data.files:
                        store[key] = list(data[key][keep])

    def save(self, out: Path) -> None:
        ckpt.save_npz_atomic(out / THERMO, self.thermo_arrays())
        if self.frames["charges"] or self.frames["potentials"]:
            frames = {key: np.asarray(value) for key, value in self.frames.items() if value}
            frames["numbers"] = self.atoms.numbers.copy()
            ckpt.save_npz_atomic(out / ELECTROSTATICS, frames)

    def thermo_arrays(self) -> dict[str, np.ndarray]:
        return {
            key: np.asarray(value, dtype=np.int64 if key == "step" else np.float64)
            for key, value in self.thermo.items()
        }


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


# --------------------------------------------------------------------------- run


def run(
    structure: Atoms | str | os.PathLike,
    model: str | os.PathLike | Potential | BaseCalculator,
    out: str | os.PathLike,
    *,
    config: MDConfig | Mapping[str, Any] | None = None,
    device: str = "auto",
    dtype: str = "float64",
    progress: bool = False,
    plots: bool = True,
) -> dict[str, Any]:
    """Run (or continue) molecular dynamics and write its outputs into ``out``.

    Everything that can be checked (settings, structure, model, elements, an existing
    checkpoint) is checked before the first file is written.

    Args:
        structure: :class:`ase.Atoms` (copied) or a file path, SMILES or structure name.
        model: Shipped model name, model file, :class:`~phicalc.potential.Potential`, or any
            ASE calculator (used as is; ``device``/``dtype`` then do not apply).
        out: Output directory. If it holds ``checkpoint.npz`` the run continues from it.
        config: :class:`MDConfig` or a mapping of its fields. (default: ``MDConfig()``)
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``. (default: ``"auto"``)
        dtype: ``"float32"`` or ``"float64"``. (default: ``"float64"``)
        progress: Show a tqdm progress bar on stderr. (default: ``False``)
        plots: Write ``energy.png``, ``temperature.png``, ``charges.png``. (default: ``True``)

    Returns:
        The summary also written to ``summary.json``: ``steps_done``, ``ms_per_step``,
        ``ns_per_day``, ``temperature_mean``/``temperature_std`` (K, over all logged steps),
        ``energy_drift_meV_per_atom_per_ps`` (slope of a linear fit of the conserved energy over
        time: total energy for NVE; ``None`` for Langevin), ``completed``, ``interrupted_by``...

    Raises:
        ConfigError: Invalid settings or an unreadable structure.
        UnknownElementError: The structure has an element the model does not support.
        CheckpointError: ``out`` holds a checkpoint of another system or other settings.
    """
    from ase.io.trajectory import Trajectory
    from ase.md.logger import MDLogger

    if config is None:
        config = MDConfig()
    elif not isinstance(config, MDConfig):
        config = MDConfig.from_dict(config)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")

    atoms = load_structure(structure)
    if config.charge is not None:
        atoms.info["charge"] = float(config.charge)
    calc = make_calculator(
        model,
        device=device,
        dtype=dtype,
        charge=config.charge,
        partition_skin=config.partition_skin,
    )
    check_elements(atoms, calc)
    model_name = _describe_model(model)
    weights = weights_fingerprint(calc)
    checkpoint = _load_resumable(
        out / CHECKPOINT, config, atoms, model=model_name, dtype=dtype, weights=weights
    )
    if config.timestep_fs > 1.0 and 1 in atoms.numbers:
        logger.warning(
            "time step %.3g fs with hydrogen present: H vibrations (~9 fs period) need <= 1 fs, "
            "or the run heats up and may blow up",
            config.timestep_fs,
        )

    # Inputs are valid: from here on files are written.
    out.mkdir(parents=True, exist_ok=True)
    if checkpoint is None:
        stale = [name for name in OUTPUTS if (out / name).exists()]
        if stale:
            logger.warning("%s has no checkpoint: starting a new run, replacing %s", out, stale)
            for name in stale:
                (out / name).unlink()
    rng = _initialize(atoms, config, checkpoint)
    atoms.calc = calc
    dyn = make_dynamics(atoms, config, rng)
    recorder = _Recorder(dyn, _conserved_energy(dyn, config.ensemble))

    if checkpoint is not None:
        restore_thermostat_state(dyn, checkpoint.thermostat)
        dyn.nsteps = checkpoint.step
        recorder.load(out, checkpoint.step)
        ckpt.truncate_trajectory(
            out / TRAJECTORY, ckpt.frames_up_to(checkpoint.step, config.traj_every)
        )
        ckpt.truncate_log(out / LOG, ckpt.frames_up_to(checkpoint.step, config.log_every))
        logger.info("continuing %s from step %d to %d", out, checkpoint.step, config.steps)
    mode = "w" if checkpoint is None else "a"
    trajectory = Trajectory(out / TRAJECTORY, mode, atoms)
    md_logger = MDLogger(dyn, atoms, out / LOG, header=checkpoint is None, mode=mode)

    def write_checkpoint() -> None:
        recorder.save(out)
        state = ckpt.Checkpoint(
            step=dyn.nsteps,
            positions=atoms.get_positions(),
            momenta=atoms.get_momenta(),
            cell=atoms.cell.array.copy(),
            pbc=atoms.pbc.copy(),
            numbers=atoms.numbers.copy(),
            config=config.to_dict(),
            rng_state=rng.bit_generator.state,
            thermostat=thermostat_state(dyn),
            extra={
                "model": model_name,
                "weights": weights,
                "dtype": dtype,
                "phicalc": __version__,
            },
        )
        ckpt.save_checkpoint(out / CHECKPOINT, state)

    dyn.attach(trajectory.write, interval=config.traj_every)
    dyn.attach(recorder.record_frame, interval=config.traj_every)
    dyn.attach(md_logger, interval=config.log_every)
    dyn.attach(recorder.record_thermo, interval=config.log_every)
    if config.checkpoint_every:
        dyn.attach(write_checkpoint, interval=config.checkpoint_every)

    start_step = dyn.nsteps
    try:
        interrupted, wall_s = _integrate(
            dyn, config.steps, progress=progress, finish=write_checkpoint
        )
    finally:
        trajectory.close()
        md_logger.close()
        if calc is not model and hasattr(calc, "model"):
            calc.model.keep_partition(None)  # a caller's Potential gets its own setting back

    summary = _summarize(
        out=out,
        config=config,
        atoms=atoms,
        recorder=recorder,
        steps_run=dyn.nsteps - start_step,
        wall_s=wall_s,
        resumed_from=None if checkpoint is None else checkpoint.step,
        interrupted=interrupted,
        model=model_name,
        device=str(getattr(calc, "device", "cpu")),
        dtype=dtype,
    )
    ckpt.write_text_atomic(out / SUMMARY, json.dumps(json_safe(summary), indent=2) + "\n")
    if plots and interrupted is None:
        from phicalc.md.plots import plot_run

        plot_run(out, target_K=None if config.ensemble == "nve" else config.temperature_K)
    if interrupted is not None:
        logger.warning(
            "stopped at step %d of %d; run the same command again to continue",
            dyn.nsteps,
            config.steps,
        )
    return summary


def _initialize(
    atoms: Atoms, config: MDConfig, checkpoint: ckpt.Checkpoint | None
) -> np.random.Generator:
    """Set the starting state of ``atoms`` and return the run's generator.

    A new run draws Maxwell–Boltzmann momenta at ``config.temperature_K`` from
    ``default_rng(seed)`` and removes the total momentum; a continuation restores positions,
    momenta, cell and the generator state. Langevin runs get :class:`~ase.constraints.FixCom`.
    """
    from ase.constraints import FixCom
    from ase.md.velocitydistribution import Stationary

    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ase < 3.29: same distribution under its old name
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    rng = np.random.default_rng(config.seed)
    if checkpoint is not None:
        checkpoint.apply_to(atoms)
        rng.bit_generator.state = checkpoint.rng_state
    if config.ensemble == "langevin":
        atoms.set_constraint(FixCom())
    if checkpoint is None:
        thermalize_momenta(atoms, temperature_K=config.temperature_K, rng=rng)
        Stationary(atoms)
    return rng


def _integrate(
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


def _load_resumable(
    path: Path,
    config: MDConfig,
    atoms: Atoms,
    *,
    model: str,
    dtype: str,
    weights: str | None,
) -> ckpt.Checkpoint | None:
    """The checkpoint in ``path`` if there is one and ``config``/``atoms`` can continue it.

    Another model, other weights under the same name (a retrained model file) or another
    dtype only warn: the run continues, but not bit for bit and not with one potential.
    """
    if not path.exists():
        return None
    checkpoint = ckpt.load_checkpoint(path)
    for key, value in (("model", model), ("weights", weights), ("dtype", dtype)):
        saved = checkpoint.extra.get(key)
        if saved is not None and saved != value:
            logger.warning(
                "%s was run with %s %s, continuing with %s", path.parent, key, saved, value
            )
    changed = ckpt.config_mismatch(checkpoint.config, config.to_dict(), ignore=RESUMABLE_CHANGES)
    if changed:
        raise ckpt.CheckpointError(
            f"{path.parent} holds a run with other settings ({'; '.join(changed)}); "
            "use the same settings to continue it or another --out directory"
        )
    if checkpoint.step > config.steps:
        raise ckpt.CheckpointError(
            f"{path.parent} is already at step {checkpoint.step}, past --steps {config.steps}"
        )
    checkpoint.check_system(atoms)
    return checkpoint


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


def _summarize(
    *,
    out: Path,
    config: MDConfig,
    atoms: Atoms,
    recorder: _Recorder,
    steps_run: int,
    wall_s: float,
    resumed_from: int | None,
    interrupted: int | None,
    model: str,
    device: str,
    dtype: str,
) -> dict[str, Any]:
    thermo = recorder.thermo_arrays()
    n_atoms = len(atoms)
    steps_done = int(recorder.dyn.nsteps)
    if steps_run > 0:
        ms_per_step: float | None = 1000.0 * wall_s / steps_run
    else:  # nothing left to run: keep the speed measured by the run that did the work
        ms_per_step = _previous_summary(out).get("ms_per_step")
    ns_per_day = None if not ms_per_step else config.timestep_fs * 86.4 / ms_per_step

    if config.ensemble == "langevin":
        drift, drift_of = None, None
    else:
        drift_of = "total energy" if config.ensemble == "nve" else "conserved energy"
        drift = linear_drift(thermo["time_fs"], thermo["conserved"], n_atoms)
    temperatures = thermo["temperature_K"]
    summary: dict[str, Any] = {
        "steps_done": steps_done,
        "steps_requested": config.steps,
        "completed": steps_done >= config.steps,
        "interrupted_by": None if interrupted is None else signal.Signals(interrupted).name,
        "resumed_from_step": resumed_from,
        "steps_this_run": steps_run,
        "wall_time_s": wall_s,
        "ms_per_step": ms_per_step,
        "ns_per_day": ns_per_day,
        "simulated_time_ps": steps_done * config.timestep_fs / 1000.0,
        "temperature_mean": float(np.mean(temperatures)) if len(temperatures) else None,
        "temperature_std": float(np.std(temperatures)) if len(temperatures) else None,
        "energy_drift_meV_per_atom_per_ps": drift,
        "energy_drift_of": drift_of,
        "n_atoms": n_atoms,
        "formula": atoms.get_chemical_formula(),
        "model": model,
        "device": device,
        "dtype": dtype,
        "config": config.to_dict(),
        "phicalc": __version__,
    }
    if recorder.frames["electrostatic_energy"]:
        energies = np.asarray(recorder.frames["electrostatic_energy"])
        summary["electrostatic_energy_mean_eV"] = float(energies.mean())
        summary["electrostatic_energy_std_eV"] = float(energies.std())
    return summary


def _previous_summary(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / SUMMARY).read_text())
    except (OSError, ValueError):
        return {}
