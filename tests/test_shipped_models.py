"""Every model in models/ loads safely, has a model card, and behaves as a potential."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from phicalc.calculator import PhiCalculator
from phicalc.serialization import list_models, resolve_model_path

SHIPPED = list_models()


def test_the_shipped_set_has_every_backbone_with_and_without_phi() -> None:
    for backbone in ("painn", "erwin", "clifford"):
        assert {f"{backbone}-ac-ala3", f"phi-{backbone}-ac-ala3"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_and_has_a_card(name: str) -> None:
    calc = PhiCalculator(name, device="cpu", dtype="float64")  # torch.load(weights_only=True)
    card = (resolve_model_path(name).parent / "model_card.md").read_text()
    assert card.startswith(f"# {name}\n") and "## Test metrics" in card
    assert calc.model.has_phi == name.startswith("phi-")
    atoms = molecule("CH3CH2OH")
    atoms.rotate(30, "x")
    atoms.calc = calc
    forces = atoms.get_forces()
    assert np.isfinite(atoms.get_potential_energy()) and np.isfinite(forces).all()
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-8)  # no net force on a molecule
    if calc.model.has_phi:
        assert atoms.get_charges().sum() == pytest.approx(0.0, abs=1e-10)
