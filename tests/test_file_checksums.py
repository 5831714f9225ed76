"""Model files and training checkpoints carry a checksum of their tensors (issue #16, class 4)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from phicalc.errors import ModelFileError
from phicalc.serialization import FORMAT_VERSION, load_model, save_model, state_checksum


class Thing:
    """A class a safe loader refuses to build."""


def _flip_a_bit_of(path: Path, tensor: torch.Tensor) -> None:
    """Flip one bit inside ``tensor``'s stored bytes in ``path`` (the file stays a valid zip)."""
    raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    data = bytearray(path.read_bytes())
    start = data.find(raw[:32])
    assert start >= 0 and data.find(raw[:32], start + 1) < 0, "tensor bytes not unique in file"
    data[start + 9] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_bit_is_refused_naming_the_file(tiny_model, tmp_path) -> None:
    path = tmp_path / "model.pt"
    save_model(tiny_model, path)
    assert torch.load(path, weights_only=True)["format_version"] == FORMAT_VERSION >= 3
    weight = max(tiny_model.state_dict().values(), key=lambda t: t.numel())
    _flip_a_bit_of(path, weight)
    with pytest.raises(ModelFileError, match=rf"{path.name} is corrupt: its tensors"):
        load_model(path)


def test_files_without_a_checksum_still_load(tiny_model, tmp_path) -> None:
    """Format-2 files (every shipped model) have no checksum: they load as before."""
    path = tmp_path / "old.pt"
    save_model(tiny_model, path)
    blob = torch.load(path, weights_only=True)
    del blob["checksum"]
    blob["format_version"] = 2
    torch.save(blob, path)
    loaded = load_model(path)
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_checksum_covers_names_dtypes_and_values(tiny_model) -> None:
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    reference = state_checksum(state)
    assert reference.startswith("sha256:") and state_checksum(dict(state)) == reference
    key = next(iter(state))
    assert state_checksum({**state, key: state[key].double()}) != reference
    assert state_checksum({f"x{key}" if k == key else k: v for k, v in state.items()}) != reference


def test_training_checkpoint_checksum_and_pickle_refusal(tiny_model, tmp_path) -> None:
    from phicalc.train.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": tiny_model.state_dict(), "epoch": 1})
    assert load_checkpoint(path)["epoch"] == 1
    _flip_a_bit_of(path, max(tiny_model.state_dict().values(), key=lambda t: t.numel()))
    with pytest.raises(ModelFileError, match="checkpoint.pt is corrupt"):
        load_checkpoint(path)

    evil = tmp_path / "pickled.pt"
    torch.save({"format": "phicalc.checkpoint", "thing": Thing()}, evil)
    with pytest.raises(ModelFileError) as caught:
        load_checkpoint(evil)
    message = str(caught.value)
    assert "pickled.pt" in message and "refused by the safe loader" in message
    assert "weights_only" not in message and "\n" not in message  # no advice to unpickle
    (tmp_path / "raw.pt").write_bytes(pickle.dumps(Thing))
    with pytest.raises(ModelFileError, match="raw.pt"):
        load_checkpoint(tmp_path / "raw.pt")
