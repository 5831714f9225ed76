"""TrainConfig: YAML reading, overrides, validation messages."""

from __future__ import annotations

import pytest
import yaml

from phicalc.errors import ConfigError
from phicalc.train.config import TrainConfig, config_differences, merge_dicts

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
        ({**MINIMAL, "optim": {"lr": -1.0}}, "optim.lr must be > 0"),
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
