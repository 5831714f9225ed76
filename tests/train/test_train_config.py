"""TrainConfig: YAML reading, overrides, validation messages."""

from __future__ import annotations

import pytest
import yaml

from phicalc.config import config_differences, merge_dicts
from phicalc.errors import ConfigError
from phicalc.train.config import TrainConfig

MINIMAL = {"model": {"backbone": "schnet"}, "data": {"format": "extxyz", "train": "t.xyz"}}


def test_minimal_defaults_and_round_trip():
    config = TrainConfig.from_dict(MINIMAL)
    assert (
        config.dtype == "float32"
        and config.loss.kind == "l1"
        and config.optim.scheduler == "cosine"
    )
    assert TrainConfig.from_dict(config.to_dict()) == config
    yaml.safe_dump(config.to_dict())  # plain containers only


def test_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "epochs": 5, "optim": {"lr": 1e-3}}))
    config = TrainConfig.from_yaml(path, overrides={"epochs": 1, "optim": {"batch_size": 2}})
    assert (config.epochs, config.optim.lr, config.optim.batch_size) == (1, 1e-3, 2)
    assert config.with_overrides({"model": {"cutoff": 4.0}}).model.cutoff == 4.0


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({**MINIMAL, "epoch": 3}, "unknown option(s) ['epoch']"),
        ({**MINIMAL, "loss": {"weight": 1}}, "LossSection got unknown option(s) ['weight']"),
        ({**MINIMAL, "loss": {"kind": "l3"}}, "loss.kind='l3' is not one of"),
        ({**MINIMAL, "optim": {"scheduler": "step"}}, "optim.scheduler='step'"),
        ({**MINIMAL, "optim": {"lr": -1.0}}, "optim.lr must be a positive number, got -1.0"),
        ({**MINIMAL, "optim": {"batch_size": 0}}, "optim.batch_size must be a positive integer"),
        ({**MINIMAL, "epochs": 0}, "epochs must be a positive integer"),
        ({**MINIMAL, "dtype": "float16"}, "dtype='float16'"),
        ({"data": MINIMAL["data"]}, "no 'model' section"),
        ({**MINIMAL, "model": {"backbone": "nope"}}, "unknown backbone 'nope'"),
        ({**MINIMAL, "model": {"backbone_config": {"width": 3}}}, "PaiNNConfig got unknown"),
        ({**MINIMAL, "model": {"phi": {"methd": "spectral"}}}, "PhiConfig got unknown"),
        ({**MINIMAL, "data": {"format": "oe62"}}, "data.path is required"),
        ({**MINIMAL, "data": {"format": "xyz", "train": "t"}}, "data.format='xyz'"),
        ({**MINIMAL, "loss": {"energy_weight": 0, "forces_weight": 0}}, "all loss weights are 0"),
        ({**MINIMAL, "selection_metric": "test_loss"}, "selection_metric='test_loss'"),
    ],
)
def test_bad_configs_name_the_problem(values, fragment):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(values)
    assert fragment in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        TrainConfig.from_yaml(bad)


def test_merge_and_differences():
    merged = merge_dicts({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": 2}, "d": 3}
    assert config_differences({"a": {"b": 1}, "x": 1}, {"a": {"b": 2}, "x": 1}) == ["a.b"]


def _section(name, **values):
    """MINIMAL with ``values`` merged into section ``name`` (None: top level)."""
    if name is None:
        return {**MINIMAL, **values}
    return {**MINIMAL, name: {**MINIMAL.get(name, {}), **values}}


def _backbone(backbone, **options):
    return {**MINIMAL, "model": {"backbone": backbone, "backbone_config": options}}


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        # ModelSection
        (_section("model", cutoff=0), "model.cutoff must be a positive number, got 0"),
        (_section("model", cutoff="5"), "model.cutoff must be a positive number, got '5'"),
        (_section("model", readout_hidden=0), "model.readout_hidden must be a positive integer"),
        (_section("model", phi="yes"), "model.phi must be true, false or a mapping"),
        (_section("model", atomic_energies="mean"), "model.atomic_energies='mean'"),
        (_section("model", energy_scale=-1.0), "model.energy_scale must be one of"),
        (_section("model", energy_scale=True), "model.energy_scale must be one of"),
        # DataSection
        (_section("data", val_fraction=1.0), "data.val_fraction must be a number in (0, 1)"),
        (_section("data", max_train=0), "data.max_train must be a positive integer or null"),
        (_section("data", budget=2.5), "data.budget must be a positive integer or null, got 2.5"),
        (_section("data", train=[1]), "data.train must be a file name or a list of them"),
        # LossSection
        (_section("loss", forces_weight=-1), "loss.forces_weight must be a number >= 0, got -1"),
        (_section("loss", energy_weight=float("nan")), "loss.energy_weight must be a number >= 0"),
        (_section("loss", huber_delta=0), "loss.huber_delta must be a positive number, got 0"),
        # OptimSection
        (_section("optim", lr="5e-4"), "optim.lr must be a positive number, got '5e-4'"),
        (_section("optim", min_lr=1.0), "optim.min_lr must be a number in [0, 0.0005], got 1.0"),
        (_section("optim", eps=0), "optim.eps must be a positive number"),
        (_section("optim", weight_decay=-0.1), "optim.weight_decay must be a number >= 0"),
        (_section("optim", val_batch_size=0), "optim.val_batch_size must be a positive integer"),
        (_section("optim", patience=True), "optim.patience must be a positive integer, got True"),
        (_section("optim", betas=[0.9]), "optim.betas must be two numbers in [0, 1)"),
        (_section("optim", betas=[0.9, 1.0]), "optim.betas[1] must be a number in [0, 1)"),
        (_section("optim", warmup_start=0), "optim.warmup_start must be a number in (0, 1]"),
        (_section("optim", factor=1), "optim.factor must be a number in (0, 1), got 1"),
        (_section("optim", ema_decay=1.0), "optim.ema_decay must be a number in (0, 1) or null"),
        (_section("optim", grad_clip=0), "optim.grad_clip must be a positive number or null"),
        # TrainConfig
        (_section(None, epochs=2.0), "epochs must be a positive integer, got 2.0"),
        (_section(None, num_threads=0), "num_threads must be a positive integer or null"),
        (_section(None, device="tpu"), "device='tpu' is not one of"),
        # backbone configs, reached through model.backbone_config
        (_backbone("schnet", num_filters=0), "SchNetConfig.num_filters must be a positive"),
        (_backbone("schnet", num_radial=1.5), "SchNetConfig.num_radial must be a positive"),
        (_backbone("painn", num_features=-4), "PaiNNConfig.num_features must be a positive"),
        (_backbone("painn", num_blocks=0), "PaiNNConfig.num_blocks must be a positive integer"),
        (_backbone("clifford", kernel_layers=-1), "CliffordConfig.kernel_layers must be a non-"),
        (_backbone("clifford", norm_smoothing=0.0), "CliffordConfig.norm_smoothing must be a"),
        # Φ options
        (_section("model", phi={"filter_degree": 0}), "PhiConfig.filter_degree must be a posi"),
    ],
)
def test_bad_values_name_option_value_and_what_is_allowed(values, fragment):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(values)
    assert fragment in str(info.value)
