"""Graph replay (phicalc.graph_replay): padded inert edges change nothing; the calculator's
replay path equals a plain call through MD steps, rebuilt lists and new structures."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.emt import EMT

from phicalc import PhiCalculator
from phicalc.build import build_model
from phicalc.compiled import config_values
from phicalc.graph.batch import atoms_to_graph
from phicalc.graph_replay import GraphReplay, edge_capacity, pad_open_graph, replay_blocker


def _model(backbone: str = "painn", **options) -> torch.nn.Module:
    """A small charge-aware model (Φ, Qeq, Coulomb) in float64; ``options`` override."""
    for name, value in dict(
        phi=True, charge_spin=True, charge_equilibration=True, coulomb=True, num_features=16
    ).items():
        options.setdefault(name, value)
    model = build_model(backbone, elements=["H", "C", "N", "O"], cutoff=3.5, seed=3, **options)
    return model.double().eval()


def _per_molecule_model(**options) -> torch.nn.Module:
    """A small model with charges equilibrated per molecule and the charge-state energy (the
    default model's charge handling), float64, with Na and Cl."""
    options = {"num_features": 16, **options}
    model = build_model(
        "painn",
        elements=["H", "C", "N", "O", "Na", "Cl"],
        cutoff=3.5,
        seed=3,
        phi=True,
        charge_spin=True,
        charge_equilibration=True,
        coulomb=True,
        charge_input="equilibrated",
        equilibration_scope="molecule",
        charge_state_energy=True,
        **options,
    )
    return model.double().eval()


def _ions_and_molecules() -> Atoms:
    """H2O and NH4 3 Å apart (charge can flow between them) and a lone Na and Cl 4 Å away."""
    ammonium = molecule("NH3") + Atoms("H", [[0.0, 0.0, -1.0]])
    ammonium.translate([3.0, 0.0, 0.0])
    atoms = molecule("H2O") + ammonium + Atoms("NaCl", [[0.0, 4.0, 0.0], [0.0, -4.0, 0.0]])
    return atoms


def _rattled(name: str, seed: int, sigma: float = 0.05) -> Atoms:
    atoms = molecule(name)
    atoms.rattle(sigma, seed=seed)
    return atoms


@pytest.mark.parametrize("backbone", ["painn", "schnet"])
def test_inert_padding_edges_change_no_output(backbone):
    model = _model(backbone)
    graph = atoms_to_graph(_rattled("CH3CH2OH", 0), model.cutoff)
    padded = pad_open_graph(graph, graph.edge_index.shape[1] + 100)
    assert padded.edge_index.shape[1] == graph.edge_index.shape[1] + 100
    plain = model(graph, compute_forces=True)
    pad = model(padded, compute_forces=True, validate=False)
    for name in ("energy", "forces", "charges", "potentials", "dipole", "electrostatic_energy"):
        torch.testing.assert_close(pad[name], plain[name], rtol=1e-12, atol=1e-12, msg=name)


def test_pad_open_graph_refuses_periodic_and_short_capacity():
    model = _model()
    atoms = _rattled("H2O", 0)
    graph = atoms_to_graph(atoms, model.cutoff)
    with pytest.raises(ValueError, match="below"):
        pad_open_graph(graph, graph.edge_index.shape[1] - 1)
    atoms.cell = [6.0, 6.0, 6.0]
    atoms.pbc = True
    with pytest.raises(ValueError, match="open structure"):
        pad_open_graph(atoms_to_graph(atoms, model.cutoff), 500)


def test_replay_blocker_names_what_it_cannot_take():
    model = _model()
    atoms = _rattled("H2O", 0)
    assert replay_blocker(model, atoms_to_graph(atoms, model.cutoff)) is None
    atoms.cell = [6.0, 6.0, 6.0]
    atoms.pbc = True
    assert replay_blocker(model, atoms_to_graph(atoms, model.cutoff)) == "a periodic structure"
    eigen = _model(phi={"method": "eigenbasis", "num_modes": 2}, coulomb=False)
    graph = atoms_to_graph(_rattled("H2O", 0), eigen.cutoff)
    assert "eigenbasis" in replay_blocker(eigen, graph)
    erwin = build_model("erwin", elements=["H", "O"], cutoff=3.5, seed=0, num_features=8)
    assert "erwin" in replay_blocker(erwin, atoms_to_graph(_rattled("H2O", 0), 3.5))
    per_molecule = _per_molecule_model()  # its molecules come in as buffers
    assert replay_blocker(per_molecule, atoms_to_graph(_ions_and_molecules(), 3.5)) is None


def test_replay_records_once_per_structure_and_grows_its_edge_capacity():
    model = _model()
    replay = GraphReplay(model, capture=False)
    first = Atoms()
    for k in range(4):  # four ethanols in a row, 4 Å apart: few edges between them
        part = _rattled("CH3CH2OH", k)
        part.positions += [4.0 * k, 0.0, 0.0]
        first += part
    graph = atoms_to_graph(first, model.cutoff)
    out = replay(graph)
    assert replay.recordings == 1
    torch.testing.assert_close(out["forces"], model(graph)["forces"], rtol=1e-12, atol=1e-12)
    moved = first.copy()
    moved.positions += 0.02 * np.random.default_rng(0).standard_normal(moved.positions.shape)
    graph = atoms_to_graph(moved, model.cutoff)
    torch.testing.assert_close(replay(graph)["energy"], model(graph)["energy"], rtol=0, atol=1e-12)
    assert replay.recordings == 1  # same structure, edges within capacity: no new recording
    # compressed to half: more edges than the capacity holds, so it records again with room
    squeezed = first.copy()
    squeezed.positions *= 0.5
    graph = atoms_to_graph(squeezed, model.cutoff)
    assert graph.edge_index.shape[1] > edge_capacity(
        atoms_to_graph(first, model.cutoff).edge_index.shape[1], replay.headroom
    )
    torch.testing.assert_close(
        replay(graph)["forces"], model(graph)["forces"], rtol=1e-12, atol=1e-12
    )
    assert replay.recordings == 2
    # another total charge is another structure
    charged = moved.copy()
    charged.info["charge"] = 1.0
    graph = atoms_to_graph(charged, model.cutoff)
    torch.testing.assert_close(
        replay(graph)["charges"], model(graph)["charges"], rtol=1e-12, atol=1e-12
    )
    assert replay.recordings == 3


@pytest.mark.parametrize("per_molecule", [False, True])
def test_calculator_replay_path_equals_plain_calls_through_md_steps(per_molecule):
    """Also for a model that equilibrates charges per molecule (the calculator hands the
    replay the edge lengths of its distance check, from which the molecules are found)."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    model = _per_molecule_model() if per_molecule else _model()
    runs = {}
    for replay in (False, True):
        if per_molecule:
            atoms = _ions_and_molecules()
            atoms.info["charge"] = 1
        else:
            atoms = _rattled("CH3CH2OH", 2)
        atoms.set_velocities(np.random.default_rng(1).normal(0, 0.02, (len(atoms), 3)))
        atoms.calc = PhiCalculator(
            model, device="cpu", dtype="float64", neighbor_skin=0.3, cuda_graphs=replay
        )
        dynamics = VelocityVerlet(atoms, 0.5 * units.fs)
        energies = []
        dynamics.attach(lambda a=atoms, e=energies: e.append(a.get_potential_energy()), interval=1)
        dynamics.run(30)
        runs[replay] = (np.array(energies), atoms.get_forces(), atoms.get_charges())
        if replay:
            assert atoms.calc.graph_replay.recordings >= 1
            assert atoms.calc.neighbor_cache.builds >= 2  # the list was rebuilt on the way
    for plain, replayed in zip(runs[False], runs[True]):
        np.testing.assert_allclose(replayed, plain, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("total_charge", [0, 1, 2, -1])
def test_replay_of_per_molecule_equilibration_equals_plain_calls(total_charge):
    """Formal charges guessed from the last call or from zero sums, checked against the rule
    on each call's own equilibrium charges: plain calls' numbers, also after a proton moves
    from NH4 to the water (new molecules) and back."""
    model = _per_molecule_model()
    replay = GraphReplay(model, capture=False)
    atoms = _ions_and_molecules()
    proton = 6  # NH4's fourth H, 1 Å below N; the water's O is 3 Å away along x
    for step, shift in enumerate([0.0, 0.0, 2.0, 2.0, 0.0]):
        moved = atoms.copy()
        moved.rattle(0.02, seed=step)
        moved.positions[proton] = [3.0 - shift * 0.99, 0.0, -1.0 + shift * 0.3]
        graph = atoms_to_graph(moved, model.cutoff, total_charge=total_charge)
        out, plain = replay(graph), model(graph)
        for name in ("energy", "forces", "charges", "potentials", "charge_state_energy"):
            torch.testing.assert_close(out[name], plain[name], rtol=1e-10, atol=1e-10, msg=name)
        assert abs(float(out["charges"].sum()) - total_charge) < 1e-10
        assert "molecule_equilibrium_charges" not in out
    assert replay.recordings == 1


def test_replay_follows_a_new_total_charge_on_the_same_geometry():
    """One replay, one geometry, its total charge changed between calls (the molecules and
    their bonds stay, the formal-charge rule kept with them must not): plain calls' numbers,
    the charges summing to each call's Q."""
    model = _per_molecule_model()
    replay = GraphReplay(model, capture=False)
    atoms = _ions_and_molecules()
    for total_charge in (0, 1, 1, -1, 0):
        graph = atoms_to_graph(atoms, model.cutoff, total_charge=total_charge)
        out, plain = replay(graph), model(graph)
        for name in ("energy", "forces", "charges", "charge_state_energy"):
            torch.testing.assert_close(out[name], plain[name], rtol=1e-10, atol=1e-10, msg=name)
        assert abs(float(out["charges"].sum()) - total_charge) < 1e-10


def test_replay_reruns_a_call_whose_guessed_formal_charges_were_wrong():
    model = _per_molecule_model()
    replay = GraphReplay(model, capture=False)
    graph = atoms_to_graph(_ions_and_molecules(), model.cutoff, total_charge=1)
    replay(graph)
    reruns = replay.reruns
    molecules, formal = replay._formal
    wrong = formal.clone()
    wrong[0] += 1.0  # the water +1, NH4 one unit less: the wrong molecule carries the charge
    wrong[1] -= 1.0
    replay._formal = (molecules, wrong)
    out, plain = replay(graph), model(graph)
    assert replay.reruns == reruns + 1
    for name in ("energy", "forces", "charges"):
        torch.testing.assert_close(out[name], plain[name], rtol=1e-10, atol=1e-10, msg=name)


def test_calculator_with_replay_still_treats_periodic_structures_normally():
    model = _model()
    atoms = _rattled("H2O", 3)
    atoms.cell = [5.0, 5.0, 5.0]
    atoms.pbc = True
    atoms.center()
    plain = PhiCalculator(model, device="cpu", dtype="float64")
    replay = PhiCalculator(model, device="cpu", dtype="float64", cuda_graphs=True)
    assert replay.get_potential_energy(atoms) == pytest.approx(
        plain.get_potential_energy(atoms), abs=1e-12
    )
    np.testing.assert_allclose(replay.get_stress(atoms), plain.get_stress(atoms), atol=1e-12)
    assert replay.graph_replay.recordings == 0


@pytest.mark.parametrize("per_molecule", [False, True])
def test_compiled_replay_equals_plain_calls(per_molecule):
    """torch.compile on the padded buffers (CPU inductor): same energy, forces and charges,
    also with charges equilibrated per molecule (molecules and formal charges as buffers)."""
    small = dict(num_features=8, num_blocks=2, num_radial=4)
    model = _per_molecule_model(**small) if per_molecule else _model(**small)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the multi-threaded C++ code path (compiled without SIMD)
    try:
        replay = GraphReplay(model, capture=False, compile=True)
        for seed in (0, 1):  # the second call reuses the recording and the compiled graph
            atoms = _ions_and_molecules() if per_molecule else _rattled("CH3CH2OH", seed)
            atoms.rattle(0.02, seed=seed)
            graph = atoms_to_graph(atoms, model.cutoff, total_charge=1 if per_molecule else 0)
            out, plain = replay(graph), model(graph)
            for name in ("energy", "forces", "charges"):
                torch.testing.assert_close(out[name], plain[name], rtol=1e-10, atol=1e-10, msg=name)
    finally:
        torch.set_num_threads(threads)
    assert replay.recordings == 1
    assert replay.compiled  # went through the compiled function, not fallen back


def test_compiled_replay_skips_guards_only_on_buffers_that_passed_them(monkeypatch):
    """Within a recording the compiled code runs without its guards; each new recording (another
    structure, or back to the first) evaluates them again, and every call equals a plain one."""
    import phicalc.compiled

    asked: list[bool] = []
    held: list[bool] = []
    skipping = phicalc.compiled.guards_skipped

    def probe() -> None:
        got = phicalc.compiled.COMPILED_CALLS.acquire(blocking=False)
        if got:
            phicalc.compiled.COMPILED_CALLS.release()
        held.append(not got)

    def recording(skip: bool):
        asked.append(skip)
        other = threading.Thread(target=probe)  # the stance is process-wide: no other
        other.start()  # thread may start a compiled call meanwhile
        other.join()
        return skipping(skip)

    monkeypatch.setattr(phicalc.compiled, "guards_skipped", recording)
    model = _model(num_features=8, num_blocks=2, num_radial=4)
    replay = GraphReplay(model, capture=False, compile=True)
    sequence = [("CH3CH2OH", 0), ("CH3CH2OH", 1), ("H2O", 2), ("CH3CH2OH", 3), ("CH3CH2OH", 4)]
    for name, seed in sequence:
        graph = atoms_to_graph(_rattled(name, seed), model.cutoff)
        out, plain = replay(graph), model(graph)
        for key in ("energy", "forces", "charges"):
            torch.testing.assert_close(out[key], plain[key], rtol=1e-10, atol=1e-10, msg=key)
    assert replay.recordings == 3
    assert asked == [False, True, False, False, True]
    assert held == [True] * 5


def test_compiled_replay_past_the_recompile_limit_evaluates_guards_again():
    """Past dynamo's recompile limit a new structure runs eagerly, so there is no compiled code
    to skip guards to: torch refuses, and the calls go on with guards, equal to plain calls."""
    torch._dynamo.reset()  # no compiled code of an earlier test counts towards the limit
    model = _model(num_features=8, num_blocks=2, num_radial=4)
    replay = GraphReplay(model, capture=False, compile=True)
    try:
        with config_values(torch._dynamo.config, {"recompile_limit": 1}):
            for name, seed in [("CH3CH2OH", 0), ("CH3CH2OH", 1), ("H2O", 2), ("H2O", 3)]:
                graph = atoms_to_graph(_rattled(name, seed), model.cutoff)
                out, plain = replay(graph), model(graph)
                torch.testing.assert_close(out["forces"], plain["forces"], rtol=1e-10, atol=1e-10)
    finally:
        torch._dynamo.reset()  # nor does this test's for later ones
    assert replay.compile and not replay._compiled.skip_guards


def test_a_compiler_failure_falls_back_to_plain_calls(failing_compiler):
    model = _model()
    replay = GraphReplay(model, capture=False, compile=True)
    graph = atoms_to_graph(_rattled("H2O", 0), model.cutoff)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        out = replay(graph)
    torch.testing.assert_close(out["forces"], model(graph)["forces"], rtol=1e-12, atol=1e-12)
    assert not replay.compile and not replay.compiled


def test_md_compile_setting_reaches_the_calculator():
    from phicalc.md.config import MDConfig
    from phicalc.md.inputs import make_calculator

    model = _model()
    assert MDConfig().compile is None  # auto
    assert MDConfig.from_dict({"compile": True}).compile is True
    calc = make_calculator(model, device="cpu", compile=True)
    assert calc.graph_replay is not None and calc.graph_replay.compile
    assert not calc.graph_replay.capture  # no CUDA graph on a CPU
    assert make_calculator(model, device="cpu").graph_replay is None


def test_md_compiles_long_cpu_runs_unless_told():
    from phicalc.md.config import AUTO_COMPILE_STEPS, MDConfig
    from phicalc.md.run import _compile_model

    long, short = AUTO_COMPILE_STEPS, AUTO_COMPILE_STEPS - 1
    assert MDConfig(steps=long).compile_on("cpu")
    assert not MDConfig(steps=short).compile_on("cpu")
    assert not MDConfig(steps=long).compile_on("cuda")  # CUDA graphs there, never compile
    assert not MDConfig(steps=long, compile=False).compile_on("cpu")
    assert MDConfig(steps=short, compile=True).compile_on("cpu")

    model = _model()
    assert _compile_model(MDConfig(steps=long), model, "cpu")
    assert not _compile_model(MDConfig(steps=short), model, "cpu")
    assert _compile_model(MDConfig(steps=short, compile=True), model, "cpu")  # as told
    assert not _compile_model(MDConfig(steps=long), EMT(), "cpu")  # the user's calculator


def test_md_cli_compile_flag_is_auto_on_or_off():
    import argparse

    from phicalc.cli import md as md_cli

    parser = argparse.ArgumentParser()
    md_cli.add_parser(parser.add_subparsers())
    base = ["md", "--model", "m", "--structure", "s", "--out", "o"]
    assert parser.parse_args(base).compile is None
    assert parser.parse_args([*base, "--compile"]).compile is True
    assert parser.parse_args([*base, "--no-compile"]).compile is False


def test_compile_is_refused_on_cuda():
    from types import SimpleNamespace

    from phicalc.errors import ConfigError

    on_cuda = SimpleNamespace(device=torch.device("cuda"))  # the check reads only the device
    with pytest.raises(ConfigError, match="refused on CUDA"):
        GraphReplay(on_cuda, compile=True)
    assert GraphReplay(on_cuda, compile=False).capture  # CUDA graphs stay on
