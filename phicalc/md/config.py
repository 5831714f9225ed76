"""Settings of one MD run (:class:`MDConfig`), validated on construction."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from phicalc.config import check_edge_chunk, config_from_dict
from phicalc.errors import ConfigError

Ensemble = Literal["nve", "langevin", "nose-hoover", "bussi"]
ENSEMBLES: tuple[str, ...] = get_args(Ensemble)

#: ``compile=None`` (auto) compiles on a CPU for runs of at least this many steps: compiling
#: takes about a minute and saves 14 ms a step for a 42-atom molecule (reports/md_step_speed_cpu.txt),
#: so it pays for itself after some 5,000 steps; a 3-atom molecule saves less per step.
AUTO_COMPILE_STEPS = 20_000

#: MDConfig fields that may change between a run and its continuation.
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "neighbor_skin", "compile", "edge_chunk")

#: MDConfig integer fields and their smallest allowed values.
_INTEGERS = {"steps": 0, "seed": 0, "traj_every": 1, "log_every": 1, "checkpoint_every": 0}
#: MDConfig fields that must be finite and > 0 (``None`` allowed where the default is ``None``).
_POSITIVE = ("timestep_fs", "friction_per_fs", "tdamp_fs", "taut_fs")


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
        partition_skin: Å, for models whose backbone partitions space (Erwin's ball tree), as
            in :class:`~phicalc.calculator.PhiCalculator`: the partition is rebuilt once an atom
            has moved more than half this distance; ``inf`` (the default) keeps the first one
            for the whole run, so the energy is one smooth function along the trajectory and
            NVE conserves it; ``None`` builds a fresh one every step. A continuation rebuilds it
            from the checkpoint's positions. Other backbones ignore it.
        neighbor_skin: Verlet skin in Å of the calculator's neighbour list (see
            :class:`~phicalc.calculator.PhiCalculator`): listed to cutoff + skin, rebuilt once an
            atom has moved more than half of it, filtered to the cutoff every step, so forces
            are a fresh list's up to summation order; ``None`` builds a fresh list every step.
            (default: 0.5) A continuation may change it.
        compile: evaluate the model through ``torch.compile``, PaiNN/SchNet models on a CPU
            (refused on CUDA): open structures on fixed (padded) shapes
            (:mod:`phicalc.graph_replay`), periodic cells through a compiled backbone
            (:class:`~phicalc.compiled.CompiledBackbone`); about a minute to compile, then 2–3×
            faster per step; same forces up to round-off. ``None`` (the default): compile on a
            CPU when the run has at least :data:`AUTO_COMPILE_STEPS` steps (see
            :meth:`compile_on`). A continuation may change it.
        edge_chunk: sum the messages in runs of receivers, as
            :class:`~phicalc.calculator.PhiCalculator`'s option: ``"auto"`` (the default: for
            structures above about 10⁴ atoms, so they fit in memory), a number of edges per run,
            or ``None`` (never: faster where memory allows). A continuation may change it.
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
    partition_skin: float | None = math.inf
    neighbor_skin: float | None = 0.5
    compile: bool | None = None
    edge_chunk: int | str | None = "auto"

    def __post_init__(self) -> None:
        if self.ensemble not in ENSEMBLES:
            raise ConfigError(
                f"unknown ensemble {self.ensemble!r}; choose one of {', '.join(ENSEMBLES)}"
            )
        for name, minimum in _INTEGERS.items():
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or value < minimum
            ):
                raise ConfigError(f"MDConfig.{name} must be an integer >= {minimum}, got {value!r}")
        for name in _POSITIVE:
            value = getattr(self, name)
            if value is None and name in ("tdamp_fs", "taut_fs"):
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"MDConfig.{name} must be > 0, got {value!r}")
        if not math.isfinite(self.temperature_K) or self.temperature_K < 0:
            raise ConfigError(f"MDConfig.temperature_K must be >= 0, got {self.temperature_K}")
        if self.ensemble != "nve" and self.temperature_K == 0:
            raise ConfigError(f"the {self.ensemble} thermostat needs temperature_K > 0")
        if self.charge is not None and not math.isfinite(self.charge):
            raise ConfigError(f"MDConfig.charge must be finite, got {self.charge}")
        skin = self.partition_skin
        if skin is not None and (
            not isinstance(skin, (int, float)) or math.isnan(skin) or skin < 0
        ):
            raise ConfigError(f"MDConfig.partition_skin must be >= 0 Å (or inf), got {skin}")
        skin = self.neighbor_skin
        if skin is not None and (
            isinstance(skin, bool)
            or not isinstance(skin, (int, float))
            or not math.isfinite(skin)
            or skin < 0
        ):
            raise ConfigError(f"MDConfig.neighbor_skin must be a finite number >= 0 Å, got {skin}")
        check_edge_chunk(self.edge_chunk)

    def compile_on(self, device_type: str) -> bool:
        """Whether the run compiles the model on a device of ``device_type`` ("cpu", "cuda").

        ``compile=None`` means: on a CPU, for runs of at least :data:`AUTO_COMPILE_STEPS` steps
        (never on CUDA, where CUDA graphs replay the step instead)."""
        if self.compile is not None:
            return bool(self.compile)
        return device_type == "cpu" and self.steps >= AUTO_COMPILE_STEPS

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
        return config_from_dict(cls, dict(values))
