"""Erwin backbone: the shared contract (one ball and a real tree) plus tree-specific checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.fd import calculate_numerical_forces

from phicalc.build import build_model
from phicalc.calculator import PhiCalculator
from phicalc.errors import ConfigError
from phicalc.graph.batch import atoms_to_graph, collate
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn.backbones.base import Geometry
from phicalc.nn.backbones.erwin import ErwinConfig
from phicalc.nn.backbones.erwin_tree import build_ball_tree
from phicalc.nn.backbones.partition import PartitionCache
from phicalc.potential import Potential
from phicalc.testing import ELEMENTS, PotentialContract, random_rotation, small_periodic_cell

#: Small molecules fit in one ball: no partition, the trunk is dense enveloped attention.
ONE_BALL = {
    "num_features": 16,
    "num_local_blocks": 1,
    "num_radial": 8,
    "ball_size": 32,
    "num_levels": 2,
    "num_trunk_layers": 2,
    "num_heads": 2,
    "mlp_ratio": 1,
}
#: Balls of 4 pooled in pairs: ethanol already has a 3-level tree, so pooling, unpooling and
#: shifted balls all run on the contract's molecules.
TREE = {**ONE_BALL, "ball_size": 4, "pool_stride": 2, "attention_radius": 6.0}
CUTOFF = 4.0


class TestErwinContract(PotentialContract):
    backbone = "erwin"
    hyperparameters = ONE_BALL


class TestErwinTreeContract(PotentialContract):
    """The contract with a multi-level tree (attention beyond the cutoff, up to 6 Å · 2^(l/3))."""

    backbone = "erwin"
    hyperparameters = TREE

    @pytest.mark.parametrize("name", ["CH3CH2OH", "CH4", "C6H6"])
    def test_forces_match_finite_differences(self, model: Potential, name: str) -> None:
        # A partition of an exactly symmetric molecule (CH4, benzene) must break the symmetry,
        # so some ±1e-4 Å displacement flips it: the energy is smooth only within a partition.
        # Rattled geometries have a locally constant partition (the one-ball class above and
        # test_frozen_partition_symmetric_molecule cover the exact geometries).
        atoms = molecule(name)
        atoms.rattle(0.05, seed=7)
        atoms.calc = self.calculator(model)
        forces = atoms.get_forces()
        numerical = calculate_numerical_forces(atoms, eps=1e-4)
        np.testing.assert_allclose(forces, numerical, atol=self.fd_atol, rtol=1e-4)
        assert np.abs(forces).max() > 1e-3

    def test_energy_continuous_at_cutoff(self, model: Potential) -> None:
        # Two atoms are one ball; the trunk reaches to attention_radius, past the cutoff.
        def dimer(distance: float) -> tuple[float, np.ndarray]:
            atoms = Atoms("CO", positions=[[0, 0, 0], [distance, 0, 0]])
            atoms.calc = PhiCalculator(model, device="cpu", dtype="float64")
            return atoms.get_potential_energy(), atoms.get_forces()

        radius = TREE["attention_radius"]
        for edge in (self.cutoff, radius):
            inside, force_inside = dimer(edge - 1e-5)
            outside, force_outside = dimer(edge + 1e-5)
            # no jump: the change is what the (continuous) force predicts over 2e-5 Å
            assert abs(inside - outside) <= 2e-5 * np.abs(force_inside).max() * 1.1 + 1e-12
            np.testing.assert_allclose(force_inside, force_outside, rtol=1e-3, atol=1e-6)
        _, far = dimer(radius + 0.5)
        if model.coulomb is None:  # with Coulomb the pair still interacts, smoothly
            assert np.abs(far).max() < 1e-12


# ------------------------------------------------------------------ helpers
def make_model(phi: bool | dict[str, Any] = False, **overrides: Any) -> Potential:
    hp = {**TREE, **overrides}
    return build_model("erwin", phi=phi, elements=ELEMENTS, cutoff=CUTOFF, seed=0, **hp)


def energy_forces(model: Potential, atoms: Atoms) -> tuple[float, np.ndarray]:
    out = model.double().eval()(atoms_to_graph(atoms, model.cutoff))
    return float(out["energy"][0]), out["forces"].numpy()


@pytest.fixture(scope="module")
def paracetamol() -> Atoms:
    """A 20-atom molecule (C8H9NO2), rattled so no partition is at a tie."""
    from phicalc.data.structures import structure_from_string

    atoms = structure_from_string("paracetamol")
    atoms.rattle(0.02, seed=3)
    assert len(atoms) == 20
    return atoms


def tree_of(atoms: Atoms, ball_size: int = 4, num_levels: int = 2):
    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    batch = torch.zeros(len(atoms), dtype=torch.int64)
    return build_ball_tree(
        positions, batch, 1, torch.tensor([True]), ball_size=ball_size, num_levels=num_levels
    )


def ball_sets(balls: torch.Tensor, num_nodes: int) -> set[frozenset[int]]:
    return {frozenset(int(i) for i in row if i < num_nodes) for row in balls}


# ------------------------------------------------------------------ the tree
def test_partition_is_invariant_under_rotation_reflection_translation(paracetamol) -> None:
    reference = tree_of(paracetamol)
    for rotation in (random_rotation(5), -random_rotation(6)):  # proper and improper
        moved = paracetamol.copy()
        moved.positions = paracetamol.positions @ rotation.T + np.array([3.0, -1.0, 2.0])
        tree = tree_of(moved)
        assert len(tree.levels) == len(reference.levels) == 3
        for a, b in zip(reference.levels, tree.levels):
            assert torch.equal(a.balls, b.balls)
            assert torch.equal(a.shifted_balls, b.shifted_balls)
            assert (a.children is None) == (b.children is None)
            if a.children is not None:
                assert torch.equal(a.children, b.children)


def test_partition_is_equivariant_under_permutation(paracetamol) -> None:
    order = np.random.default_rng(1).permutation(len(paracetamol))
    reference, permuted = tree_of(paracetamol), tree_of(paracetamol[order])
    level, other = reference.levels[0], permuted.levels[0]
    mapped = torch.as_tensor(np.append(order, len(order)))[other.balls]
    assert ball_sets(mapped, 20) == ball_sets(level.balls, 20)


def test_tree_covers_every_atom_once_and_balls_stay_in_their_structure(paracetamol) -> None:
    structures = [paracetamol, molecule("CH3CH2OH"), molecule("H2O"), Atoms("C")]
    positions = torch.as_tensor(np.concatenate([a.positions for a in structures]))
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor([len(a) for a in structures]))
    tree = build_ball_tree(
        positions, batch, 4, torch.ones(4, dtype=torch.bool), ball_size=4, num_levels=3
    )
    n = len(batch)
    level = tree.levels[0]
    for balls in (level.balls, level.shifted_balls):
        real = balls[balls < n]
        assert sorted(real.tolist()) == list(range(n))
        for row in balls:
            assert len({int(batch[i]) for i in row if i < n}) == 1
    # 20 atoms → 32 slots → 8 balls of 4 → 3 coarsening steps (capped at num_levels = 3).
    assert [lvl.num_nodes for lvl in tree.levels] == [n, 16 + 8, 8 + 4, 4]
    # structures of at most ball_size atoms are one ball and are never pooled
    assert tree.levels[1].parents is not None
    assert (
        int((tree.levels[0].parents[20:] >= 0).sum()) == 9
    )  # ethanol (16 slots) pools; H2O, C not


def test_one_ball_structures_have_no_partition() -> None:
    tree = tree_of(molecule("C6H6"), ball_size=16)
    assert len(tree.levels) == 1 and tree.levels[0].balls.shape == (1, 16)


def test_stride_equal_to_ball_size_pools_whole_balls(paracetamol) -> None:
    positions = torch.as_tensor(paracetamol.positions)
    batch = torch.zeros(20, dtype=torch.int64)
    tree = build_ball_tree(
        positions, batch, 1, torch.tensor([True]), ball_size=8, num_levels=3, stride=8
    )
    level = tree.levels[0]
    assert ball_sets(level.children, 20) == ball_sets(level.balls, 20)
    assert [lvl.num_nodes for lvl in tree.levels] == [20, 4]  # 32 slots → 4 balls → 1 ball
    assert tree.levels[1].balls.shape == (1, 8)


# ------------------------------------------------------------------ the model
@pytest.mark.parametrize("phi", [False, {"method": "spectral"}], ids=["nophi", "spectral"])
def test_twenty_atom_molecule_alone_forces_match_fd(paracetamol, phi) -> None:
    # a 4-level tree, whole balls of 8 pooled, then a single ball
    for overrides in ({}, {"ball_size": 8, "pool_stride": 8}, {"ball_size": 32}):
        model = make_model(phi, **overrides).double().eval()
        atoms = paracetamol.copy()
        atoms.calc = PhiCalculator(model, device="cpu", dtype="float64")
        forces = atoms.get_forces()
        some = list(range(0, 20, 3))  # every third atom keeps the test short
        numerical = calculate_numerical_forces(atoms, eps=1e-4, iatoms=some)
        np.testing.assert_allclose(forces[some], numerical, atol=2e-5, rtol=1e-4)
        assert np.abs(forces).max() > 1e-3


def test_energy_is_reflection_invariant(paracetamol) -> None:
    model = make_model()
    energy, forces = energy_forces(model, paracetamol)
    mirrored = paracetamol.copy()
    mirrored.positions[:, 1] *= -1.0
    energy_m, forces_m = energy_forces(model, mirrored)
    assert energy_m == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(forces_m, forces * np.array([1.0, -1.0, 1.0]), atol=1e-10)


def test_results_do_not_depend_on_batch_composition(paracetamol) -> None:
    model = make_model({"method": "spectral"}).double().eval()
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.03, seed=2)
    other = paracetamol.copy()
    other.rattle(0.3, seed=9)  # a different neighbour in the batch must not leak
    single = model(atoms_to_graph(paracetamol, CUTOFF))
    for neighbours in ([ethanol], [other, small_periodic_cell()], [molecule("H2O"), other]):
        graphs = [atoms_to_graph(a, CUTOFF) for a in [*neighbours, paracetamol]]
        batched = model(collate(graphs))
        torch.testing.assert_close(batched["energy"][-1], single["energy"][0], atol=1e-11, rtol=0)
        torch.testing.assert_close(batched["forces"][-20:], single["forces"], atol=1e-11, rtol=0)
        torch.testing.assert_close(batched["charges"][-20:], single["charges"], atol=1e-11, rtol=0)


def test_periodic_water_box_is_extensive_and_smooth() -> None:
    from phicalc.data.structures import structure_from_string

    model = make_model().double().eval()
    box = structure_from_string("water-box:8")  # 24 atoms, periodic: local-graph attention
    box.calc = PhiCalculator(model, device="cpu", dtype="float64")
    energy = box.get_potential_energy()
    big = box.repeat((2, 2, 2))
    big.calc = PhiCalculator(model, device="cpu", dtype="float64")
    assert big.get_potential_energy() == pytest.approx(8 * energy, rel=1e-10)
    numerical = calculate_numerical_forces(box, eps=1e-4, iatoms=range(6))
    np.testing.assert_allclose(box.get_forces()[:6], numerical, atol=2e-5, rtol=1e-4)


def test_frozen_partition_symmetric_molecule() -> None:
    """With a partition skin the calculator reuses the tree, so even benzene's forces match FD."""
    model = make_model().double().eval()
    atoms = molecule("C6H6")
    calc = PhiCalculator(model, device="cpu", dtype="float64", partition_skin=0.3)
    atoms.calc = calc
    forces = atoms.get_forces()
    tree = calc.partition_cache.partition
    numerical = calculate_numerical_forces(atoms, eps=1e-4)
    assert calc.partition_cache.partition is tree  # never rebuilt
    np.testing.assert_allclose(forces, numerical, atol=2e-5, rtol=1e-4)
    atoms.positions[0] += 0.2  # beyond half the skin: rebuilt
    atoms.get_forces()
    assert calc.partition_cache.partition is not tree


