"""In-memory record of an MD run, saved as ``thermo.npz`` and ``electrostatics.npz``, and the
run's ``summary.json``.

* ``thermo.npz``: every ``log_every`` steps ``step``, ``time_fs``, ``epot``, ``ekin``, ``etot``,
  ``conserved`` (eV; NaN for Langevin) and ``temperature_K``, at full precision.
* ``electrostatics.npz``: per trajectory frame ``step`` [n_frames], ``time_fs`` [n_frames],
  ``charges`` [n_frames, n_atoms] (e), ``potentials`` [n_frames, n_atoms] (V),
  ``electrostatic_energy`` [n_frames] (eV), plus ``numbers`` [n_atoms].
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import units

from phicalc import __version__
from phicalc.md import checkpoint as ckpt
from phicalc.md.analysis import json_safe, linear_drift

if TYPE_CHECKING:
    from ase import Atoms
    from ase.md.md import MolecularDynamics

    from phicalc.md.config import MDConfig

ELECTROSTATICS = "electrostatics.npz"
THERMO = "thermo.npz"
SUMMARY = "summary.json"

_THERMO_KEYS = ("step", "time_fs", "epot", "ekin", "etot", "conserved", "temperature_K")
_FRAME_KEYS = ("step", "time_fs", "charges", "potentials", "electrostatic_energy")


class Recorder:
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
        """Read the saved arrays back, keeping rows at steps <= ``step``.

        Raises:
            CheckpointError: A file is unreadable (truncated, empty, not an npz archive).
        """
        for name, store in ((THERMO, self.thermo), (ELECTROSTATICS, self.frames)):
            path = out / name
            if not path.exists():
                continue
            try:
                with np.load(path, allow_pickle=False) as data:
                    keep = data["step"] <= step
                    for key in store:
                        if key in data.files:
                            store[key] = list(data[key][keep])
            except Exception as error:  # zipfile, numpy and OS errors of a damaged file
                raise ckpt.CheckpointError(
                    f"{path} is unreadable ({type(error).__name__}: {error}); the run cannot be "
                    "continued: use --force-new or another --out"
                ) from error

    def cut(self, step: int) -> None:
        """Drop the rows recorded after ``step``."""
        for store in (self.thermo, self.frames):
            keep = [index for index, value in enumerate(store["step"]) if value <= step]
            for key, values in store.items():
                if len(values) == len(store["step"]) or key == "step":
                    store[key] = [values[index] for index in keep if index < len(values)]

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


def summarize(
    *,
    out: Path,
    config: MDConfig,
    atoms: Atoms,
    recorder: Recorder,
    steps_run: int,
    wall_s: float,
    resumed_from: int | None,
    interrupted: int | None,
    model: str,
    device: str,
    dtype: str,
    compiled: bool = False,
) -> dict[str, Any]:
    """The run summary written to ``summary.json`` (see :func:`phicalc.md.run.run`);
    ``compiled``: whether the model ran through ``torch.compile``."""
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
    temperatures = temperatures[np.isfinite(temperatures)]  # NaN: no degrees of freedom
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
        "compiled": compiled,
        "config": json_safe(config.to_dict()),  # as written to summary.json
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
