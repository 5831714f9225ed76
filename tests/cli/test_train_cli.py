"""``phicalc train`` and ``phicalc eval``: runs, outputs and exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from ase.build import molecule
from ase.calculators.emt import EMT

from phicalc.cli.main import main


def _records(n, seed=0, formulas=("H2O", "NH3", "CH4", "CH3OH")):
    from phicalc.data import make_record

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = molecule(formulas[k % len(formulas)])
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = EMT()
        q = rng.normal(scale=0.2, size=len(atoms))
        out.append(
            make_record(
                atoms,
                energy=atoms.get_potential_energy(),
                forces=atoms.get_forces(),
                charges=q - q.mean(),
            )
        )
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from phicalc.data import write_structures

    folder = tmp_path_factory.mktemp("cli")
    records = _records(16)
    write_structures(folder / "train.extxyz", records[:10])
    write_structures(folder / "val.extxyz", records[10:13])
    write_structures(folder / "test.extxyz", records[13:])
    return folder


def _config(files, out, **extra):
    values = {
        "epochs": 1, "out": str(out), "num_threads": 1, "progress": False,
        "model": {"backbone": "painn", "phi": True, "cutoff": 3.5, "readout_hidden": 8,
                  "backbone_config": {"num_features": 8, "num_blocks": 1, "num_radial": 4}},
        "data": {"format": "extxyz", "train": str(files / "train.extxyz"),
                 "val": str(files / "val.extxyz"), "test": str(files / "test.extxyz")},
        "optim": {"batch_size": 4},
    }  # fmt: skip
    for key, value in extra.items():
        if isinstance(value, dict):
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
    return values


def _write(path, values):
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="module")
def trained(files, tmp_path_factory):
    """One CLI training run (1 epoch, then --resume to 2), shared by the eval tests."""
    folder = tmp_path_factory.mktemp("run")
    config = _write(folder / "c.yaml", _config(files, folder / "out", epochs=2))
    assert main(["train", str(config), "--stop-after", "1"]) == 0
    assert main(["train", str(config), "--resume"]) == 0
    return folder / "out"


def test_train_then_resume(trained, capsys):
    rows = (trained / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + 2 epochs, the second after --resume
    assert json.loads((trained / "metrics.json").read_text())["finished"] is True


def test_seed_option_overrides_the_config_and_changes_the_run(files, tmp_path):
    """--seed replaces the config's seed: another seed gives other initial weights."""
    import torch

    config = _write(tmp_path / "c.yaml", _config(files, tmp_path / "a", epochs=1))
    assert main(["train", str(config), "--stop-after", "1"]) == 0
    assert main(["train", str(config), "--out", str(tmp_path / "b"), "--seed", "0"]) == 0
    assert main(["train", str(config), "--out", str(tmp_path / "c"), "--seed", "7"]) == 0
    weights = {
        name: torch.load(tmp_path / name / "best_model.pt", weights_only=True)["state_dict"]
        for name in "abc"
    }
    key = next(k for k in weights["a"] if k.endswith("weight"))
    assert torch.equal(weights["a"][key], weights["b"][key])
    assert not torch.equal(weights["a"][key], weights["c"][key])
    assert yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())["seed"] == 7


@pytest.mark.parametrize("limit", ["0", "-5m", "soon", "1.5x"])
def test_bad_time_limit_exits_2(files, tmp_path, capsys, limit):
    config = _write(tmp_path / "c.yaml", _config(files, tmp_path / "out"))
    with pytest.raises(SystemExit) as stop:
        main(["train", str(config), f"--time-limit={limit}"])
    assert stop.value.code == 2
    assert "--time-limit" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"optim": {"learning_rate": 1e-3}}, "unknown option(s) ['learning_rate']"),
        ({"epochz": 3}, "unknown option(s) ['epochz']"),
        ({"loss": {"kind": "l4"}}, "loss.kind='l4' is not one of"),
        ({"model": {"cutoff": -1.0}}, "model.cutoff must be a positive number"),
        ({"data": {"train": "missing.extxyz"}}, "data file not found: missing.extxyz"),
        ({"loss": {"dipole_weight": 1.0}, "model": {"phi": False}}, "needs a model with charges"),
    ],
)
def test_bad_configs_exit_2_with_one_line(files, tmp_path, capsys, change, fragment):
    config = _write(tmp_path / "bad.yaml", _config(files, tmp_path / "out", **change))
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1, err


def test_missing_or_broken_config_and_existing_run_exit_2(files, trained, tmp_path, capsys):
    assert main(["train", str(tmp_path / "none.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("epochs: [1\n")
    assert main(["train", str(tmp_path / "broken.yaml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    config = _write(tmp_path / "again.yaml", _config(files, trained))
    assert main(["train", str(config)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", str(config), "--out", str(tmp_path / "fresh"), "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_eval_prints_table_and_writes_json(trained, files, tmp_path, capsys):
    out = tmp_path / "m.json"
    model = trained / "best_model.pt"
    assert (
        main(
            [
                "eval",
                "--model",
                str(model),
                "--data",
                str(files / "test.extxyz"),
                "--json",
                str(out),
                "--batch-size",
                "2",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    for label in (
        "energy MAE",
        "energy MAE per atom",
        "force MAE",
        "force RMSE",
        "charge Pearson r",
    ):
        assert label in table
    report = json.loads(out.read_text())
    assert report["n_structures"] == 3
    metrics = report["metrics"]
    assert {
        "energy_mae_meV",
        "energy_mae_per_atom_meV",
        "forces_mae_eV_A",
        "forces_rmse_eV_A",
        "charges_pearson_r",
    } <= set(metrics)
    # the same numbers as the trainer's test evaluation of the best model
    test = json.loads((trained / "metrics.json").read_text())["test"]
    assert metrics["energy_mae_meV"] == pytest.approx(test["energy_mae_meV"], rel=1e-6)
    assert metrics["forces_mae_eV_A"] == pytest.approx(test["forces_mae_eV_A"], rel=1e-6)


def test_eval_bad_inputs_exit_2(trained, files, tmp_path, capsys):
    from phicalc.data import make_record, write_structures

    model = str(trained / "best_model.pt")
    assert main(["eval", "--model", "no-such-model", "--data", str(files / "test.extxyz")]) == 2
    assert main(["eval", "--model", model, "--data", str(tmp_path / "none.extxyz")]) == 2
    assert "no such data file" in capsys.readouterr().err
    unlabelled = molecule("H2O")
    write_structures(tmp_path / "bare.extxyz", unlabelled)
    assert main(["eval", "--model", model, "--data", str(tmp_path / "bare.extxyz")]) == 2
    assert "no structure has a reference energy" in capsys.readouterr().err
    cf4 = molecule("CF4")
    write_structures(tmp_path / "f.extxyz", make_record(cf4, energy=0.0, forces=np.zeros((5, 3))))
    assert main(["eval", "--model", model, "--data", str(tmp_path / "f.extxyz")]) == 2
    assert "['F']" in capsys.readouterr().err
