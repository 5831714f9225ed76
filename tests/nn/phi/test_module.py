"""Φ-Module physics: Poisson on the graph, charge conservation, gauge, degenerate spectra."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from phicalc.build import build_model
from phicalc.errors import ConfigError
from phicalc.graph import atoms_list_to_graph, atoms_to_graph
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn.phi import PhiConfig
from phicalc.nn.phi.filters import DEGREE_EPS, ChebyshevFilter, EigenbasisWindow
from phicalc.nn.phi.laplacian import (
    GraphLaplacian,
    LaplacianWeights,
    degrees,
    dense_laplacian,
    laplacian_matvec,
)
from phicalc.testing import ammonium_and_water

CUTOFF = 5.0


def reduced_potential_energy(filter_module, atoms: Atoms, sources: torch.Tensor):
    """E = ½ φ̂ᵀ L φ̂ for fixed per-atom sources, and −∂E/∂r (eV/Å if φ̂ were in V)."""
    graph = atoms_to_graph(atoms, CUTOFF)
    positions = graph.positions.clone().requires_grad_(True)
    vectors = edge_vectors(positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch)
    weights = LaplacianWeights(CUTOFF)(vectors.norm(dim=-1))
    laplacian = GraphLaplacian.of(weights, graph.edge_index, graph.n_atoms)
    phi = filter_module(sources, laplacian, graph.batch, 1)
    energy = 0.5 * (phi * laplacian_matvec(phi, weights, graph.edge_index)).sum()
    (gradient,) = torch.autograd.grad(energy, positions)
    return energy.item(), -gradient.numpy()


@pytest.mark.parametrize(
    "name,modes",
    [("CH4", 2), ("CH4", 1), ("C6H6", 3), ("C6H6", 1), ("CH3CH2OH", 3)],
    ids=["CH4-k2-splits-triplet", "CH4-k1", "benzene-k3-splits-pair", "benzene-k1", "ethanol-k3"],
)
@pytest.mark.parametrize("method", ["spectral", "eigenbasis"])
def test_filter_forces_finite_and_consistent_on_degenerate_spectra(name, modes, method) -> None:
    atoms = molecule(name)
    sources = torch.as_tensor(np.random.default_rng(0).normal(size=len(atoms)))
    module = ChebyshevFilter(8).double() if method == "spectral" else EigenbasisWindow(modes)
    energy, forces = reduced_potential_energy(module, atoms, sources)
    assert np.isfinite(forces).all() and np.abs(forces).max() > 1e-4
    step, numerical = 1e-5, np.zeros_like(forces)
    for a in range(len(atoms)):
        for c in range(3):
            shifted = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[a, c] += sign * step
                shifted.append(reduced_potential_energy(module, moved, sources)[0])
            numerical[a, c] = -(shifted[0] - shifted[1]) / (2 * step)
    np.testing.assert_allclose(forces, numerical, atol=1e-7 + 1e-6 * np.abs(forces).max())


def test_dense_and_edge_paths_of_the_chebyshev_filter_agree(monkeypatch) -> None:
    """A batch small enough for the dense L̂ (a periodic box whose atoms see their own images, two
    molecules 12 Å apart) gives the same φ̂, L φ̂ and the same gradients as the path over the
    edges, and distant fragments stay exactly uncoupled in both."""
    from phicalc.data.structures import water_box
    from phicalc.nn.phi import laplacian as laplacian_module
    from phicalc.nn.phi.laplacian import DENSE_MAX_ATOMS

    pair = molecule("CH3CH2OH") + molecule("H2O")
    pair.positions[9:] += (12.0, 0.0, 0.0)
    box = water_box(4, seed=0)  # a 4.9 Å cell: atoms bond to their own images
    graph = atoms_list_to_graph([pair, box], CUTOFF)
    assert graph.n_atoms <= DENSE_MAX_ATOMS
    assert bool((graph.edge_index[0] == graph.edge_index[1]).any())
    module = ChebyshevFilter(8).double()
    sources = torch.as_tensor(np.random.default_rng(1).normal(size=graph.n_atoms))

    def potentials_and_gradients():
        positions = graph.positions.clone().requires_grad_(True)
        source = sources.clone().requires_grad_(True)
        vectors = edge_vectors(
            positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
        )
        weights = LaplacianWeights(CUTOFF)(vectors.norm(dim=-1))
        laplacian = GraphLaplacian.of(weights, graph.edge_index, graph.n_atoms)
        phi = module(source, laplacian, graph.batch, graph.n_graphs)
        l_phi = laplacian.matvec(phi)
        loss = (phi * phi.detach().cos()).sum() + (l_phi * l_phi.detach().sin()).sum()
        gradients = torch.autograd.grad(loss, (positions, source, module.coefficients))
        return (phi.detach(), l_phi.detach(), *gradients)

    dense = potentials_and_gradients()
    monkeypatch.setattr(laplacian_module, "DENSE_MAX_ATOMS", 0)
    edges = potentials_and_gradients()
    for a, b in zip(dense, edges):
        torch.testing.assert_close(a, b.to(a.dtype), rtol=1e-12, atol=1e-12)
    # sources on the ethanol alone leave the water 12 Å away at exactly zero in both paths
    only_ethanol = torch.zeros(graph.n_atoms, dtype=torch.float64)
    only_ethanol[:9] = sources[:9]
    vectors = edge_vectors(
        graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
    )
    weights = LaplacianWeights(CUTOFF)(vectors.norm(dim=-1))
    for limit in (0, DENSE_MAX_ATOMS):
        monkeypatch.setattr(laplacian_module, "DENSE_MAX_ATOMS", limit)
        laplacian = GraphLaplacian.of(weights, graph.edge_index, graph.n_atoms)
        assert (laplacian.adjacency is None) == (limit == 0)
        phi = module(only_ethanol, laplacian, graph.batch, graph.n_graphs)
        assert torch.count_nonzero(phi[9:12]) == 0 and torch.count_nonzero(phi[:9]) == 9
        assert torch.count_nonzero(laplacian.matvec(phi)[9:12]) == 0


def test_eigenbasis_with_all_modes_is_the_pseudo_inverse_projection() -> None:
    """k ≥ n − 1 keeps every non-trivial mode: φ̂ is s minus its mean (up to the window's tails)."""
    atoms = molecule("H2O")
    graph = atoms_to_graph(atoms, CUTOFF)
    vectors = edge_vectors(
        graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
    )
    weights = LaplacianWeights(CUTOFF)(vectors.norm(dim=-1))
    sources = torch.tensor([1.0, -0.5, 0.2], dtype=torch.float64)
    laplacian = GraphLaplacian.of(weights, graph.edge_index, graph.n_atoms)
    phi = EigenbasisWindow(8)(sources, laplacian, graph.batch, 1)
    np.testing.assert_allclose(phi.numpy(), (sources - sources.mean()).numpy(), atol=2e-2)


def test_laplacian_is_symmetric_psd_with_zero_row_sums() -> None:
    graph = atoms_to_graph(molecule("CH3CH2OH"), CUTOFF)
    vectors = edge_vectors(
        graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
    )
    weights = LaplacianWeights(CUTOFF)(vectors.norm(dim=-1))
    n = graph.n_atoms
    lap = dense_laplacian(weights, graph.edge_index, graph.batch, 1, n, torch.arange(n))[0]
    torch.testing.assert_close(lap, lap.T)
    torch.testing.assert_close(lap.sum(1), torch.zeros(n, dtype=lap.dtype), atol=1e-12, rtol=0)
    assert torch.linalg.eigvalsh(lap).min() > -1e-12
    x = torch.randn(n, dtype=lap.dtype)
    torch.testing.assert_close(laplacian_matvec(x, weights, graph.edge_index), lap @ x)


@pytest.mark.parametrize("gauge", ["fragment", "structure"])
@pytest.mark.parametrize("method", ["spectral", "eigenbasis"])
def test_poisson_charges_and_energy_identities(method: str, gauge: str) -> None:
    model = build_model(
        "painn",
        phi={"method": method, "gauge": gauge},
        charge_spin=True,
        seed=1,
        cutoff=CUTOFF,
        num_features=16,
    ).double()
    structures = [molecule("CH3CH2OH"), molecule("C6H6"), molecule("H2O")]
    structures[1].info["charge"] = 1.0
    structures[2].info["charge"] = -2.0
    graph = atoms_list_to_graph(structures, CUTOFF)
    out = model(graph, compute_forces=False)
    charges, potentials = out["charges"], out["potentials"]
    per_structure = torch.zeros(3, dtype=charges.dtype).index_add(0, graph.batch, charges)
    torch.testing.assert_close(per_structure, torch.tensor([0.0, 1.0, -2.0], dtype=charges.dtype))
    # Poisson on the graph: L φ = κ (ρ − Q/n), whatever the gauge
    vectors = edge_vectors(
        graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
    )
    weights = LaplacianWeights(CUTOFF)(vectors.norm(dim=-1))
    q_per_atom = (graph.total_charge / graph.n_atoms_per_graph)[graph.batch]
    kappa = model.phi.scale.double()
    torch.testing.assert_close(
        laplacian_matvec(potentials, weights, graph.edge_index), kappa * (charges - q_per_atom)
    )
    # E_ES = ½ Σ φ ρ per structure; non-negative for the neutral one (½ κ φ̂ᵀ L φ̂)
    half = 0.5 * torch.zeros(3, dtype=charges.dtype).index_add(0, graph.batch, potentials * charges)
    torch.testing.assert_close(out["electrostatic_energy"], half)
    assert out["electrostatic_energy"][0] >= 0
    # the gauge: zero mean per structure, or the filter's own ((D + ε)-weighted for the
    # spectral filter, plain for the eigenbasis window: orthogonal to L's zero mode)
    weight = torch.ones_like(potentials)
    if gauge == "fragment" and method == "spectral":
        weight = degrees(weights, graph.edge_index, graph.n_atoms) + DEGREE_EPS
    sums = torch.zeros(3, dtype=charges.dtype).index_add(0, graph.batch, weight * potentials)
    torch.testing.assert_close(sums, torch.zeros(3, dtype=charges.dtype), atol=1e-10, rtol=0)


def test_phi_energy_of_distant_charged_fragments_is_additive_in_the_fragment_gauge() -> None:
    """NH4 carrying +1 (as q⁰) 12 Å from a water: in the default gauge the spectral Φ energy and
    charges of the pair are those of the two alone; zero mean over the whole structure (the
    gauge of format-3 files) shifts the charged fragment's energy by −½ κ c Q_A. (The
    eigenbasis window is not local whatever the gauge: its k modes span the whole structure.)"""
    method = "spectral"
    results = {}
    captured: dict = {}
    for gauge in ("fragment", "structure"):
        model = build_model(
            "painn", phi={"method": method, "gauge": gauge}, seed=0, cutoff=CUTOFF, num_features=16
        ).double()
        model.phi.register_forward_pre_hook(lambda m, args: captured.update(args=args))
        pair = ammonium_and_water(12.0)
        outputs = []
        for graph in (
            atoms_to_graph(pair, CUTOFF),
            atoms_list_to_graph([pair[:5], pair[5:]], CUTOFF),
        ):
            model(graph, compute_forces=False)
            q0 = torch.tensor([0.2] * 5 + [0.0] * 3, dtype=torch.float64)
            outputs.append(model.phi(*captured["args"], base_charges=q0, head_charges=q0))
        together, apart = outputs
        results[gauge] = (together.energy.sum().item(), apart.energy.sum().item())
        if gauge == "fragment":
            torch.testing.assert_close(together.charges, apart.charges)
            torch.testing.assert_close(together.potentials, apart.potentials)
    assert results["fragment"][0] == pytest.approx(results["fragment"][1], rel=1e-9, abs=1e-15)
    assert results["structure"][0] != pytest.approx(results["structure"][1], rel=0.1)


def test_total_charge_changes_energy_and_charges() -> None:
    model = build_model(
        "painn", phi=True, charge_spin=True, seed=0, cutoff=CUTOFF, num_features=16
    ).double()
    atoms = molecule("CH3CH2OH")
    neutral = model(atoms_to_graph(atoms, CUTOFF), compute_forces=False)
    cation = model(atoms_to_graph(atoms, CUTOFF, total_charge=1.0), compute_forces=False)
    assert cation["charges"].sum().item() == pytest.approx(1.0)
    assert abs(neutral["energy"].item() - cation["energy"].item()) > 1e-6


def test_spectral_path_separates_distant_fragments() -> None:
    """Two molecules beyond the cutoff: the local filter gives the sum of the isolated results."""
    model = build_model("painn", phi=True, seed=0, cutoff=CUTOFF, num_features=16).double()
    a, b = molecule("CH3CH2OH"), molecule("H2O")
    b.positions += [30.0, 0.0, 0.0]
    together = model(atoms_to_graph(a + b, CUTOFF), compute_forces=False)
    separate = model(atoms_list_to_graph([a, b], CUTOFF), compute_forces=False)
    assert together["energy"].item() == pytest.approx(separate["energy"].sum().item(), abs=1e-10)
    torch.testing.assert_close(together["charges"], separate["charges"])


def test_config_rejects_unknown_method_and_keys() -> None:
    with pytest.raises(ConfigError, match="method='fourier'"):
        PhiConfig(method="fourier")
    with pytest.raises(ConfigError, match="unknown option"):
        build_model("painn", phi={"modes": 3})


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"filter_degree": 0}, "PhiConfig.filter_degree must be a positive integer, got 0"),
        ({"filter_degree": 2.0}, "PhiConfig.filter_degree must be a positive integer, got 2.0"),
        ({"num_modes": 0}, "PhiConfig.num_modes must be a positive integer, got 0"),
        ({"head_hidden": -1}, "PhiConfig.head_hidden must be a positive integer, got -1"),
        ({"initial_scale": 0.0}, "PhiConfig.initial_scale must be a positive number, got 0.0"),
        ({"initial_scale": -0.5}, "PhiConfig.initial_scale must be a positive number"),
        ({"initial_scale": float("inf")}, "PhiConfig.initial_scale must be a positive number"),
        ({"method": "fourier"}, "PhiConfig.method='fourier' is not one of"),
        ({"gauge": "global"}, "PhiConfig.gauge='global' is not one of"),
    ],
)
def test_config_rejects_nonsense_values_by_name(options, fragment) -> None:
    with pytest.raises(ConfigError) as info:
        PhiConfig(**options)
    assert fragment in str(info.value)
    with pytest.raises(ConfigError, match=next(iter(options))):
        build_model("painn", phi=options, elements=("H", "C"))
