"""The electrostatics of a whole Potential: total charge and spin as inputs, equilibrated charges,
physical Coulomb beyond the cutoff, and old model files unchanged (see also the contract in
phicalc.testing, which runs FD forces/stress, invariances, batching and supercells for every
backbone with these options on)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.fd import calculate_numerical_forces
from ase.units import Bohr, Hartree
from scipy.optimize import brentq
from scipy.special import erf

from phicalc import PhiCalculator, build_model
from phicalc.errors import ConfigError
from phicalc.graph.batch import atoms_list_to_graph, atoms_to_graph
from phicalc.testing import ammonium_and_water

CUTOFF = 4.0
K_E = Hartree * Bohr


def charged_model(
    phi: bool = True,
    coulomb: bool | dict = True,
    seed: int = 0,
    charge_input: str = "global",
    charge_state_energy: bool = False,
    equilibration_scope: str = "structure",
):
    return (
        build_model(
            "painn",
            phi=phi,
            charge_spin=True,
            charge_equilibration=True,
            coulomb=coulomb,
            charge_input=charge_input,
            charge_state_energy=charge_state_energy,
            equilibration_scope=equilibration_scope,
            cutoff=CUTOFF,
            num_features=16,
            num_blocks=2,
            seed=seed,
        )
        .double()
        .eval()
    )


@pytest.mark.parametrize("phi", [True, False])
@pytest.mark.parametrize("total", [-2, -1, 0, 1, 2])
def test_total_charge_is_exact_with_fragments(phi: bool, total: int) -> None:
    model = charged_model(phi=phi)
    structures = [ammonium_and_water(8.0), molecule("CH3CH2OH"), molecule("H2O")]
    for atoms, q in zip(structures, (total, -total, 1)):
        atoms.info["charge"] = q
    graph = atoms_list_to_graph(structures, CUTOFF)
    charges = model(graph, compute_forces=False)["charges"]
    sums = torch.zeros(3, dtype=charges.dtype).index_add(0, graph.batch, charges)
    torch.testing.assert_close(sums, torch.tensor([total, -total, 1.0], dtype=charges.dtype))


def test_energy_depends_on_charge_and_multiplicity_at_fixed_geometry() -> None:
    atoms = molecule("CH3CH2OH")
    atoms.calc = PhiCalculator(charged_model(), dtype="float64")
    energies = {}
    for q, m in [(0, 1), (1, 2), (-1, 2), (0, 3)]:
        atoms.info.update(charge=q, spin=m)
        energies[(q, m)] = atoms.get_potential_energy()
    values = list(energies.values())
    assert min(abs(a - b) for i, a in enumerate(values) for b in values[i + 1 :]) > 1e-6


def test_potentials_are_the_coulomb_potential_of_the_charges() -> None:
    """V_i = k_e Σ_j q_j erf(r_ij/√2σ)/r_ij in volts, and E_C = ½ Σ q_i V_i."""
    sigma = 0.8
    atoms = ammonium_and_water(3.0)
    atoms.info["charge"] = 1
    calc = PhiCalculator(charged_model(coulomb={"sigma": sigma}), dtype="float64")
    atoms.calc = calc
    q = atoms.get_charges()
    r = atoms.get_all_distances()
    np.fill_diagonal(r, 1.0)
    kernel = erf(r / (np.sqrt(2) * sigma)) / r
    np.fill_diagonal(kernel, 0.0)
    expected = K_E * kernel @ q
    np.testing.assert_allclose(calc.get_potentials(atoms), expected, rtol=1e-10, atol=1e-12)
    coulomb = calc.get_property("coulomb_energy", atoms)
    assert coulomb == pytest.approx(0.5 * q @ expected, rel=1e-10)
    parts = calc.get_property("phi_energy", atoms) + coulomb
    assert calc.get_electrostatic_energy(atoms) == pytest.approx(parts, rel=1e-12)


def interaction(model, distance: float) -> float:
    """E(NH4⁺···H2O) − E(NH4⁺) − E(H2O) at a closest-atom distance in Å."""
    pair = ammonium_and_water(distance)
    pair.info["charge"] = 1
    ion, water = pair[:5], pair[5:]
    ion.info["charge"] = 1
    graph = atoms_list_to_graph([pair, ion, water], CUTOFF)
    energy = model(graph, compute_forces=False)["energy"].detach()
    return float(energy[0] - energy[1] - energy[2])


def test_fragments_interact_beyond_the_cutoff() -> None:
    model = charged_model()
    for distance in (6.0, 10.0, 15.0):
        assert abs(interaction(model, distance)) > 1e-6
    # a Φ-only model (the paper's) has no term between disconnected fragments at all
    plain = build_model("painn", phi=True, cutoff=CUTOFF, num_features=16, seed=0).double().eval()
    pair = ammonium_and_water(6.0)
    together = plain(atoms_to_graph(pair, CUTOFF), compute_forces=False)["energy"]
    apart = plain(atoms_list_to_graph([pair[:5], pair[5:]], CUTOFF), compute_forces=False)
    assert float(together[0]) == pytest.approx(float(apart["energy"].sum()), abs=1e-10)


@pytest.mark.filterwarnings("ignore::phicalc.errors.ExtrapolationWarning")  # on purpose
def test_energy_is_smooth_as_two_atoms_approach() -> None:
    atoms = Atoms("NO", positions=[[0, 0, 0], [3.0, 0, 0]])
    atoms.info["charge"] = 1
    atoms.calc = PhiCalculator(charged_model(), dtype="float64", min_distance=None)
    distances = np.linspace(3.0, 0.01, 300)
    energies, forces = [], []
    for d in distances:
        atoms.positions[1, 0] = d
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces()[1, 0])
    energies, forces = np.array(energies), np.array(forces)
    assert np.isfinite(energies).all() and np.isfinite(forces).all()
    # no jump: each step changes E by about |F|·Δr, never more
    step = abs(distances[1] - distances[0])
    largest = np.maximum(np.abs(forces[1:]), np.abs(forces[:-1]))
    assert (np.abs(np.diff(energies)) <= 1.5 * largest * step + 1e-9).all()
    # and the forces are the energy's derivative down to 0.05 Å
    for d in (2.0, 1.0, 0.3, 0.05):
        atoms.positions[1, 0] = d
        numerical = calculate_numerical_forces(atoms, eps=1e-5)
        np.testing.assert_allclose(atoms.get_forces(), numerical, atol=1e-5, rtol=1e-5)


def test_coulomb_needs_charges() -> None:
    with pytest.raises(ConfigError, match="coulomb needs charges"):
        build_model("painn", phi=False, coulomb=True, num_features=8)


def test_equilibrated_charge_input_keeps_the_total_charge_out_of_the_backbone() -> None:
    """charge_input="equilibrated": the backbone's features are those of Q = 0 whatever Q is;
    Q still changes energies (through the equilibrated charges) and Σq = Q."""
    model = charged_model(charge_input="equilibrated")
    seen: list[torch.Tensor] = []
    model.backbone.register_forward_hook(lambda module, args, out: seen.append(out.node_features))
    atoms = ammonium_and_water(8.0)
    energies = []
    for q in (0, 1):
        atoms.info["charge"] = q
        out = model(atoms_to_graph(atoms, CUTOFF, dtype=torch.float64), compute_forces=False)
        energies.append(float(out["energy"][0]))
        assert float(out["charges"].sum()) == pytest.approx(q, abs=1e-12)
    torch.testing.assert_close(seen[0], seen[1], rtol=0, atol=0)
    assert abs(energies[1] - energies[0]) > 1e-3
    glob = charged_model(charge_input="global")
    glob.backbone.register_forward_hook(lambda module, args, out: seen.append(out.node_features))
    for q in (0, 1):
        atoms.info["charge"] = q
        glob(atoms_to_graph(atoms, CUTOFF, dtype=torch.float64), compute_forces=False)
    assert not torch.equal(seen[2], seen[3])  # the global input does reach the backbone


def test_charge_input_is_checked_and_fine_tuning_may_switch_it(tmp_path) -> None:
    from phicalc.serialization import save_model
    from phicalc.train.preparation import initialise_from

    with pytest.raises(ConfigError, match="charge_input"):
        build_model("painn", charge_input="per-atom")
    with pytest.raises(ConfigError, match="needs charge_spin and charge_equilibration"):
        build_model("painn", charge_spin=True, charge_input="equilibrated")
    source = charged_model(charge_input="global", seed=1)
    save_model(source, tmp_path / "global.pt")
    target = charged_model(charge_input="equilibrated", seed=2)
    initialise_from(target, str(tmp_path / "global.pt"))
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("charge_input", ["global", "equilibrated"])
def test_charge_state_energy_is_the_equilibration_energy(charge_input: str) -> None:
    """E_Q = Σ (χ_i + μ) q⁰_i + ½ J_i q⁰_i² from the model's own heads is added to the energy of a
    model that is otherwise the same weights, and μ moves a charge state's energy by exactly μ·Q."""
    with_term = charged_model(charge_input=charge_input, charge_state_energy=True)
    with torch.no_grad():
        with_term.charge_potential.fill_(2.5)
    without = charged_model(charge_input=charge_input, charge_state_energy=False)
    without.load_state_dict(
        {k: v for k, v in with_term.state_dict().items() if k != "charge_potential"}
    )
    features: list[torch.Tensor] = []
    with_term.backbone.register_forward_hook(
        lambda m, args, out: features.append(out.node_features)
    )
    atoms = ammonium_and_water(8.0)
    energies = {}
    for q in (0, 1, -1):
        atoms.info["charge"] = q
        graph = atoms_to_graph(atoms, CUTOFF, dtype=torch.float64)
        out = with_term(graph, compute_forces=False)
        chi, hardness = with_term.equilibration.chi_and_hardness(features[-1])
        q0 = with_term.equilibration(features[-1], graph.total_charge.double(), graph.batch, 1)
        expected = ((chi + 2.5) * q0 + 0.5 * hardness * q0 * q0).sum()
        torch.testing.assert_close(out["charge_state_energy"][0], expected.detach())
        plain = without(graph, compute_forces=False)
        torch.testing.assert_close(out["energy"] - out["charge_state_energy"], plain["energy"])
        energies[q] = float(out["energy"][0])
    with torch.no_grad():
        with_term.charge_potential.fill_(4.0)
    for q in (1, -1):
        atoms.info["charge"] = q
        shifted = with_term(
            atoms_to_graph(atoms, CUTOFF, dtype=torch.float64), compute_forces=False
        )
        assert float(shifted["energy"][0]) == pytest.approx(energies[q] + 1.5 * q, abs=1e-10)


