"""PhiCalculator reliability (issue #16): shared between threads, finite results or a clear
error, extrapolation warned; a fuzz test over random small structures, charges and cells."""

from __future__ import annotations

import copy
import math
import threading
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from phicalc import PhiCalculator
from phicalc.errors import ExtrapolationWarning, NonFiniteResultError, PhicalcError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_calculator_shared_by_threads_gives_each_its_own_results(tiny_model):
    calc = PhiCalculator(tiny_model, device="cpu", dtype="float64")
    structures = [molecule(name) for name in ("CH4", "H2O", "NH3", "CH3OH")]
    expected = []
    for atoms in structures:
        expected.append(calc.get_potential_energy(atoms))
    calc.reset()
    errors: list[BaseException] = []
    got: dict[tuple[int, int], float] = {}

    def work(thread: int) -> None:
        try:
            for round_ in range(15):
                index = (thread + round_) % len(structures)
                atoms = structures[index].copy()
                atoms.positions += 1e-4 * round_  # a new geometry: every call computes
                got[thread, round_] = calc.get_potential_energy(atoms)
                forces = calc.get_forces(atoms)
                assert forces.shape == (len(atoms), 3)
        except BaseException as error:  # collected: a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for (thread, round_), energy in got.items():
        index = (thread + round_) % len(structures)
        assert abs(energy - expected[index]) < 0.05, (thread, round_)  # not another molecule's
    assert copy.deepcopy(calc)._lock is not calc._lock


def test_colliding_atoms_warn_of_extrapolation(tiny_model, caplog):
    calc = PhiCalculator(tiny_model, device="cpu", dtype="float64")
    atoms = Atoms("CH", positions=[[0, 0, 0], [0.52, 0, 0]])
    atoms.calc = calc
    with pytest.warns(ExtrapolationWarning, match=r"atoms 0 \(C\) and 1 \(H\) are 0.520 Å"):
        atoms.get_potential_energy()
    assert "far outside" in caplog.text
    atoms.positions[1, 0] = 1.1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        atoms.get_potential_energy()


def test_ions_fallen_together_warn_of_extrapolation():
    """Na⁺ and Cl⁻ at 1.55 Å, where the charge-aware models have no wall between them and MD
    left them (reports/ion_pair_md.md), warn; at a contact distance (2.4 Å) they do not."""
    pair = Atoms("NaCl", positions=[[0, 0, 0], [1.55, 0, 0]])
    pair.calc = PhiCalculator("phi-painn-organic", device="cpu", dtype="float64")
    with pytest.warns(ExtrapolationWarning, match=r"atoms 0 \(Na\) and 1 \(Cl\) are 1.550 Å"):
        pair.get_potential_energy()
    pair.positions[1, 0] = 2.4
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        pair.get_potential_energy()


def test_absurd_per_atom_energy_warns(tiny_model):
    model = copy.deepcopy(tiny_model).double()
    with torch.no_grad():
        model.energy_scale.fill_(1e6)  # every atom far from its reference energy
    atoms = molecule("H2O")
    atoms.calc = PhiCalculator(model, device="cpu", dtype="float64")
    with pytest.warns(ExtrapolationWarning, match="from its element's reference"):
        atoms.get_potential_energy()


def test_non_finite_model_output_raises(tiny_model):
    model = copy.deepcopy(tiny_model).double()
    with torch.no_grad():
        model.atomic_energies.fill_(math.nan)
    atoms = molecule("H2O")
    atoms.calc = PhiCalculator(model, device="cpu", dtype="float64")
    with pytest.raises(NonFiniteResultError, match="non-finite .*energy"):
        atoms.get_potential_energy()


hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")


@st.composite
def structures(draw) -> Atoms:
    n_atoms = draw(st.integers(1, 6))
    symbols = draw(
        st.lists(st.sampled_from(["H", "C", "N", "O"]), min_size=n_atoms, max_size=n_atoms)
    )
    coordinate = st.floats(-4.0, 4.0, allow_nan=False)
    positions = np.array(
        draw(
            st.lists(
                st.tuples(coordinate, coordinate, coordinate), min_size=n_atoms, max_size=n_atoms
            )
        )
    )
    atoms = Atoms(symbols, positions=positions)
    if draw(st.booleans()):
        lengths = draw(st.tuples(*[st.floats(1.0, 9.0)] * 3))
        atoms.cell = np.diag(lengths)
        atoms.pbc = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    if draw(st.booleans()):
        atoms.info["charge"] = draw(
            st.one_of(
                st.integers(-2, 2),
                st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=3),
            )
        )
    if draw(st.booleans()):
        atoms.positions[0, 0] = draw(st.sampled_from([math.nan, math.inf, 1e30]))
    return atoms


@hypothesis.settings(max_examples=30, deadline=None, derandomize=True)
@hypothesis.given(atoms=structures())
def test_fuzz_finite_results_or_a_clear_error(atoms, tiny_model):
    """Random small structures, cells and charges: finite results, or a phicalc error (a
    ValueError) naming the problem; never NaN, never another exception."""
    calc = PhiCalculator(tiny_model, device="cpu", dtype="float64")
    atoms.calc = calc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        try:
            energy = atoms.get_potential_energy()
            forces = atoms.get_forces()
        except PhicalcError as error:
            assert isinstance(error, ValueError) and str(error)
            return
    assert math.isfinite(energy) and np.all(np.isfinite(forces))
    if "stress" in calc.results:
        assert np.all(np.isfinite(calc.results["stress"]))
