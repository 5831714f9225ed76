"""Batched inference (phicalc.batch_inference.predict, PhiCalculator.calculate_batch) equals
one-by-one PhiCalculator calls in float64, across chunking, charges and periodic cells."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from phicalc import build_model
from phicalc.batch_inference import chunk_indices, predict
from phicalc.calculator import PhiCalculator
from phicalc.errors import BadGeometryError
from phicalc.testing import MODEL_VARIANTS, TINY_PAINN, small_periodic_cell

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def structures():
    """Molecules of different sizes, a cation and a doublet, and a periodic cell."""
    water, ethanol, methane = molecule("H2O"), molecule("CH3CH2OH"), molecule("CH4")
    cation = molecule("NH3")
    cation.info["charge"] = 1.0
    cation.info["spin"] = 2
    for k, atoms in enumerate((water, ethanol, methane)):
        atoms.rattle(0.02, seed=k)
    return [water, ethanol, small_periodic_cell(1), methane, cation]


@pytest.fixture(scope="module", params=["spectral", "charged"])
def calc(request):
    model = build_model(**{**TINY_PAINN, **MODEL_VARIANTS[request.param]})
    return PhiCalculator(model, dtype="float64", device="cpu")


def one_by_one(calc, atoms_list):
    out = []
    for atoms in atoms_list:
        atoms = atoms.copy()
        atoms.calc = calc
        atoms.get_potential_energy()
        out.append(dict(calc.results))
    return out


@pytest.mark.parametrize("max_atoms", [10_000, 9, 1])
def test_batch_equals_one_by_one(calc, max_atoms):
    atoms_list = structures()
    if not calc.model.config.charge_spin:  # neutral-only model refuses Q != 0
        atoms_list = atoms_list[:-1]
    expected = one_by_one(calc, atoms_list)
    batched = calc.calculate_batch(atoms_list, max_atoms=max_atoms)
    assert len(batched) == len(expected)
    for got, ref, atoms in zip(batched, expected, atoms_list):
        assert set(got) == set(ref), (set(got) ^ set(ref), atoms)
        assert ("stress" in got) == atoms.pbc.all()
        for key, value in ref.items():
            np.testing.assert_allclose(got[key], value, rtol=0, atol=1e-10, err_msg=key)
    assert "charges" in batched[0] and "potentials" in batched[0]


def test_empty_list(calc):
    assert calc.calculate_batch([]) == []


def test_charge_default_and_info(tiny_model):
    """The calculator's charge default applies where info has none; info wins otherwise."""
    model = build_model(**{**TINY_PAINN, **MODEL_VARIANTS["charged"]})
    water = molecule("H2O")
    anion = water.copy()
    anion.info["charge"] = -1.0
    calc = PhiCalculator(model, dtype="float64", device="cpu", charge=-1.0)
    a, b = calc.calculate_batch([water, anion])
    assert a["energy"] == pytest.approx(b["energy"], abs=1e-12)
    assert a["charges"].sum() == pytest.approx(-1.0, abs=1e-8)
    neutral = predict(calc.model, [water])[0]
    assert neutral["charges"].sum() == pytest.approx(0.0, abs=1e-8)


def test_chunking_rule():
    assert chunk_indices([3, 3, 3], 6) == [[0, 1], [2]]
    assert chunk_indices([10, 2], 5) == [[0], [1]]
    assert chunk_indices([], 5) == []
    with pytest.raises(ValueError):
        chunk_indices([1], 0)


def test_close_atoms_named(calc):
    bad = molecule("H2O")
    bad.positions[1] = bad.positions[0] + [0.1, 0, 0]
    with pytest.raises(BadGeometryError, match="structure 1"):
        calc.calculate_batch([molecule("CH4"), bad])
