"""Data-parallel training: 2 gloo processes under torchrun equal one process on the global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from phicalc.train import TrainConfig, train
from phicalc.train.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_global_batch(
    tiny_config, labelled_molecules, tmp_path
):
    from phicalc.data import write_structures

    # 9 methanes: global batches of 4, 4, 1, so rank 1 has nothing in the last step
    methanes = [a for a in labelled_molecules(44, seed=3) if a.get_chemical_formula() == "CH4"]
    write_structures(tmp_path / "train.extxyz", methanes[:9])
    write_structures(tmp_path / "val.extxyz", methanes[9:11])
    files = {name: tmp_path / f"{name}.extxyz" for name in ("train", "val")}
    values = tiny_config(
        files,
        tmp_path / "ddp",
        epochs=2,
        dtype="float64",
        model={"phi": True},
        optim={"batch_size": 2, "grad_clip": 0.5},
    )
    del values["num_threads"]
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(values))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "phicalc.cli.main",
        "train",
        str(path),
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "finished; best epoch" in done.stdout

    single = dict(values, out=str(tmp_path / "single"), num_threads=1)
    single["optim"] = dict(values["optim"], batch_size=4)
    train(TrainConfig.from_dict(single))

    a = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "single" / "checkpoint.pt")
    assert a["world_size"] == 2 and a["step"] == b["step"] == 6
    for key, value in b["model"].items():
        assert torch.allclose(a["model"][key], value, rtol=1e-9, atol=1e-12), key
    for key, value in b["ema"]["model"].items():
        assert torch.allclose(a["ema"]["model"][key], value, rtol=1e-9, atol=1e-12), key
    for row_a, row_b in zip(a["history"], b["history"], strict=True):
        assert row_a["train_loss"] == pytest.approx(row_b["train_loss"], rel=1e-9)
        assert row_a["val_loss"] == pytest.approx(row_b["val_loss"], rel=1e-9)
    assert a["history"][-1]["train_loss"] < a["history"][0]["train_loss"]
