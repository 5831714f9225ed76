from __future__ import annotations

import json

import numpy as np
import pytest
from data_factories import OE62_ELEMENT_ENERGIES, make_oe62_frame, write_oe62

from phicalc.data.oe62 import (
    fit_linear_reference,
    load_oe62,
    oe62_split_indices,
    parse_xyz_text,
)
from phicalc.data.splits import oe62_split_sizes
from phicalc.errors import DatasetError


def test_split_matches_pandas_sample(oe62_frame):
    parts = oe62_split_indices(oe62_frame)
    expected = oe62_frame.reset_index(drop=True).sample(frac=1, random_state=42).index.to_numpy()
    n_train, n_val, _ = oe62_split_sizes(len(oe62_frame))
    assert parts["train"].tolist() == expected[:n_train].tolist()
    assert parts["val"].tolist() == expected[n_train : n_train + n_val].tolist()
    assert parts["test"].tolist() == expected[n_train + n_val :].tolist()


def test_load_all_and_splits(oe62_file, oe62_frame):
    everything = load_oe62(oe62_file)
    assert len(everything) == len(oe62_frame)
    sizes = oe62_split_sizes(len(oe62_frame))
    splits = {s: load_oe62(oe62_file, s) for s in ("train", "val", "test")}
    assert tuple(len(splits[s]) for s in ("train", "val", "test")) == sizes
    rows = {s: {r.info["row"] for r in splits[s]} for s in splits}
    assert rows["train"].isdisjoint(rows["val"]) and rows["train"].isdisjoint(rows["test"])
    assert rows["val"].isdisjoint(rows["test"])
    assert set().union(*rows.values()) == set(range(len(oe62_frame)))
    # deterministic
    assert [r.info["row"] for r in load_oe62(oe62_file, "val")] == [
        r.info["row"] for r in splits["val"]
    ]
    record = everything[3]
    assert record.info["split"] in ("train", "val", "test")
    assert record.info["dataset"] == "oe62" and record.info["has_forces"] is False
    assert record.info["refcode_csd"] == "REF003" and record.info["charge"] == 0
    np.testing.assert_allclose(
        record.arrays["ref_charges"], oe62_frame["hirshfeld_pbe0_vac_tier2"].iloc[3], atol=1e-12
    )
    assert "forces" not in record.calc.results


def test_raw_energies_without_reference(oe62_file, oe62_frame):
    records = load_oe62(oe62_file, linear_reference=False)
    energies = [r.get_potential_energy() for r in records]
    np.testing.assert_allclose(energies, oe62_frame["total_energy_pbe0_vac_tier2"].to_numpy())


def test_linear_reference_fitted_on_train_only(tmp_path, oe62_frame):
    path = write_oe62(oe62_frame, tmp_path / "a.json")
    records = load_oe62(path)
    parts = oe62_split_indices(oe62_frame)
    train = [r for r in records if r.info["split"] == "train"]
    expected = fit_linear_reference(
        [r.numbers for r in train], np.array([r.info["energy_raw"] for r in train])
    )
    table = dict(
        zip(records[0].info["linear_reference_Z"].tolist(), records[0].info["linear_reference_eV"])
    )
    assert table.keys() == expected.keys()
    for z, e in expected.items():
        assert table[z] == pytest.approx(e)
        assert table[z] == pytest.approx(OE62_ELEMENT_ENERGIES[z], abs=2.0)
    for r in records:
        assert r.get_potential_energy() == pytest.approx(
            r.info["energy_raw"] - r.info["energy_reference"]
        )

    # Perturb only validation and test energies: the reference and train energies must not move.
    shifted = oe62_frame.copy()
    column = shifted.columns.get_loc("total_energy_pbe0_vac_tier2")
    others = np.concatenate([parts["val"], parts["test"]])
    shifted.iloc[others, column] += 1000.0
    records2 = load_oe62(write_oe62(shifted, tmp_path / "b.json"))
    np.testing.assert_allclose(
        records2[0].info["linear_reference_eV"], records[0].info["linear_reference_eV"]
    )
    for a, b in zip(records, records2):
        delta = 1000.0 if a.info["split"] != "train" else 0.0
        assert b.get_potential_energy() - a.get_potential_energy() == pytest.approx(delta)


def test_parse_xyz_text():
    atoms = parse_xyz_text("2\ncomment\nH 0 0 0\nh 0 0 0.74\n")
    assert atoms.get_chemical_symbols() == ["H", "H"]
    assert parse_xyz_text("O 0 0 0\nH 0 0 1\n").get_chemical_formula() == "HO"
    with pytest.raises(DatasetError, match="declares 3 atoms"):
        parse_xyz_text("3\n\nH 0 0 0\nH 0 0 1\n", where="x")
    with pytest.raises(DatasetError, match="bad XYZ line"):
        parse_xyz_text("2\n\nH 0 0 0\nQq 0 0 1\n")


def _bad(tmp_path, **changes):
    df = make_oe62_frame()
    for (row, column), value in changes.get("cells", {}).items():
        df.iat[row, df.columns.get_loc(column)] = value
    for column in changes.get("drop", []):
        df = df.drop(columns=column)
    return write_oe62(df, tmp_path / "broken_62k.json")


def test_malformed_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_oe62(tmp_path / "nothing.json")
    garbage = tmp_path / "garbage.json"
    garbage.write_text(json.dumps({"a": 1}))
    with pytest.raises(DatasetError, match="garbage.json"):
        load_oe62(garbage)
    path = _bad(tmp_path, drop=["hirshfeld_pbe0_vac_tier2"])
    with pytest.raises(
        DatasetError, match=r"broken_62k.json: missing OE62 column.*hirshfeld_pbe0_vac_tier2"
    ):
        load_oe62(path)
    path = _bad(tmp_path, cells={(4, "xyz_pbe_relaxed"): "3\n\nC 0 0 0\nH 1 1\n"})
    with pytest.raises(DatasetError, match=r"broken_62k.json: row 4 \(REF004\): bad XYZ line"):
        load_oe62(path)
    path = _bad(tmp_path, cells={(2, "hirshfeld_pbe0_vac_tier2"): [0.1, 0.2]})
    with pytest.raises(DatasetError, match=r"row 2: hirshfeld_pbe0_vac_tier2 has 2 charges for"):
        load_oe62(path)
    path = _bad(tmp_path, cells={(5, "total_energy_pbe0_vac_tier2"): float("nan")})
    with pytest.raises(DatasetError, match="row 5"):
        load_oe62(path, linear_reference=False)


def test_bad_split_name(oe62_file):
    with pytest.raises(ValueError, match="split"):
        load_oe62(oe62_file, "training")
