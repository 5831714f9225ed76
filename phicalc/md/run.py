"""Restartable molecular dynamics over ASE drivers, with per-frame electrostatics.

:func:`run` integrates one structure with one of four ASE drivers and writes, into an output
directory:

* ``trajectory.traj``: ASE trajectory; each frame carries energy, forces, momenta and (models with
  Φ) charges.
* ``electrostatics.npz`` (per trajectory frame) and ``thermo.npz`` (every ``log_every`` steps):
  see :mod:`phicalc.md.recorder`.
* ``md.log`` (ASE :class:`~ase.md.logger.MDLogger`), ``summary.json``, ``checkpoint.npz``
  (:mod:`phicalc.md.checkpoint`) and the figures ``energy.png``, ``temperature.png``,
  ``charges.png``.

Settings: :class:`~phicalc.md.config.MDConfig`; drivers, thermostats and the seed:
:mod:`phicalc.md.drivers`.

Restart: running again with the same output directory continues from ``checkpoint.npz`` up to
``steps`` in total. The trajectory, log and npz files are cut back to the checkpoint step first, and
positions, momenta, cell, thermostat variables and the generator state are restored exactly, so the
frames equal those of an uninterrupted run bit for bit (same model, device and dtype). SIGINT and
SIGTERM end the current step, write all files and a checkpoint, then return.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from phicalc import __version__
from phicalc.errors import (
    BadGeometryError,
    ConfigError,
    SimulationError,
)
from phicalc.md import checkpoint as ckpt
from phicalc.md import rundir
from phicalc.md.analysis import json_safe
from phicalc.md.config import ENSEMBLES, MDConfig
from phicalc.md.drivers import (
    conserved_energy,
    initialize,
    integrate,
    make_dynamics,
    restore_thermostat_state,
    thermostat_state,
)
from phicalc.md.guards import BlowUp, RunGuard
from phicalc.md.inputs import (
    check_elements,
    describe_model,
    load_structure,
    make_calculator,
    weights_fingerprint,
)
from phicalc.md.recorder import ELECTROSTATICS, SUMMARY, THERMO, Recorder, summarize
from phicalc.md.resume import (
    load_resumable,
    partition_positions,
    restore_partition,
    run_dtype,
    start_of_run,
)

if TYPE_CHECKING:
    from phicalc.potential import Potential

__all__ = ["ENSEMBLES", "MDConfig", "run"]

logger = logging.getLogger(__name__)

TRAJECTORY = "trajectory.traj"
LOG = "md.log"
CHECKPOINT = "checkpoint.npz"
#: Files a run writes; ``force_new`` removes these (and nothing else) from a phicalc run directory.
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


def run(
    structure: Atoms | str | os.PathLike,
    model: str | os.PathLike | Potential | BaseCalculator,
    out: str | os.PathLike,
    *,
    config: MDConfig | Mapping[str, Any] | None = None,
    device: str = "auto",
    dtype: str | None = None,
    progress: bool = False,
    plots: bool = True,
    force_new: bool = False,
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
        dtype: ``"float32"`` or ``"float64"``. (default: ``None``: a given PhiCalculator's
            own, else a continued run's, else :data:`~phicalc.md.resume.DEFAULT_DTYPE`, float32)
        progress: Show a tqdm progress bar on stderr. (default: ``False``)
        plots: Write ``energy.png``, ``temperature.png``, ``charges.png``. (default: ``True``)
        force_new: Start a new run even where ``out`` holds a phicalc run (its outputs, and
            only those, are removed). A directory holding files phicalc did not write is
            refused whatever this says. (default: ``False``)

    Returns:
        The summary also written to ``summary.json``: ``steps_done``, ``ms_per_step``,
        ``ns_per_day``, ``temperature_mean``/``temperature_std`` (K, over all logged steps),
        ``energy_drift_meV_per_atom_per_ps`` (slope of a linear fit of the conserved energy over
        time: total energy for NVE; ``None`` for Langevin), ``completed``, ``interrupted_by``...

    The run is guarded (:mod:`phicalc.md.guards`): a step with a non-finite or exploding
    energy, a runaway temperature, atoms flying apart or colliding stops it; the outputs are cut
    back to the last checkpoint, ``summary.json`` says ``"completed": false`` and ``"failed"``,
    and :class:`~phicalc.errors.SimulationError` is raised.

    ``out`` is locked while the run writes (``<out>/.lock``); a run directory belongs to one
    model (weights fingerprint), dtype, system and settings: a continuation with anything else
    is refused.

    Raises:
        ConfigError: Invalid settings or an unreadable structure.
        UnknownElementError: The structure has an element the model does not support.
        CheckpointError: ``out`` holds a checkpoint of another model, system or settings, or an
            unreadable one.
        RunDirectoryError: ``out`` is held by another run, holds files phicalc did not write, or
            holds a run without checkpoint (and ``force_new`` is false).
        SimulationError: The run blew up (see above).
    """
    if config is None:
        config = MDConfig()
    elif not isinstance(config, MDConfig):
        config = MDConfig.from_dict(config)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    rundir.check_writable(out)

    if dtype is None and isinstance(model, BaseCalculator):
        dtype = model.parameters.get("dtype")  # a PhiCalculator's own precision
    dtype = run_dtype(out / CHECKPOINT, dtype, force_new=force_new)
    atoms = load_structure(structure)
    if config.charge is not None:
        atoms.info["charge"] = float(config.charge)
    compile_model = _compile_model(config, model, device)
    calc = make_calculator(
        model,
        device=device,
        dtype=dtype,
        charge=config.charge,
        partition_skin=config.partition_skin,
        neighbor_skin=config.neighbor_skin,
        compile=compile_model,
        edge_chunk=config.edge_chunk,
    )
    check_elements(atoms, calc)
    model_name = describe_model(model)
    weights = weights_fingerprint(calc)

    # Inputs are valid: take the directory (one run at a time), then decide what it holds.
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = rundir.RunLock(out)
    try:
        lock.acquire()
    except BaseException:
        _remove_if_made(out, created)
        raise
    try:
        try:
            checkpoint = _claim_directory(
                out,
                config,
                atoms,
                model=model_name,
                dtype=dtype,
                weights=weights,
                force_new=force_new,
            )
        except BaseException:
            lock.release()
            _remove_if_made(out, created)
            raise
        if checkpoint is None:
            rundir.write_marker(
                out,
                {
                    "model": model_name,
                    "weights": weights,
                    "dtype": dtype,
                    "formula": atoms.get_chemical_formula(),
                    "config": json_safe(config.to_dict()),
                    "phicalc": __version__,
                },
            )
        return _integrate_run(
            out,
            atoms,
            calc,
            config,
            checkpoint,
            model_name=model_name,
            weights=weights,
            dtype=dtype,
            progress=progress,
            plots=plots,
        )
    finally:
        lock.release()


