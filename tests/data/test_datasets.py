from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from phicalc.data.datasets import (
    GraphDataset,
    copy_record,
    make_record,
    plan_batches,
    read_structures,
    write_structures,
)
from phicalc.errors import DatasetError
from phicalc.graph.batch import collate, reference_targets


def _record(name: str = "H2O", seed: int = 0, **info):
    atoms = molecule(name)
    rng = np.random.default_rng(seed)
    n = len(atoms)
    return make_record(
        atoms,
        energy=float(rng.normal(-100, 1)),
        forces=rng.normal(0, 1, (n, 3)),
        charges=rng.normal(0, 0.3, n),
        dipole=rng.normal(0, 0.5, 3),
        info={"method": "test", "temperature_K": 300.0, "smiles": "C(=O)#N", **info},
    )


def _assert_same(a, b):
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-7)
    np.testing.assert_allclose(a.arrays["ref_charges"], b.arrays["ref_charges"], atol=1e-7)
    np.testing.assert_allclose(a.info["ref_dipole"], b.info["ref_dipole"], atol=1e-7)
    np.testing.assert_allclose(a.get_dipole_moment(), b.get_dipole_moment(), atol=1e-7)
    assert float(a.info["charge"]) == float(b.info["charge"])
    assert b.info["smiles"] == a.info["smiles"] and b.info["method"] == "test"


@pytest.mark.parametrize("suffix", [".extxyz", ".db"])
def test_round_trip(tmp_path, suffix):
    # a cis double bond's SMILES holds a backslash, which ASE's extxyz reader would swallow
    records = [_record("H2O", 0), _record("CH4", 1), _record("C6H6", 2, smiles="F/C=C\\F")]
    path = tmp_path / f"data{suffix}"
    write_structures(path, records)
    back = read_structures(path, require_labels=True)
    assert len(back) == 3
    for a, b in zip(records, back):
        _assert_same(a, b)
    assert len(read_structures(path, "1:")) == 2
    assert read_structures(path, -1)[0].get_chemical_formula() == "C6H6"


def test_extxyz_append_and_dipole_written_once(tmp_path):
    path = tmp_path / "a.extxyz"
    write_structures(path, _record())
    write_structures(path, [_record("CH4")], append=True)
    assert len(read_structures(path)) == 2
    header = path.read_text().splitlines()[1]
    assert "ref_dipole=" in header and " dipole=" not in header


def test_records_compatible_with_graph_targets():
    record = _record()
    targets = reference_targets(record)
    assert set(targets) == {"energy", "forces", "charges", "dipole"}
    np.testing.assert_allclose(targets["charges"].numpy(), record.arrays["ref_charges"])
    np.testing.assert_allclose(targets["dipole"].numpy()[0], record.info["ref_dipole"])


def test_energy_only_records(tmp_path):
    record = make_record(molecule("H2O"), energy=-5.0, charges=[0.1, -0.05, -0.05])
    assert record.info["has_forces"] is False
    path = tmp_path / "e.extxyz"
    write_structures(path, [record])
    back = read_structures(path, require_labels=True)[0]
    assert back.info["has_forces"] is False
    assert back.get_potential_energy() == pytest.approx(-5.0)


def test_copy_record_keeps_labels():
    record = _record()
    copy = copy_record(record)
    copy.calc.results["forces"][0, 0] = 1e3
    assert record.get_forces()[0, 0] != 1e3
    assert copy.get_potential_energy() == record.get_potential_energy()


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        read_structures(tmp_path / "missing.extxyz")
    bad = tmp_path / "bad.extxyz"
    bad.write_text("3\nProperties=species:S:1:pos:R:3\nH 0 0\n")
    with pytest.raises(DatasetError, match="bad.extxyz"):
        read_structures(bad)


def test_missing_labels(tmp_path):
    path = tmp_path / "nolabels.extxyz"
    import ase.io

    ase.io.write(path, molecule("H2O"), format="extxyz")
    assert len(read_structures(path)) == 1
    with pytest.raises(
        DatasetError, match=r"nolabels.extxyz: structure 0: missing reference energy"
    ):
        read_structures(path, require_labels=True)
    path2 = tmp_path / "noforces.extxyz"
    from ase.calculators.singlepoint import SinglePointCalculator

    water = molecule("H2O")
    water.calc = SinglePointCalculator(water, energy=1.0)  # no has_forces=False mark
    ase.io.write(path2, water, format="extxyz")
    with pytest.raises(DatasetError, match="missing reference forces"):
        read_structures(path2, require_labels=True)