def test_charge_state_energy_needs_equilibration_and_fine_tuning_may_add_it(tmp_path) -> None:
    """A source without the term initialises every weight it has; μ is reported as missing."""
    from phicalc.serialization import load_model, save_model
    from phicalc.train.preparation import initialise_from

    with pytest.raises(ConfigError, match="charge_state_energy needs charge_equilibration"):
        build_model("painn", charge_spin=True, charge_state_energy=True)
    source = charged_model(charge_input="global", seed=1)
    save_model(source, tmp_path / "plain.pt")
    target = charged_model(charge_input="equilibrated", charge_state_energy=True, seed=2)
    assert initialise_from(target, str(tmp_path / "plain.pt")) == ["charge_potential"]
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)
    with torch.no_grad():
        target.charge_potential.fill_(6.0)
    save_model(target, tmp_path / "with_term.pt")
    reloaded = load_model(tmp_path / "with_term.pt").double()
    assert float(reloaded.charge_potential.detach()) == 6.0
    assert (
        initialise_from(charged_model(charge_state_energy=True), str(tmp_path / "with_term.pt"))
        == []
    )


def molecule_scope_model(strength: float = 0.2, seed: int = 0):
    """The same weights with one equilibration per structure and per molecule (transfer s)."""
    model = charged_model(charge_input="equilibrated", charge_state_energy=True, seed=seed)
    scoped = charged_model(
        charge_input="equilibrated",
        charge_state_energy=True,
        equilibration_scope="molecule",
        seed=seed,
    )
    state = model.state_dict()
    state["raw_transfer_strength"] = torch.tensor(np.log(np.expm1(strength)))
    scoped.load_state_dict(state)
    with torch.no_grad():
        model.charge_potential.fill_(5.0)
        scoped.charge_potential.fill_(5.0)
    return model, scoped


