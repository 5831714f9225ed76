"""PhiCalculator: the ASE contract, caching, units and error messages."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.io import Trajectory

from phicalc import PhiCalculator, build_model, save_model
from phicalc.errors import BadGeometryError, ChargeStateError, ConfigError, UnknownElementError


@pytest.fixture(scope="module")
def model():
    return build_model(
        "painn", phi=True, charge_spin=True, seed=0, cutoff=4.0, num_features=16, num_blocks=2
    )


def test_one_pass_fills_every_property(model) -> None:
    atoms = molecule("CH3CH2OH")
    calc = PhiCalculator(model, dtype="float64")
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    expected = {
        "energy",
        "free_energy",
        "energies",
        "forces",
        "charges",
        "dipole",
        "potentials",
        "electrostatic_energy",
    }
    assert expected <= set(calc.results)
    assert "stress" not in calc.results  # open structure
    assert atoms.get_potential_energy(force_consistent=True) == energy
    assert atoms.get_potential_energies().sum() == pytest.approx(energy, abs=1e-10)
    assert calc.get_potentials(atoms).shape == (len(atoms),)
    assert calc.get_electrostatic_energy(atoms) == pytest.approx(
        0.5 * float(np.dot(atoms.get_charges(), calc.get_potentials(atoms)))
    )
    assert atoms.get_dipole_moment().shape == (3,)


def test_stress_only_for_periodic_cells(model) -> None:
    atoms = bulk("C", "diamond", a=3.57)
    atoms.calc = PhiCalculator(model, dtype="float64")
    assert atoms.get_stress().shape == (6,)
    molecule_atoms = molecule("H2O")
    molecule_atoms.calc = PhiCalculator(model)
    with pytest.raises(PropertyNotImplementedError):
        molecule_atoms.get_stress()


def test_stress_is_computed_from_the_first_call_that_asks_for_it(model) -> None:
    """Forces alone (MD without a barostat) skip the stress; asking for it computes it (the
    same forces), and from then on every call brings it along (one pass for a barostat)."""
    atoms = bulk("C", "diamond", a=3.57) * (2, 1, 1)
    atoms.rattle(0.05, seed=0)
    calc = PhiCalculator(model, dtype="float64")
    atoms.calc = calc
    forces = atoms.get_forces()
    assert "stress" not in calc.results and not calc.stress_asked
    stress = atoms.get_stress()
    np.testing.assert_allclose(calc.results["forces"], forces, rtol=0, atol=1e-12)
    fresh = PhiCalculator(model, dtype="float64")
    np.testing.assert_allclose(fresh.get_stress(atoms.copy()), stress, rtol=0, atol=1e-12)
    atoms.positions[0] += 0.01
    atoms.get_forces()
    assert "stress" in calc.results  # asked once: computed with every call since


def test_model_without_phi_has_no_charges() -> None:
    atoms = molecule("H2O")
    atoms.calc = PhiCalculator(build_model("schnet", phi=False, seed=0, num_features=8))
    atoms.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_charges()


def test_cache_and_charge_invalidation(model) -> None:
    atoms = molecule("CH3CH2OH")
    calc = PhiCalculator(model, dtype="float64", charge=1.0)
    atoms.calc = calc
    assert atoms.get_charges().sum() == pytest.approx(1.0)  # constructor default
    results = calc.results
    atoms.get_forces()
    assert calc.results is results  # cached: no second pass
    atoms.info["charge"] = -1.0  # info wins over the constructor default
    assert atoms.get_charges().sum() == pytest.approx(-1.0)
    energy = atoms.get_potential_energy()
    atoms.positions[0, 0] += 0.01
    assert atoms.get_potential_energy() != energy  # a move recomputes
    assert atoms.get_charges().sum() == pytest.approx(-1.0)


def _moved(atoms: Atoms, change: str) -> Atoms:
    """A copy of ``atoms`` with one kind of change (or none)."""
    atoms = atoms.copy()
    if change == "positions":
        atoms.positions[2, 1] += 1e-9
    elif change == "below tolerance":  # ASE's 1e-15: no change
        atoms.positions[0, 0] += 1e-16
    elif change == "numbers":
        atoms.numbers[0] = 7
    elif change == "cell":
        atoms.cell[0, 0] += 0.1
    elif change == "pbc":
        atoms.pbc = [True, False, False]
    elif change == "initial_charges":
        atoms.set_initial_charges([0.1] + [0.0] * (len(atoms) - 1))
    elif change == "momenta":  # not a system change for ASE
        atoms.set_momenta(np.ones((len(atoms), 3)))
    elif change == "initial_magmoms":  # an array the calculator's atoms lack
        atoms.set_initial_magnetic_moments([1.0] + [0.0] * (len(atoms) - 1))
    elif change == "positions and cell":
        atoms.positions[0] += 0.5
        atoms.cell[1, 1] -= 0.2
    return atoms


@pytest.mark.parametrize(
    "change",
    [
        "none",
        "positions",
        "below tolerance",
        "numbers",
        "cell",
        "pbc",
        "initial_charges",
        "momenta",
        "initial_magmoms",
        "positions and cell",
    ],
)
def test_state_check_reports_what_ases_does(model, change) -> None:
    """The calculator's change list (exact comparisons first) is ASE's ``compare_atoms``'."""
    from ase.calculators.calculator import compare_atoms

    atoms = molecule("CH3CH2OH")
    atoms.set_cell([8.0, 8.0, 8.0])
    calc = PhiCalculator(model, dtype="float64")
    atoms.calc = calc
    atoms.get_potential_energy()
    other = _moved(atoms, change)
    assert sorted(calc.check_state(other)) == sorted(compare_atoms(calc.atoms, other))
    assert bool(calc.check_state(other)) == (change not in ("none", "below tolerance", "momenta"))