def test_bad_shapes_and_nan(tmp_path):
    good = _record()
    text = _write_text(tmp_path, good)
    nan = tmp_path / "nan.extxyz"
    nan.write_text(text.replace("energy=", "energy=nan dummy=", 1))
    with pytest.raises(DatasetError, match="nan.extxyz: structure 0: energy"):
        read_structures(nan)
    short = tmp_path / "short.extxyz"
    short.write_text(text.replace("ref_dipole=", 'ref_dipole="1.0 2.0" old=', 1))
    with pytest.raises(DatasetError, match="ref_dipole"):
        read_structures(short)
    record = _record()
    record.calc.results["forces"] = np.zeros((2, 3))
    with pytest.raises(DatasetError, match=r"forces have shape \(2, 3\), expected \(3, 3\)"):
        write_structures(tmp_path / "x.extxyz", record)
    record = _record()
    record.arrays["ref_charges"][1] = np.nan
    with pytest.raises(DatasetError, match="ref_charges contain NaN"):
        write_structures(tmp_path / "y.extxyz", record)


def _write_text(tmp_path, record) -> str:
    path = tmp_path / "tmp.extxyz"
    write_structures(path, record)
    return path.read_text()


def test_graph_dataset_and_cache():
    records = [_record("H2O", 0), _record("CH4", 1)]
    dataset = GraphDataset(records, cutoff=3.0, dtype=torch.float32)
    assert len(dataset) == 2 and "cutoff=3.0" in repr(dataset)
    graph = dataset[1]
    assert graph is dataset[1] and graph is dataset[-1]
    assert graph.positions.dtype == torch.float32
    assert graph.targets["energy"].item() == pytest.approx(records[1].get_potential_energy())
    assert graph.targets["forces"].shape == (5, 3)
    with pytest.raises(IndexError):
        dataset[2]
    with pytest.raises(ValueError):
        GraphDataset(records, cutoff=0.0)


def test_graph_dataset_from_file(tmp_path):
    path = tmp_path / "d.extxyz"
    write_structures(path, [_record("H2O"), _record("CH4")])
    dataset = GraphDataset.from_file(path, cutoff=4.0)
    assert dataset[0].n_atoms == 3


def test_plan_batches_is_seeded_covers_every_structure_and_shards_disjointly():
    records = [_record(n, i) for i, n in enumerate(["H2O", "CH4", "NH3", "C2H6", "HCN"])]
    dataset = GraphDataset(records, cutoff=3.0)
    plain = plan_batches(len(dataset), 2)
    assert [idx.tolist() for idx in plain] == [[0, 1], [2, 3], [4]]
    batch = collate([dataset[int(i)] for i in plan_batches(5, 5)[0]])
    assert batch.n_graphs == 5 and batch.n_atoms == sum(len(r) for r in records)
    assert batch.targets["energy"].tolist() == [r.get_potential_energy() for r in records]

    def order(seed, **kwargs):
        return [i for idx in plan_batches(11, 2, shuffle=True, seed=seed, **kwargs) for i in idx]

    assert order(5) == order(5) != order(6) and sorted(order(5)) == list(range(11))
    # world_size 2: every rank gets as many steps, and step k of both ranks together is
    # step k of one process with the global batch (2 × 2) in the same order
    shards = [plan_batches(11, 2, shuffle=True, seed=5, rank=r, world_size=2) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 3
    for step, whole in enumerate(plan_batches(11, 4, shuffle=True, seed=5)):
        assert np.concatenate([shards[0][step], shards[1][step]]).tolist() == whole.tolist()
    assert sorted(np.concatenate([i for s in shards for i in s]).tolist()) == list(range(11))
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches(5, 0)
    with pytest.raises(ValueError, match="rank"):
        plan_batches(5, 2, rank=2, world_size=2)


def test_periodic_records_have_no_dipole_target():
    """A cell's dipole depends on the wrapping: no dipole target, the rest kept."""
    record = _record()
    record.set_cell([12.0, 12.0, 12.0])
    record.pbc = True
    assert set(reference_targets(record)) == {"energy", "forces", "charges"}
    record.pbc = False
    assert "dipole" in reference_targets(record)