def test_molecules_are_covalent_components_and_get_integer_charges() -> None:
    from ase.collections import s22

    from phicalc.nn.electrostatics.fragments import covalent_molecules, integer_charges

    dimer = s22["Water_dimer"]  # a hydrogen bond (H···O 1.9 Å) is not covalent
    oxygen = dimer.positions[dimer.numbers == 8][0]
    sodium = Atoms("Na", positions=[oxygen + [0.0, 0.0, 2.3]])  # ionic: never bonded
    atoms = molecule("CH3CH2OH") + dimer + sodium
    atoms.positions[:9] += [0.0, 0.0, -6.0]
    graph = atoms_to_graph(atoms, CUTOFF)
    lengths = torch.linalg.norm(
        graph.positions[graph.edge_index[1]] - graph.positions[graph.edge_index[0]], dim=-1
    )
    molecule_index, owner = covalent_molecules(
        graph.numbers, graph.edge_index, lengths, graph.batch
    )
    assert molecule_index.tolist() == [0] * 9 + [1] * 3 + [2] * 3 + [3]
    assert owner.tolist() == [0, 0, 0, 0]
    group = torch.tensor([0, 0, 1, 2, 2])
    owner = torch.tensor([0, 0, 1])
    rounded = integer_charges(
        torch.tensor([-0.5, -0.43, -0.07, 0.3, 0.2], dtype=torch.float64),
        group,
        owner,
        torch.tensor([-1.0, 0.5]),
        torch.tensor([6, 8, 7, 6, 6]),
    )
    # −0.93 / −0.07 → −1 / 0; structure 1 has a non-integer Q and keeps its sum
    torch.testing.assert_close(rounded, torch.tensor([-1.0, 0.0, 0.5], dtype=torch.float64))
    # Na, Cl and two waters as in a water box, where both ions carry only about ±0.5 e: the
    # lone ions get ±1 whatever the equilibrium says; a lone Na beside a water in a neutral
    # structure (a neutral atom) gives its unit back
    box = integer_charges(
        torch.tensor([0.46, -0.51, -0.4, 0.2, 0.23, -0.3, 0.15, 0.17], dtype=torch.float64),
        torch.tensor([0, 1, 2, 2, 2, 3, 3, 3]),
        torch.tensor([0, 0, 0, 0]),
        torch.tensor([0.0]),
        torch.tensor([11, 17, 8, 1, 1, 8, 1, 1]),
    )
    torch.testing.assert_close(box, torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=torch.float64))
    neutral = integer_charges(
        torch.tensor([0.46, -0.66, 0.1, 0.1], dtype=torch.float64),
        torch.tensor([0, 1, 1, 1]),
        torch.tensor([0, 0]),
        torch.tensor([0.0]),
        torch.tensor([11, 8, 1, 1]),
    )
    torch.testing.assert_close(neutral, torch.tensor([0.0, 0.0], dtype=torch.float64))


