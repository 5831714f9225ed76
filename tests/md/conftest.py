"""Fixtures of the MD tests: a tiny untrained seeded PaiNN + Φ model and small structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

TINY = {
    "backbone": "painn",
    "elements": ["H", "C", "N", "O"],
    "cutoff": 4.0,
    "num_features": 16,
    "num_blocks": 2,
    "seed": 0,
}


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine two threads per
    process make each step ~10x slower; restored afterwards for other test directories."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model():
    """Untrained PaiNN with a Φ-Module (H, C, N, O; 4 Å cutoff)."""
    from phicalc import build_model

    return build_model(phi=True, **TINY)


@pytest.fixture(scope="session")
def tiny_model_without_phi():
    """The same tiny PaiNN without a Φ-Module (no charges or potentials)."""
    from phicalc import build_model

    return build_model(phi=False, **TINY)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    tiny_model.save(path)
    return path


@pytest.fixture()
def ethanol() -> Atoms:
    """Ethanol (9 atoms), non-periodic."""
    return molecule("CH3CH2OH")


@pytest.fixture()
def water_box() -> Atoms:
    """Eight water molecules on a grid in a periodic 6.4 Å cube (24 atoms)."""
    water = molecule("H2O")
    rng = np.random.default_rng(1)
    positions, symbols = [], []
    for i in range(2):
        for j in range(2):
            for k in range(2):
                shift = 3.2 * np.array([i, j, k]) + 1.6 + rng.normal(0, 0.05, 3)
                positions.extend(water.positions + shift)
                symbols.extend(water.get_chemical_symbols())
    return Atoms(symbols, positions=positions, cell=[6.4, 6.4, 6.4], pbc=True)
