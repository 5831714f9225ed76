"""Score models on the held-out sets of the default model: reports/default_model.{md,json}.

    python scripts/default_model_report.py \
        --model phi-painn-organic=models/phi-painn-organic/model.pt \
        --model painn-organic=models/painn-organic/model.pt \
        --model phi-painn-organic-v1=models/phi-painn-organic-v1/model.pt \
        --organic data/organic_heldout.extxyz --charged data/charged_v1 --out reports/default_model

Every model is scored on the organic held-out molecules (neutral, never trained on) with the
metrics of ``phicalc eval`` (:func:`phicalc.train.evaluation.evaluate`, the model's own dtype, so
the figures equal the model cards'), and, when it takes total charge and spin as inputs, on the
charged set's validation and test splits (species held out by the split rule of
reports/charged_data.md) with :func:`phicalc.train.charged_metrics.charged_metrics` in float64,
as the ablation: energy and force MAE (per-frame means) overall and per category, long-range
dimer interaction energies (closest-atom distance 6–15 Å), vertical ΔE, the ion fragment's summed
charge in separated complexes, charge correlation and dipole error against GFN2-xTB.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from phicalc.data import GraphDataset, read_structures
from phicalc.serialization import load_model
from phicalc.train.charged_metrics import charged_metrics
from phicalc.train.evaluation import evaluate

#: (metrics key, column title, format) of the tables.
ORGANIC_COLUMNS = (
    ("energy_mae_per_atom_meV", "E MAE meV/atom", "{:.2f}"),
    ("forces_mae_eV_A", "F MAE eV/Å", "{:.4f}"),
    ("charges_pearson_r", "charge r", "{:.3f}"),
    ("dipole_mae_eA", "dipole MAE e·Å", "{:.3f}"),
)
VERTICAL_COLUMNS = (
    ("vertical_n", "pairs", "{:d}"),
    ("vertical_mae_eV", "vertical ΔE MAE eV", "{:.3f}"),
    ("energy_mae_meV_atom", "E MAE meV/atom (Q = 0, ±1)", "{:.2f}"),
)
CHARGED_COLUMNS = (
    ("energy_mae_meV_atom", "E MAE meV/atom", "{:.2f}"),
    ("forces_mae_eV_A", "F MAE eV/Å", "{:.4f}"),
    ("ion/energy_mae_meV_atom", "ions E meV/atom", "{:.2f}"),
    ("ion/forces_mae_eV_A", "ions F eV/Å", "{:.4f}"),
    ("neutral/energy_mae_meV_atom", "F/P/S/Cl neutrals E meV/atom", "{:.2f}"),
    ("neutral/forces_mae_eV_A", "F/P/S/Cl neutrals F eV/Å", "{:.4f}"),
    ("interaction_mae_percent", "E_int MAE % (6–15 Å)", "{:.1f}"),
    ("vertical_mae_eV", "vertical ΔE MAE eV", "{:.3f}"),
    ("fragment_charge_max_dev_e", "max |Σq_ion − Q| e", "{:.3f}"),
    ("charges_pearson_r", "charge r", "{:.3f}"),
    ("dipole_mae_eA", "dipole MAE e·Å", "{:.3f}"),
)


def score(
    model_path: Path,
    organic: Path,
    charged: str,
    extra: dict[str, Path] | None = None,
    vertical: str | None = None,
) -> dict[str, Any]:
    """Metrics of one model: ``organic`` and each ``extra`` file always, ``val`` / ``test`` of
    the charged set (and of the ``vertical`` set) if it takes charge and spin as inputs."""
    model = load_model(model_path)
    result: dict[str, Any] = {"model": str(model_path)}
    for name, path in {"organic": organic, **(extra or {})}.items():
        records = read_structures(path)
        elements = {symbol for atoms in records for symbol in atoms.get_chemical_symbols()}
        has_ions = any(float(atoms.info.get("charge", 0)) != 0 for atoms in records)
        if not elements <= set(model.elements) or (has_ions and not model.config.charge_spin):
            continue  # outside what the model takes (elements, or ions for a neutral-only model)
        result[name] = evaluate(model, list(GraphDataset(records, model.cutoff)))
    model = model.double()
    if model.config.charge_spin:
        for split in ("val", "test"):
            result[split] = charged_metrics(model, read_structures(f"{charged}_{split}.extxyz"))
        # the test split without chlorine: what stays unseen once Cl⁻ is trained on (water data)
        records = read_structures(f"{charged}_test.extxyz")
        result["test_without_cl"] = charged_metrics(
            model, [atoms for atoms in records if 17 not in atoms.numbers]
        )
        for split in ("val", "test") if vertical else ():
            result[f"vertical_{split}"] = charged_metrics(
                model, read_structures(f"{vertical}_{split}.extxyz")
            )
    return result


def table(results: dict[str, dict[str, Any]], split: str, columns: tuple) -> list[str]:
    lines = [
        "| model | " + " | ".join(title for _, title, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, result in results.items():
        if split not in result:
            continue
        metrics = result[split]
        cells = [
            fmt.format(metrics[key]) if metrics.get(key) is not None else "–"
            for key, _, fmt in columns
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--organic", type=Path, default=Path("data/organic_heldout.extxyz"))
    parser.add_argument("--charged", default="data/charged_v1", help="prefix of the split files")
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another labelled file scored like the organic one (e.g. water frames)",
    )
    parser.add_argument(
        "--vertical", default=None, help="prefix of vertical-state split files (optional)"
    )
    parser.add_argument("--out", type=Path, default=Path("reports/default_model"))
    args = parser.parse_args()
    extra = {name: Path(path) for name, _, path in (s.partition("=") for s in args.extra)}
    results = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        results[name] = score(Path(path), args.organic, args.charged, extra, args.vertical)
        print(f"{name}: scored", flush=True)
    command = shlex.join(["python", "scripts/default_model_report.py", *sys.argv[1:]])
    lines = [f"`{command}`", ""]
    lines += [f"Organic held-out molecules ({args.organic}, neutral, never trained on):", ""]
    lines += table(results, "organic", ORGANIC_COLUMNS)
    for name, path in extra.items():
        lines += ["", f"{name} ({path}):", ""]
        lines += table(results, name, ORGANIC_COLUMNS)
    for split in ("val", "test"):
        lines += ["", f"Charged set {split} split ({args.charged}_{split}.extxyz):", ""]
        lines += table(results, split, CHARGED_COLUMNS)
    lines += ["", f"Charged set test split without Cl-containing frames ({args.charged}_test):", ""]
    lines += table(results, "test_without_cl", CHARGED_COLUMNS)
    for split in ("val", "test") if args.vertical else ():
        lines += ["", f"Vertical charge states, {split} ({args.vertical}_{split}.extxyz):", ""]
        lines += table(results, f"vertical_{split}", VERTICAL_COLUMNS)
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
