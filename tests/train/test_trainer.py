"""The training loop end to end on tiny data: outputs, resume bit for bit, guards."""

from __future__ import annotations

import csv
import json
import time

import pytest
import torch

from phicalc.errors import ConfigError
from phicalc.serialization import load_model
from phicalc.train import TrainConfig, train
from phicalc.train.checkpoint import load_checkpoint


def _state_equal(a, b, where=""):
    """Recursive exact equality of (nested) state dicts."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _state_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            _state_equal(x, y, f"{where}[{k}]")
    else:
        assert a == b or (a != a and b != b), where


def test_training_writes_every_output(tiny_files, tiny_config, tmp_path):
    config = TrainConfig.from_dict(tiny_config(tiny_files, tmp_path / "run", epochs=3))
    threads = torch.get_num_threads()
    result = train(config)
    assert torch.get_num_threads() == threads  # num_threads is restored after the run
    out = tmp_path / "run"
    for name in (
        "config.yaml",
        "checkpoint.pt",
        "best_model.pt",
        "log.csv",
        "learning_curve.png",
        "metrics.json",
        "train.log",
    ):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"lr", "train_loss", "val_loss", "val_energy_mae_meV", "val_forces_mae_eV_A"} <= set(
        rows[0]
    )
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert result.finished and result.best_epoch in (1, 2, 3)
    assert set(result.test_metrics) >= {"energy_mae_per_atom_meV", "forces_mae_eV_A"}

    model = load_model(out / "best_model.pt")
    meta = model.metadata
    assert meta["metrics"]["epoch"] == result.best_epoch and "test" in meta["metrics"]
    assert meta["metrics"]["val"]["loss"] == pytest.approx(result.val_metrics["loss"])
    assert meta["training_data"]["n_train"] == 16 and meta["training_data"]["fingerprint"]
    assert meta["hyperparameters"]["optim"]["lr"] == 2e-3
    assert {"hostname", "cpu", "torch"} <= set(meta["machine"])
    assert meta["training_time"]["wall_time_s"] > 0
    assert float(model.energy_scale) != 1.0 and model.atomic_energies.abs().sum() > 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["best_epoch"] == result.best_epoch and summary["test"] is not None
    # the best model is the EMA of the best epoch: its validation loss is the one recorded
    best_val = min(float(r["val_loss"]) for r in rows)
    assert result.val_metrics["loss"] == pytest.approx(best_val)


def test_resume_continues_bit_for_bit(tiny_files, tiny_config, tmp_path):
    overrides = {"epochs": 2, "model": {"phi": True}, "loss": {"charges_weight": 0.1}}
    straight = tiny_config(tiny_files, tmp_path / "straight", **overrides)
    straight["data"]["evaluate_test"] = False
    train(TrainConfig.from_dict(straight))
    split = dict(straight, out=str(tmp_path / "split"))
    first = train(TrainConfig.from_dict(split), stop_after=1)
    assert first.epochs_done == 1 and not first.finished
    second = train(TrainConfig.from_dict(split), resume=True)
    assert second.epochs_done == 2 and second.finished
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    for key in ("model", "ema", "optimizer", "schedule", "epoch", "step", "best"):
        _state_equal(a[key], b[key], key)
    for row_a, row_b in zip(a["history"], b["history"], strict=True):
        row_a.pop("time_s"), row_b.pop("time_s")
        assert row_a == row_b
    assert len(list(csv.DictReader((tmp_path / "split" / "log.csv").open()))) == 2


def test_time_limit_shortens_the_schedule_so_it_still_anneals(
    tiny_files, tiny_config, tmp_path, monkeypatch
):
    """A fake clock charges 10 s per epoch: with 35 s, an upper bound of 10 epochs becomes 3
    (⌊25/10⌋ more after the first), the cosine ends at min_lr and the new total is recorded."""
    import types

    import phicalc.train.loop as loop_module
    import phicalc.train.trainer as trainer_module

    clock = [0.0]
    fake_time = types.SimpleNamespace(monotonic=lambda: clock[0], perf_counter=time.perf_counter)
    monkeypatch.setattr(trainer_module, "time", fake_time)
    monkeypatch.setattr(loop_module, "time", fake_time)
    run_epoch = trainer_module.Trainer._run_epoch

    def ten_second_epoch(self, epoch):
        run_epoch(self, epoch)
        clock[0] += 10.0

    monkeypatch.setattr(trainer_module.Trainer, "_run_epoch", ten_second_epoch)
    values = tiny_config(tiny_files, tmp_path / "run", epochs=10)
    values["data"]["evaluate_test"] = False
    values["optim"].update(scheduler="cosine", min_lr=1e-5)
    result = train(TrainConfig.from_dict(values), time_limit_s=35.0)
    assert result.epochs_done == 3 and result.finished
    assert float(result.history[-1]["lr"]) == pytest.approx(values["optim"]["min_lr"])
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["config"]["epochs"] == 3
    written = TrainConfig.from_yaml(tmp_path / "run" / "config.yaml")
    assert written.epochs == 3
    # the shortened run is complete: resuming its own config has nothing left to do
    again = train(written, resume=True)
    assert again.epochs_done == 3 and len(again.history) == 3
    # a limit that fits no further epoch stops the call but keeps the schedule for a resume
    short = train(TrainConfig.from_dict(dict(values, out=str(tmp_path / "b"))), time_limit_s=15.0)
    assert short.epochs_done == 1 and not short.finished
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["config"]["epochs"] == 10


def test_run_guards(tiny_files, tiny_config, tmp_path):
    config = TrainConfig.from_dict(tiny_config(tiny_files, tmp_path / "run", epochs=1))
    train(config)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(config)
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        train(config.with_overrides({"out": str(tmp_path / "elsewhere")}), resume=True)
    with pytest.raises(ConfigError, match=r"differs from the checkpoint's in \['optim.lr'\]"):
        train(config.with_overrides({"optim": {"lr": 1e-2}}), resume=True)
    # test data never touch training: a resume may name other ones (here: none)
    resumed = train(config.with_overrides({"data": {"test": None}, "epochs": 2}), resume=True)
    assert resumed.epochs_done == 2 and resumed.test_metrics is None
    missing = config.with_overrides({"out": str(tmp_path / "x"), "data": {"val": "nope.extxyz"}})
    with pytest.raises(FileNotFoundError, match="nope.extxyz"):
        train(missing)


def test_float64_energy_only_and_target_checks(
    tiny_files, tiny_config, labelled_molecules, tmp_path
):
    from phicalc.data import make_record, write_structures

    records = [make_record(a, energy=a.get_potential_energy()) for a in labelled_molecules(12)]
    write_structures(tmp_path / "energy_only.extxyz", records)
    base = tiny_config(tiny_files, tmp_path / "e", epochs=1, dtype="float64")
    base["data"] = {
        "format": "extxyz",
        "train": str(tmp_path / "energy_only.extxyz"),
        "val_fraction": 0.25,
    }
    with pytest.raises(ConfigError, match="no reference forces; set loss.forces_weight: 0"):
        train(TrainConfig.from_dict(base))
    base["loss"] = {"forces_weight": 0.0}
    result = train(TrainConfig.from_dict(base))
    model = load_model(result.best_model)
    assert model.dtype == torch.float64
    assert "forces_mae_eV_A" not in result.val_metrics
    assert model.metadata["training_data"]["n_val"] == 3
    no_phi = tiny_config(tiny_files, tmp_path / "q", loss={"charges_weight": 1.0})
    with pytest.raises(ConfigError, match="needs a model with charges"):
        train(TrainConfig.from_dict(no_phi))


def test_validation_hold_out_by_group(tiny_files, tiny_config, tmp_path):
    config = tiny_config(tiny_files, tmp_path / "g", epochs=1)
    config["data"] = {
        "format": "extxyz",
        "train": [str(tiny_files["train"]), str(tiny_files["val"])],
        "val_group": "molecule",
        "val_fraction": 0.3,
        "seed": 1,
    }
    result = train(TrainConfig.from_dict(config))
    meta = load_model(result.best_model).metadata["training_data"]
    assert meta["n_train"] + meta["n_val"] == 20 and meta["n_val"] % 5 == 0  # whole molecules


def test_format_1_clifford_run_resumes_only_as_the_model_it_trained(
    tiny_files, tiny_config, tmp_path
):
    """A checkpoint written before format 2 names no norm_smoothing and trained with 1e-4: a
    recipe that leaves it to today's default (0.01) must be refused, naming the key; one that
    says 1e-4 continues."""
    values = tiny_config(tiny_files, tmp_path / "run", epochs=1)
    values["model"].update(backbone="clifford", backbone_config={"num_channels": 4})
    values["data"]["evaluate_test"] = False
    old = dict(values["model"], backbone_config={"num_channels": 4, "norm_smoothing": 1e-4})
    train(TrainConfig.from_dict(dict(values, model=old)))
    path = tmp_path / "run" / "checkpoint.pt"
    blob = torch.load(path, weights_only=True)
    blob["format_version"] = 1
    del blob["config"]["model"]["backbone_config"]["norm_smoothing"]
    torch.save(blob, path)
    with pytest.raises(ConfigError, match=r"model\.backbone_config\.norm_smoothing"):
        train(TrainConfig.from_dict(dict(values, epochs=2)), resume=True)
    resumed = train(TrainConfig.from_dict(dict(values, model=old, epochs=2)), resume=True)
    assert resumed.epochs_done == 2


def test_charge_aware_model_trains_on_charges_and_dipoles(tiny_files, tiny_config, tmp_path):
    """Equilibrated charges + Coulomb, no Φ: the charge and dipole losses train the charges."""
    config = TrainConfig.from_dict(
        tiny_config(
            tiny_files,
            tmp_path / "run",
            epochs=4,
            model={"charge_spin": True, "charge_equilibration": True, "coulomb": True},
            loss={"charges_weight": 10.0, "dipole_weight": 1.0},
        )
    )
    result = train(config)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert float(rows[-1]["val_charges_mae_e"]) < float(rows[0]["val_charges_mae_e"])
    model = load_model(tmp_path / "run" / "best_model.pt")
    assert model.config.charge_equilibration and model.coulomb is not None
    assert "charges_mae_e" in result.test_metrics and "dipole_mae_eA" in result.test_metrics


def test_test_file_with_an_element_absent_from_training_is_refused_up_front(
    tiny_files, tiny_config, tmp_path
) -> None:
    """Issue #16 class 10: ConfigError naming the test file and element before any epoch."""
    from ase.build import molecule

    from phicalc.data import read_structures, write_structures

    records = read_structures(tiny_files["test"], require_labels=True)
    silane = molecule("SiH4")
    silane.calc = type(records[0].calc)(silane, energy=-1.0, forces=torch.zeros(5, 3).numpy())
    test = tmp_path / "test_with_si.extxyz"
    write_structures(test, [*records, silane])
    values = tiny_config({**tiny_files, "test": test}, tmp_path / "run", epochs=50)
    with pytest.raises(ConfigError, match=r"test_with_si\.extxyz contain Si"):
        train(TrainConfig.from_dict(values))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_init_from_starts_from_the_given_model_and_refuses_another_architecture(
    tiny_files, tiny_config, tmp_path
):
    from phicalc.train.trainer import Trainer

    train(TrainConfig.from_dict(tiny_config(tiny_files, tmp_path / "first", epochs=2)))
    first = load_model(tmp_path / "first" / "best_model.pt")
    fine = TrainConfig.from_dict(
        tiny_config(
            tiny_files,
            tmp_path / "fine",
            epochs=1,
            seed=7,  # another seed: fresh weights would differ
            init_from=str(tmp_path / "first" / "best_model.pt"),
        )
    )
    trainer = Trainer(fine)
    try:
        _state_equal(trainer.model.state_dict(), first.state_dict())  # weights, E0 and σ
    finally:
        trainer._release()
    fresh = Trainer(TrainConfig.from_dict(tiny_config(tiny_files, tmp_path / "fresh", seed=7)))
    try:
        assert not torch.equal(
            fresh.model.state_dict()["readout.0.weight"], first.state_dict()["readout.0.weight"]
        )
    finally:
        fresh._release()
    result = train(fine)
    assert result.finished and (tmp_path / "fine" / "best_model.pt").is_file()

    wider = tiny_config(
        tiny_files,
        tmp_path / "wider",
        init_from=str(tmp_path / "first" / "best_model.pt"),
        model={"backbone_config": {"num_features": 16}},
    )
    with pytest.raises(ConfigError, match="init_from.*backbone_config.num_features"):
        train(TrainConfig.from_dict(wider))


