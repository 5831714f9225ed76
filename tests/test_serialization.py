"""Model files load with weights_only=True; anything else is refused without running it."""

from __future__ import annotations

import os
import pickle
import random

import pytest
import torch

from phicalc import build_model, load_model
from phicalc.errors import ModelFileError
from phicalc.serialization import FORMAT, read_model_file


class Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_payload_is_refused_without_executing(tmp_path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": 1, "config": Payload(str(marker))}, path)
    with pytest.raises(ModelFileError, match="refused by the safe loader"):
        load_model(path)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(ModelFileError, match="evil.pkl"):
        load_model(raw)
    assert not marker.exists()


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_refused(tmp_path, seed: int) -> None:
    path = tmp_path / "random.pt"
    path.write_bytes(random.Random(seed).randbytes(4096))
    with pytest.raises(ModelFileError, match="random.pt"):
        load_model(path)


def test_foreign_torch_file_is_refused(tmp_path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, path)
    with pytest.raises(ModelFileError, match="not a phicalc model file"):
        load_model(path)


def test_truncated_and_future_files(tmp_path) -> None:
    model = build_model("schnet", phi=True, seed=0, num_features=8)
    path = tmp_path / "model.pt"
    model.save(str(path))
    blob = read_model_file(path)
    blob["format_version"] = 99
    torch.save(blob, tmp_path / "future.pt")
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(tmp_path / "future.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.pt"):
        load_model(tmp_path / "cut.pt")


def test_mismatched_weights_are_refused(tmp_path) -> None:
    model = build_model("schnet", phi=True, seed=0, num_features=8)
    path = tmp_path / "model.pt"
    model.save(str(path))
    blob = read_model_file(path)
    blob["config"]["backbone_config"]["num_features"] = 16
    torch.save(blob, path)
    with pytest.raises(ModelFileError, match="cannot rebuild"):
        load_model(path)


def test_unknown_name_lists_shipped_models() -> None:
    with pytest.raises(ModelFileError, match="shipped models"):
        load_model("no-such-model")


def test_metadata_and_dtype_round_trip(tmp_path) -> None:
    model = build_model("painn", phi=True, seed=0, num_features=8).double()
    model.set_atomic_energies({"H": -13.6, "C": -1029.1234567891, "N": -1484.0, "O": -2041.0})
    path = tmp_path / "model.pt"
    model.save(str(path), metadata={"training_data": "unit test"})
    loaded = load_model(path)
    assert loaded.dtype == torch.float64
    assert loaded.metadata["training_data"] == "unit test"
    assert loaded.metadata["elements"] == ["H", "C", "N", "O"]
    assert loaded.atomic_energies[1].item() == -1029.1234567891
    assert not loaded.training
