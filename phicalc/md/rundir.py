"""Ownership of an MD output directory: one run at a time, and never another program's files.

* :class:`RunLock` holds an exclusive :func:`fcntl.flock` on ``<out>/.lock`` while a run writes;
  a second run into the same directory is refused at once (:class:`RunDirectoryError`).
* :data:`MARKER` (``.phicalc-run.json``) is written when a run starts, so a directory phicalc
  made is told apart from a folder of the user's own files. :func:`inspect_directory` classifies
  ``out`` before anything is written: a new run refuses a non-empty directory that is not a
  phicalc run, and a phicalc run without a checkpoint (killed before its first one) is only
  started over when asked to (``force_new``); then only the files phicalc writes are removed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from phicalc.errors import PhicalcError
from phicalc.io import atomic_write_text

LOCK = ".lock"
MARKER = ".phicalc-run.json"


class RunDirectoryError(PhicalcError, ValueError):
    """``--out`` cannot be used: another run holds it, or it holds files phicalc did not write."""


class RunLock:
    """Exclusive, non-blocking lock on ``<directory>/.lock`` (released on :meth:`release`, on
    exit of the ``with`` block, or by the OS when the process dies).

    Raises:
        RunDirectoryError: On entry, if another process holds the lock.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirectoryError(
                f"another phicalc run holds {self.directory} (lock {self.directory / LOCK}); "
                "wait for it to finish or use another --out"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@dataclass(frozen=True)
class DirectoryState:
    """What :func:`inspect_directory` found in an output directory.

    Attributes:
        is_run: The directory holds a phicalc run (marker or checkpoint).
        has_checkpoint: It holds ``checkpoint.npz``.
        foreign: Names of entries that are neither phicalc outputs nor its marker/lock.
    """

    is_run: bool
    has_checkpoint: bool
    foreign: tuple[str, ...]


def inspect_directory(out: Path, *, outputs: tuple[str, ...], checkpoint: str) -> DirectoryState:
    """Classify ``out`` (which may not exist) by its entries; ``outputs`` are the names a run
    writes, ``checkpoint`` the checkpoint's name."""
    if not out.exists():
        return DirectoryState(is_run=False, has_checkpoint=False, foreign=())
    names = {entry.name for entry in out.iterdir()}
    has_checkpoint = checkpoint in names
    is_run = MARKER in names or has_checkpoint
    ours = set(outputs) | {MARKER, LOCK}
    foreign = tuple(sorted(name for name in names if name not in ours))
    return DirectoryState(is_run=is_run, has_checkpoint=has_checkpoint, foreign=foreign)


def check_new_run(out: Path, state: DirectoryState, *, force_new: bool) -> None:
    """Refuse to start a new run in ``out`` where that would mix with or delete other files.

    Raises:
        RunDirectoryError: ``out`` is not empty and not a phicalc run (whatever ``force_new``),
            or it is a phicalc run without a checkpoint and ``force_new`` is false.
    """
    if not state.is_run:
        if _listing(out):
            raise RunDirectoryError(
                f"--out {out} is not empty and is not a phicalc run directory "
                f"(it holds {', '.join(_listing(out))}); use an empty or new directory"
            )
        return
    if not force_new:
        raise RunDirectoryError(
            f"--out {out} holds a phicalc run without a checkpoint (it stopped before its first "
            "one); pass --force-new to delete its outputs and start over, or use another --out"
        )


def _listing(out: Path, limit: int = 5) -> list[str]:
    if not out.exists():
        return []
    names = sorted(entry.name for entry in out.iterdir() if entry.name != LOCK)
    return names[:limit] + ([f"... ({len(names) - limit} more)"] if len(names) > limit else [])


def remove_outputs(out: Path, outputs: tuple[str, ...]) -> list[str]:
    """Delete the files named in ``outputs`` (phicalc's own) from ``out``; returns their names.
    Nothing else in ``out`` is touched."""
    removed = []
    for name in outputs:
        path = out / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    return removed


def write_marker(out: Path, identity: dict[str, Any]) -> None:
    """Mark ``out`` as a phicalc run directory, recording the run's identity (JSON)."""
    atomic_write_text(out / MARKER, json.dumps(identity, indent=2, default=str) + "\n")


def check_writable(out: Path) -> None:
    """Raise :class:`RunDirectoryError` naming ``out`` if it (or the nearest existing parent it
    would be created in) is not a writable directory."""
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise RunDirectoryError(f"--out {out}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"--out {out}: {probe} is not writable")