def test_molecule_scope_changes_nothing_for_one_molecule() -> None:
    plain, scoped = molecule_scope_model()
    atoms = molecule("CH3CH2OH")
    for q in (0, 1, -1):
        atoms.info["charge"] = q
        graph = atoms_to_graph(atoms, CUTOFF, dtype=torch.float64)
        a, b = plain(graph), scoped(graph)
        for key in ("energy", "forces", "charges"):
            torch.testing.assert_close(a[key], b[key], rtol=1e-10, atol=1e-12)


def test_no_charge_flows_within_one_equilibrated_molecule() -> None:
    """Why a structure of one molecule skips the transfer: at its equilibrium μ = χ + J q is one
    constant, so L_w μ vanishes, and with it the moved charge, the transfer energy and their
    gradients with respect to the positions."""
    from phicalc.nn.electrostatics.equilibration import equilibrate
    from phicalc.nn.electrostatics.fragments import transfer_charges
    from phicalc.nn.phi.laplacian import GraphLaplacian, LaplacianWeights

    graph = atoms_to_graph(molecule("CH3CH2OH"), CUTOFF, dtype=torch.float64)
    positions = graph.positions.clone().requires_grad_(True)
    i, j = graph.edge_index
    lengths = torch.linalg.norm(positions[j] - positions[i], dim=-1)
    crowding = torch.zeros(graph.n_atoms, dtype=torch.float64).index_add(0, j, torch.exp(-lengths))
    chi, hardness = torch.sin(3.0 * crowding), 1.0 + crowding**2  # geometry-dependent χ, J
    charges = equilibrate(chi, hardness, torch.tensor([1.0], dtype=torch.float64), graph.batch, 1)
    laplacian = GraphLaplacian.of(LaplacianWeights(CUTOFF)(lengths), graph.edge_index, 9)
    moved, shares = transfer_charges(charges, chi, hardness, laplacian, torch.tensor(0.5))
    torch.testing.assert_close(moved, charges, rtol=0, atol=1e-13)
    assert abs(float(shares.sum().detach())) < 1e-13
    weights = torch.arange(9, dtype=torch.float64)  # any observable of the charges
    (grad_moved,) = torch.autograd.grad((weights * moved).sum(), positions, retain_graph=True)
    (grad_kept,) = torch.autograd.grad((weights * charges).sum(), positions, retain_graph=True)
    torch.testing.assert_close(grad_moved, grad_kept, rtol=0, atol=1e-12)
    (grad_energy,) = torch.autograd.grad(shares.sum(), positions)
    assert float(grad_energy.abs().max()) < 1e-12


