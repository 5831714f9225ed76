"""Keep freed memory inside the process, so large tensors are not page-faulted in every call.

glibc's malloc serves allocations above its mmap threshold (at most 32 MB) with fresh ``mmap``
pages and hands them back to the kernel on ``free``. A force call on a periodic box allocates
many such tensors (a 1,536-atom box: ~80,000 edges × 192 features × 4 bytes = 61 MB each), so
every call faults every page of them in again, and the kernel's zeroing and bookkeeping cost
about as much CPU time as the model itself (``reports/speed_cuts.txt``). With
``mallopt(M_MMAP_MAX, 0)`` every allocation comes from the heap and with
``mallopt(M_TRIM_THRESHOLD, -1)`` freed heap memory is never returned, so the next call reuses
pages that are already mapped. The process keeps its peak memory until it exits: what a long
MD run or training wants, and why the ``phicalc`` command does it while the library only offers
it (:func:`keep_freed_memory`). Set ``PHICALC_MALLOC=default`` to keep glibc's defaults in the
command as well.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

logger = logging.getLogger(__name__)

#: mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

#: Environment variable that keeps glibc's defaults in the ``phicalc`` command ("default").
ENVIRONMENT_SWITCH = "PHICALC_MALLOC"


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve every allocation from its heap and never give freed memory back
    to the kernel, for the rest of the process: the same numbers, without re-faulting large
    tensors in every call (what it saves: ``reports/speed_cuts.txt``).

    Returns:
        True where applied; False where the C library is not glibc (nothing changes there).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
    if applied:
        logger.debug("glibc malloc: no mmap allocations, no trimming (phicalc.allocator)")
    return applied


def keep_freed_memory_unless_told() -> bool:
    """:func:`keep_freed_memory`, unless ``PHICALC_MALLOC=default`` is set (the command's
    switch)."""
    if os.environ.get(ENVIRONMENT_SWITCH, "").strip().lower() == "default":
        return False
    return keep_freed_memory()