def test_fine_tuning_adds_per_molecule_equilibration_and_fits_the_charge_state_offset(
    tiny_files, tiny_config, tmp_path
):
    """The path of the charge-state pilot: a charged model without E_Q, fine-tuned with
    charge_input equilibrated, per-molecule equilibration and E_Q. Shared weights come from the
    source, μ from the data (slope of the residual energy on Q, with the source's E0), the
    transfer strength from its initial value; the run trains."""
    from phicalc.data import read_structures, write_structures
    from phicalc.graph.batch import atoms_to_graph
    from phicalc.train.statistics import fit_charge_potential

    records = read_structures(tiny_files["train"], require_labels=True)
    for k, atoms in enumerate(records):
        charge = k % 3 - 1
        atoms.info["charge"] = charge
        atoms.info["spin"] = 1 + abs(charge)
        atoms.calc.results["energy"] += 7.5 * charge
    files = {**tiny_files, "train": tmp_path / "charged.extxyz"}
    write_structures(files["train"], records)
    charged = {"charge_spin": True, "charge_equilibration": True}
    train(TrainConfig.from_dict(tiny_config(files, tmp_path / "source", epochs=1, model=charged)))
    source = load_model(tmp_path / "source" / "best_model.pt")
    fine = tiny_config(
        files,
        tmp_path / "fine",
        epochs=1,
        init_from=str(tmp_path / "source" / "best_model.pt"),
        model={
            **charged,
            "charge_input": "equilibrated",
            "charge_state_energy": True,
            "equilibration_scope": "molecule",
        },
        optim={"lr": 1e-12, "min_lr": 0.0, "warmup_epochs": 0.0},
    )
    result = train(TrainConfig.from_dict(fine))
    assert result.finished
    model = load_model(tmp_path / "fine" / "best_model.pt")
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=1e-6, atol=1e-6)
    e0 = dict(zip(source.elements, source.atomic_energies.tolist(), strict=True))
    graphs = [atoms_to_graph(a, source.cutoff, with_targets=True) for a in records]
    expected = fit_charge_potential(graphs, e0)
    assert abs(expected) > 1.0  # the data's charge dependence is there to fit
    assert float(model.charge_potential.detach()) == pytest.approx(expected, rel=1e-5)
    strength = torch.nn.functional.softplus(model.raw_transfer_strength.detach())
    assert float(strength) == pytest.approx(0.1, rel=1e-5)


def test_validation_loss_script_reproduces_the_logged_validation_loss(
    tiny_files, tiny_config, tmp_path
):
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    recipe = tiny_config(tiny_files, tmp_path / "run", epochs=2)
    train(TrainConfig.from_dict(recipe))
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    logged = json.loads((tmp_path / "run" / "metrics.json").read_text())["val"]["loss"]
    script = Path(__file__).parents[2] / "scripts" / "validation_loss.py"
    printed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "recipe.yaml"), "--model",
         f"best={tmp_path / 'run' / 'best_model.pt'}"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    row = printed.splitlines()[2].split("|")
    assert row[1].strip() == "best" and float(row[2]) == pytest.approx(logged, abs=1e-5)
    # another file gives another loss: the script reads the recipe's validation files
    recipe["data"]["val"] = recipe["data"]["train"]
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    printed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "recipe.yaml"), "--model",
         f"best={tmp_path / 'run' / 'best_model.pt'}"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert abs(float(printed.splitlines()[2].split("|")[2]) - logged) > 1e-4