def test_molecule_scope_is_size_consistent_and_smooth_at_the_cutoff() -> None:
    """NH4⁺ and a water: beyond the cutoff each has its own charges and energy (once the Coulomb
    term, which couples them at any distance, is taken out of all three); the ion's charge is
    exactly +1 there, and the energy is continuous where the pair crosses the cutoff while
    charge flows between them inside it."""
    _, scoped = molecule_scope_model()

    def run(atoms, q):
        atoms.info["charge"] = q
        return scoped(atoms_to_graph(atoms, CUTOFF, dtype=torch.float64))

    far = ammonium_and_water(12.0)
    pair = run(far, 1)
    assert float(pair["charges"][:5].sum()) == pytest.approx(1.0, abs=1e-12)
    ion, water = run(far[:5], 1), run(far[5:], 0)
    torch.testing.assert_close(pair["charges"], torch.cat([ion["charges"], water["charges"]]))
    short = pair["energy"] - pair["coulomb_energy"]
    alone = ion["energy"] - ion["coulomb_energy"] + water["energy"] - water["coulomb_energy"]
    torch.testing.assert_close(short, alone, rtol=0, atol=1e-10)
    near = run(ammonium_and_water(2.5), 1)
    assert abs(float(near["charges"][:5].sum()) - 1.0) > 1e-4  # charge transfer inside

    def closest(d: float) -> float:
        atoms = ammonium_and_water(d)
        return float(
            np.min(np.linalg.norm(atoms.positions[:5, None] - atoms.positions[5:], axis=-1))
        )

    edge = brentq(lambda d: closest(d) - CUTOFF, 1.0, CUTOFF)  # the first pair leaves the graph
    inside, outside = (
        float(run(ammonium_and_water(d), 1)["energy"][0]) for d in (edge - 1e-5, edge + 1e-5)
    )
    slope = (float(run(ammonium_and_water(edge - 0.01), 1)["energy"][0]) - inside) / 0.01
    assert inside == pytest.approx(outside, abs=1e-8 + 4e-5 * abs(slope))


def test_molecule_scope_forces_match_finite_differences_with_charge_transfer() -> None:
    _, scoped = molecule_scope_model(strength=0.5)
    atoms = ammonium_and_water(2.2)
    atoms.info["charge"] = 1
    atoms.calc = PhiCalculator(scoped, dtype="float64")
    forces = atoms.get_forces()
    numerical = calculate_numerical_forces(atoms, eps=1e-5)
    np.testing.assert_allclose(forces, numerical, atol=1e-6 * max(1.0, np.abs(forces).max()))


def test_a_hydrogen_bond_to_a_halide_does_not_merge_molecules() -> None:
    """Cl⁻ on the axis of a water's O–H, Cl···H from 1.60 to 1.86 Å (the bond threshold
    1.3 (R_Cl + R_H) is 1.73 Å): the hydrogen keeps its one bond, to O, so Cl⁻ stays a molecule
    of its own and the default model's energy is smooth through the threshold (with both bonds
    counted it jumped there: an MD of Na⁺Cl⁻ in water gained 0.04 eV in one step). HCl alone and
    the symmetric FHF⁻ (the hydrogen equally near both) stay one molecule."""
    from phicalc.nn.electrostatics.fragments import covalent_molecules

    def molecules(atoms: Atoms) -> list[int]:
        graph = atoms_to_graph(atoms, CUTOFF, dtype=torch.float64)
        lengths = torch.linalg.norm(
            graph.positions[graph.edge_index[1]] - graph.positions[graph.edge_index[0]], dim=-1
        )
        return covalent_molecules(graph.numbers, graph.edge_index, lengths, graph.batch)[0].tolist()

    calc = PhiCalculator("phi-painn-organic", device="cpu", dtype="float64")
    distances = np.arange(1.60, 1.865, 0.01)
    energies = []
    for d in distances:
        atoms = Atoms(
            "OHHCl", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0], [0.96 + d, 0, 0]]
        )
        atoms.info["charge"] = -1
        assert molecules(atoms) == [0, 0, 0, 1]
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
    curvature = np.abs(np.diff(energies, 2))
    assert curvature.max() < 2e-3, curvature.round(4)  # eV per (0.01 Å)²
    assert molecules(Atoms("HCl", positions=[[0, 0, 0], [1.27, 0, 0]])) == [0, 0]
    assert molecules(Atoms("FHF", positions=[[0, 0, 0], [1.14, 0, 0], [2.28, 0, 0]])) == [0, 0, 0]