def test_infinite_skin_keeps_the_partition_until_cleared() -> None:
    model = make_model().double().eval()
    cache = PartitionCache(float("inf"))
    atoms = molecule("CH3CH2OH")
    first = model(atoms_to_graph(atoms, CUTOFF), partition_cache=cache)["energy"]
    tree = cache.partition
    atoms.positions[3] += 1.5
    moved = model(atoms_to_graph(atoms, CUTOFF), partition_cache=cache)["energy"]
    assert cache.partition is tree
    cache.clear()
    assert cache.partition is None
    model(atoms_to_graph(atoms, CUTOFF), partition_cache=cache)
    assert cache.partition is not tree
    assert not torch.equal(first, moved)
    with pytest.raises(ConfigError, match="partition_skin"):
        PartitionCache(-1.0)


def test_partition_jitter_only_in_training(paracetamol) -> None:
    model = make_model(partition_jitter=0.5).double()
    graph = atoms_to_graph(paracetamol, CUTOFF)
    positions = graph.positions
    vectors = edge_vectors(positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch)
    species = model.species(graph.numbers)
    geometry = Geometry(graph, species, positions, graph.cell, vectors, vectors.norm(dim=-1))

    def partitions() -> set[frozenset[frozenset[int]]]:
        return {frozenset(ball_sets(model.backbone.ball_tree(geometry).levels[0].balls, 20))}

    model.eval()
    assert len(set.union(*(partitions() for _ in range(5)))) == 1
    model.train()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        assert len(set.union(*(partitions() for _ in range(5)))) > 1


