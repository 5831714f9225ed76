"""The electrostatics ablation: which parts of a charge-aware model help, over seeds.

Arms (same data, split, backbone, losses, optimiser and epochs; only the electrostatics differ):

  a  baseline        total charge and spin as inputs; no Φ, no Coulomb
  b  phi             + the Φ-Module (charges ρ = L φ̂ + Q/n, graph energy)
  c  phi+coulomb     + Coulomb on the Φ charges
  d  phi+coulomb+qeq + charge equilibration as the Φ zero mode
  e  d+dipole        + dipole supervision
  f  d+charges       + charge supervision
  g  qeq+coulomb     Coulomb on equilibrated charges without the Laplacian (no Φ)
  h  g+charges       f without the Laplacian: (g) with f's charge supervision

Every arm takes Q and 2S+1 as inputs: the data hold ions and open shells, which a model without
them refuses. Runs are resumable (a finished run is skipped), so the command can be repeated.

Two ways to give the rest of the recipe:

* ``--data STEM``: the built-in pilot recipe (PaiNN F = 32) on ``STEM_{train,val,test}.extxyz``;
  each finished run is scored here on validation and test (``--report`` collects the table).
* ``--base RECIPE``: any training recipe (data, model size, optimiser, budget); each arm replaces
  only its electrostatics keys. An arm with charge equilibration keeps the recipe's own
  ``charge_input``, ``charge_state_energy`` and ``equilibration_scope``; an arm without it gets
  their defaults. Charge and dipole loss weights are the arm's (0 unless it names them; f and h
  keep the recipe's charge targets with the weight below). Runs are trained only; score them
  with ``scripts/default_model_report.py``.

    python scripts/ablation.py --data data/charged_pilot --epochs 20 --seeds 0 1 2 \\
        [--arms a b c] [--shard 0/2]          # then, once every shard is done:
    python scripts/ablation.py --data data/charged_pilot --report reports/ablation
    python scripts/ablation.py --base recipes/pilot/coulomb_full_scratch.yaml --root runs/ablation_v8 \\
        --arms a h d --seeds 0 1 2 --shard 0/2

Selection is on the validation split; the test split is scored once per finished run.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

ARMS: dict[str, tuple[str, dict[str, Any], dict[str, float]]] = {
    "a": ("baseline", {"phi": False}, {}),
    "b": ("phi", {"phi": True}, {}),
    "c": ("phi+coulomb", {"phi": True, "coulomb": True}, {}),
    "d": ("phi+coulomb+qeq", {"phi": True, "coulomb": True, "charge_equilibration": True}, {}),
    "e": (
        "d+dipole",
        {"phi": True, "coulomb": True, "charge_equilibration": True},
        {"dipole_weight": 1.0},
    ),
    "f": (
        "d+charges",
        {"phi": True, "coulomb": True, "charge_equilibration": True},
        {"charges_weight": 10.0},
    ),
    "g": ("qeq+coulomb", {"phi": False, "coulomb": True, "charge_equilibration": True}, {}),
    "h": (
        "g+charges",
        {"phi": False, "coulomb": True, "charge_equilibration": True},
        {"charges_weight": 10.0},
    ),
}
#: Model options that belong to charge equilibration, with their values without it.
EQUILIBRATION_DEFAULTS = {
    "charge_input": "global",
    "charge_state_energy": False,
    "equilibration_scope": "structure",
}
#: Figures of the report table: (metrics key, column title, format).
COLUMNS = (
    ("energy_mae_meV_atom", "E MAE meV/atom", "{:.2f}"),
    ("forces_mae_eV_A", "F MAE eV/Å", "{:.4f}"),
    ("interaction_mae_percent", "E_int MAE % (6–15 Å)", "{:.1f}"),
    ("vertical_mae_eV", "vertical ΔE MAE eV", "{:.3f}"),
    ("fragment_charge_max_dev_e", "max |Σq_ion − Q| e", "{:.3f}"),
    ("charges_pearson_r", "charge r", "{:.3f}"),
    ("dipole_mae_eA", "dipole MAE e·Å", "{:.3f}"),
)


def pilot_recipe(data: str) -> dict[str, Any]:
    """The built-in pilot recipe (PaiNN F = 32, 3 blocks, 5 Å) on ``{data}_{split}.extxyz``."""
    return {
        "epochs": 20,
        "num_threads": 1,
        "dtype": "float32",
        "selection_metric": "loss",
        "model": {
            "backbone": "painn",
            "cutoff": 5.0,
            "elements": ["H", "C", "N", "O", "F", "Na", "P", "S", "Cl"],
            "readout_hidden": 32,
            "charge_spin": True,
            "backbone_config": {"num_features": 32, "num_blocks": 3, "num_radial": 12},
        },
        "data": {
            "format": "extxyz",
            "train": f"{data}_train.extxyz",
            "val": f"{data}_val.extxyz",
            "test": f"{data}_test.extxyz",
            "evaluate_test": False,
        },
        "loss": {"kind": "l1", "energy_weight": 1.0, "forces_weight": 1.0},
        "optim": {"batch_size": 8, "lr": 1e-3, "warmup_epochs": 1, "ema_decay": 0.99},
    }


def arm_recipe(
    base: dict[str, Any], arm: str, seed: int, epochs: int | None, out: Path
) -> dict[str, Any]:
    """``base`` (a training recipe as a dict) with the electrostatics of ``arm``.

    ``phi``/``coulomb`` on take the base's own options when it has them (e.g. the spectral
    filter's degree), else the defaults; everything outside the electrostatics is the base's.
    """
    _, model_changes, loss_changes = ARMS[arm]
    recipe = copy.deepcopy(base)
    model = recipe["model"]
    options = {name: model.get(name) or True for name in ("phi", "coulomb")}
    model.update(phi=False, coulomb=False, charge_equilibration=False)
    model.update(
        {k: options[k] if v is True and k in options else v for k, v in model_changes.items()}
    )
    if not model["charge_equilibration"]:
        model.update(EQUILIBRATION_DEFAULTS)
    recipe["loss"] = {**recipe["loss"], "charges_weight": 0.0, "dipole_weight": 0.0, **loss_changes}
    recipe.update(seed=seed, out=str(out), progress=False)
    if epochs is not None:
        recipe["epochs"] = epochs
    return recipe


def run_one(
    base: dict[str, Any], arm: str, seed: int, epochs: int | None, root: Path, data: str | None
) -> dict[str, Any]:
    """Train (or resume) one run; with ``data`` (the built-in recipe) score its best model on
    validation and test."""
    from phicalc.data import read_structures
    from phicalc.serialization import load_model
    from phicalc.train import TrainConfig, train
    from phicalc.train.charged_metrics import charged_metrics

    out = root / f"{arm}_seed{seed}"
    scores = out / "ablation_scores.json"
    if scores.is_file():
        return json.loads(scores.read_text())
    config = TrainConfig.from_dict(arm_recipe(base, arm, seed, epochs, out))
    train(config, resume=(out / "checkpoint.pt").is_file())
    result: dict[str, Any] = {"arm": arm, "seed": seed, "epochs": config.epochs}
    if data is not None:
        model = load_model(out / "best_model.pt").double()
        for split in ("val", "test"):
            frames = read_structures(f"{data}_{split}.extxyz")
            result[split] = charged_metrics(model, frames)
    scores.write_text(json.dumps(result, indent=1))
    return result


def report(root: Path, target: Path) -> None:
    """reports/<target>.md and .json: mean ± std over seeds per arm, val and test."""
    runs = [json.loads(p.read_text()) for p in sorted(root.glob("*/ablation_scores.json"))]
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for run in runs:
        for split in ("val", "test"):
            if split not in run:  # a --base run, scored elsewhere
                continue
            for key, _, _ in COLUMNS:
                value = run[split].get(key)
                if value is not None:
                    table.setdefault(run["arm"], {}).setdefault(split, {}).setdefault(
                        key, []
                    ).append(float(value))
    lines = []
    for split in ("val", "test"):
        lines += [f"### {split}", "", "| arm | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |"]
        lines.append("|---" * (len(COLUMNS) + 2) + "|")
        for arm in ARMS:
            cells = table.get(arm, {}).get(split, {})
            n = max((len(v) for v in cells.values()), default=0)
            row = [f"{arm} {ARMS[arm][0]}", str(n)]
            for key, _, fmt in COLUMNS:
                values = cells.get(key)
                row.append(
                    "–"
                    if not values
                    else f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values))}"
                )
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    target.with_suffix(".md").write_text("\n".join(lines))
    target.with_suffix(".json").write_text(json.dumps({"runs": runs}, indent=1))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="stem of {stem}_{train,val,test}.extxyz (built-in recipe)")
    source.add_argument("--base", help="a training recipe whose electrostatics the arms replace")
    parser.add_argument("--root", default="runs/ablation", help="folder of the runs")
    parser.add_argument("--epochs", type=int, help="default: 20 (--data), the recipe's (--base)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th job from the i-th")
    parser.add_argument("--report", metavar="PATH", help="write the table (no training)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = Path(args.root)
    if args.report:
        if args.base:
            parser.error(
                "--report collects --data runs; score --base runs with default_model_report.py"
            )
        report(root, Path(args.report))
        return
    if args.base:
        from phicalc.train import TrainConfig

        base = TrainConfig.from_yaml(args.base).to_dict()
    else:
        base = pilot_recipe(args.data)
    index, count = (int(x) for x in args.shard.split("/"))
    jobs = [(arm, seed) for arm in args.arms for seed in args.seeds]  # arms in the given order
    for arm, seed in jobs[index::count]:
        result = run_one(base, arm, seed, args.epochs, root, args.data)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
