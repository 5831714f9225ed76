"""Model files load with weights_only=True; anything else is refused without running it."""

from __future__ import annotations

import os
import pickle
import random

import pytest
import torch

from phicalc import build_model, load_model
from phicalc.errors import ModelFileError
from phicalc.serialization import FORMAT, read_model_file, save_model


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
    save_model(model, path)
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
    save_model(model, path)
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
    save_model(model, path, metadata={"training_data": "unit test"})
    loaded = load_model(path)
    assert loaded.dtype == torch.float64
    assert loaded.metadata["training_data"] == "unit test"
    assert loaded.metadata["elements"] == ["H", "C", "N", "O"]
    assert loaded.atomic_energies[1].item() == -1029.1234567891
    assert not loaded.training


def _as_format_1(path) -> None:
    """Rewrite a model file as phicalc wrote format 1: no norm_smoothing in the config."""
    blob = torch.load(path, weights_only=True)
    blob["format_version"] = 1
    blob["config"]["backbone_config"].pop("norm_smoothing", None)
    torch.save(blob, path)


def test_format_1_clifford_files_compute_what_was_saved(tmp_path) -> None:
    """Format 2 changed CliffordNet's default invariant smoothing (1e-4 → 0.01); a format-1 file
    names no smoothing and must still load as the model it was."""
    from ase.build import molecule

    from phicalc.graph.batch import atoms_to_graph

    hp = {"num_channels": 4, "num_blocks": 2, "num_radial": 4}
    saved = build_model("clifford", phi=False, seed=3, norm_smoothing=1e-4, **hp).double()
    path = tmp_path / "old.pt"
    save_model(saved, path)
    _as_format_1(path)
    loaded = load_model(path)
    assert loaded.backbone.config.norm_smoothing == 1e-4
    graph = atoms_to_graph(molecule("CH3CH2OH"), saved.cutoff)
    assert torch.equal(loaded(graph)["energy"], saved(graph)["energy"])
    current = build_model("clifford", phi=False, seed=3, **hp).double()
    current.load_state_dict(saved.state_dict())  # same weights, today's default smoothing
    assert not torch.allclose(current(graph)["energy"], saved(graph)["energy"], rtol=0, atol=1e-9)
    other = build_model("painn", phi=False, seed=0, num_features=8)
    save_model(other, tmp_path / "painn.pt")
    _as_format_1(tmp_path / "painn.pt")
    assert load_model(tmp_path / "painn.pt").config == other.config


def test_format_1_checkpoints_resume_the_model_they_trained(tmp_path) -> None:
    from phicalc.train.checkpoint import load_checkpoint, save_checkpoint

    model = {"backbone": "clifford", "backbone_config": {"num_channels": 8}}
    save_checkpoint(tmp_path / "c.pt", {"config": {"model": model}, "epoch": 1})
    blob = torch.load(tmp_path / "c.pt", weights_only=True)
    blob["format_version"] = 1
    torch.save(blob, tmp_path / "c.pt")
    upgraded = load_checkpoint(tmp_path / "c.pt")["config"]["model"]["backbone_config"]
    assert upgraded == {"num_channels": 8, "norm_smoothing": 1e-4}
    blob["format_version"] = 2
    torch.save(blob, tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt")["config"]["model"]["backbone_config"] == {
        "num_channels": 8
    }


def test_format_3_phi_files_keep_the_gauge_they_were_trained_with(tmp_path) -> None:
    """Format 4 made the Φ-Module's size-consistent gauge the default; a format-3 file (its Φ
    options name no gauge) loads with the structure-mean gauge it computed with."""
    from phicalc.graph.batch import atoms_to_graph
    from phicalc.testing import ammonium_and_water

    options = {"phi": {"method": "spectral"}, "charge_spin": True, "seed": 2, "num_features": 8}
    saved = build_model("painn", **{**options, "phi": {"gauge": "structure"}}).double()
    path = tmp_path / "old.pt"
    save_model(saved, path)
    blob = torch.load(path, weights_only=True)
    blob["format_version"] = 3
    blob["config"]["phi"] = {"method": "spectral"}
    torch.save(blob, path)
    loaded = load_model(path)
    assert loaded.phi.config.gauge == "structure"
    atoms = ammonium_and_water(8.0)
    graph = atoms_to_graph(atoms, saved.cutoff, total_charge=1.0)
    assert torch.equal(loaded(graph)["energy"], saved(graph)["energy"])
    current = build_model("painn", **options).double()
    assert current.phi.config.gauge == "fragment"
    current.load_state_dict(saved.state_dict())
    assert not torch.allclose(current(graph)["energy"], saved(graph)["energy"], rtol=0, atol=1e-9)
    save_model(current, tmp_path / "new.pt")
    assert load_model(tmp_path / "new.pt").phi.config.gauge == "fragment"


def test_format_3_checkpoints_resume_with_the_structure_gauge(tmp_path) -> None:
    from phicalc.train.checkpoint import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "c.pt", {"config": {"model": {"phi": True}}, "epoch": 1})
    assert load_checkpoint(tmp_path / "c.pt")["config"]["model"]["phi"] is True
    blob = torch.load(tmp_path / "c.pt", weights_only=True)
    blob["format_version"] = 3
    torch.save(blob, tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt")["config"]["model"]["phi"] == {"gauge": "structure"}
