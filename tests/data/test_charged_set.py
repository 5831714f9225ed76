"""The charged / long-range data set: filter, split, dimer scan, vertical states, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import read, write

from phicalc.data.xtb.charged_species import (
    assign_splits,
    load_charged_set,
    most_heldout,
    parse_charged_set,
    species_of_frames,
    split_of_key,
)
from phicalc.data.xtb.fragments import (
    closest_distance,
    fragment_charge_deviation,
    ion_water_cluster,
    passes_fragment_filter,
    place_at_contact,
    place_at_distance,
    random_direction,
    random_rotation,
)
from phicalc.errors import DatasetError


def test_fragment_filter_drops_fractional_transfer_keeps_integer():
    # complex: fragment A (3 atoms, Q_A = +1) and B (2 atoms, Q_B = 0)
    integer = np.array([0.6, 0.3, 0.1, -0.2, 0.2])
    leaky = integer + np.array([-0.05, 0.0, 0.0, 0.05, 0.0])  # 0.05 e moved from A to B
    assert passes_fragment_filter(integer, 3, 1, 0)
    assert not passes_fragment_filter(leaky, 3, 1, 0)
    assert fragment_charge_deviation(leaky, 3, 1) == pytest.approx(0.05)
    assert passes_fragment_filter(leaky, 3, 1, 0, tolerance=0.06)


def test_split_is_deterministic_and_by_species():
    charged_set = load_charged_set()
    first, second = assign_splits(charged_set, seed=0), assign_splits(charged_set, seed=0)
    assert first == second and set(first.values()) <= {"train", "val", "test"}
    assert "test" in first.values() and "train" in first.values()
    for pair in charged_set.dimers:  # a held-out monomer never reaches train through a pair
        assert first[pair.name] == most_heldout(
            first[pair.name], first[pair.a.name], first[pair.b.name]
        )
    # the split of a key does not depend on the list; two spellings share a split
    twin = parse_charged_set("neutral OCC ethanol\nneutral CCO ethanol2\n")
    splits = assign_splits(twin, seed=3)
    assert splits["ethanol"] == splits["ethanol2"] == split_of_key("mol:CCO", 3)
    assert split_of_key("mol:O", 0) == split_of_key("mol:O", 1) == "train"  # the solvent
    fractions = [split_of_key(f"mol:{i}", 0) for i in range(2000)]
    assert 0.12 < fractions.count("test") / 2000 < 0.18
    assert 0.07 < fractions.count("val") / 2000 < 0.13


def test_parse_rejects_open_shell_and_unknown_dimer():
    with pytest.raises(DatasetError, match="odd electron"):
        parse_charged_set("ion [CH3] methyl\n")
    with pytest.raises(DatasetError, match="unknown species"):
        parse_charged_set("neutral O water\ndimer water ammonia\n")


def test_dimer_placement_distances():
    rng = np.random.default_rng(0)
    a, b = molecule("H2O"), molecule("CH3OH")
    rotation, direction = random_rotation(rng), random_direction(rng)
    far = place_at_distance(a, b, 7.5, rotation, direction)
    assert closest_distance(far.positions[:3], far.positions[3:]) == pytest.approx(7.5, abs=1e-6)
    near = place_at_contact(a, b, 0.75, rotation, direction)
    assert 1.5 < closest_distance(near.positions[:3], near.positions[3:]) < 2.8
    cluster = ion_water_cluster("Cl", 3, rng)
    assert cluster.get_chemical_formula() == "H6ClO3" and cluster.info["charge"] == -1


tblite = pytest.importorskip("tblite")


def _read_all(stem):
    from phicalc.data.datasets import read_structures

    records = []
    for split in ("train", "val", "test"):
        path = stem.with_name(f"{stem.name}_{split}.extxyz")
        if path.exists():
            records += read_structures(path)
    return records


def test_dimer_scan_writes_complex_and_monomers(tmp_path):
    from phicalc.data.xtb.charged import ChargedSettings, label_charged_set

    charged_set = parse_charged_set("neutral O water\nion [Na+] sodium\ndimer sodium water\n")
    settings = ChargedSettings(
        stages=("dimers",), dimer_orientations=1, contact_scales=(0.8,), dimer_distances=(3.5,)
    )
    stem = tmp_path / "dimer"
    label_charged_set(charged_set, stem, settings=settings, seed=1, progress=False)
    records = _read_all(stem)
    assert len(records) == 6
    by_id: dict[str, dict[str, Atoms]] = {}
    for record in records:
        info = record.info
        for key in ("dimer_id", "fragment", "n_atoms_A", "n_atoms_B", "distance", "charge", "spin"):
            assert key in info, key
        assert (info["n_atoms_A"], info["n_atoms_B"]) == (1, 3)
        by_id.setdefault(info["dimer_id"], {})[info["fragment"]] = record
    assert len(by_id) == 2
    distances = []
    for triple in by_id.values():
        assert set(triple) == {"complex", "A", "B"}
        assert [triple[f].info["charge"] for f in ("complex", "A", "B")] == [1, 1, 0]
        energies = {f: r.get_potential_energy() for f, r in triple.items()}
        e_int = energies["complex"] - energies["A"] - energies["B"]
        assert np.isfinite(e_int) and e_int == pytest.approx(
            triple["complex"].info["interaction_energy"]
        )
        assert len(triple["complex"].arrays["ref_charges"]) == 4
        distances.append(triple["complex"].info["distance"])
    assert max(distances) == pytest.approx(3.5, abs=1e-4) and min(distances) < 3.0
    summary = json.loads(stem.with_name("dimer_summary.json").read_text())
    assert summary["frames_total"] == 6 and summary["dropped_total"] == 0


def test_vertical_charge_states_drop_unbound_anions(tmp_path):
    from phicalc.data.xtb.charged import ChargedSettings, label_charged_set

    settings = ChargedSettings(
        stages=("species", "vertical"),
        temperatures_K=(300.0,),
        frames=1,
        interval_steps=2,
        equilibration_steps=0,
    )
    stem = tmp_path / "vertical"
    label_charged_set(
        parse_charged_set("neutral O water\nneutral O=C1C=CC(=O)C=C1 benzoquinone\n"),
        stem,
        settings=settings,
        progress=False,
    )
    records = _read_all(stem)
    vertical = [r for r in records if r.info["category"] == "vertical"]
    neutral = {r.info["species"]: r for r in records if r.info["category"] == "neutral"}
    assert all(r.info["spin"] == 2 for r in vertical)
    assert all(neutral[name].info["spin"] == 1 for name in neutral)
    for r in vertical:
        assert r.arrays["ref_charges"].sum() == pytest.approx(r.info["charge"], abs=1e-6)
        assert np.allclose(neutral[r.info["species"]].positions, r.positions)
    charges = {
        name: sorted(r.info["charge"] for r in vertical if r.info["species"] == name)
        for name in neutral
    }
    # GFN2-xTB puts water's extra electron ~7 eV above the neutral: unbound, dropped;
    # benzoquinone binds one (electron affinity of several eV): kept
    assert charges == {"water": [1], "benzoquinone": [-1, 1]}
    anion = next(r for r in vertical if r.info["charge"] == -1)
    assert anion.get_potential_energy() < neutral["benzoquinone"].get_potential_energy()
    summary = json.loads(stem.with_name("vertical_summary.json").read_text())
    assert summary["dropped"] == {"unbound_anion": {"vertical": 1}}


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--charged-set", "no_such_list.txt"], "no such charged-set file"),
        (["--charged-set", "--dimer-orientations", "-1"], "--dimer-orientations must be >= 0"),
        (["--charged-set", "--resume"], "--charged-set supports neither"),
        (["--charged-set", "--transfer-tolerance", "-0.1"], "must be >= 0"),
    ],
)
def test_charged_cli_bad_input_exit_2(tmp_path, capsys, arguments, message):
    from phicalc.cli.main import main

    out = tmp_path / "x"
    assert main(["label", *arguments, "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_charged_cli_bad_list_exit_2(tmp_path, capsys):
    from phicalc.cli.main import main

    bad = tmp_path / "list.txt"
    bad.write_text("ion [CH3] methyl\n")
    assert main(["label", "--charged-set", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "odd electron" in capsys.readouterr().err


def test_ion_dipoles_are_about_the_centre_of_mass() -> None:
    """tblite reports an ion's dipole about the origin; records hold it about the centre of mass,
    so moving the ion does not change it (the model's convention)."""
    pytest.importorskip("tblite")
    from phicalc.data.xtb.single_point import xtb_calculator, xtb_record

    dipoles = []
    for shift in (0.0, 3.0):
        atoms = molecule("NH3")
        atoms.positions += [shift, -1.0, 0.5]
        atoms.info["charge"] = 1
        atoms.calc = xtb_calculator("GFN2-xTB", charge=1, multiplicity=2)
        dipoles.append(xtb_record(atoms, {}).calc.results["dipole"])
    np.testing.assert_allclose(dipoles[0], dipoles[1], atol=1e-6)


def test_fpscl_supplement_list_carries_f_p_s_cl_and_shares_only_the_solvent():
    supplement = load_charged_set(
        Path(__file__).parents[2] / "phicalc" / "data" / "charged_set_fpscl.txt"
    )
    main = load_charged_set()
    # every species but the solvent carries F, P, S or Cl (the organic set has none of them)
    from rdkit import Chem

    for name, species in supplement.species.items():
        numbers = {atom.GetAtomicNum() for atom in Chem.MolFromSmiles(species.smiles).GetAtoms()}
        assert name == "water" or numbers & {9, 15, 16, 17}, name
    # water, the dimer partner, is the only species both lists hold, and stays in training
    shared = {s.key for s in supplement.species.values()} & {s.key for s in main.species.values()}
    assert shared == {"mol:O"}
    splits = assign_splits(supplement)
    assert splits["water"] == "train"
    assert {"train", "val", "test"} <= set(splits.values())


def test_ion_supplement_list_holds_new_ions_of_the_default_elements():
    data = Path(__file__).parents[2] / "phicalc" / "data"
    supplement = load_charged_set(data / "charged_set_ions.txt")
    others = [load_charged_set(), load_charged_set(data / "charged_set_fpscl.txt")]
    assert {s.kind for s in supplement.species.values()} == {"ion"}
    assert not supplement.dimers
    # no species of the other lists again: a held-out ion there never trains here, and back
    known = {s.key for other in others for s in other.species.values()}
    assert not known & {s.key for s in supplement.species.values()}
    assert {s.charge for s in supplement.species.values()} >= {-2, -1, 1, 2}
    splits = assign_splits(supplement)
    assert {"train", "val", "test"} <= set(splits.values())
    # only the default model's elements
    from rdkit import Chem

    for name, species in supplement.species.items():
        mol = Chem.AddHs(Chem.MolFromSmiles(species.smiles))
        assert {a.GetSymbol() for a in mol.GetAtoms()} <= set("H C N O F P S Cl Na".split()), name


def test_species_of_frames_and_drop_unseen_species(tmp_path):
    def frame(smiles: str) -> Atoms:
        atoms = molecule("H2O")
        atoms.info["smiles"] = smiles
        return atoms

    assert species_of_frames([frame("n1ccccc1.O"), molecule("CH4")]) == {"c1ccncc1", "O"}
    write(tmp_path / "train.extxyz", [frame("CCO"), frame("c1ccncc1"), frame("OCC"), frame("CC")])
    write(tmp_path / "val.extxyz", [frame("n1ccccc1.O"), frame("CCO")])
    out = tmp_path / "kept.extxyz"
    script = Path(__file__).parents[2] / "scripts" / "drop_unseen_species.py"
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "train.extxyz"), "--heldout",
         str(tmp_path / "val.extxyz"), "--out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert [a.info["smiles"] for a in read(out, ":")] == ["CC"]  # water held out too
    report = json.loads((tmp_path / "kept_dropped.json").read_text())
    assert report["frames_read"] == 4 and report["frames_kept"] == 1
    assert report["dropped_by_species"] == {"CCO": 2, "c1ccncc1": 1}


