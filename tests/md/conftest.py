"""Fixtures of the MD tests: small structures, the tiny model without Φ, one torch thread."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from phicalc.testing import TINY_PAINN


@pytest.fixture(autouse=True)
def _single_thread(one_torch_thread):
    """Every MD test runs on one torch thread (see ``one_torch_thread``)."""


@pytest.fixture(scope="session")
def tiny_model_without_phi():
    """The tiny PaiNN of ``tiny_model`` without a Φ-Module (no charges or potentials)."""
    from phicalc import build_model

    return build_model(phi=False, **TINY_PAINN)


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
