"""phicalc.testing.PhaseTimer, the benchmarks' timer of a call's parts."""

from __future__ import annotations

import time

import pytest

from phicalc.testing import PhaseTimer


def _busy(seconds: float) -> str:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return "done"


def test_wrapped_calls_add_their_time_under_their_name_even_when_they_raise() -> None:
    timer = PhaseTimer()
    busy = timer.wrap(_busy, "busy")
    assert busy(0.02) == "done" and busy(0.02) == "done"
    assert 0.04 <= timer.times["busy"] < 1.0

    def failing() -> None:
        _busy(0.02)
        raise ValueError("no")

    with pytest.raises(ValueError):
        timer.wrap(failing, "failing")()
    assert timer.times["failing"] >= 0.02
    assert set(timer.times) == {"busy", "failing"}