def test_spin_is_part_of_the_cache_key(model) -> None:
    atoms = molecule("CH3CH2OH")
    calc = PhiCalculator(model, dtype="float64", spin=2)
    atoms.calc = calc
    doublet = atoms.get_potential_energy()  # the constructor default
    atoms.info["spin"] = 3  # info wins, and the cache notices
    triplet = atoms.get_potential_energy()
    assert triplet != doublet
    atoms.info["spin"] = 2
    assert atoms.get_potential_energy() == doublet


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"charge": 1.0}, "total charge 1 e"),
        ({"spin": 2}, "spin multiplicity 2"),
    ],
)
def test_model_without_charge_inputs_refuses_charged_or_open_shell(info, message) -> None:
    atoms = molecule("H2O")
    atoms.info.update(info)
    atoms.calc = PhiCalculator(build_model("painn", phi=True, seed=0, num_features=8))
    with pytest.raises(ChargeStateError, match=message):
        atoms.get_potential_energy()


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"charge": float("nan")}, r'info\["charge"\].*finite number, got nan'),
        ({"charge": "abc"}, r'info\["charge"\].*got \'abc\''),
        ({"spin": 0}, r'info\["spin"\].*integer >= 1'),
        ({"spin": 1.5}, r'info\["spin"\].*got 1.5'),
    ],
)
def test_bad_charge_or_spin_is_named(model, info, message) -> None:
    atoms = molecule("H2O")
    atoms.info.update(info)
    atoms.calc = PhiCalculator(model)
    with pytest.raises(BadGeometryError, match=message):
        atoms.get_potential_energy()


def test_float32_agrees_with_float64(model) -> None:
    atoms = molecule("CH3CH2OH")
    atoms.calc = PhiCalculator(model, dtype="float64")
    e64, f64 = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = PhiCalculator(model, dtype="float32")
    assert atoms.get_potential_energy() == pytest.approx(e64, abs=1e-4)
    np.testing.assert_allclose(atoms.get_forces(), f64, atol=1e-4)


def test_trajectory_stores_charges(model, tmp_path) -> None:
    atoms = molecule("H2O")
    atoms.calc = PhiCalculator(model)
    atoms.get_potential_energy()
    with Trajectory(tmp_path / "t.traj", "w") as trajectory:
        trajectory.write(atoms)
    with Trajectory(tmp_path / "t.traj") as trajectory:
        np.testing.assert_allclose(trajectory[0].get_charges(), atoms.get_charges())


def test_unknown_element_names_it_and_the_known_ones(model) -> None:
    atoms = molecule("SiH4")
    atoms.calc = PhiCalculator(model)
    with pytest.raises(UnknownElementError, match=r"\['Si'\].*\['H', 'C', 'N', 'O'\]"):
        atoms.get_potential_energy()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_positions(model, bad) -> None:
    atoms = molecule("H2O")
    atoms.positions[2, 0] = bad
    atoms.calc = PhiCalculator(model)
    with pytest.raises(BadGeometryError, match="NaN or infinite"):
        atoms.get_potential_energy()


def test_overlapping_atoms_error_and_opt_out(model) -> None:
    atoms = Atoms("CH", positions=[[0, 0, 0], [0.2, 0, 0]])
    atoms.calc = PhiCalculator(model)
    with pytest.raises(BadGeometryError, match="0.200 Å apart"):
        atoms.get_potential_energy()
    atoms.calc = PhiCalculator(model, min_distance=None)
    assert np.isfinite(atoms.get_potential_energy())


def test_overlap_through_periodic_image(model) -> None:
    atoms = Atoms("C", positions=[[0, 0, 0]], cell=[0.3, 3.0, 3.0], pbc=True)
    atoms.calc = PhiCalculator(model)
    with pytest.raises(BadGeometryError, match="apart"):
        atoms.get_potential_energy()


def test_bad_options_are_named(model) -> None:
    with pytest.raises(ConfigError, match="dtype='float16'"):
        PhiCalculator(model, dtype="float16")


def test_loads_by_path(model, tmp_path) -> None:
    path = tmp_path / "m.pt"
    save_model(model, path)
    atoms = molecule("H2O")
    atoms.calc = PhiCalculator(str(path), dtype="float64")
    reference = molecule("H2O")
    reference.calc = PhiCalculator(model, dtype="float64")
    assert atoms.get_potential_energy() == reference.get_potential_energy()


def test_the_callers_model_is_left_untouched() -> None:
    """A cast works on a copy; flags, dtype and parameters of the given Potential never change,
    and forces still come from autograd with respect to the positions."""
    import torch

    model = build_model("painn", phi=True, seed=0, cutoff=4.0, num_features=16, num_blocks=2)
    model.train()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    atoms = molecule("CH3CH2OH")
    for dtype in ("float64", "float32"):
        calc = PhiCalculator(model, device="cpu", dtype=dtype)
        atoms.calc = calc
        assert np.abs(atoms.get_forces()).max() > 0
        assert calc.model is not model and not calc.model.training
    assert model.training and model.dtype == torch.float32
    assert all(parameter.requires_grad for parameter in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    # already on the device, dtype and in eval mode: used as is, flags still untouched
    model.eval()
    calc = PhiCalculator(model, device="cpu", dtype="float32")
    atoms.calc = calc
    forces = atoms.get_forces()
    assert calc.model is model and all(p.requires_grad for p in model.parameters())
    assert np.isfinite(forces).all()