def test_the_dipole_carries_gradients_only_when_training() -> None:
    """A dipole loss differentiates the dipole with respect to the weights (training=True);
    inference computes it without a graph and returns it detached, the same value."""
    _, model = molecule_scope_model()
    graph = atoms_to_graph(molecule("CH3CH2OH"), CUTOFF, dtype=torch.float64)
    trained = model(graph, training=True)["dipole"]
    assert trained.requires_grad
    (gradient,) = torch.autograd.grad(
        trained.square().sum(), model.equilibration.hardness[0].weight
    )
    assert gradient.abs().max() > 0
    inferred = model(graph, training=False)["dipole"]
    assert not inferred.requires_grad
    torch.testing.assert_close(inferred, trained.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("method", "switch"), [("ewald", None), ("pme", None), ("ewald", 3.0)])
def test_forces_without_the_stress_take_the_energy_only_coulomb_sum(method, switch) -> None:
    """A periodic force call without the stress sums Coulomb energy-only (no structure
    factors or mesh in the backward pass); with the stress it takes the full sums. Both give
    the same energy, per-atom energies, charges and forces (with a short-range switch too)."""
    from dataclasses import replace

    from phicalc.data.structures import water_box
    from phicalc.nn.electrostatics import periodic

    coulomb = {"switch_radius": switch} if switch else True
    model = charged_model(
        coulomb=coulomb, charge_input="equilibrated", equilibration_scope="molecule"
    )
    if method == "pme":
        model.coulomb.config = replace(model.coulomb.config, ewald_max_atoms=1)
    atoms = water_box(6, seed=2)
    atoms.info["charge"] = 1
    graph = atoms_to_graph(atoms, CUTOFF, dtype=torch.float64)
    seen = []
    original = periodic.periodic_potentials

    def recording(*args, **kwargs):
        seen.append(args[7] if len(args) > 7 else kwargs.get("own_positions", False))
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("phicalc.nn.electrostatics.coulomb.periodic_potentials", recording)
        forces_only = model(graph, compute_forces=True)
        with_stress = model(graph, compute_forces=True, compute_stress=True)
    assert seen == [True, False]
    for key in ("energy", "energies", "charges", "potentials", "forces"):
        torch.testing.assert_close(forces_only[key], with_stress[key], rtol=1e-10, atol=1e-12)


def test_without_parts_takes_out_exactly_the_named_terms() -> None:
    """The benchmarks' ablation arms: without Coulomb the energy lacks exactly the Coulomb
    energy (the charges do not depend on it), E_Q off lacks exactly E_Q, and the model the copy
    came from is untouched."""
    from phicalc.testing import without_parts

    _, model = molecule_scope_model()
    atoms = molecule("CH3CH2OH") + molecule("H2O")
    atoms.positions[9:] += [3.0, 0.0, 0.0]
    atoms.info["charge"] = 1
    graph = atoms_to_graph(atoms, CUTOFF, dtype=torch.float64)
    full = model(graph)
    no_coulomb = without_parts(model, coulomb=True)(graph)
    torch.testing.assert_close(no_coulomb["charges"], full["charges"], rtol=0, atol=1e-14)
    torch.testing.assert_close(
        full["energy"] - no_coulomb["energy"], full["coulomb_energy"], rtol=1e-12, atol=1e-12
    )
    no_charge_state = without_parts(model, charge_state_energy=True)(graph)
    torch.testing.assert_close(
        full["energy"] - no_charge_state["energy"],
        full["charge_state_energy"],
        rtol=1e-12,
        atol=1e-12,
    )
    structure_wide = without_parts(model, equilibration_scope="structure")
    assert structure_wide.config.equilibration_scope == "structure"
    assert without_parts(model, phi=True).phi is None
    assert model.coulomb is not None and model.phi is not None
    assert model.config.charge_state_energy and model.config.equilibration_scope == "molecule"
