"""The shipped models give bit-for-bit the outputs recorded in tests/pinned/ (CPU, float64).

Refactors must not change a single number; a retrained model is re-pinned on purpose with
``python scripts/pin_shipped_outputs.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from phicalc.serialization import list_models
from phicalc.testing import pinned_structures, shipped_outputs

PINNED = np.load(Path(__file__).parent / "pinned" / "shipped_outputs.npz")
CASES = sorted({tuple(key.split("/")[:2]) for key in PINNED.files})


def test_every_shipped_model_is_pinned() -> None:
    assert {name for name, _ in CASES} == set(list_models())


@pytest.mark.parametrize(("name", "label"), CASES)
def test_shipped_outputs_are_unchanged(name: str, label: str, one_torch_thread) -> None:
    outputs = shipped_outputs(name, pinned_structures()[label])
    pinned = {
        key.split("/")[2]: PINNED[key] for key in PINNED.files if key.startswith(f"{name}/{label}/")
    }
    assert set(outputs) == set(pinned)
    for key, value in outputs.items():
        np.testing.assert_array_equal(value, pinned[key], err_msg=f"{name} {label} {key}")
