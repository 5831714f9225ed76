"""Message sums in runs of receivers (phicalc.nn.edge_chunks): the runs cover every edge and atom
once, a chunked pass gives an unchunked pass's numbers while keeping a fraction of its memory for
the backward pass, and the calculator chooses and refuses chunking as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from phicalc import build_model
from phicalc.calculator import AUTO_CHUNK_EDGES, PhiCalculator, edge_chunking_for
from phicalc.compiled import RECEIVER_SUMS_GRAPHS
from phicalc.errors import ConfigError
from phicalc.graph.batch import atoms_to_graph
from phicalc.nn.edge_chunks import (
    DEFAULT_EDGES_PER_CHUNK,
    EdgeChunking,
    plain_sums,
    receiver_chunks,
)
from phicalc.testing import MODEL_VARIANTS, TINY_PAINN, kept_for_backward_bytes

PROPERTIES = ("energy", "energies", "forces", "stress", "charges", "potentials")


def _model(backbone: str) -> torch.nn.Module:
    """A small float64 model with the default model's charge handling (Φ, Ewald, charges per
    molecule, E_Q); Erwin and SchNet with their own options."""
    options = {**TINY_PAINN, **MODEL_VARIANTS["local"], "num_features": 8, "num_radial": 4}
    options["backbone"] = backbone
    if backbone == "schnet":
        options.pop("num_radial")
    if backbone == "erwin":
        options.pop("num_blocks")
        options.update(ball_size=4, num_local_blocks=2)
    return build_model(**options).double().eval()


def _waters(n_waters: int, seed: int, periodic: bool) -> Atoms:
    """Rattled waters in a triclinic cell (periodic) or the same positions as a cluster, at
    random sites of a 3 × 3 × 3 grid (at most 27 waters, none overlapping)."""
    rng = np.random.default_rng(seed)
    cell = np.array([[6.5, 0.0, 0.0], [0.5, 6.8, 0.0], [0.3, -0.4, 7.0]])
    sites = np.stack(np.meshgrid(*[np.arange(3) / 3] * 3, indexing="ij"), -1).reshape(-1, 3)
    atoms = Atoms(cell=cell, pbc=periodic)
    for site in rng.permutation(sites)[:n_waters]:
        water = molecule("H2O")
        water.rotate(rng.uniform(0, 360), rng.normal(size=3))
        water.translate(cell.T @ (site + rng.uniform(0, 0.05, size=3)))
        atoms += water
    atoms.rattle(0.05, seed=seed)
    return atoms


def _outputs(model, graph, chunking, compute_forces=True):
    out = model(
        graph,
        compute_forces=compute_forces,
        compute_stress=compute_forces and bool(graph.pbc.any()),
        training=False,
        edge_chunking=chunking,
    )
    return {name: value for name, value in out.items() if name in PROPERTIES}


def test_runs_cover_every_edge_and_atom_once_in_receiver_order():
    graph = atoms_to_graph(_waters(6, 0, periodic=True), 4.0)
    n_edges = graph.edge_index.shape[1]
    chunks = receiver_chunks(graph.edge_index, graph.n_atoms, EdgeChunking(max_edges=50))
    assert sorted(chunks.order.tolist()) == list(range(n_edges))
    assert torch.equal(chunks.edge_index, graph.edge_index[:, chunks.order])
    receivers = chunks.edge_index[1]
    assert bool((receivers[1:] >= receivers[:-1]).all())
    for j in range(graph.n_atoms):  # stable: each receiver's edges keep their order
        positions = chunks.order[receivers == j]
        assert bool((positions[1:] > positions[:-1]).all())
    assert chunks.edge_bounds[0] == 0 and chunks.edge_bounds[-1] == n_edges
    assert chunks.atom_bounds[0] == 0 and chunks.atom_bounds[-1] == graph.n_atoms
    assert chunks.num_chunks > 3
    for r in range(chunks.num_chunks):
        e0, e1 = chunks.edge_bounds[r : r + 2]
        a0, a1 = chunks.atom_bounds[r : r + 2]
        run = receivers[e0:e1]
        assert bool(((run >= a0) & (run < a1)).all())  # whole receivers, no other
        assert e1 - e0 <= 50 or a1 - a0 == 1  # within the size, or one receiver over it


def test_a_receiver_with_more_edges_than_a_run_gets_a_run_and_isolated_atoms_belong_to_one():
    # atom 0 receives 5 edges, atom 1 none, atom 2 two; runs of at most 2 edges
    edge_index = torch.tensor([[1, 2, 1, 2, 1, 0, 0], [0, 0, 0, 0, 0, 2, 2]])
    chunks = receiver_chunks(edge_index, 4, EdgeChunking(max_edges=2))
    assert chunks.edge_bounds == (0, 5, 7)
    assert chunks.atom_bounds == (0, 1, 4)  # atoms 1 and 3 have no edges; still covered


@pytest.mark.parametrize("backbone", ["painn", "schnet", "erwin"])
@pytest.mark.parametrize("periodic", [True, False])
def test_chunked_passes_give_the_unchunked_numbers(one_torch_thread, backbone, periodic):
    """Energy, per-atom energies, forces, stress, charges and potentials (float64) for runs of
    1 receiver up to all edges in one run, with and without gradients."""
    model = _model(backbone)
    graph = atoms_to_graph(_waters(6, 1, periodic), model.cutoff)
    expected = _outputs(model, graph, None)
    n_edges = graph.edge_index.shape[1]
    for max_edges in (1, 37, n_edges):
        got = _outputs(model, graph, EdgeChunking(max_edges=max_edges))
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            torch.testing.assert_close(got[name], value, rtol=0, atol=1e-11, msg=name)
    with torch.no_grad():
        energy_only = _outputs(model, graph, EdgeChunking(max_edges=37), compute_forces=False)
    torch.testing.assert_close(energy_only["energy"], expected["energy"], rtol=0, atol=1e-11)


def test_a_chunked_pass_keeps_a_fraction_of_the_edge_tensors(one_torch_thread):
    """PaiNN's edge tensors (3F and 3×F per edge and block) are most of what a force call keeps
    for the backward pass; in runs it keeps one run's, recomputed when the backward pass needs
    them."""
    model = build_model(**TINY_PAINN, **MODEL_VARIANTS["local"]).double().eval()
    graph = atoms_to_graph(_waters(10, 2, periodic=True), model.cutoff)
    unchunked = kept_for_backward_bytes(lambda: _outputs(model, graph, None))
    chunked = kept_for_backward_bytes(lambda: _outputs(model, graph, EdgeChunking(max_edges=64)))
    edge_tensors = graph.edge_index.shape[1] * model.backbone.feature_dim * 8  # one [E, F] f64
    assert unchunked - chunked > 10 * edge_tensors
    assert chunked < unchunked / 2  # the rest: node features, Ewald k-vectors, the graph


def test_chunking_is_refused_for_training_other_backbones_and_bad_sizes():
    graph = atoms_to_graph(_waters(2, 0, periodic=False), 4.0)
    with pytest.raises(ConfigError, match="inference only"):
        _model("painn")(graph, training=True, edge_chunking=EdgeChunking())
    clifford = build_model("clifford", phi=False, elements=["H", "O"], cutoff=4.0, seed=0)
    with pytest.raises(ConfigError, match="does not sum messages"):
        clifford(graph, training=False, edge_chunking=EdgeChunking())
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ConfigError, match="max_edges"):
            EdgeChunking(max_edges=bad)


def test_the_calculator_chunks_large_structures_by_default_and_as_told(one_torch_thread):
    model = _model("painn")
    auto = edge_chunking_for(model, "auto", compile=False)
    assert auto(AUTO_CHUNK_EDGES) is None
    assert auto(AUTO_CHUNK_EDGES + 1) == EdgeChunking(DEFAULT_EDGES_PER_CHUNK, plain_sums)
    assert edge_chunking_for(model, None, compile=False)(10**9) is None
    assert edge_chunking_for(model, 100, compile=False)(1) == EdgeChunking(100, plain_sums)
    clifford = build_model("clifford", phi=False, elements=["H", "O"], cutoff=4.0, seed=0)
    assert edge_chunking_for(clifford, "auto", compile=False)(10**9) is None
    with pytest.raises(ConfigError, match="does not sum messages"):
        PhiCalculator(clifford, edge_chunk=100)
    for bad in ("always", 2.5, True):
        with pytest.raises(ConfigError, match="edge_chunk"):
            PhiCalculator(model, edge_chunk=bad)

    atoms = _waters(6, 3, periodic=True)
    results = []
    for edge_chunk in (None, 40):
        atoms.calc = PhiCalculator(model, dtype="float64", edge_chunk=edge_chunk)
        results.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    for plain, chunked in zip(*results, strict=True):
        np.testing.assert_allclose(chunked, plain, rtol=0, atol=1e-11)


def test_compiled_runs_give_the_plain_numbers_and_compile_once(one_torch_thread):
    """With ``compile=True`` each run goes through one compiled function for every block and
    structure: the numbers of a plain unchunked call, and no compiling after the first structure
    (whose atom count, 24, equals the blocks' width 3F: sizes must not be tied to it)."""
    from torch._dynamo.utils import counters

    model = _model("painn")
    assert 3 * model.backbone.feature_dim == 24
    plain = PhiCalculator(model, dtype="float64", edge_chunk=None)
    compiled = PhiCalculator(model, dtype="float64", edge_chunk=150, compile=True)
    graphs = []
    for seed, n_waters in ((4, 8), (5, 6), (6, 11)):
        atoms = _waters(n_waters, seed, periodic=True)
        expected = None
        for calc in (plain, compiled):
            atoms.calc = calc
            got = [atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()]
            if expected is not None:
                for a, b in zip(got, expected, strict=True):
                    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
            expected = got
        graphs.append(counters["stats"]["unique_graphs"])
    sums, gradients = (
        compiled.edge_chunking.chunking.sums,
        compiled.edge_chunking.chunking.gradients,
    )
    assert sums.compiled and sums.enabled and gradients.compiled and gradients.enabled
    assert graphs[0] == graphs[1] == graphs[2]
    with sums.tracing():  # room for its graphs beyond dynamo's default limit of 8
        assert torch._dynamo.config.recompile_limit == RECEIVER_SUMS_GRAPHS > 8


def test_a_compiler_failure_falls_back_to_plain_runs(one_torch_thread, failing_compiler):
    model = _model("painn")
    atoms = _waters(5, 6, periodic=True)
    atoms.calc = PhiCalculator(model, dtype="float64", edge_chunk=None)
    expected = atoms.get_forces()
    calc = PhiCalculator(model, dtype="float64", edge_chunk=40, compile=True)
    atoms.calc = calc
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        forces = atoms.get_forces()
    np.testing.assert_allclose(forces, expected, rtol=0, atol=1e-11)
    assert not calc.edge_chunking.chunking.sums.enabled
    assert not calc.edge_chunking.chunking.gradients.enabled
