"""keep_freed_memory: a freed large buffer stays with the process (glibc only)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

PROBE = """
import os, sys
import numpy as np
from phicalc.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def resident_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
buffer = np.ones(64 * 2**20 // 8)  # 64 MB, touched: above glibc's largest mmap threshold
held = resident_mb()
del buffer
print(held - resident_mb())
"""


def _returned_mb(mode: str) -> float:
    """MB of resident memory a fresh process gives back when it frees a 64 MB buffer."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def test_a_freed_large_buffer_stays_with_the_process():
    assert _returned_mb("default") > 48  # glibc unmaps it: the next one faults in afresh
    assert _returned_mb("keep") < 8  # kept, mapped, for the next allocation


def test_the_command_keeps_freed_memory_unless_told(monkeypatch):
    from phicalc import allocator
    from phicalc.cli.main import main

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    assert main(["models"]) == 0
    assert calls == [1]
    monkeypatch.setenv(allocator.ENVIRONMENT_SWITCH, "default")
    assert main(["models"]) == 0
    assert calls == [1]  # not again