def _remove_if_made(out: Path, created: bool) -> None:
    """Remove ``out`` again if this call created it and it holds nothing but the lock."""
    if not created:
        return
    with contextlib.suppress(OSError):
        (out / rundir.LOCK).unlink()
        out.rmdir()


def _compile_model(config: MDConfig, model: object, device: str) -> bool:
    """Whether the run compiles its model (:meth:`MDConfig.compile_on`); an ASE calculator of
    the user's is used as is. Open structures go through the compiled replay, periodic cells
    through a compiled backbone (:class:`~phicalc.compiled.CompiledBackbone`)."""
    if isinstance(model, BaseCalculator):
        return False
    from phicalc.device import resolve_device

    on = config.compile_on(resolve_device(device).type)
    if on and config.compile is None:
        logger.info(
            "a run of %d steps on a CPU: the model is compiled with torch.compile (PaiNN/SchNet "
            "models; about a minute, then 2-3x faster steps; --no-compile skips it); "
            "summary.json says whether it was",
            config.steps,
        )
    return on


def _ran_compiled(calc: BaseCalculator) -> bool:
    """Whether ``calc`` evaluated the model through ``torch.compile``."""
    compiled = (getattr(calc, "graph_replay", None), getattr(calc, "compiled_backbone", None))
    return any(getattr(part, "compiled", False) for part in compiled)


def _claim_directory(
    out: Path,
    config: MDConfig,
    atoms: Atoms,
    *,
    model: str,
    dtype: str,
    weights: str | None,
    force_new: bool,
) -> ckpt.Checkpoint | None:
    """The checkpoint to continue from ``out``, or ``None`` for a new run (after removing the
    outputs of a phicalc run that ``force_new`` starts over). Nothing but phicalc's own files is
    ever removed.

    Raises:
        RunDirectoryError: ``out`` holds files of something else, or a run without a
            checkpoint and ``force_new`` is false.
        CheckpointError: The checkpoint is unreadable, or of another model, system or settings
            (and ``force_new`` is false).
    """
    state = rundir.inspect_directory(out, outputs=OUTPUTS, checkpoint=CHECKPOINT)
    if state.has_checkpoint and not force_new:
        return load_resumable(
            out / CHECKPOINT, config, atoms, model=model, dtype=dtype, weights=weights
        )
    rundir.check_new_run(out, state, force_new=force_new)
    if state.is_run:
        removed = rundir.remove_outputs(out, OUTPUTS)
        if removed:
            logger.warning("--force-new: starting %s over, removed %s", out, removed)
    return None


