"""Model cards of the shipped models: python scripts/shipped_model_cards.py [NAME ...]

Run from the repository root after training (recipes/shipped/*), `phicalc eval --json
reports/NAME_test.json` (and, for the charge-aware default models, `reports/NAME_charged_test.json`
on the charged test split and `scripts/default_model_report.py`) and, where present, the NVE runs
in md_runs/shipped/NAME_nve. Numbers come from the model files and those reports
(scripts/write_model_card.py); scripts/shipped_card_texts.py holds the prose: the descriptions,
the limits and how each training actually ran.
"""

import subprocess
import sys
from pathlib import Path

import shipped_card_texts as texts  # scripts/ is on the path when run as a script

#: The organic generations from v2 on (charge-aware, charge-supervised): `organic` is the default.
CHARGE_AWARE_ORGANIC = (
    "organic",
    "organic-v2",
    "organic-v4",
    "organic-v5",
    "organic-v6",
    "organic-v7",
)


def card(name: str) -> list[str]:
    """The write_model_card.py command line of one shipped model."""
    phi = name.startswith("phi-")
    base = name.removeprefix("phi-")
    backbone, _, system = base.partition("-")
    title, arch = texts.ARCH[backbone]
    what = f"{title} {'with the Φ-Module (spectral filter)' if phi else 'without Φ'}"
    evals = [f"reports/{name}_test.json"]
    notes: list[str] = []
    if system == "organic-v1":
        recipe = f"recipes/shipped/organic_{backbone}{'_phi' if phi else ''}.yaml"
        description = f"General organic {what} ({arch}) {texts.ORGANIC_DATA}" + (
            " The first default model of phicalc: energy, forces and learned charges/potentials "
            "(no charge labels were used), neutral singlets only."
            if phi
            else " The baseline of phi-painn-organic-v1: same data, recipe and epochs."
        )
        description += texts.V1_NOTE
        limits = texts.ORGANIC_LIMITS
    elif system in CHARGE_AWARE_ORGANIC:
        generation = {
            "organic-v2": "default",
            "organic-v4": "water_al2",
            "organic-v5": "vertical",
            "organic-v6": "bound",
            "organic-v7": "dipole_charges",
        }.get(system, "fpscl_supplement")
        recipe = f"recipes/shipped/{generation}_{backbone}{'_phi' if phi else ''}.yaml"
        if phi:
            description = (
                f"The default model of phicalc: charge-aware {what}, charge equilibration and "
                f"Coulomb on the charges ({arch}; Gaussian charges σ = 1 Å, no cutoff for "
                f"molecules, Ewald/PME for cells) {texts.DEFAULT_DATA} {texts.MULLIKEN_TARGETS} Small enough "
                "for CPU MD."
            )
        else:
            description = (
                f"The baseline of phi-painn-organic: {what} with total charge and spin as inputs "
                f"({arch}) {texts.DEFAULT_DATA} Same data, recipe and wall-clock budget; no charges."
            )
        if not phi and system != "organic":
            description = description.replace(
                "The baseline of phi-painn-organic:", f"The baseline of phi-painn-{system}:"
            )
        if system == "organic-v2":
            description = (
                description.replace(
                    "The default model of phicalc:", "The second default model of phicalc (v2):"
                )
                + texts.V2_NOTE
            )
            limits = texts.DEFAULT_LIMITS
        elif system == "organic-v4":
            description = description.replace(" Small enough for CPU MD.", "") + texts.WATER_DATA
            description = description.replace(
                "The default model of phicalc:", "The fourth default model of phicalc (v4):"
            )
            description += texts.V4_NOTE
            limits = [texts.DEFAULT_LIMITS[0].split(". Condensed")[0] + "."] + texts.DEFAULT_LIMITS[
                1:2
            ]
            water_limits = list(texts.WATER_LIMITS)
            if not phi:  # the ion-pair MD was run with phi-painn-organic, not with this model
                water_limits[1] = texts.BASELINE_WATER_MD
            limits += water_limits + [texts.WATER_BUDGET]
            limits.append(texts.SIZE_CONSISTENCY_PHI if phi else texts.SIZE_CONSISTENCY_BASE)
        else:  # v5 to v7 (organic-vN) and v8 (organic), each built on the one before
            version = {"organic-v5": 5, "organic-v6": 6, "organic-v7": 7}.get(system, 8)
            description = description.replace(" Small enough for CPU MD.", "")
            if version >= 7 and phi:
                description = description.replace(texts.MULLIKEN_TARGETS, texts.DIPOLE_TARGETS)
            description += (
                texts.WATER_DATA + texts.VERTICAL_DATA + (texts.BOUND_DATA if version >= 6 else "")
            )
            description += (
                (texts.V7_DATA if phi else texts.V7_BASELINE_DATA) if version >= 7 else ""
            )
            description += texts.V8_DATA if version == 8 else ""
            description += texts.SIZE_CONSISTENT + " Small enough for CPU MD." if phi else ""
            if version < 8:
                ordinal = {5: "fifth", 6: "sixth", 7: "seventh"}[version]
                description = description.replace(
                    "The default model of phicalc:",
                    f"The {ordinal} default model of phicalc (v{version}):",
                )
                description += {5: texts.V5_NOTE, 6: texts.V6_NOTE, 7: texts.V7_NOTE}[version]
            limits = [texts.DEFAULT_LIMITS[0].split(". Condensed")[0] + "."]
            baseline_md = texts.BASELINE_WATER_MD.replace("for v4", "for v4 to v6").replace(
                "phi-painn-organic v4 runs", "phi-painn-organic v4, v5 and v6 run"
            )
            # (Φ model's limits, baseline's, Φ water, baseline water, Φ budget, baseline budget)
            phi_limits, base_limit, water, base_water, budget, base_budget = {
                5: (
                    texts.V5_LIMITS,
                    texts.BASELINE_V5,
                    texts.V5_WATER,
                    baseline_md,
                    texts.V5_BUDGET,
                    texts.V5_BASELINE_BUDGET,
                ),
                6: (
                    texts.V6_LIMITS,
                    texts.BASELINE_V6,
                    texts.V6_WATER,
                    baseline_md,
                    texts.V5_BUDGET,
                    texts.V5_BASELINE_BUDGET,
                ),
                7: (
                    texts.V7_LIMITS,
                    texts.BASELINE_V7,
                    texts.V7_WATER,
                    texts.V7_WATER,
                    texts.V7_BUDGET,
                    texts.V7_BASELINE_BUDGET,
                ),
                8: (
                    texts.V8_LIMITS,
                    texts.BASELINE_V8,
                    texts.V8_WATER,
                    texts.V8_WATER,
                    texts.V8_BUDGET,
                    texts.V8_BASELINE_BUDGET,
                ),
            }[version]
            limits += phi_limits if phi else [base_limit]
            limits += [water, budget] if phi else [base_water, base_budget]
        evals.append(f"reports/{name}_charged_test.json")
        notes = ["reports/default_model.md"]
    else:
        recipe = f"recipes/shipped/ac_ala3_{backbone}{'_phi' if phi else ''}.yaml"
        description = f"{what} for Ac-Ala3-NHMe (42 atoms): {arch}. {texts.AC_ALA3_DATA}"
        limits = texts.AC_ALA3_LIMITS
    charges_supervised = system in CHARGE_AWARE_ORGANIC
    charges_note = [texts.CHARGES] if phi and not charges_supervised else []
    limits = limits + texts.EXTRA_LIMITS.get(base, []) + charges_note
    args = [
        sys.executable,
        "scripts/write_model_card.py",
        name,
        "--model",
        f"models/{name}/model.pt",
        "--eval",
        *evals,
        "--recipe",
        recipe,
        "--description",
        description,
        "--history",
        texts.HISTORY[name],
        "--limits",
        "\n".join(f"- {line}" for line in limits),
    ]
    if notes:
        args += ["--notes", *notes]
    summary = Path(f"md_runs/shipped/{name}_nve/summary.json")
    if summary.exists():
        args += ["--md", str(summary), "--md-command", texts.MD_COMMAND.format(name=name)]
    return args


for model_name in sys.argv[1:] or list(texts.HISTORY):
    subprocess.run(card(model_name), check=True)
