"""Charge targets that carry each molecule's dipole (phicalc.data.xtb.dipole_charges)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from scipy.spatial.transform import Rotation

from phicalc.data.datasets import make_record
from phicalc.data.xtb.dipole_charges import (
    covalent_molecule_labels,
    dipole_charges,
    dipole_correction,
)


def _dipole(charges: np.ndarray, atoms: Atoms) -> np.ndarray:
    return charges @ (atoms.positions - atoms.get_center_of_mass())


def test_the_correction_keeps_the_charge_reaches_the_dipole_and_is_least_norm():
    rng = np.random.default_rng(0)
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    charges = rng.normal(0, 0.3, len(atoms))
    charges -= charges.mean() - 1.0 / len(atoms)  # a cation: the sum is kept, whatever it is
    target = np.array([0.3, -0.2, 0.5])
    delta = dipole_correction(charges, atoms.positions, atoms.get_masses(), target)
    assert delta.sum() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(_dipole(charges + delta, atoms), target, atol=1e-12)
    # least norm: no part of Δq along a change that moves neither the sum nor the dipole
    centred = atoms.positions - atoms.get_center_of_mass()
    constraints = np.vstack([np.ones(len(atoms)), centred.T])
    null = np.linalg.svd(constraints)[2][4:]
    np.testing.assert_allclose(null @ delta, 0.0, atol=1e-12)
    # rotating the molecule and the dipole together changes nothing
    rotation = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    turned = dipole_correction(
        charges, atoms.positions @ rotation.T, atoms.get_masses(), rotation @ target
    )
    np.testing.assert_allclose(turned, delta, atol=1e-12)
    assert not dipole_correction(np.array([1.0]), np.zeros((1, 3)), np.ones(1), target).any()


def _water_record(charges: tuple[float, float, float], dipole: np.ndarray) -> Atoms:
    water = molecule("H2O")
    return make_record(water, charges=np.array(charges), dipole=dipole)


def test_a_frame_of_one_molecule_takes_its_own_dipole():
    target = np.array([0.0, 0.0, 0.46])
    record = _water_record((-0.56, 0.28, 0.28), target)

    def no_labelling(*_):
        raise AssertionError("a frame of one molecule needs no labelling")

    charges, labelled, failed = dipole_charges(record, no_labelling)
    np.testing.assert_allclose(_dipole(charges, record), target, atol=1e-12)
    assert charges.sum() == pytest.approx(0.0, abs=1e-12) and (labelled, failed) == (0, 0)


@pytest.mark.parametrize("periodic", [False, True])
def test_each_molecule_of_a_frame_gets_its_own_correction(periodic):
    """Two waters and an ion (in a cell, one water split across its face): each water's
    correction is the one its labelling alone gives, added to the frame's charges, which keep
    their transfer between molecules; the single atom is untouched."""
    first, second = molecule("H2O"), molecule("H2O")
    second.translate([3.5, 0.4, 0.0])
    ion = Atoms("Na", positions=[[-3.0, 0.5, 0.5]])
    frame = first + second + ion
    frame.translate([0.2, 0.0, 0.0])  # the first water's H at x < 0: across the cell face
    frame_charges = np.array([-0.60, 0.30, 0.32, -0.55, 0.27, 0.25, 0.81])
    if periodic:
        frame.set_cell([9.0, 8.0, 8.0])
        frame.set_pbc(True)
        frame.wrap()
    record = make_record(frame, charges=frame_charges)
    assert covalent_molecule_labels(record).tolist() == [0, 0, 0, 1, 1, 1, 2]
    calls = []

    def label(alone: Atoms, charge: int):
        calls.append(charge)
        bond = alone.positions[1:] - alone.positions[0]
        assert np.linalg.norm(bond, axis=1) == pytest.approx([0.97, 0.97], abs=0.03)  # unwrapped
        return np.array([-0.5, 0.25, 0.25]), np.array([0.1, 0.2, 0.3])

    charges, labelled, failed = dipole_charges(record, label)
    assert (labelled, failed) == (2, 0) and calls == [0, 0]
    assert charges[6] == frame_charges[6]
    for members in ([0, 1, 2], [3, 4, 5]):
        expected = dipole_correction(
            np.array([-0.5, 0.25, 0.25]),
            _unwrapped(record, members),
            record.get_masses()[members],
            np.array([0.1, 0.2, 0.3]),
        )
        np.testing.assert_allclose(charges[members] - frame_charges[members], expected, atol=1e-12)
    assert charges.sum() == pytest.approx(frame_charges.sum(), abs=1e-12)


def _unwrapped(atoms: Atoms, members: list[int]) -> np.ndarray:
    """Positions of ``members`` with each atom at its nearest image from the first."""
    positions = atoms.positions[members]
    if not atoms.pbc.any():
        return positions
    fractional = np.linalg.solve(atoms.cell.array.T, (positions - positions[0]).T).T
    return positions[0] + (fractional - np.round(fractional)) @ atoms.cell.array


def test_gfn2_waters_far_apart_carry_gfn2s_water_dipole():
    """With GFN2-xTB itself: a water's Mulliken charges give 0.32 e·Å of GFN2-xTB's 0.46; the
    corrected charges of two waters 12 Å apart (each labelled alone) give each its own GFN2-xTB
    dipole, and stay correlated with Mulliken's (r > 0.95)."""
    pytest.importorskip("tblite")
    from phicalc.data.xtb.dipole_charges import gfn2_labeller
    from phicalc.data.xtb.single_point import label_structure

    single = label_structure(molecule("H2O"))
    mulliken_dipole = np.linalg.norm(_dipole(single.arrays["ref_charges"], single))
    gfn2_dipole = np.linalg.norm(single.info["ref_dipole"])
    assert mulliken_dipole == pytest.approx(0.32, abs=0.02)
    assert gfn2_dipole == pytest.approx(0.46, abs=0.02)
    second = molecule("H2O")
    second.rotate(90, "x")
    second.translate([12.0, 0.0, 0.0])
    pair = label_structure(molecule("H2O") + second)
    charges, labelled, failed = dipole_charges(pair, gfn2_labeller())
    assert (labelled, failed) == (2, 0)
    for members in ([0, 1, 2], [3, 4, 5]):
        alone = pair[members]
        alone_record = label_structure(alone)
        np.testing.assert_allclose(
            _dipole(charges[members], alone), alone_record.info["ref_dipole"], atol=2e-3
        )
    assert np.corrcoef(charges, pair.arrays["ref_charges"])[0, 1] > 0.95