def test_config_is_validated_and_printed() -> None:
    with pytest.raises(ConfigError, match="ball_size"):
        ErwinConfig(ball_size=6)
    with pytest.raises(ConfigError, match="pool_stride"):
        ErwinConfig(ball_size=8, pool_stride=16)
    with pytest.raises(ConfigError, match="num_heads"):
        ErwinConfig(num_features=10, num_heads=4)
    with pytest.raises(ConfigError, match="unknown option"):
        make_model(ball=4)
    assert "ball_size=4" in repr(make_model().backbone)


def test_calculator_owns_the_partition_and_the_module_keeps_no_state() -> None:
    """The calculator's skin governs (not the model config's), two calculators over one Potential
    keep their own trees, reset() drops a kept tree, and the module is the same after calls."""
    model = make_model(partition_skin=0.3).double().eval()  # config value: read, not used
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    attributes = set(vars(model.backbone))
    atoms = molecule("CH3CH2OH")
    fresh = PhiCalculator(model, device="cpu", dtype="float64")
    assert fresh.partition_cache is None  # None: a fresh tree every call
    atoms.calc = fresh
    atoms.get_potential_energy()
    kept = PhiCalculator(model, device="cpu", dtype="float64", partition_skin=float("inf"))
    other = PhiCalculator(model, device="cpu", dtype="float64", partition_skin=float("inf"))
    atoms.calc = kept
    atoms.get_potential_energy()
    tree = kept.partition_cache.partition
    assert tree is not None and other.partition_cache.partition is None
    atoms.positions[3] += 1.5
    atoms.get_potential_energy()
    assert kept.partition_cache.partition is tree
    other_atoms = atoms.copy()
    other_atoms.calc = other
    other_atoms.get_potential_energy()
    assert other.partition_cache.partition is not tree
    kept.reset()
    assert kept.partition_cache.partition is None
    assert kept.partition_cache.skin == float("inf")  # still kept from the next call on
    assert set(vars(model.backbone)) == attributes
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    with pytest.raises(ConfigError, match="partition_skin"):
        PhiCalculator(model, device="cpu", dtype="float64", partition_skin=-1.0)


