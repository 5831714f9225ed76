"""Fixtures for the data-layer tests: tiny files in the exact release formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_factories import make_md22_arrays, make_oe62_frame, write_oe62


@pytest.fixture
def oe62_frame():
    return make_oe62_frame()


@pytest.fixture
def oe62_file(tmp_path, oe62_frame) -> Path:
    return write_oe62(oe62_frame, tmp_path / "df_62k.json")


@pytest.fixture
def md22_file(tmp_path) -> Path:
    path = tmp_path / "md22_Ac-Ala3-NHMe.npz"
    np.savez(path, **make_md22_arrays())
    return path
