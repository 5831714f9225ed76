"""phicalc.io: atomic replacement of files (old file kept on failure, no temp file left behind)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from phicalc.io import atomic_open, atomic_path, atomic_write, atomic_write_text


class Boom(RuntimeError):
    pass


def _fail_midway(handle) -> None:
    handle.write(b"partial")
    raise Boom


def _only(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_text_round_trip(tmp_path) -> None:
    path = tmp_path / "a.txt"
    text = "Φ-Module: E = Σ q φ\nline two\n"
    atomic_write_text(path, text)
    assert path.read_text(encoding="utf-8") == text
    atomic_write_text(path, "shorter")
    assert path.read_text(encoding="utf-8") == "shorter"
    assert _only(tmp_path) == ["a.txt"]


def test_bytes_round_trip(tmp_path) -> None:
    path = tmp_path / "a.bin"
    data = bytes(range(256)) * 3
    atomic_write(path, lambda handle: handle.write(data))
    assert path.read_bytes() == data
    assert _only(tmp_path) == ["a.bin"]


def test_npz_and_torch_through_a_handle(tmp_path) -> None:
    arrays = {"x": np.arange(5.0), "n": np.array([1, 2], dtype=np.int64)}
    with atomic_open(tmp_path / "a.npz") as handle:
        np.savez(handle, **arrays)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        assert {k: data[k].tolist() for k in data.files} == {
            k: v.tolist() for k, v in arrays.items()
        }
    with atomic_open(tmp_path / "a.pt") as handle:
        torch.save({"w": torch.arange(3.0)}, handle)
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    assert torch.equal(loaded["w"], torch.arange(3.0))
    assert _only(tmp_path) == ["a.npz", "a.pt"]


@pytest.mark.parametrize("binary", [True, False])
def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path, binary) -> None:
    path = tmp_path / "keep.dat"
    path.write_bytes(b"old content")

    def write(handle) -> None:
        handle.write(b"partial" if binary else "partial")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(path, write, binary=binary)
    assert path.read_bytes() == b"old content"
    assert _only(tmp_path) == ["keep.dat"]


def test_failure_on_a_new_file_creates_nothing(tmp_path) -> None:
    with pytest.raises(Boom):
        atomic_write(tmp_path / "new.dat", _fail_midway)
    assert _only(tmp_path) == []


def test_atomic_path_failure_keeps_old_file(tmp_path) -> None:
    path = tmp_path / "keep.traj"
    path.write_bytes(b"old")
    with pytest.raises(Boom), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp != path
        tmp.write_bytes(b"new")
        raise Boom
    assert path.read_bytes() == b"old"
    assert _only(tmp_path) == ["keep.traj"]


def test_atomic_path_replaces(tmp_path) -> None:
    path = tmp_path / "out.traj"
    path.write_bytes(b"old")
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new"
    assert _only(tmp_path) == ["out.traj"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_mode_matches_plain_open(tmp_path, umask) -> None:
    previous = os.umask(umask)
    try:
        with open(tmp_path / "plain", "w") as handle:
            handle.write("x")
        atomic_write_text(tmp_path / "atomic", "x")
        with atomic_path(tmp_path / "by_path") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(previous)
    expected = (tmp_path / "plain").stat().st_mode
    assert (tmp_path / "atomic").stat().st_mode == expected
    assert (tmp_path / "by_path").stat().st_mode == expected


def test_rejects_other_modes(tmp_path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", "a"):
        pass
    assert _only(tmp_path) == []
