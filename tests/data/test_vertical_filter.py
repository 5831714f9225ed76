"""The bound-anion filter of vertical charge states (phicalc.data.xtb.vertical)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from phicalc.data.xtb.vertical import drop_unbound_anions, geometry_key, is_bound


def _labelled(positions, energy: float, charge: int, category: str, species: str) -> Atoms:
    atoms = Atoms("OH2", positions=positions)
    atoms.info.update(charge=charge, category=category, species=species)
    atoms.calc = SinglePointCalculator(atoms, energy=energy)
    return atoms


def test_is_bound_keeps_cations_and_anions_below_the_neutral():
    assert is_bound(+1, energy=-90.0, neutral_energy=-100.0)
    assert is_bound(0, energy=-100.0, neutral_energy=-100.0)
    assert is_bound(-1, energy=-103.0, neutral_energy=-100.0)
    assert not is_bound(-1, energy=-97.0, neutral_energy=-100.0)
    assert not is_bound(-1, energy=-100.0, neutral_energy=-100.0)  # zero affinity: not bound


def test_drop_unbound_anions_matches_neutrals_by_geometry_and_keeps_order():
    a = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    b = a + np.array([0.0, 0.0, 0.05])
    neutral_a = _labelled(a, -100.0, 0, "neutral", "A")
    neutral_b = _labelled(b, -200.0, 0, "neutral", "B")
    frames = [
        _labelled(a, -88.0, +1, "vertical", "A"),
        _labelled(a, -96.0, -1, "vertical", "A"),  # 4 eV above its neutral: dropped
        _labelled(b, -203.0, -1, "vertical", "B"),  # 3 eV below: kept
        _labelled(b, -150.0, -1, "ion", "B-"),  # not a vertical state: kept as it is
    ]
    kept, dropped = drop_unbound_anions(frames, [neutral_a, neutral_b])
    assert kept == [frames[0], frames[2], frames[3]]
    assert dropped == [frames[1]]
    # matched by geometry, not by order: the neutrals given the other way round change nothing
    assert drop_unbound_anions(frames, [neutral_b, neutral_a]) == (kept, dropped)
    assert geometry_key(frames[1]) == geometry_key(neutral_a) != geometry_key(neutral_b)


def test_drop_unbound_anions_refuses_an_anion_without_its_neutral():
    a = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    anion = _labelled(a, -96.0, -1, "vertical", "A")
    with pytest.raises(ValueError, match="no labelled neutral frame"):
        drop_unbound_anions([anion], [_labelled(a + 0.1, -100.0, 0, "neutral", "A")])