def _integrate_run(
    out: Path,
    atoms: Atoms,
    calc: BaseCalculator,
    config: MDConfig,
    checkpoint: ckpt.Checkpoint | None,
    *,
    model_name: str,
    weights: str | None,
    dtype: str,
    progress: bool,
    plots: bool,
) -> dict[str, Any]:
    """Integrate from ``checkpoint`` (or the start) in the claimed directory ``out``."""
    from ase.io.trajectory import Trajectory
    from ase.md.logger import MDLogger

    start = start_of_run(checkpoint, atoms, out)  # before the checkpoint's state is applied

    if config.timestep_fs > 1.0 and 1 in atoms.numbers:
        logger.warning(
            "time step %.3g fs with hydrogen present: H vibrations (~9 fs period) need <= 1 fs, "
            "or the run heats up and may blow up",
            config.timestep_fs,
        )
    rng = initialize(atoms, config, checkpoint)
    atoms.calc = calc
    dyn = make_dynamics(atoms, config, rng)
    conserved = conserved_energy(dyn, config.ensemble)
    recorder = Recorder(dyn, conserved)
    guard = RunGuard(
        dyn,
        ensemble=config.ensemble,
        target_K=config.temperature_K,
        conserved=conserved,
        cutoff=float(getattr(getattr(calc, "model", None), "cutoff", 5.0)),
        reference=None if checkpoint is None else checkpoint.extra.get("guard"),
    )

    if checkpoint is not None:
        restore_thermostat_state(dyn, checkpoint.thermostat)
        restore_partition(calc, atoms, checkpoint.extra.get("partition_positions"))
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
            config=json_safe(config.to_dict()),  # inf as null, as files have always had
            rng_state=rng.bit_generator.state,
            thermostat=thermostat_state(dyn),
            extra={
                "model": model_name,
                "weights": weights,
                "dtype": dtype,
                "phicalc": __version__,
                "guard": guard.reference_state(),
                "partition_positions": partition_positions(calc),
                "start_structure": start,
            },
        )
        ckpt.save_checkpoint(out / CHECKPOINT, state)

    dyn.attach(guard, interval=1)  # first: a bad step is never written
    dyn.attach(trajectory.write, interval=config.traj_every)
    dyn.attach(recorder.record_frame, interval=config.traj_every)
    dyn.attach(md_logger, interval=config.log_every)
    dyn.attach(recorder.record_thermo, interval=config.log_every)
    if config.checkpoint_every:
        dyn.attach(write_checkpoint, interval=config.checkpoint_every)

    start_step = dyn.nsteps
    started = time.perf_counter()
    failure: BlowUp | None = None
    try:
        interrupted, wall_s = integrate(
            dyn, config.steps, progress=progress, finish=write_checkpoint
        )
    except BlowUp as error:
        failure = error
    except BadGeometryError as error:  # atoms collided inside a step
        failure = BlowUp(dyn.nsteps + 1, str(error))
    finally:
        trajectory.close()
        md_logger.close()
    if failure is not None:
        _fail(
            out,
            failure,
            config=config,
            atoms=atoms,
            recorder=recorder,
            steps_run=dyn.nsteps - start_step,
            wall_s=time.perf_counter() - started,
            resumed_from=None if checkpoint is None else checkpoint.step,
            model=model_name,
            device=str(getattr(calc, "device", "cpu")),
            dtype=dtype,
            compiled=_ran_compiled(calc),
        )

    summary = summarize(
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
        compiled=_ran_compiled(calc),
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


def _fail(
    out: Path,
    failure: BlowUp,
    *,
    config: MDConfig,
    atoms: Atoms,
    recorder: Recorder,
    **summary_fields: Any,
) -> NoReturn:
    """Stop a run that blew up: cut the trajectory and log back to the last checkpoint (whose
    state is good: it passed every guard), write ``summary.json`` with ``completed: false`` and
    ``failed``, and raise :class:`~phicalc.errors.SimulationError`."""
    good_step: int | None = None
    if (out / CHECKPOINT).exists():
        good_step = ckpt.load_checkpoint(out / CHECKPOINT).step
        ckpt.truncate_trajectory(out / TRAJECTORY, ckpt.frames_up_to(good_step, config.traj_every))
        ckpt.truncate_log(out / LOG, ckpt.frames_up_to(good_step, config.log_every))
        recorder.cut(good_step)
        recorder.dyn.nsteps = good_step
    summary = summarize(
        out=out, config=config, atoms=atoms, recorder=recorder, interrupted=None, **summary_fields
    )
    summary["completed"] = False
    summary["failed"] = str(failure)
    summary["failed_at_step"] = failure.step
    ckpt.write_text_atomic(out / SUMMARY, json.dumps(json_safe(summary), indent=2) + "\n")
    where = (
        f"{out} holds the run up to its last checkpoint, step {good_step}"
        if good_step is not None
        else f"{out} has no checkpoint of it"
    )
    message = f"the run blew up at {failure}; it stopped, {where}"
    logger.error("%s", message)
    raise SimulationError(message, summary)
