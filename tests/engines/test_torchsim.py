"""The TorchSim adapter (phicalc.engines.torchsim): TorchSim's own interface validation, batch
results equal to PhiCalculator per structure, charges, and a short batched Langevin run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from phicalc import build_model
from phicalc.calculator import PhiCalculator
from phicalc.testing import MODEL_VARIANTS, TINY_PAINN

ts = pytest.importorskip("torch_sim")
from phicalc.engines.torchsim import PhiTorchSimModel  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_validate_model_outputs():
    from torch_sim.models.interface import validate_model_outputs

    model = build_model(**{**TINY_PAINN, "elements": ["H", "C", "N", "O", "Si", "Fe"]})
    adapter = PhiTorchSimModel(model, dtype=torch.float64)
    validate_model_outputs(adapter, torch.device("cpu"), torch.float64)


def molecules():
    out = []
    for k, name in enumerate(("H2O", "CH3OH", "CH4", "NH3", "C2H6", "HCOOH")):
        atoms = molecule(name)
        atoms.rattle(0.03, seed=k)
        out.append(atoms)
    return out


@pytest.mark.parametrize("variant", ["spectral", "charged"])
def test_batch_equals_calculator(variant):
    model = build_model(**{**TINY_PAINN, **MODEL_VARIANTS[variant]})
    structures = molecules()
    charges = [0.0] * len(structures)
    if variant == "charged":
        charges[1] = 1.0
        structures[1].info.update(charge=1.0, spin=2)
    spins = [2 if c else 1 for c in charges]
    adapter = PhiTorchSimModel(model, dtype=torch.float64, charge=charges, spin=spins)
    state = ts.io.atoms_to_state(structures, torch.device("cpu"), torch.float64)
    out = adapter(state)
    assert out["energy"].shape == (len(structures),)
    calc = PhiCalculator(model, dtype="float64", device="cpu")
    start = 0
    for s, atoms in enumerate(structures):
        atoms.calc = calc
        n = len(atoms)
        assert float(out["energy"][s]) == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(out["forces"][start : start + n], atoms.get_forces(), atol=1e-10)
        np.testing.assert_allclose(
            out["charges"][start : start + n], atoms.get_charges(), atol=1e-10
        )
        assert float(out["charges"][start : start + n].sum()) == pytest.approx(charges[s], abs=1e-8)
        start += n


def test_langevin_batch_runs(tiny_model):
    """A few NVT Langevin steps of 4 replicas of ethanol in one batch stay finite."""
    replicas = []
    for k in range(4):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.02, seed=k)
        replicas.append(atoms)
    adapter = PhiTorchSimModel(tiny_model, dtype=torch.float64)
    final = ts.integrate(
        system=replicas,
        model=adapter,
        integrator=ts.nvt_langevin,
        n_steps=5,
        temperature=300,
        timestep=0.0005,  # ps
    )
    assert final.positions.shape == (4 * 9, 3)
    assert torch.isfinite(final.positions).all()


def test_edge_chunks_give_the_unchunked_batch():
    """Runs of 16 edges (each recomputed for the forces) give the unchunked batch's numbers."""
    model = build_model(**{**TINY_PAINN, **MODEL_VARIANTS["charged"]})
    state = ts.io.atoms_to_state(molecules(), torch.device("cpu"), torch.float64)
    plain = PhiTorchSimModel(model, dtype=torch.float64, edge_chunk=None)(state)
    adapter = PhiTorchSimModel(model, dtype=torch.float64, edge_chunk=16)
    assert adapter._chunking(1) is not None  # every batch in runs of 16 edges
    chunked = adapter(state)
    for name in ("energy", "forces", "charges"):
        torch.testing.assert_close(chunked[name], plain[name], rtol=0, atol=1e-11)
