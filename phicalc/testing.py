"""Reusable test contract that every backbone, with and without Φ, must pass.

A backbone's test module subclasses :class:`PotentialContract`::

    class TestPaiNN(PotentialContract):
        backbone = "painn"
        hyperparameters = {"num_features": 16, "num_blocks": 2}

and pytest runs each check for three Φ variants (none, spectral filter, eigenbasis). Checks are
in float64: forces and stress against ``ase.calculators.fd``, invariances, batching, supercells,
charge conservation and save/load.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from scipy.spatial.transform import Rotation

from phicalc.build import build_model
from phicalc.calculator import PhiCalculator
from phicalc.errors import ChargeStateError
from phicalc.graph.batch import atoms_to_graph, collate
from phicalc.potential import Potential
from phicalc.serialization import load_model, save_model

ELEMENTS = ("H", "C", "N", "O")
#: ``build_model`` arguments of a tiny seeded PaiNN (F = 16, 2 blocks, 4 Å) for fast tests.
TINY_PAINN = {
    "backbone": "painn",
    "elements": list(ELEMENTS),
    "cutoff": 4.0,
    "num_features": 16,
    "num_blocks": 2,
    "seed": 0,
}
#: Electrostatics options of the contract's model variants (``build_model`` arguments).
#: "charged": Q/spin input, equilibrated charges as the Φ zero mode, Coulomb on the charges;
#: "qeq": the same without the Φ-Module (charges straight from the features);
#: "local": "charged" with the total charge reaching the atoms only through the equilibrated
#: charges (``charge_input="equilibrated"``) equilibrated per molecule with charge transfer
#: between neighbours (``equilibration_scope="molecule"``), and the equilibration energy E_Q added
#: (``charge_state_energy``); "switched": "charged" with its Coulomb term switched off inside
#: the cutoff (``switch_radius`` = cutoff, the edge case where the switch ends at the graph's edge).
MODEL_VARIANTS: dict[str, dict[str, Any]] = {
    "nophi": {"phi": False},
    "spectral": {"phi": {"method": "spectral"}},
    "eigenbasis": {"phi": {"method": "eigenbasis", "num_modes": 3}},
    "charged": {
        "phi": {"method": "spectral"},
        "charge_spin": True,
        "charge_equilibration": True,
        "coulomb": {"accuracy": 1e-10},
    },
    "qeq": {
        "phi": False,
        "charge_spin": True,
        "charge_equilibration": True,
        "coulomb": {"accuracy": 1e-10},
    },
    "local": {
        "phi": {"method": "spectral"},
        "charge_spin": True,
        "charge_equilibration": True,
        "coulomb": {"accuracy": 1e-10},
        "charge_input": "equilibrated",
        "charge_state_energy": True,
        "equilibration_scope": "molecule",
    },
    "switched": {
        "phi": {"method": "spectral"},
        "charge_spin": True,
        "charge_equilibration": True,
        "coulomb": {"accuracy": 1e-10, "switch_radius": 4.0},
    },
}
#: Variants that change only what comes after the backbone (the Coulomb switch acts on charges
#: and edge lengths alone): the contract checks them with PaiNN's, not with every backbone.
AFTER_BACKBONE_VARIANTS = ("switched",)
#: The variants every backbone's contract runs.
CONTRACT_VARIANTS = [name for name in MODEL_VARIANTS if name not in AFTER_BACKBONE_VARIANTS]


def small_periodic_cell(seed: int = 0) -> Atoms:
    """A triclinic, rattled 4-atom cell (H, C, N, O) with sides ~3 Å: smaller than 2 × cutoff."""
    rng = np.random.default_rng(seed)
    cell = np.array([[3.1, 0.0, 0.0], [0.4, 3.0, 0.0], [0.3, -0.2, 3.2]])
    fractional = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.1], [0.1, 0.5, 0.5], [0.5, 0.05, 0.5]])
    atoms = Atoms("HCNO", scaled_positions=fractional, cell=cell, pbc=True)
    atoms.positions += rng.normal(scale=0.05, size=(4, 3))
    return atoms


def random_rotation(seed: int = 0) -> np.ndarray:
    return Rotation.random(random_state=seed).as_matrix()


def pinned_structures() -> dict[str, Atoms]:
    """Fixed structures on which the shipped models' outputs are pinned: a rotated ethanol
    (open) and two waters in a triclinic periodic cell (stress)."""
    ethanol = molecule("CH3CH2OH")
    ethanol.rotate(30, "x")
    water = molecule("H2O")
    pair = water + water.copy()
    pair.positions[3:] += [2.1, 1.3, 0.4]
    pair.set_cell([[6.0, 0.0, 0.0], [0.5, 6.2, 0.0], [0.3, -0.4, 6.4]])
    pair.set_pbc(True)
    return {"ethanol": ethanol, "water_pbc": pair}


def ammonium_and_water(distance: float) -> Atoms:
    """NH4 (atoms 0–4; no charge set) and a water whose closest atom is ``distance`` Å away
    along x (atoms 5–7): an ion–neutral pair for the electrostatics tests."""
    ammonium = Atoms(
        "NH4",
        positions=[
            [0, 0, 0],
            [0.6, 0.6, 0.6],
            [-0.6, -0.6, 0.6],
            [-0.6, 0.6, -0.6],
            [0.6, -0.6, -0.6],
        ],
    )
    water = molecule("H2O")
    water.positions += [distance + 0.6 - water.positions[:, 0].min(), 0.0, 0.0]
    return ammonium + water


def shipped_outputs(name: str, atoms: Atoms) -> dict[str, np.ndarray]:
    """Every property a shipped model gives for ``atoms`` (CPU, float64), as arrays."""
    calc = PhiCalculator(name, device="cpu", dtype="float64")
    atoms = atoms.copy()
    atoms.calc = calc
    out = {"energy": np.array(atoms.get_potential_energy()), "forces": atoms.get_forces()}
    if atoms.pbc.all():
        out["stress"] = atoms.get_stress()
    if calc.model.has_charges:
        out["charges"] = atoms.get_charges()
        out["potentials"] = calc.get_potentials(atoms)
    return out


class PotentialContract:
    """Checks every Potential must pass; subclasses set ``backbone`` and ``hyperparameters``."""

    backbone: ClassVar[str]
    hyperparameters: ClassVar[dict[str, Any]] = {}
    cutoff: ClassVar[float] = 4.0
    #: relative/absolute tolerance for finite-difference comparisons (eV/Å, eV/Å³)
    fd_atol: ClassVar[float] = 2e-5

    @pytest.fixture(params=CONTRACT_VARIANTS, ids=CONTRACT_VARIANTS)
    def model(self, request: pytest.FixtureRequest) -> Potential:
        return self.build_variant(request.param)

    def build_variant(self, variant: str) -> Potential:
        """The contract's model of this backbone with the options of ``MODEL_VARIANTS[variant]``."""
        model = build_model(
            self.backbone,
            **MODEL_VARIANTS[variant],
            elements=ELEMENTS,
            cutoff=self.cutoff,
            seed=0,
            **self.hyperparameters,
        )
        model = model.double().eval()
        if model.phi is not None:  # make the electrostatic term large enough to matter
            with torch.no_grad():
                model.phi.raw_scale.fill_(2.0)
        return model

    def calculator(self, model: Potential) -> PhiCalculator:
        return PhiCalculator(model, device="cpu", dtype="float64")

    # -------------------------------------------------------------- derivatives
    @pytest.mark.parametrize("name", ["CH3CH2OH", "CH4", "C6H6"])
    def test_forces_match_finite_differences(self, model: Potential, name: str) -> None:
        atoms = molecule(name)  # exact symmetric geometry: CH4 and benzene have degenerate spectra
        atoms.calc = self.calculator(model)
        forces = atoms.get_forces()
        numerical = calculate_numerical_forces(atoms, eps=1e-4)
        np.testing.assert_allclose(forces, numerical, atol=self.fd_atol, rtol=1e-4)
        assert np.abs(forces).max() > 1e-3  # the check is not vacuous

    def test_periodic_forces_and_stress_match_finite_differences(self, model: Potential) -> None:
        atoms = small_periodic_cell()
        atoms.calc = self.calculator(model)
        np.testing.assert_allclose(
            atoms.get_forces(),
            calculate_numerical_forces(atoms, eps=1e-4),
            atol=self.fd_atol,
            rtol=1e-4,
        )
        np.testing.assert_allclose(
            atoms.get_stress(),
            calculate_numerical_stress(atoms, eps=1e-5),
            atol=self.fd_atol,
            rtol=1e-4,
        )

    # -------------------------------------------------------------- symmetries
    def test_rotation_translation_invariance(self, model: Potential) -> None:
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.05, seed=1)
        calc = self.calculator(model)
        atoms.calc = calc
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        charges = atoms.get_charges() if model.has_charges else None
        rotation = random_rotation(3)
        moved = atoms.copy()
        moved.positions = atoms.positions @ rotation.T + np.array([1.5, -2.0, 0.7])
        moved.calc = self.calculator(model)
        assert moved.get_potential_energy() == pytest.approx(energy, abs=1e-9)
        np.testing.assert_allclose(moved.get_forces(), forces @ rotation.T, atol=1e-9)
        if charges is not None:
            np.testing.assert_allclose(moved.get_charges(), charges, atol=1e-9)
            dipole = atoms.get_dipole_moment()
            np.testing.assert_allclose(moved.get_dipole_moment(), dipole @ rotation.T, atol=1e-9)

    def test_periodic_rotation_invariance(self, model: Potential) -> None:
        atoms = small_periodic_cell(1)
        atoms.calc = self.calculator(model)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        rotation = random_rotation(4)
        moved = Atoms(
            atoms.numbers,
            positions=atoms.positions @ rotation.T,
            cell=atoms.cell.array @ rotation.T,
            pbc=True,
        )
        moved.calc = self.calculator(model)
        assert moved.get_potential_energy() == pytest.approx(energy, abs=1e-9)
        np.testing.assert_allclose(moved.get_forces(), forces @ rotation.T, atol=1e-9)

    def test_permutation_invariance(self, model: Potential) -> None:
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.05, seed=2)
        atoms.calc = self.calculator(model)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        order = np.random.default_rng(0).permutation(len(atoms))
        permuted = atoms[order]
        permuted.calc = self.calculator(model)
        assert permuted.get_potential_energy() == pytest.approx(energy, abs=1e-9)
        np.testing.assert_allclose(permuted.get_forces(), forces[order], atol=1e-9)
        if model.has_charges:
            np.testing.assert_allclose(
                permuted.get_charges(), atoms.get_charges()[order], atol=1e-9
            )

    def test_wrapped_equals_unwrapped(self, model: Potential) -> None:
        atoms = small_periodic_cell(2)
        atoms.positions += np.array([2.0, -1.0, 4.0])  # some atoms leave the cell
        atoms.calc = self.calculator(model)
        wrapped = atoms.copy()
        wrapped.wrap()
        wrapped.calc = self.calculator(model)
        assert wrapped.get_potential_energy() == pytest.approx(
            atoms.get_potential_energy(), abs=1e-9
        )
        np.testing.assert_allclose(wrapped.get_forces(), atoms.get_forces(), atol=1e-9)

    # -------------------------------------------------------------- locality and extensivity
    def test_energy_continuous_at_cutoff(self, model: Potential) -> None:
        def dimer(distance: float) -> float:
            atoms = Atoms("CO", positions=[[0, 0, 0], [distance, 0, 0]])
            atoms.calc = self.calculator(model)
            return atoms.get_potential_energy(), atoms.get_forces()

        inside, force_inside = dimer(self.cutoff - 1e-4)
        outside, force_outside = dimer(self.cutoff + 1e-4)
        # a smooth term may change E by |F|·Δr over the 2e-4 Å step, no more
        assert inside == pytest.approx(outside, abs=1e-7 + 2e-4 * np.abs(force_inside).max())
        per_molecule = model.config.equilibration_scope == "molecule"
        if model.coulomb is None or per_molecule:  # nothing reaches past the graph (per
            # molecule: two neutral atoms apart carry no charge, so no Coulomb either)
            assert np.abs(force_inside).max() < 1e-5 and np.abs(force_outside).max() < 1e-12
        else:  # Coulomb does, smoothly (it changes by dF/dr·Δr over the step)
            np.testing.assert_allclose(force_inside, force_outside, rtol=5e-3, atol=1e-5)
            assert np.abs(force_outside).max() > 1e-6

    def test_supercell_is_extensive(self, model: Potential) -> None:
        atoms = small_periodic_cell(3)
        atoms.calc = self.calculator(model)
        big = atoms.repeat((2, 2, 2))
        big.calc = self.calculator(model)
        if model.phi is not None and model.phi.config.method == "eigenbasis":
            # Documented: the k-lowest-modes projection is per structure, so only the
            # electrostatic part is not extensive; everything else still is.
            short = big.get_potential_energy() - big.calc.results["electrostatic_energy"]
            atoms_short = atoms.get_potential_energy() - atoms.calc.results["electrostatic_energy"]
            assert short == pytest.approx(8 * atoms_short, rel=1e-9)
            assert big.calc.results["electrostatic_energy"] != pytest.approx(
                8 * atoms.calc.results["electrostatic_energy"], rel=1e-6
            )
            return
        assert big.get_potential_energy() == pytest.approx(
            8 * atoms.get_potential_energy(), rel=1e-9
        )
        np.testing.assert_allclose(big.get_forces()[: len(atoms)], atoms.get_forces(), atol=1e-8)
        np.testing.assert_allclose(big.get_stress(), atoms.get_stress(), atol=1e-8)

    # -------------------------------------------------------------- batching, charges, files
    def test_batched_equals_per_structure(self, model: Potential) -> None:
        structures = [molecule("CH3CH2OH"), small_periodic_cell(4), molecule("CH4")]
        if model.config.charge_spin:
            structures[2].info.update(charge=1.0, spin=2)
        graphs = [atoms_to_graph(a, model.cutoff) for a in structures]
        before = [g.positions.clone() for g in graphs]
        batched = model(collate(graphs), compute_stress=True)
        offset = 0
        for index, graph in enumerate(graphs):
            single = model(graph, compute_stress=True)
            atoms_slice = slice(offset, offset + graph.n_atoms)
            offset += graph.n_atoms
            assert batched["energy"][index].item() == pytest.approx(
                single["energy"][0].item(), abs=1e-10
            )
            torch.testing.assert_close(
                batched["forces"][atoms_slice], single["forces"], atol=1e-10, rtol=0
            )
            torch.testing.assert_close(
                batched["stress"][index], single["stress"][0], atol=1e-10, rtol=0
            )
            if model.has_charges:
                torch.testing.assert_close(
                    batched["charges"][atoms_slice], single["charges"], atol=1e-10, rtol=0
                )
            assert torch.equal(graph.positions, before[index])  # inputs not mutated

    def test_total_charge_is_conserved(self, model: Potential) -> None:
        atoms = molecule("CH3CH2OH")
        atoms.calc = self.calculator(model)
        if not model.config.charge_spin:
            atoms.get_potential_energy()
            atoms.info["charge"] = -1.0  # cache must notice, and the model must refuse
            with pytest.raises(ChargeStateError, match="without charge and spin inputs"):
                atoms.get_potential_energy()
            return
        assert atoms.get_charges().sum() == pytest.approx(0.0, abs=1e-10)
        neutral, energy = atoms.get_charges().copy(), atoms.get_potential_energy()
        atoms.info["charge"] = -1.0  # cache must notice
        assert atoms.get_charges().sum() == pytest.approx(-1.0, abs=1e-10)
        assert not np.allclose(atoms.get_charges(), neutral)
        assert abs(atoms.get_potential_energy() - energy) > 1e-6
        atoms.info.update(charge=0.0, spin=3)  # a triplet at the same geometry
        assert abs(atoms.get_potential_energy() - energy) > 1e-6

    def test_save_load_round_trip(self, model: Potential, tmp_path) -> None:
        path = tmp_path / "model.pt"
        save_model(model, path)
        loaded = load_model(path)
        atoms = molecule("CH3CH2OH")
        graph = atoms_to_graph(atoms, model.cutoff)
        expected, got = model(graph), loaded(graph)
        assert set(expected) == set(got)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], atol=0, rtol=0)


