"""Atomic file writes: the one way phicalc replaces a file on disk.

Every writer (model files, training checkpoints and histories, MD checkpoints, thermo arrays,
summaries) goes through :func:`atomic_write`: the content goes to a temporary file in the target's
directory, is flushed and fsynced, gets the mode a plain ``open()`` would give (0666 & ~umask), and
is moved into place with :func:`os.replace`. A crash leaves the old file or the new one, never a
mix or a truncated file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path`` atomically.

    Args:
        path: the final file name.
        mode: ``"wb"`` (bytes) or ``"w"`` (text, UTF-8).

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        kwargs = {"encoding": "utf-8"} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; match a plain open()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[IO[Any]], object], *, binary: bool = True
) -> None:
    """Write ``path`` atomically by calling ``write(handle)`` on a temporary file."""
    with atomic_open(path, "wb" if binary else "w") as handle:
        write(handle)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    atomic_write(path, lambda handle: handle.write(text), binary=False)
