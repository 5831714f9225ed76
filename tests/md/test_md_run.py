"""phicalc.md.run: every driver, outputs, reproducibility, restart and input validation."""

from __future__ import annotations

import json
import logging
import shutil
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.io.trajectory import Trajectory

from phicalc.errors import ConfigError, UnknownElementError
from phicalc.md import ENSEMBLES, CheckpointError, MDConfig, load_checkpoint, run

SUMMARY_KEYS = {
    "steps_done",
    "ms_per_step",
    "ns_per_day",
    "temperature_mean",
    "temperature_std",
    "energy_drift_meV_per_atom_per_ps",
    "completed",
    "interrupted_by",
}


def _run(atoms, model, out, **settings):
    from phicalc import PhiCalculator

    calc = PhiCalculator(model, device="cpu", dtype="float64")
    return run(atoms, calc, out, config=MDConfig(**settings), plots=False)


def _frames(out):
    with Trajectory(out / "trajectory.traj") as trajectory:
        return list(trajectory)


def _assert_same_run(a, b):
    """Same frames, log and arrays, bit for bit."""
    frames_a, frames_b = _frames(a), _frames(b)
    assert len(frames_a) == len(frames_b)
    for x, y in zip(frames_a, frames_b):
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.get_momenta(), y.get_momenta())
        assert x.get_potential_energy() == y.get_potential_energy()
        np.testing.assert_array_equal(x.get_charges(), y.get_charges())
    for name in ("electrostatics.npz", "thermo.npz"):
        with np.load(a / name) as data_a, np.load(b / name) as data_b:
            assert data_a.files == data_b.files
            for key in data_a.files:
                np.testing.assert_array_equal(data_a[key], data_b[key], err_msg=f"{name}:{key}")
    assert (a / "md.log").read_text() == (b / "md.log").read_text()


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_each_ensemble_writes_all_outputs(ensemble, ethanol, tiny_model, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # Langevin's fixcm=True warns
        summary = _run(
            ethanol,
            tiny_model,
            tmp_path,
            ensemble=ensemble,
            steps=4,
            traj_every=2,
            log_every=1,
            checkpoint_every=2,
        )
    assert SUMMARY_KEYS <= set(summary)
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps_done"] == 4 and summary["completed"]
    assert summary["ms_per_step"] > 0 and summary["ns_per_day"] > 0
    assert 0 < summary["temperature_mean"] < 2000
    if ensemble == "langevin":
        assert summary["energy_drift_meV_per_atom_per_ps"] is None
    else:
        assert np.isfinite(summary["energy_drift_meV_per_atom_per_ps"])

    frames = _frames(tmp_path)
    assert len(frames) == 3  # steps 0, 2, 4
    n_atoms = len(ethanol)
    for frame in frames:
        assert frame.get_forces().shape == (n_atoms, 3)
        assert frame.get_charges().shape == (n_atoms,)
        np.testing.assert_allclose(frame.get_momenta().sum(0), 0, atol=1e-10)
    with np.load(tmp_path / "electrostatics.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["step"], [0, 2, 4])
        assert data["potentials"].shape == (3, n_atoms)
        assert data["charges"].shape == (3, n_atoms)
        assert data["electrostatic_energy"].shape == (3,)
        np.testing.assert_array_equal(data["numbers"], ethanol.numbers)
        np.testing.assert_allclose(data["charges"][-1], frames[-1].get_charges())
    with np.load(tmp_path / "thermo.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["step"], np.arange(5))
    log_lines = (tmp_path / "md.log").read_text().splitlines()
    assert log_lines[0].split()[0] == "Time[ps]" and len(log_lines) == 6
    assert load_checkpoint(tmp_path / "checkpoint.npz").step == 4


def test_same_seed_same_run_other_seed_other_run(ethanol, tiny_model, tmp_path):
    settings = {"ensemble": "langevin", "steps": 3, "traj_every": 1, "log_every": 1}
    _run(ethanol, tiny_model, tmp_path / "a", seed=5, **settings)
    _run(ethanol, tiny_model, tmp_path / "b", seed=5, **settings)
    _run(ethanol, tiny_model, tmp_path / "c", seed=6, **settings)
    _assert_same_run(tmp_path / "a", tmp_path / "b")
    assert not np.array_equal(
        _frames(tmp_path / "a")[-1].positions, _frames(tmp_path / "c")[-1].positions
    )


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_resume_gives_the_uninterrupted_run(ensemble, ethanol, tiny_model, tmp_path):
    settings = {
        "ensemble": ensemble,
        "seed": 3,
        "traj_every": 3,
        "log_every": 2,
        "checkpoint_every": 4,
    }
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _run(ethanol, tiny_model, whole, steps=13, **settings)
    _run(ethanol, tiny_model, parts, steps=7, **settings)
    summary = _run(ethanol, tiny_model, parts, steps=13, **settings)
    assert summary["resumed_from_step"] == 7 and summary["steps_this_run"] == 6
    _assert_same_run(whole, parts)


def test_resume_after_a_crash_cuts_outputs_back(ethanol, tiny_model, tmp_path):
    """Outputs written past the last checkpoint (a killed run) are dropped, then redone."""
    settings = {
        "ensemble": "nose-hoover",
        "seed": 1,
        "traj_every": 3,
        "log_every": 2,
        "checkpoint_every": 4,
    }
    whole, crashed, early = tmp_path / "whole", tmp_path / "crashed", tmp_path / "early"
    _run(ethanol, tiny_model, whole, steps=11, **settings)
    _run(ethanol, tiny_model, crashed, steps=7, **settings)  # frames at 0, 3, 6
    _run(ethanol, tiny_model, early, steps=4, **settings)  # the checkpoint a crash leaves
    shutil.copy(early / "checkpoint.npz", crashed / "checkpoint.npz")
    assert len(_frames(crashed)) == 3
    _run(ethanol, tiny_model, crashed, steps=11, **settings)
    _assert_same_run(whole, crashed)


def test_rerun_of_a_finished_run_changes_nothing(ethanol, tiny_model, tmp_path):
    first = _run(ethanol, tiny_model, tmp_path, steps=3, traj_every=1)
    again = _run(ethanol, tiny_model, tmp_path, steps=3, traj_every=1)
    assert again["steps_done"] == 3 and again["steps_this_run"] == 0
    assert again["ms_per_step"] == first["ms_per_step"]
    assert len(_frames(tmp_path)) == 4


def test_resume_refuses_other_settings_or_system(ethanol, tiny_model, tmp_path):
    _run(ethanol, tiny_model, tmp_path, steps=2, temperature_K=300.0)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CheckpointError, match="temperature_K"):
        _run(ethanol, tiny_model, tmp_path, steps=4, temperature_K=310.0)
    with pytest.raises(CheckpointError, match="past --steps"):
        _run(ethanol, tiny_model, tmp_path, steps=1)
    from ase.build import molecule

    with pytest.raises(CheckpointError, match="CH4"):
        _run(molecule("CH4"), tiny_model, tmp_path, steps=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_resume_with_other_weights_or_dtype_is_refused(ethanol, tiny_model, tmp_path):
    """A run directory belongs to one model: other weights (a retrained file, another model)
    or another dtype are refused naming both, and --force-new starts over."""
    import copy

    import torch

    from phicalc import PhiCalculator
    from phicalc.md.inputs import make_calculator, weights_fingerprint

    _run(ethanol, tiny_model, tmp_path, steps=2)
    retrained = copy.deepcopy(tiny_model)
    with torch.no_grad():
        next(retrained.parameters()).add_(0.01)
    _run(ethanol, tiny_model, tmp_path, steps=3)  # same weights: continues
    with pytest.raises(CheckpointError, match=r"weights [0-9a-f]{16}\), not of model .*weights"):
        _run(ethanol, retrained, tmp_path, steps=4)
    with pytest.raises(CheckpointError, match="float64, not float32"):
        calc = PhiCalculator(tiny_model, device="cpu", dtype="float32")
        run(ethanol, calc, tmp_path, config=MDConfig(steps=4), dtype="float32", plots=False)
    assert load_checkpoint(tmp_path / "checkpoint.npz").step == 3
    calc = PhiCalculator(retrained, device="cpu", dtype="float64")
    summary = run(ethanol, calc, tmp_path, config=MDConfig(steps=2), plots=False, force_new=True)
    assert summary["resumed_from_step"] is None and summary["steps_done"] == 2
    # float32 and float64 copies of one model share a fingerprint; other weights do not
    fingerprints = [
        weights_fingerprint(make_calculator(model, dtype=dtype))
        for model, dtype in (
            (tiny_model, "float32"),
            (tiny_model, "float64"),
            (retrained, "float64"),
        )
    ]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]


def test_unknown_element_is_rejected_before_writing(tiny_model, tmp_path):
    atoms = Atoms(
        "SiH4",
        positions=[
            [0, 0, 0],
            [0.9, 0.9, 0.9],
            [-0.9, -0.9, 0.9],
            [-0.9, 0.9, -0.9],
            [0.9, -0.9, -0.9],
        ],
    )
    with pytest.raises(UnknownElementError, match="Si"):
        _run(atoms, tiny_model, tmp_path / "out", steps=2)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": -1}, "steps"),
        ({"timestep_fs": 0.0}, "timestep_fs"),
        ({"ensemble": "npt"}, "unknown ensemble"),
        ({"traj_every": 0}, "traj_every"),
        ({"ensemble": "bussi", "temperature_K": 0.0}, "temperature_K > 0"),
        ({"tdamp_fs": -5.0}, "tdamp_fs"),
        ({"edge_chunk": 0}, "edge_chunk"),
        ({"edge_chunk": "always"}, "edge_chunk"),
    ],
)
def test_bad_settings_raise_config_error(settings, message):
    with pytest.raises(ConfigError, match=message):
        MDConfig(**settings)


