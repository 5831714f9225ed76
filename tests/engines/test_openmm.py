"""The openmm-ml potential "phicalc" (phicalc.engines.openmm): a System built with
MLPotential("phicalc", model=...) on the Reference platform gives PhiCalculator's energy and
forces in kJ/mol and kJ/mol/nm, with the total charge passed through."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import molecule

from phicalc import build_model
from phicalc.calculator import PhiCalculator
from phicalc.errors import ConfigError
from phicalc.testing import MODEL_VARIANTS, TINY_PAINN

openmm = pytest.importorskip("openmm")
pytest.importorskip("openmmml")
from openmm import app, unit  # noqa: E402
from openmmml import MLPotential  # noqa: E402

from phicalc.engines.openmm import PhicalcPotentialImplFactory  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def registered():
    """The entry point needs phicalc installed (pip install .); from a checkout on PYTHONPATH,
    register the same factory by hand."""
    MLPotential.registerImplFactory("phicalc", PhicalcPotentialImplFactory())


def test_entry_point_declared():
    try:
        import tomllib
    except ImportError:  # Python 3.10: pip vendors the same parser
        from pip._vendor import tomli as tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    group = config["project"]["entry-points"]["openmmml.potentials"]
    assert group["phicalc"] == "phicalc.engines.openmm:PhicalcPotentialImplFactory"


def topology_of(atoms, box=None):
    topology = app.Topology()
    chain = topology.addChain()
    residue = topology.addResidue("MOL", chain)
    for symbol in atoms.get_chemical_symbols():
        topology.addAtom(symbol, app.Element.getBySymbol(symbol), residue)
    if box is not None:
        topology.setPeriodicBoxVectors(box * unit.angstrom)
    return topology


def openmm_energy_forces(system, positions_angstrom):
    integrator = openmm.VerletIntegrator(0.0005)
    platform = openmm.Platform.getPlatformByName("Reference")
    context = openmm.Context(system, integrator, platform)
    context.setPositions(positions_angstrom * unit.angstrom)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy, np.asarray(forces)


@pytest.mark.parametrize("variant,charge", [("spectral", 0.0), ("charged", 1.0)])
def test_matches_calculator(variant, charge):
    model = build_model(**{**TINY_PAINN, **MODEL_VARIANTS[variant]})
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.02, seed=1)
    multiplicity = 2 if charge else 1
    potential = MLPotential("phicalc", model=model)
    system = potential.createSystem(
        topology_of(atoms), charge=charge, multiplicity=multiplicity, removeCMMotion=False
    )
    energy, forces = openmm_energy_forces(system, atoms.positions)

    atoms.info.update(charge=charge, spin=multiplicity)
    atoms.calc = PhiCalculator(model, dtype="float64", device="cpu")
    kj_mol = units.mol / units.kJ
    assert energy == pytest.approx(atoms.get_potential_energy() * kj_mol, abs=1e-6)
    np.testing.assert_allclose(forces, atoms.get_forces() * kj_mol * 10, atol=1e-6)
    if charge:
        assert atoms.get_charges().sum() == pytest.approx(charge, abs=1e-8)
        neutral = MLPotential("phicalc", model=model).createSystem(topology_of(atoms))
        assert openmm_energy_forces(neutral, atoms.positions)[0] != pytest.approx(energy)


def test_periodic_box(tiny_model):
    from phicalc.testing import small_periodic_cell

    atoms = small_periodic_cell(3)
    box = np.diag(np.diag(atoms.cell.array))  # OpenMM boxes are reduced: use an orthorhombic one
    atoms.cell = box
    atoms.wrap()
    system = MLPotential("phicalc").createSystem(
        topology_of(atoms, box), model=tiny_model, removeCMMotion=False
    )
    energy, forces = openmm_energy_forces(system, atoms.positions)
    atoms.calc = PhiCalculator(tiny_model, dtype="float64", device="cpu")
    kj_mol = units.mol / units.kJ
    assert energy == pytest.approx(atoms.get_potential_energy() * kj_mol, abs=1e-6)
    np.testing.assert_allclose(forces, atoms.get_forces() * kj_mol * 10, atol=1e-6)


def test_installed_entry_point_builds_the_system():
    """With phicalc installed (make install), openmm-ml finds it through its entry point alone:
    a fresh process, nothing registered by hand, a shipped model by name."""
    from importlib.metadata import entry_points

    if not [e for e in entry_points(group="openmmml.potentials") if e.name == "phicalc"]:
        pytest.skip("phicalc is not installed (pip install -e .), so no entry point is registered")
    script = """
import numpy as np, openmm
from ase.build import molecule
from openmm import app, unit
from openmmml import MLPotential
from phicalc import PhiCalculator
atoms = molecule("H2O")
topology = app.Topology()
residue = topology.addResidue("HOH", topology.addChain())
for symbol in atoms.get_chemical_symbols():
    topology.addAtom(symbol, app.Element.getBySymbol(symbol), residue)
system = MLPotential("phicalc", model="phi-painn-organic").createSystem(topology)
context = openmm.Context(system, openmm.VerletIntegrator(0.0005),
                         openmm.Platform.getPlatformByName("Reference"))
context.setPositions(atoms.positions * unit.angstrom)
energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
atoms.calc = PhiCalculator("phi-painn-organic", dtype="float64", device="cpu")
from ase import units
print(energy, atoms.get_potential_energy() * units.mol / units.kJ)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    openmm_kj, phicalc_kj = (float(x) for x in done.stdout.split())
    assert openmm_kj == pytest.approx(phicalc_kj, abs=1e-3)


def test_edge_chunks_give_the_unchunked_system(tiny_model):
    """``edge_chunk=12`` (messages in runs, recomputed for the forces) gives the same OpenMM
    energy and forces as ``edge_chunk=None``."""
    atoms = molecule("CH3CH2OH")
    results = []
    for edge_chunk in (None, 12):
        system = MLPotential("phicalc").createSystem(
            topology_of(atoms), model=tiny_model, edge_chunk=edge_chunk, removeCMMotion=False
        )
        results.append(openmm_energy_forces(system, atoms.positions))
    assert results[1][0] == pytest.approx(results[0][0], abs=1e-9)
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-9)
    with pytest.raises(ConfigError, match="edge_chunk"):  # the option is read, not ignored
        MLPotential("phicalc").createSystem(topology_of(atoms), model=tiny_model, edge_chunk=0)
