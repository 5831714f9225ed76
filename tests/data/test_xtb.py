from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

pytest.importorskip("tblite")

from phicalc.data.datasets import read_structures, write_structures  # noqa: E402
from phicalc.data.xtb.jobs import label_molecules  # noqa: E402
from phicalc.data.xtb.sampling import normal_mode_samples, sample_trajectory  # noqa: E402
from phicalc.data.xtb.single_point import label_structure  # noqa: E402
from phicalc.data.xtb.smiles import (  # noqa: E402
    HELDOUT_FRACTION,
    load_organic_smiles,
    read_smiles_file,
)
from phicalc.graph.batch import reference_targets  # noqa: E402

FAST = {"interval": 2, "equilibration_steps": 2, "timestep_fs": 0.5}


def test_label_structure_units_and_keys():
    record = label_structure(molecule("H2O"), info={"tag": 1})
    assert record.get_potential_energy() == pytest.approx(-137.9678, abs=1e-3)  # eV (GFN2)
    forces = record.get_forces()
    assert forces.shape == (3, 3) and np.abs(forces.sum(axis=0)).max() < 1e-6
    charges = record.arrays["ref_charges"]
    assert charges.sum() == pytest.approx(0.0, abs=1e-6) and charges[0] < -0.3  # O negative
    dipole = record.info["ref_dipole"]  # e·Å: GFN2 water ≈ 0.48 e·Å (2.3 D)
    assert np.linalg.norm(dipole) == pytest.approx(0.476, abs=0.02)
    assert record.info["method"] == "GFN2-xTB" and record.info["tag"] == 1
    assert set(reference_targets(record)) == {"energy", "forces", "charges", "dipole"}


def test_sample_trajectory_deterministic_and_consistent():
    frames = sample_trajectory(molecule("CH4"), 500.0, 3, seed=7, **FAST)
    again = sample_trajectory(molecule("CH4"), 500.0, 3, seed=7, **FAST)
    other = sample_trajectory(molecule("CH4"), 500.0, 3, seed=8, **FAST)
    assert len(frames) == 3
    for a, b in zip(frames, again):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-8)
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-7)
    assert not np.allclose(frames[-1].positions, other[-1].positions)
    assert [f.info["md_step"] for f in frames] == [4, 6, 8]
    info = frames[0].info
    assert info["temperature_K"] == 500.0 and info["job_seed"] == 7 and info["sampler"] == "md"
    assert info["bonds_intact"] is True and info["frame"] == 0
    # Labels belong to the stored geometry (up to SCF convergence: the MD restarts each SCF from
    # the previous step's wavefunction, a fresh single point from scratch; ~1e-5 eV/Å).
    check = label_structure(frames[1])
    assert check.get_potential_energy() == pytest.approx(frames[1].get_potential_energy(), abs=1e-5)
    np.testing.assert_allclose(check.get_forces(), frames[1].get_forces(), atol=5e-4)
    assert not np.allclose(frames[0].positions, frames[1].positions)


def test_rattle_and_normal_modes():
    frames = sample_trajectory(molecule("H2O"), 300.0, 2, seed=1, rattle_A=0.02, **FAST)
    assert frames[0].info["sampler"] == "md+rattle" and frames[0].info["rattle_A"] == 0.02
    samples = normal_mode_samples(molecule("H2O"), 300.0, 3, seed=0)
    assert len(samples) == 3 and samples[0].info["sampler"] == "normal-modes"
    energies = [s.get_potential_energy() for s in samples]
    again = [
        s.get_potential_energy() for s in normal_mode_samples(molecule("H2O"), 300.0, 3, seed=0)
    ]
    np.testing.assert_allclose(energies, again, atol=1e-7)
    assert max(energies) - min(energies) < 0.5  # thermal displacements, not explosions


def test_label_molecules_file_and_resume(tmp_path):
    out = tmp_path / "labels.extxyz"
    kwargs = {"interval_steps": 2, "equilibration_steps": 0, "seed": 3, "out_path": out}
    summary = label_molecules(["smiles:O", "CH4"], [300.0, 600.0], 2, **kwargs)
    assert summary.n_frames == 8 and not summary.failed_jobs
    records = read_structures(out, require_labels=True)
    assert len(records) == 8
    first = records[0]
    assert first.info["molecule"] == "O" and first.info["smiles"] == "O"
    assert first.info["seed"] == 3 and first.info["temperature_K"] == 300.0
    assert first.info["method"] == "GFN2-xTB"
    assert {r.info["molecule"] for r in records} == {"O", "CH4"}
    np.testing.assert_allclose(records[0].get_forces(), summary.records[0].get_forces(), atol=1e-7)
    # Resume: finished jobs are skipped, a new molecule is added, existing frames untouched.
    summary2 = label_molecules(
        ["smiles:O", "CH4", "smiles:N"], [300.0, 600.0], 2, resume=True, **kwargs
    )
    assert len(summary2.skipped_jobs) == 4 and summary2.n_frames == 4
    records2 = read_structures(out)
    assert len(records2) == 12
    np.testing.assert_allclose(records2[0].positions, records[0].positions)
    # Jobs are known by their seed, not their name as the file spells it (names were once
    # written without a cis SMILES' backslash): a renamed record still counts as done.
    renamed = read_structures(out)
    for record in renamed:
        record.info["molecule"] = "renamed " + record.info["molecule"]
    write_structures(out, renamed)
    again = label_molecules(
        ["smiles:O", "CH4", "smiles:N"], [300.0, 600.0], 2, resume=True, **kwargs
    )
    assert len(again.skipped_jobs) == 6 and again.n_frames == 0
    # The same job gives the same frames whatever else is in the list.
    alone = label_molecules(
        ["smiles:N"], [600.0], 2, interval_steps=2, equilibration_steps=0, seed=3
    )
    np.testing.assert_allclose(alone.records[-1].positions, records2[-1].positions, atol=1e-8)


def test_organic_smiles_list():
    from rdkit import Chem

    smiles = load_organic_smiles()
    assert 250 <= len(smiles) <= 350
    canonical = set()
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        assert mol is not None, s
        assert {a.GetSymbol() for a in mol.GetAtoms()} <= {"C", "N", "O"}, s
        assert mol.GetNumHeavyAtoms() <= 30, s
        assert Chem.GetFormalCharge(mol) == 0, s
        canonical.add(Chem.MolToSmiles(mol))
    assert len(canonical) == len(smiles)  # no molecule listed twice
    train, heldout = load_organic_smiles("train"), load_organic_smiles("heldout")
    assert set(train).isdisjoint(heldout) and len(train) + len(heldout) == len(smiles)
    assert abs(len(heldout) / len(smiles) - HELDOUT_FRACTION) < 0.05
    assert load_organic_smiles("heldout") == heldout  # stable
    assert any("#" in s for s in smiles)  # triple bonds survive the comment handling


def test_read_smiles_file(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("# comment\nCC#N acetonitrile\n\nc1ccccc1\n")
    assert read_smiles_file(path) == ["CC#N", "c1ccccc1"]
    with pytest.raises(FileNotFoundError):
        read_smiles_file(tmp_path / "none.txt")