def test_config_from_dict_rejects_unknown_keys():
    assert MDConfig.from_dict({"steps": 3}).steps == 3
    with pytest.raises(ConfigError, match="tempreature"):
        MDConfig.from_dict({"tempreature": 3})


def test_large_timestep_with_hydrogen_warns(ethanol, tiny_model, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="phicalc.md.run"):
        _run(ethanol, tiny_model, tmp_path, ensemble="nve", steps=0, timestep_fs=2.0)
    assert "hydrogen" in caplog.text


def test_model_without_phi_runs_without_electrostatics(
    ethanol, tiny_model, tiny_model_without_phi, tmp_path
):
    from phicalc import PhiCalculator

    _run(ethanol, tiny_model, tmp_path, steps=1)
    (tmp_path / "checkpoint.npz").unlink()  # no checkpoint: only --force-new starts over
    calc = PhiCalculator(tiny_model_without_phi, device="cpu", dtype="float64")
    config = MDConfig(steps=2, traj_every=1)
    summary = run(ethanol, calc, tmp_path, config=config, plots=False, force_new=True)
    assert summary["steps_done"] == 2 and summary["resumed_from_step"] is None
    assert not (tmp_path / "electrostatics.npz").exists()
    assert len(_frames(tmp_path)) == 3


def test_model_file_path_and_plots(ethanol, tiny_model_path, tmp_path):
    summary = run(
        ethanol,
        tiny_model_path,
        tmp_path,
        config=MDConfig(steps=2, traj_every=1),
        device="cpu",
        dtype="float64",
    )
    assert summary["model"] == str(tiny_model_path) and summary["device"] == "cpu"
    for name in ("energy.png", "temperature.png", "charges.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_erwin_resume_gives_the_uninterrupted_run(ethanol, tmp_path):
    """The ball tree kept for the run (built at step 0) is rebuilt from the positions it was
    built from when the run continues, so the continuation is bit-identical."""
    from phicalc import build_model

    tree = {"num_features": 16, "num_local_blocks": 1, "num_radial": 8, "ball_size": 4,
            "num_levels": 2, "num_trunk_layers": 2, "num_heads": 2, "mlp_ratio": 1,
            "pool_stride": 2, "attention_radius": 6.0}  # fmt: skip
    model = build_model("erwin", phi=True, cutoff=4.0, seed=0, **tree)
    settings = {"ensemble": "nve", "seed": 3, "traj_every": 2, "log_every": 2,
                "checkpoint_every": 4, "temperature_K": 600}  # fmt: skip
    from phicalc import PhiCalculator

    def md(out, steps):  # a calculator keeping one tree per run, as phicalc md makes
        calc = PhiCalculator(model, device="cpu", dtype="float64", partition_skin=float("inf"))
        run(ethanol, calc, out, config=MDConfig(steps=steps, **settings), plots=False)

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    md(whole, 12)
    md(parts, 8)
    md(parts, 12)
    _assert_same_run(whole, parts)


def test_resume_from_another_start_structure_warns_and_continues_the_run(
    ethanol, tiny_model, tmp_path, caplog
):
    """The checkpoint decides the state; a different start structure of the same system is
    named in a warning instead of being silently ignored, and the run stays the same run."""
    settings = {"ensemble": "nve", "seed": 1, "traj_every": 2, "log_every": 2}
    out, whole = tmp_path / "run", tmp_path / "whole"
    _run(ethanol, tiny_model, whole, steps=6, **settings)
    _run(ethanol, tiny_model, out, steps=3, **settings)
    assert load_checkpoint(out / "checkpoint.npz").extra["start_structure"]
    with caplog.at_level(logging.WARNING, logger="phicalc.md.resume"):
        _run(ethanol, tiny_model, out, steps=4, **settings)  # the same start: no warning
    assert "another structure" not in caplog.text
    moved = ethanol.copy()
    moved.positions[0] += 0.05
    with caplog.at_level(logging.WARNING, logger="phicalc.md.resume"):
        summary = _run(moved, tiny_model, out, steps=6, **settings)
    assert "started from another structure" in caplog.text and "--force-new" in caplog.text
    assert summary["resumed_from_step"] == 4
    _assert_same_run(whole, out)  # still the run that started from `ethanol`


@pytest.mark.parametrize("periodic", [False, True])
def test_summary_says_whether_the_model_ran_compiled(
    ethanol, water_box, tiny_model, tmp_path, monkeypatch, periodic
):
    """An open molecule goes through the compiled replay, a periodic box through the compiled
    backbone: either way the summary says the model ran compiled."""
    import torch

    structure = water_box if periodic else ethanol
    plain = _run(structure, tiny_model, tmp_path / "plain", steps=2)
    assert plain["compiled"] is False and plain["config"]["compile"] is None  # short: no compile
    monkeypatch.setattr(torch, "compile", lambda fn, **options: fn)  # an instant "compiler"
    compiled = run(
        structure,
        tiny_model,
        tmp_path / "compiled",
        config=MDConfig(steps=2, compile=True),
        device="cpu",
        dtype="float64",
        plots=False,
    )
    assert compiled["compiled"] is True
    assert json.loads((tmp_path / "compiled" / "summary.json").read_text())["compiled"] is True


def test_a_new_run_is_float32_and_a_continued_run_keeps_its_precision(
    ethanol, tiny_model, tmp_path
):
    """Without a dtype a new run takes DEFAULT_DTYPE (float32); a run started in float64
    continues in float64 when no dtype is given, and --force-new starts over in float32."""
    from phicalc.md.resume import DEFAULT_DTYPE

    assert DEFAULT_DTYPE == "float32"
    new, old = tmp_path / "new", tmp_path / "old"
    run(ethanol, tiny_model, new, config=MDConfig(steps=2), plots=False)
    assert load_checkpoint(new / "checkpoint.npz").extra["dtype"] == "float32"
    run(ethanol, tiny_model, old, config=MDConfig(steps=2), dtype="float64", plots=False)
    summary = run(ethanol, tiny_model, old, config=MDConfig(steps=4), plots=False)
    assert summary["resumed_from_step"] == 2 and summary["steps_done"] == 4
    assert load_checkpoint(old / "checkpoint.npz").extra["dtype"] == "float64"
    run(ethanol, tiny_model, old, config=MDConfig(steps=2), plots=False, force_new=True)
    assert load_checkpoint(old / "checkpoint.npz").extra["dtype"] == "float32"