def kept_for_backward_bytes(call: Callable[[], object]) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass while ``call()`` runs
    its forward pass (``torch.autograd.graph.saved_tensors_hooks``; what a backward pass saves
    for its own recomputation is not counted)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if torch._C._current_graph_task_id() == -1:  # not inside a backward pass
            storage = tensor.untyped_storage()
            storages.setdefault(storage.data_ptr(), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        call()
    return sum(storages.values())


def without_parts(
    model: Potential,
    *,
    coulomb: bool = False,
    phi: bool = False,
    charge_state_energy: bool = False,
    equilibration_scope: str | None = None,
) -> Potential:
    """A copy of ``model`` with electrostatic parts taken out (``coulomb``, ``phi``: the term
    removed; ``charge_state_energy``: E_Q off) or its charges equilibrated over another
    ``equilibration_scope``: an arm of the benchmarks' ablations, whose differences in time say
    what each part costs (its numbers are not a trained model's)."""
    stripped = copy.deepcopy(model)
    if coulomb:
        stripped.coulomb = None
    if phi:
        stripped.phi = None
    changes: dict[str, Any] = {}
    if charge_state_energy:
        changes["charge_state_energy"] = False
    if equilibration_scope is not None:
        changes["equilibration_scope"] = equilibration_scope
    stripped.config = dataclasses.replace(model.config, **changes)
    return stripped


class PhaseTimer:
    """Process-CPU seconds per phase (``times``), added up by wrapped functions: the benchmarks'
    timers of a call's parts (the library keeps none)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = defaultdict(float)

    def wrap(self, function: Callable, name: str) -> Callable:
        """``function``, adding its process-CPU time to ``times[name]`` at every call."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.times[name] += time.process_time() - start

        return timed