def test_backbones_without_a_partition_ignore_the_cache() -> None:
    painn = build_model("painn", phi=False, elements=ELEMENTS, cutoff=CUTOFF, seed=0).double()
    graph = atoms_to_graph(molecule("CH3CH2OH"), CUTOFF)
    cache = PartitionCache(float("inf"))
    with_cache = painn(graph, partition_cache=cache)["energy"]
    assert torch.equal(with_cache, painn(graph)["energy"]) and cache.partition is None


def test_md_keeps_one_partition_for_the_whole_nve_run(tmp_path, monkeypatch) -> None:
    """`phicalc md` freezes Erwin's tree: E is one smooth function, so NVE conserves it; the
    tree is the run's, so the caller's model keeps no state afterwards."""
    from phicalc.md import MDConfig
    from phicalc.md import run as run_md
    from phicalc.nn.backbones import erwin

    builds = []

    def counting_build(positions, *args, **kwargs):
        builds.append(positions.clone())
        return build_ball_tree(positions, *args, **kwargs)

    monkeypatch.setattr(erwin, "build_ball_tree", counting_build)
    model = make_model().double()
    atoms = molecule("CH3CH2OH")
    config = MDConfig(ensemble="nve", temperature_K=100, timestep_fs=0.25, steps=60, seed=1)
    summary = run_md(atoms, model, tmp_path / "run", config=config, device="cpu", plots=False)
    assert len(builds) == 1  # one tree for 61 force calls, built from the step-0 positions
    np.testing.assert_allclose(builds[0].numpy(), atoms.positions)
    assert not hasattr(model.backbone, "_partition_cache") and model.training  # untouched
    thermo = np.load(tmp_path / "run" / "thermo.npz")
    assert np.ptp(thermo["etot"]) < 2e-3 * len(atoms)  # eV; the total energy is conserved
    assert summary["completed"]
    with pytest.raises(ConfigError, match="partition_skin"):
        MDConfig(partition_skin=-0.1)
    assert MDConfig().partition_skin == float("inf")
