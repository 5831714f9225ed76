from __future__ import annotations

import numpy as np
import pytest
from ase import units
from data_factories import make_md22_arrays

from phicalc.data.md22 import canonical_md22_name, load_md22
from phicalc.errors import DatasetError
from phicalc.units import KCAL_PER_MOL


def test_unit_conversion(md22_file):
    arrays = make_md22_arrays()
    records = load_md22(md22_file, budget=20)
    assert len(records) == 50
    assert (
        KCAL_PER_MOL == pytest.approx(units.kcal / units.mol) == pytest.approx(0.0433641, rel=1e-5)
    )
    for frame in (0, 17, 49):
        record = records[frame]
        assert record.info["frame"] == frame
        assert record.get_potential_energy() == pytest.approx(arrays["E"][frame, 0] * KCAL_PER_MOL)
        np.testing.assert_allclose(record.get_forces(), arrays["F"][frame] * KCAL_PER_MOL)
        np.testing.assert_allclose(record.positions, arrays["R"][frame])
        np.testing.assert_array_equal(record.numbers, arrays["z"])
    assert records[0].info["molecule"] == "Ac-Ala3-NHMe"
    assert records[0].info["theory"] == "PBE+MBD"
    assert records[0].info["charge"] == 0 and records[0].info["has_forces"] is True


def test_splits(md22_file):
    parts = {s: load_md22(md22_file, s, budget=20, seed=1) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [19, 1, 30]
    frames = {s: {r.info["frame"] for r in parts[s]} for s in parts}
    assert set().union(*frames.values()) == set(range(50))
    assert sum(len(f) for f in frames.values()) == 50
    assert all(r.info["split"] == s for s in parts for r in parts[s])
    again = load_md22(md22_file, "train", budget=20, seed=1)
    assert [r.info["frame"] for r in again] == [r.info["frame"] for r in parts["train"]]
    other = load_md22(md22_file, "train", budget=20, seed=2)
    assert [r.info["frame"] for r in other] != [r.info["frame"] for r in parts["train"]]


def test_standard_budget_by_name(tmp_path):
    # The name key decides; the default budget (6000) is larger than this tiny file.
    path = tmp_path / "something.npz"
    np.savez(path, **make_md22_arrays(name="md22_Ac-Ala3-NHMe"))
    with pytest.raises(DatasetError, match="budget 6000"):
        load_md22(path)
    path = tmp_path / "md22_buckyball-catcher.npz"
    arrays = make_md22_arrays(n_frames=700, name="unknown")
    np.savez(path, **arrays)
    assert len(load_md22(path, "train")) == 570  # budget 600 from the file name
    assert len(load_md22(path, "val")) == 30
    assert len(load_md22(path, "test")) == 100


@pytest.mark.parametrize(
    "name, expected",
    [
        ("md22_Ac-Ala3-NHMe.npz", "Ac-Ala3-NHMe"),
        ("ac_ala3_nhme", "Ac-Ala3-NHMe"),
        ("DHA", "DHA"),
        ("md22_AT-AT-CG-CG", "AT-AT-CG-CG"),
        ("md22_double-walled_nanotube.npz", "double-walled_nanotube"),
        ("aspirin", None),
    ],
)
def test_canonical_names(name, expected):
    assert canonical_md22_name(name) == expected


def test_unknown_molecule_needs_budget(tmp_path):
    path = tmp_path / "md17_aspirin.npz"
    np.savez(path, **make_md22_arrays(name="aspirin"))
    with pytest.raises(DatasetError, match="unknown MD22 molecule"):
        load_md22(path)
    assert len(load_md22(path, "val", budget=40)) == 2


def test_malformed_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_md22(tmp_path / "md22_DHA.npz")
    arrays = make_md22_arrays()
    cases = {
        "missing": (
            {k: v for k, v in arrays.items() if k != "F"},
            r"missing MD22 key\(s\) \['F'\]",
        ),
        "shape": ({**arrays, "F": arrays["F"][:, :3]}, "'F' has shape"),
        "energy": ({**arrays, "E": arrays["E"][:10]}, "'E' has shape"),
        "nan": (
            {**arrays, "R": np.where(np.arange(50)[:, None, None] == 7, np.nan, arrays["R"])},
            "frame 7",
        ),
        "z": ({**arrays, "z": arrays["z"].astype(float)}, "atomic numbers"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / f"md22_{name}.npz"
        np.savez(path, **data)
        with pytest.raises(DatasetError, match=f"md22_{name}.npz") as info:
            load_md22(path, budget=10)
        assert info.match(message), (name, str(info.value))
    text = tmp_path / "md22_text.npz"
    text.write_text("not a zip")
    with pytest.raises(DatasetError, match="md22_text.npz"):
        load_md22(text, budget=10)
