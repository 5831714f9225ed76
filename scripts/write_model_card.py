"""Write models/<name>/model_card.md from a model file's metadata and `phicalc eval` JSON reports.

    python scripts/write_model_card.py NAME --model models/NAME/model.pt \
        --eval reports/NAME_test.json [--md md_runs/RUN/summary.json] \
        --description "..." --limits "..."

Every number in the card comes from the model file (training metadata) or the eval reports, with
the command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from phicalc.serialization import read_model_file

METRIC_LABELS = {
    "energy_mae_per_atom_meV": "energy MAE (meV/atom)",
    "energy_mae_meV": "energy MAE (meV/structure)",
    "forces_mae_eV_A": "force MAE (eV/Å)",
    "forces_rmse_eV_A": "force RMSE (eV/Å)",
    "charges_pearson_r": "charge Pearson r (vs GFN2 Mulliken)",
    "charges_mae_e": "charge MAE (e)",
    "dipole_mae_eA": "dipole MAE (e·Å)",
}


def metric_rows(metrics: dict) -> list[str]:
    rows = []
    for key, label in METRIC_LABELS.items():
        if key in metrics and metrics[key] is not None:
            rows.append(f"| {label} | {metrics[key]:.4g} |")
    return rows


def charge_handling(config: dict) -> list[str]:
    """One card line on how the model treats total charge and charges (empty for a model that
    takes neutral singlets only and has no charge equilibration)."""
    if not config.get("charge_spin") and not config.get("charge_equilibration"):
        return []
    parts = (
        ["total charge Q and spin multiplicity 2S+1 as inputs"] if config.get("charge_spin") else []
    )
    if config.get("charge_equilibration"):
        scope = config.get("equilibration_scope", "structure")
        where = (
            "per covalent molecule at formal integer charges, with smooth transfer between neighbouring molecules"
            if scope == "molecule"
            else "over the whole structure (one electronegativity level)"
        )
        parts.append(f"charges equilibrated {where}")
    if config.get("charge_input", "global") == "equilibrated":
        parts.append("Q reaches the atoms only through those charges")
    if config.get("charge_state_energy"):
        parts.append("the equilibration energy E_Q is part of the energy")
    if config.get("coulomb") is not None:
        parts.append("Gaussian-charge Coulomb on the charges (Ewald/PME for cells)")
    return ["- charge handling: " + "; ".join(parts)]


def _machine(info: dict) -> str:
    """'NVIDIA H200 (cuda:0)' or 'cpu (AMD EPYC, 1 torch thread(s))' from training metadata."""
    if "gpu" in info:
        return f"{info['gpu']} ({info.get('device')}), torch {info.get('torch')}"
    return (
        f"{info.get('device', 'cpu')} ({info.get('cpu', '')}, "
        f"{info.get('torch_threads', '?')} torch thread(s)), torch {info.get('torch')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--model", required=True)
    parser.add_argument("--eval", nargs="*", default=[], help="phicalc eval --json reports")
    parser.add_argument("--md", nargs="*", default=[], help="phicalc md summary.json files")
    parser.add_argument("--md-command", default="", help="the phicalc md command of those runs")
    parser.add_argument("--description", required=True)
    parser.add_argument("--limits", required=True)
    parser.add_argument("--recipe", required=True, help="recipe file that trained it")
    parser.add_argument("--history", default="", help="how the training actually ran")
    parser.add_argument(
        "--notes", nargs="*", default=[], help="markdown reports quoted under 'Held-out species'"
    )
    args = parser.parse_args()

    blob = read_model_file(args.model)
    meta, config = blob["metadata"], blob["config"]
    n_parameters = sum(v.numel() for k, v in blob["state_dict"].items() if v.is_floating_point())
    time_info = meta.get("training_time", {})
    machine = meta.get("machine", {})
    val = meta.get("metrics", {}).get("val", {})
    lines = [
        f"# {args.name}",
        "",
        args.description,
        "",
        "## Model",
        "",
        f"- backbone: `{config['backbone']}` {config['backbone_config']}, readout hidden "
        f"{config['readout_hidden']}; Φ-Module: {config['phi'] if config['phi'] is not None else 'none'}",
        f"- elements: {', '.join(meta['elements'])}; cutoff {meta['cutoff']} Å; "
        f"{n_parameters:,} stored floating-point values; units eV, Å, e, V",
        *charge_handling(config),
        f"- file: `models/{args.name}/model.pt` (config + state_dict + metadata, loads with "
        "`torch.load(weights_only=True)`), written by phicalc "
        f"{meta.get('phicalc_version')} / torch {meta.get('torch_version')}",
        "",
        "## Training",
        "",
        f"- recipe: `{args.recipe}` (`phicalc train {args.recipe}`); data generation: "
        "`scripts/make_data.sh` (GFN2-xTB via tblite)",
        f"- data: {json.dumps(meta.get('training_data'), default=str)}",
        f"- {time_info.get('epochs')} epochs, {time_info.get('steps')} optimiser steps, "
        f"{(time_info.get('wall_time_s') or 0) / 60:.0f} min of training wall time in all; "
        f"the last run on {_machine(machine)}",
        *([f"- how it ran: {args.history}"] if args.history else []),
        f"- model selected on validation (epoch {meta.get('metrics', {}).get('epoch')}): "
        + ", ".join(f"{k} {v:.4g}" for k, v in val.items() if isinstance(v, (int, float))),
        "",
        "## Test metrics",
        "",
    ]
    for path in args.eval:
        report = json.loads(Path(path).read_text())
        lines += [
            f"On `{report['data']}` ({report['n_structures']} structures, never trained on):",
            "",
            f"`phicalc eval --model {args.name} --data {report['data']}`",
            "",
            "| metric | value |",
            "|---|---|",
            *metric_rows(report["metrics"]),
            "",
        ]
    for path in args.notes:
        lines += [
            "## Held-out species (all shipped default models side by side)",
            "",
            f"From `{path}` (the command that reproduces it heads that file):",
            "",
            Path(path).read_text().strip(),
            "",
        ]
    if args.md:
        lines += [
            "## Molecular dynamics",
            "",
            "| run | ensemble | steps × Δt | ⟨T⟩ (K) | drift (meV/atom/ps) | ms/step |",
            "|---|---|---|---|---|---|",
        ]
        for path in args.md:
            s = json.loads(Path(path).read_text())
            c = s["config"]
            drift = s.get("energy_drift_meV_per_atom_per_ps")
            lines.append(
                f"| `{Path(path).parent}` | {c['ensemble']} | {s['steps_done']} × "
                f"{c['timestep_fs']} fs | {s['temperature_mean']:.0f} ± {s['temperature_std']:.0f} | "
                f"{'—' if drift is None else f'{drift:+.4f}'} | {s['ms_per_step']:.1f} |"
            )
        lines += ["", f"`{args.md_command}`" if args.md_command else "", ""]
    lines += ["## Limits", "", args.limits, ""]
    out = Path(args.model).parent / "model_card.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
