"""Restart files for :mod:`phicalc.md.run`: everything needed to continue a run bit for bit.

A checkpoint is one ``.npz`` file read with ``allow_pickle=False`` (no pickle anywhere):

==================  ======================  ==================================================
key                 shape / type            meaning
==================  ======================  ==================================================
``positions``       [n_atoms, 3] float64    Cartesian positions in Å
``momenta``         [n_atoms, 3] float64    momenta in ASE units (amu·Å/ASE-time)
``cell``            [3, 3] float64          cell, rows are the cell vectors (Å)
``pbc``             [3] bool                periodic directions
``numbers``         [n_atoms] int64         atomic numbers
``nhc_eta``         [n_chain] float64       Nose–Hoover chain positions (only for that driver)
``nhc_p_eta``       [n_chain] float64       Nose–Hoover chain momenta (only for that driver)
``meta``            0-d str                 JSON: step, run config, numpy ``bit_generator``
                                            state, scalar thermostat state, versions
==================  ======================  ==================================================

The file is written through :func:`phicalc.io.atomic_open` (a temporary name in the same directory,
fsynced and moved into place), so a crash leaves either the old or the new checkpoint, never half
of one.
The helpers at the bottom cut the run's other outputs (trajectory, log) back to the checkpoint
step, so a resumed run neither repeats nor loses frames.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from phicalc.errors import PhicalcError
from phicalc.io import atomic_open, atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

FORMAT = "phicalc.md.checkpoint"
FORMAT_VERSION = 1


class CheckpointError(PhicalcError, ValueError):
    """A checkpoint or the run directory around it cannot be used to resume."""


@dataclass
class Checkpoint:
    """State of an MD run after ``step`` completed steps.

    Attributes:
        step: Number of completed MD steps.
        positions: [n_atoms, 3] positions in Å.
        momenta: [n_atoms, 3] momenta in ASE units.
        cell: [3, 3] cell in Å (rows are the cell vectors).
        pbc: [3] periodic directions.
        numbers: [n_atoms] atomic numbers.
        config: The run configuration (``MDConfig.to_dict()``).
        rng_state: ``numpy.random.Generator.bit_generator.state`` (a JSON-able dict).
        thermostat: Driver state: scalars (``transferred_energy`` in eV for Bussi) and, for
            Nose–Hoover chains, the arrays ``nhc_eta`` / ``nhc_p_eta`` [n_chain].
        extra: Free-form JSON-able metadata (model, versions).
    """

    step: int
    positions: np.ndarray
    momenta: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    numbers: np.ndarray
    config: dict[str, Any]
    rng_state: dict[str, Any]
    thermostat: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def check_system(self, atoms: Atoms) -> None:
        """Raise :class:`CheckpointError` unless ``atoms`` has the same atoms in the same order."""
        if len(atoms) != len(self.numbers) or not np.array_equal(atoms.numbers, self.numbers):
            raise CheckpointError(
                f"the checkpoint holds {_formula(self.numbers)}, the structure given is "
                f"{atoms.get_chemical_formula()}: use another --out directory for a new system"
            )

    def apply_to(self, atoms: Atoms) -> None:
        """Write positions, momenta, cell and pbc into ``atoms`` without applying constraints.

        Raises:
            CheckpointError: If ``atoms`` holds other elements or another atom count.
        """
        self.check_system(atoms)
        atoms.set_cell(self.cell)
        atoms.set_pbc(self.pbc)
        atoms.set_positions(self.positions, apply_constraint=False)
        atoms.set_momenta(self.momenta, apply_constraint=False)


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (:func:`phicalc.io.atomic_open`)."""
    path = Path(path)
    scalars = {k: v for k, v in checkpoint.thermostat.items() if not isinstance(v, np.ndarray)}
    arrays = {k: v for k, v in checkpoint.thermostat.items() if isinstance(v, np.ndarray)}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": int(checkpoint.step),
        "config": checkpoint.config,
        "rng_state": checkpoint.rng_state,
        "thermostat": scalars,
        "extra": checkpoint.extra,
    }
    with atomic_open(path) as handle:
        np.savez(
            handle,
            positions=np.asarray(checkpoint.positions, dtype=np.float64),
            momenta=np.asarray(checkpoint.momenta, dtype=np.float64),
            cell=np.asarray(checkpoint.cell, dtype=np.float64),
            pbc=np.asarray(checkpoint.pbc, dtype=bool),
            numbers=np.asarray(checkpoint.numbers, dtype=np.int64),
            meta=np.array(json.dumps(meta)),
            **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()},
        )
    logger.debug("checkpoint at step %d written to %s", checkpoint.step, path)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: If the file is not a readable phicalc MD checkpoint.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as error:  # zipfile, numpy, json and OS errors of a damaged file
        raise CheckpointError(
            f"{path} is not a readable MD checkpoint ({type(error).__name__}: {error}); "
            "use --force-new to start the run over, or another --out"
        ) from error
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a phicalc MD checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {meta.get('format_version')}, "
            f"this phicalc reads version {FORMAT_VERSION}"
        )
    core = ("positions", "momenta", "cell", "pbc", "numbers")
    missing = [key for key in core if key not in arrays]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    thermostat: dict[str, Any] = dict(meta.get("thermostat", {}))
    thermostat.update({k: v for k, v in arrays.items() if k not in core})
    return Checkpoint(
        step=int(meta["step"]),
        positions=arrays["positions"],
        momenta=arrays["momenta"],
        cell=arrays["cell"],
        pbc=arrays["pbc"],
        numbers=arrays["numbers"],
        config=meta["config"],
        rng_state=meta["rng_state"],
        thermostat=thermostat,
        extra=meta.get("extra", {}),
    )


