"""Atomic file writes: the one way phicalc replaces a file on disk.

Every writer (model files, training checkpoints and histories, MD checkpoints, thermo arrays,
summaries, cut-back trajectories) goes through :func:`atomic_path` or one of the helpers built on
it: the content goes to a temporary file in the target's directory, is flushed and fsynced, gets
the mode a plain ``open()`` would give (0666 & ~umask), and is moved into place with
:func:`os.replace`. A crash leaves the old file or the new one, never a mix or a truncated file.

Writers that take a handle (``torch.save``, ``np.savez``, ``Figure.savefig``) use
:func:`atomic_open` or :func:`atomic_write`; writers that insist on a file name (an ASE
``Trajectory``) use :func:`atomic_path`.
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
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file name beside ``path``; on a clean exit it replaces ``path``.

    The caller writes (and closes) the temporary file itself; it is then fsynced, given the mode
    of a plain ``open()`` and moved over ``path``. On an exception the temporary file is removed
    and ``path`` is left as it was.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; match a plain open()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
    kwargs = {"encoding": "utf-8"} if mode == "w" else {}
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[IO[Any]], object], *, binary: bool = True
) -> None:
    """Write ``path`` atomically by calling ``write(handle)`` on a temporary file."""
    with atomic_open(path, "wb" if binary else "w") as handle:
        write(handle)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    atomic_write(path, lambda handle: handle.write(text), binary=False)
