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
        if atoms.pbc.all():
            atoms.get_stress()  # from then on the calculator computes it with everything else
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


def _per_molecule_model():
    """A small model with the default model's charge handling (Φ, Coulomb, charges equilibrated
    per molecule, E_Q: the contract's "local" variant), float64, with Na and Cl."""
    options = {**TINY_PAINN, **MODEL_VARIANTS["local"], "num_features": 8, "num_radial": 4}
    options["elements"] = [*TINY_PAINN["elements"], "Na", "Cl"]
    return build_model(**options).double().eval()


def _mixed_batch():
    """Molecules of different sizes and charge states, a structure of several molecules with
    lone ions (formal charges to find), and a periodic cell."""
    ions = molecule("H2O") + molecule("NH3")
    ions.positions[3:] += [3.0, 0.0, 0.0]
    ions += molecule("CH4")
    ions.positions[-5:] += [0.0, 4.0, 0.0]
    from ase import Atoms

    ions += Atoms("NaCl", [[0.0, -4.0, 0.0], [4.0, -4.0, 0.0]])
    ions.info["charge"] = 0.0
    cation = molecule("NH3") + Atoms("H", [[0.0, 0.0, -1.0]])
    cation.info["charge"] = 1.0
    radical = molecule("CH3CH2OH")
    radical.info.update(charge=-1.0, spin=2)
    batch = [molecule("H2O"), ions, cation, molecule("CH3CH2OH"), radical, small_periodic_cell(1)]
    for k, atoms in enumerate(batch):
        atoms.rattle(0.02, seed=k)
    return batch


def test_compiled_batches_equal_one_by_one_calls():
    """PhiCalculator(compile=True).calculate_batch: chunks of open structures go through one
    torch.compile with symbolic sizes (molecules and formal charges found on the host), and
    equal plain one-by-one calls for every chunking; chunks with the periodic cell go through the
    compiled backbone. Chunks of other compositions reuse the one compiled graph of each (no
    per-structure loop guarded)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    from phicalc.compiled import compile_blocker
    from phicalc.graph.batch import atoms_to_graph, collate

    model = _per_molecule_model()
    plain = PhiCalculator(model, dtype="float64", device="cpu")
    compiled = PhiCalculator(model, dtype="float64", device="cpu", compile=True)
    batch = _mixed_batch()
    expected = one_by_one(plain, batch)
    torch._dynamo.reset()  # no compiled code of an earlier test serves: each part compiles here
    graphs_before = counters["stats"]["unique_graphs"]
    # one chunk with the cell (compiled backbone); then [H2O, ions] and [NH4+, C2H5OH] (compiled
    # pass, other sizes, molecule counts and charges) and [C2H5OH- doublet, cell] (backbone)
    for max_atoms in (10_000, 20):
        got = compiled.calculate_batch(batch, max_atoms=max_atoms)
        for result, ref in zip(got, expected):
            assert set(result) == set(ref)
            for key, value in ref.items():
                np.testing.assert_allclose(result[key], value, rtol=0, atol=1e-9, err_msg=key)
    assert compiled.batch_forward is not None and compiled.batch_forward.compiled
    assert compiled.compiled_backbone is not None and compiled.compiled_backbone.compiled
    # the pass and the backbone
    assert counters["stats"]["unique_graphs"] - graphs_before == 2
    assert expected[1]["charges"][-2:] == pytest.approx([1.0, -1.0], abs=0.2)  # Na+, Cl-
    graphs = [atoms_to_graph(a, model.cutoff) for a in batch]
    assert compile_blocker(model, collate(graphs[:-1])) is None
    assert compile_blocker(model, collate(graphs)) == "a periodic structure"