def test_species_errors_reports_each_species_offset(tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator

    from phicalc import PhiCalculator

    frames = []
    calculator = PhiCalculator("phi-painn-organic", dtype="float64")
    for name, shift in (("water", 0.0), ("ammonia", 0.3)):  # the reference 0.3 eV above
        atoms = molecule("H2O" if name == "water" else "NH3")
        atoms.info.update(species=name, category="neutral", charge=0, spin=1)
        atoms.calc = calculator
        energy = atoms.get_potential_energy() + shift
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=atoms.get_forces())
        frames.append(atoms)
    write(tmp_path / "frames.extxyz", frames)
    script = Path(__file__).parents[2] / "scripts" / "species_errors.py"
    printed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "frames.extxyz"), "--model",
         "v7=phi-painn-organic", "--categories", "neutral"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    rows = {
        line.split("|")[1].strip(): line.split("|")[3].strip() for line in printed.splitlines()[2:]
    }
    assert rows == {"water": "0.0 / +0.0", "ammonia": "75.0 / -75.0"}  # 300 meV over 4 atoms
    printed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "frames.extxyz"), "--model",
         "v7=phi-painn-organic", "--parts"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    parts = printed.split("electrostatic parts (meV/atom):")[1].strip().splitlines()
    assert parts[0] == "| species | E_Q | E_C | E_Φ |"
    water = [float(cell) for cell in parts[2].split("|")[2:5]]
    atoms = frames[0].copy()
    atoms.calc = calculator
    atoms.get_potential_energy()
    expected = [1000 * calculator.results[key] / 3 for key in ("charge_state_energy",
                "coulomb_energy", "phi_energy")]  # fmt: skip
    np.testing.assert_allclose(water, expected, atol=0.051)  # printed to 0.1 meV/atom
    assert abs(water[1]) > 1.0  # the Coulomb energy inside a water molecule is not small
