"""Screened nuclear repulsion (ZBL) of phicalc.nn.repulsion and the Potential's pair_repulsion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.fd import calculate_numerical_forces
from ase.data import covalent_radii

from phicalc import PhiCalculator, build_model
from phicalc.nn.repulsion import COULOMB_CONSTANT, SWITCH_FACTOR, NuclearRepulsion, zbl_screening
from phicalc.serialization import load_model, save_model
from phicalc.testing import MODEL_VARIANTS, TINY_PAINN

PAIR = torch.tensor([[0, 1], [1, 0]])


def _pair_energy(z: tuple[int, int], r: float) -> float:
    lengths = torch.tensor([r, r], dtype=torch.float64)
    return float(NuclearRepulsion()(torch.tensor(z), PAIR, lengths).sum())


def test_bare_nuclei_at_short_range_and_nothing_at_bond_lengths() -> None:
    assert float(zbl_screening(torch.zeros(1, dtype=torch.float64))) == pytest.approx(1.0, 1e-4)
    # far inside the screening length the nuclei repel as bare charges
    r = 1e-4
    assert _pair_energy((11, 17), r) == pytest.approx(COULOMB_CONSTANT * 11 * 17 / r, rel=2e-3)
    # a wall for Na-Cl where the charge-aware models had none (reports/ion_pair_md.md)
    assert _pair_energy((11, 17), 1.3) > _pair_energy((11, 17), 1.55) > 2.0
    # zero at and beyond the switch radius; bonds at their length see (almost) nothing
    switch = SWITCH_FACTOR * (covalent_radii[11] + covalent_radii[17])
    assert _pair_energy((11, 17), switch) == 0.0
    assert _pair_energy((11, 17), 2.36) == 0.0  # NaCl's bond length
    for z, r in (((6, 1), 1.09), ((6, 6), 1.34), ((6, 8), 1.21), ((1, 1), 0.74)):
        assert _pair_energy(z, r) == 0.0
    assert 0.0 < _pair_energy((6, 6), 1.20) < 2e-3  # C≡C, 0.79 × the covalent radii


def test_the_switch_is_smooth() -> None:
    """Energy and force go to zero continuously at the switch radius."""
    switch = SWITCH_FACTOR * (covalent_radii[11] + covalent_radii[17])
    r = torch.tensor([switch - 1e-3] * 2, dtype=torch.float64, requires_grad=True)
    energy = NuclearRepulsion()(torch.tensor([11, 17]), PAIR, r).sum()
    (force,) = torch.autograd.grad(energy, r)
    assert 0.0 < float(energy.detach()) < 1e-6
    assert float(force.abs().max()) < 1e-4


def _model(pair_repulsion: bool):
    """The contract's charged variant (Φ, Q/spin input, Qeq, Coulomb) with Na and Cl, float64."""
    options = {**TINY_PAINN, **MODEL_VARIANTS["charged"], "num_features": 8, "num_radial": 4}
    options["elements"] = ["H", "O", "Na", "Cl"]
    return build_model(**options, pair_repulsion=pair_repulsion).double().eval()


def _ions_and_water() -> Atoms:
    atoms = Atoms(
        "NaClOH2",
        positions=[[0, 0, 0], [1.6, 0.1, 0], [-1.2, 1.0, 0.3], [-1.5, 1.8, 0], [-1.7, 0.3, 0.5]],
    )
    atoms.info["charge"] = 0
    return atoms


@pytest.mark.filterwarnings("ignore::phicalc.errors.ExtrapolationWarning")  # on purpose
def test_potential_adds_the_term_and_its_forces_match_finite_differences() -> None:
    with_term, without = _model(True), _model(False)
    assert set(with_term.state_dict()) == set(without.state_dict())  # no parameters
    atoms = _ions_and_water()
    atoms.calc = PhiCalculator(with_term, device="cpu", dtype="float64", min_distance=None)
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    reference = atoms.copy()
    reference.calc = PhiCalculator(without, device="cpu", dtype="float64", min_distance=None)
    # the term adds each pair's energy once (Na-Cl at 1.6 Å and Na-O at 1.6 Å are inside)
    pairs = [
        _pair_energy((int(atoms.numbers[a]), int(atoms.numbers[b])), atoms.get_distance(a, b))
        for a in range(len(atoms))
        for b in range(a + 1, len(atoms))
    ]
    assert sum(p > 0 for p in pairs) == 2
    assert energy - reference.get_potential_energy() == pytest.approx(sum(pairs), rel=1e-9)
    numerical = calculate_numerical_forces(atoms, eps=1e-5)
    np.testing.assert_allclose(forces, numerical, atol=1e-5, rtol=1e-5)


def test_pair_repulsion_survives_a_reload_and_old_files_load_without_it(tmp_path) -> None:
    save_model(_model(True), tmp_path / "with.pt")
    assert load_model(tmp_path / "with.pt").repulsion is not None
    save_model(_model(False), tmp_path / "without.pt")
    loaded = load_model(tmp_path / "without.pt")
    assert loaded.repulsion is None and loaded.config.pair_repulsion is False
    assert load_model("phi-painn-organic").repulsion is None  # a file written before the option
