"""The ablation's arms (scripts/ablation.py): each changes only the electrostatics of its recipe."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from phicalc.train import TrainConfig

ROOT = Path(__file__).parents[2]
#: The shipped configuration trained from scratch (v8's model and losses).
SHIPPED_FROM_SCRATCH = ROOT / "recipes" / "pilot" / "coulomb_full_scratch.yaml"
ELECTROSTATICS = (
    "phi",
    "coulomb",
    "charge_equilibration",
    "charge_input",
    "charge_state_energy",
    "equilibration_scope",
)


@pytest.fixture(scope="module")
def ablation() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ablation", ROOT / "scripts" / "ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def base() -> dict:
    return TrainConfig.from_yaml(SHIPPED_FROM_SCRATCH).to_dict()


def arm_config(ablation: ModuleType, base: dict, arm: str) -> dict:
    recipe = ablation.arm_recipe(base, arm, seed=3, epochs=None, out=Path("runs/x"))
    return TrainConfig.from_dict(recipe).to_dict()  # validated as a training config


def without(config: dict, *model_keys: str) -> dict:
    """The config less seed, output folder, progress, loss weights and the given model keys."""
    stripped = {k: v for k, v in config.items() if k not in ("seed", "out", "progress", "loss")}
    stripped["model"] = {k: v for k, v in config["model"].items() if k not in model_keys}
    loss = {k: v for k, v in config["loss"].items() if not k.endswith("_weight")}
    return {**stripped, "loss": loss}


def test_arm_f_of_the_shipped_recipe_is_that_recipe(ablation: ModuleType, base: dict) -> None:
    config = arm_config(ablation, base, "f")
    assert config["seed"] == 3 and config["out"] == "runs/x" and config["progress"] is False
    assert without(config) == without(base)
    assert config["loss"] == base["loss"]


@pytest.mark.parametrize("arm", ["a", "b", "c", "d", "e", "f", "g", "h"])
def test_every_arm_differs_only_in_its_electrostatics(
    ablation: ModuleType, base: dict, arm: str
) -> None:
    config = arm_config(ablation, base, arm)
    assert without(config, *ELECTROSTATICS) == without(base, *ELECTROSTATICS)
    for name in ("energy_weight", "forces_weight"):
        assert config["loss"][name] == base["loss"][name]
    model = config["model"]
    _, changes, losses = ablation.ARMS[arm]
    assert bool(model["phi"]) == changes["phi"]
    if model["phi"]:
        assert model["phi"] == base["model"]["phi"]  # the recipe's own filter
    assert bool(model["coulomb"]) == changes.get("coulomb", False)
    qeq = changes.get("charge_equilibration", False)
    assert model["charge_equilibration"] == qeq
    for key, default in ablation.EQUILIBRATION_DEFAULTS.items():
        assert model[key] == (base["model"][key] if qeq else default)
    assert config["loss"]["charges_weight"] == losses.get("charges_weight", 0.0)
    assert config["loss"]["dipole_weight"] == losses.get("dipole_weight", 0.0)


def test_arm_h_is_arm_f_without_the_laplacian(ablation: ModuleType, base: dict) -> None:
    f, h = arm_config(ablation, base, "f"), arm_config(ablation, base, "h")
    assert h["model"]["phi"] is False
    assert without(h, "phi") == without(f, "phi") and h["loss"] == f["loss"]


def test_the_built_in_pilot_recipe_gets_the_same_arms(ablation: ModuleType) -> None:
    """``--data``: every arm validates; the epochs default to 20 and --epochs replaces them."""
    base = ablation.pilot_recipe("data/x")
    for arm in ablation.ARMS:
        config = TrainConfig.from_dict(ablation.arm_recipe(base, arm, 0, None, Path("o")))
        assert config.epochs == 20
        assert config.data.train == "data/x_train.extxyz"
    config = TrainConfig.from_dict(ablation.arm_recipe(base, "d", 0, 12, Path("o")))
    assert config.epochs == 12 and config.model.phi is True and config.model.coulomb is True


def test_report_of_base_runs_is_refused_by_name(tmp_path: Path) -> None:
    """``--base`` runs are scored elsewhere: asking for their table exits 2 and says why."""
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "ablation.py"),
            "--base",
            str(SHIPPED_FROM_SCRATCH),
            "--root",
            str(tmp_path),
            "--report",
            str(tmp_path / "table"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "default_model_report.py" in done.stderr
    assert not (tmp_path / "table.md").exists()
