"""``phicalc md`` and ``phicalc analyze``: runs, bad inputs (exit 2, one line), SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ase.build import molecule
from ase.io import write
from ase.io.trajectory import Trajectory

from phicalc.cli.main import main
from phicalc.md import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def ethanol_xyz(tmp_path) -> Path:
    path = tmp_path / "ethanol.xyz"
    write(path, molecule("CH3CH2OH"))
    return path


def _md_args(tiny_model_path, structure, out, *extra):
    return [
        "md",
        "--model",
        str(tiny_model_path),
        "--structure",
        str(structure),
        "--out",
        str(out),
        "--dtype",
        "float64",
        "--device",
        "cpu",
        "--no-progress",
        *extra,
    ]


def test_md_then_analyze(tiny_model_path, ethanol_xyz, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        _md_args(
            tiny_model_path,
            ethanol_xyz,
            out,
            "--ensemble",
            "bussi",
            "--steps",
            "4",
            "--traj-every",
            "2",
            "--log-every",
            "1",
            "--no-plots",
        )
    )
    assert code == 0
    summary_text, charge_text = capsys.readouterr().out.split("learned charges over ", 1)
    printed = json.loads(summary_text)
    assert printed["steps_done"] == 4 and printed["completed"] and printed["ms_per_step"] > 0
    rows = charge_text.strip().splitlines()[2:]  # one row per atom: index, element, q, std, φ
    assert [row.split()[1] for row in rows] == ["C", "C", "O", "H", "H", "H", "H", "H", "H"]
    assert abs(sum(float(row.split()[2]) for row in rows)) < 1e-3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["ensemble"] == "bussi" and summary["model"] == str(tiny_model_path)
    assert main(["analyze", str(out), "--no-plots"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_frames"] == 3 and "rmsd_final_A" in printed
    assert (out / "analysis.json").exists()
    assert main(["analyze", str(out), "--rdf-pairs", "NaO", "--no-plots"]) == 2
    assert "Na-O" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--steps": "-3"}, "steps must be an integer >= 0"),
        ({"--timestep": "0"}, "timestep_fs must be > 0"),
        ({"--ensemble": "npt"}, "unknown ensemble 'npt'"),
        ({"--structure": "missing/nothing.xyz"}, "no such structure file"),
        ({"--structure": "GARBAGE"}, "garbage.xyz"),
        ({"--structure": "SIH4"}, "Si"),
        ({"--model": "no-such-model"}, "no-such-model"),
        ({"--dtype": "float16"}, "float16"),
        ({"--edge-chunk": "0"}, "edge_chunk must be"),
        ({"--edge-chunk": "always"}, "--edge-chunk takes"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    change, message, tiny_model_path, ethanol_xyz, tmp_path, capsys
):
    (tmp_path / "garbage.xyz").write_text("this is not\nan xyz file\n")
    write(tmp_path / "sih4.xyz", molecule("SiH4"))
    special = {"GARBAGE": tmp_path / "garbage.xyz", "SIH4": tmp_path / "sih4.xyz"}
    options = {"--model": str(tiny_model_path), "--structure": str(ethanol_xyz), "--steps": "2"}
    options.update({key: str(special.get(value, value)) for key, value in change.items()})
    out = tmp_path / "out"
    args = ["md", "--out", str(out), "--device", "cpu", "--no-progress"]
    args += [item for pair in options.items() for item in pair]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("phicalc md: error:"), error
    assert message in error
    assert not out.exists()


def test_md_in_runs_of_edges_follows_the_unchunked_trajectory(
    tiny_model_path, ethanol_xyz, tmp_path
):
    """``--edge-chunk 12`` (runs of at most 12 edges, each recomputed for the forces) follows
    ``--edge-chunk none``'s NVE trajectory to round-off and says so in its checkpoint."""
    frames = {}
    for option in ("none", "12"):
        out = tmp_path / option
        extra = ("--ensemble", "nve", "--steps", "6", "--traj-every", "3", "--edge-chunk", option)
        assert main(_md_args(tiny_model_path, ethanol_xyz, out, *extra)) == 0
        with Trajectory(out / "trajectory.traj") as trajectory:
            frames[option] = [atoms.copy() for atoms in trajectory]
        frames[option + " config"] = load_checkpoint(out / "checkpoint.npz").config
    assert frames["12 config"]["edge_chunk"] == 12 and frames["none config"]["edge_chunk"] is None
    assert len(frames["none"]) == len(frames["12"]) == 3
    for plain, chunked in zip(frames["none"], frames["12"], strict=True):
        assert abs(chunked.positions - plain.positions).max() < 1e-12


def test_analyze_missing_run_exits_2(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nothing")]) == 2
    assert "trajectory.traj" in capsys.readouterr().err


def test_sigterm_checkpoints_then_the_same_command_continues(
    tiny_model_path, ethanol_xyz, tmp_path
):
    out = tmp_path / "run"
    options = "--ensemble langevin --traj-every 3 --log-every 1 --checkpoint-every 1000 --no-plots"

    def args(steps: int) -> list[str]:
        return _md_args(tiny_model_path, ethanol_xyz, out, "--steps", str(steps), *options.split())

    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "phicalc.cli.main", *args(100000)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300  # a loaded machine starts slowly
        log = out / "md.log"
        while not (log.exists() and len(log.read_text().splitlines()) > 5):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    summary = json.loads((out / "summary.json").read_text())
    done = summary["steps_done"]
    assert summary["interrupted_by"] == "SIGTERM" and not summary["completed"]
    assert load_checkpoint(out / "checkpoint.npz").step == done
    with Trajectory(out / "trajectory.traj") as trajectory:
        assert len(trajectory) == done // 3 + 1
    assert len(log.read_text().splitlines()) == done + 2  # header + steps 0..done

    steps = done + 4  # the same command with a larger --steps continues the run
    assert main(args(steps)) == 0
    assert load_checkpoint(out / "checkpoint.npz").step == steps
    with Trajectory(out / "trajectory.traj") as trajectory:
        assert len(trajectory) == steps // 3 + 1
    assert len(log.read_text().splitlines()) == steps + 2