def config_mismatch(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, ignore: tuple[str, ...]
) -> list[str]:
    """Names and values of the settings that differ between two run configurations.

    Args:
        saved: Configuration stored in the checkpoint.
        current: Configuration of the run being started.
        ignore: Keys allowed to differ (e.g. the total step count).

    Returns:
        One ``"key: saved -> current"`` string per difference; empty if they match.
    """
    keys = sorted((set(saved) | set(current)) - set(ignore))
    return [
        f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
        for key in keys
        if saved.get(key) != current.get(key)
    ]


def frames_up_to(step: int, interval: int) -> int:
    """Number of frames written at steps ``0, interval, 2·interval, ... <= step``."""
    return step // interval + 1


def readable_frames(path: str | os.PathLike) -> int:
    """Number of leading frames of an ASE trajectory that can be read (0 if the file cannot
    be opened at all)."""
    from ase.io.trajectory import Trajectory

    try:
        reader = Trajectory(path)
    except Exception:  # a damaged header or offsets table
        return 0
    with reader:
        try:
            available = len(reader)
        except Exception:
            return 0
        for index in range(available):
            try:
                reader[index]
            except Exception:  # truncated or overwritten frame data
                return index
    return available


def truncate_trajectory(path: str | os.PathLike, n_frames: int) -> None:
    """Cut an ASE trajectory back to its first ``n_frames`` frames (rewritten atomically).

    Every frame is read first; frames after the first unreadable one (a damaged file) are
    dropped, with a warning.

    Raises:
        CheckpointError: If the file holds fewer than ``n_frames`` readable frames.
    """
    from ase.io.trajectory import Trajectory

    path = Path(path)
    readable = readable_frames(path)
    try:
        with Trajectory(path) as reader:
            available = len(reader)
    except Exception:
        available = 0
    if readable < available or (readable == 0 and path.stat().st_size > 0):
        logger.warning(
            "%s is damaged: only its first %d of %d frames are readable; the rest is dropped",
            path,
            readable,
            available,
        )
    if readable < n_frames:
        raise CheckpointError(
            f"{path} has {readable} readable frames but the checkpoint expects {n_frames}: "
            "the file was damaged or changed; use --force-new or another --out"
        )
    if available == n_frames == readable:
        return
    with Trajectory(path) as reader, atomic_path(path) as tmp, Trajectory(tmp, "w") as writer:
        for index in range(n_frames):
            writer.write(reader[index])
    logger.info("trajectory cut back from %d to %d frames", available, n_frames)


def truncate_log(path: str | os.PathLike, n_lines: int) -> None:
    """Keep the header and the first ``n_lines`` data lines of an ASE ``MDLogger`` file.

    Raises:
        CheckpointError: If the file holds fewer than ``n_lines`` data lines.
    """
    path = Path(path)
    lines = path.read_text().splitlines(keepends=True)
    header, data = lines[:1], lines[1:]
    if len(data) < n_lines:
        raise CheckpointError(
            f"{path} has {len(data)} lines but the checkpoint expects {n_lines}: "
            "the run directory was changed; use a new --out directory"
        )
    if len(data) > n_lines:
        write_text_atomic(path, "".join(header + data[:n_lines]))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`phicalc.io.atomic_write_text`)."""
    atomic_write_text(path, text)


def save_npz_atomic(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to an ``.npz`` file atomically (:func:`phicalc.io.atomic_open`)."""
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)


def _formula(numbers: np.ndarray) -> str:
    return Atoms(numbers=numbers).get_chemical_formula()
