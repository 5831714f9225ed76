"""Compare models scored by scripts/default_model_report.py: one markdown table, mean ± std over seeds.

    python scripts/compare_scores.py \
        --arm "v4=reports/x/scores_a.json:v4" \
        --arm "per molecule=reports/x/s0.json:seed0,reports/x/s1.json:seed1,reports/x/s2.json:seed2"

Each ``--arm NAME=FILE:MODEL[,FILE:MODEL...]`` names the runs of one arm (a FILE written by
``default_model_report.py --out``, and the model's name in it); metrics are averaged over the
runs, with the sample standard deviation when there are several. Splits and metrics are those
of :data:`ROWS`; a metric a file lacks is shown as –. ``--plot FILE`` also draws the rows of
:data:`PLOT_ROWS` as bars (mean ± std, each run a dot; a logarithmic axis where the arms span more
than 20×; never for a correlation).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: (split, metric key, row title, format) of the table, validation first.
ROWS = (
    ("organic", "energy_mae_per_atom_meV", "val organic E (meV/atom)", "{:.2f}"),
    ("organic", "forces_mae_eV_A", "val organic F (eV/Å)", "{:.4f}"),
    (
        "water clusters, validation split",
        "energy_mae_per_atom_meV",
        "val Cl⁻ water clusters E",
        "{:.1f}",
    ),
    ("water clusters, validation split", "forces_mae_eV_A", "val Cl⁻ water clusters F", "{:.3f}"),
    ("val", "energy_mae_meV_atom", "val charged E (meV/atom)", "{:.1f}"),
    ("val", "forces_mae_eV_A", "val charged F (eV/Å)", "{:.4f}"),
    ("val", "ion/energy_mae_meV_atom", "val ions E (meV/atom)", "{:.1f}"),
    ("val", "neutral/energy_mae_meV_atom", "val F/P/S/Cl neutrals E", "{:.1f}"),
    ("val", "interaction_mae_percent", "val E_int MAE % (6–15 Å)", "{:.1f}"),
    ("val", "interaction_mae_meV", "val E_int MAE (meV)", "{:.1f}"),
    ("val", "fragment_charge_max_dev_e", "val max \\|Σq_ion − Q\\| (e)", "{:.3f}"),
    ("val", "charges_pearson_r", "val charge r", "{:.3f}"),
    ("val", "dipole_mae_eA", "val dipole MAE (e·Å)", "{:.3f}"),
    ("vertical_val", "vertical_n", "val vertical pairs", "{:.0f}"),
    ("vertical_val", "vertical_mae_eV", "val vertical ΔE (eV)", "{:.2f}"),
    ("test", "interaction_mae_percent", "test E_int MAE %", "{:.1f}"),
    ("test", "fragment_charge_max_dev_e", "test max \\|Σq_ion − Q\\| (e)", "{:.3f}"),
    ("test_without_cl", "energy_mae_meV_atom", "test without Cl E (meV/atom)", "{:.1f}"),
    ("test_without_cl", "interaction_mae_percent", "test without Cl E_int %", "{:.1f}"),
    ("vertical_test", "vertical_n", "test vertical pairs", "{:.0f}"),
    ("vertical_test", "vertical_mae_eV", "test vertical ΔE (eV)", "{:.2f}"),
)


#: (split, metric key) of the rows ``--plot`` draws: the issue's targets on validation. Errors may
#: get a logarithmic axis; a correlation (which may be negative) never does.
PLOT_ROWS = (
    ("organic", "energy_mae_per_atom_meV"),
    ("organic", "forces_mae_eV_A"),
    ("val", "ion/energy_mae_meV_atom"),
    ("val", "neutral/energy_mae_meV_atom"),
    ("val", "interaction_mae_percent"),
    ("val", "charges_pearson_r"),
    ("val", "dipole_mae_eA"),
    ("vertical_val", "vertical_mae_eV"),
)


def arm_values(runs: list[tuple[Path, str]]) -> dict[tuple[str, str], list[float]]:
    values: dict[tuple[str, str], list[float]] = {}
    for path, model in runs:
        result = json.loads(path.read_text())[model]
        for split, key, _, _ in ROWS:
            value = result.get(split, {}).get(key)
            if value is not None:
                values.setdefault((split, key), []).append(float(value))
    return values


def cell(values: list[float] | None, fmt: str) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values, ddof=1))}"


def plot_arms(
    arms: dict[str, tuple[int, dict[tuple[str, str], list[float]]]],
    path: Path,
    rows: tuple[tuple[str, str], ...] = PLOT_ROWS,
    title: str | None = None,
) -> dict[tuple[str, str], str]:
    """Bars of ``rows`` per arm (mean ± sample std, runs as dots) into ``path``; returns each
    drawn row's y-axis scale ("linear" or "log"; rows no arm has are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {(split, key): title for split, key, title, _ in ROWS}
    drawn = [row for row in rows if any(values.get(row) for _, values in arms.values())]
    if not drawn:
        raise SystemExit("compare_scores.py: no arm has any of the plotted metrics")
    columns = min(4, len(drawn))
    n_rows = -(-len(drawn) // columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(3.6 * columns, 3.0 * n_rows), squeeze=False)
    names = list(arms)
    scales = {}
    for ax, row in zip(axes.flat, drawn, strict=False):
        for i, name in enumerate(names):
            values = arms[name][1].get(row, [])
            if not values:
                continue
            spread = np.std(values, ddof=1) if len(values) > 1 else 0.0
            ax.bar(i, np.mean(values), yerr=spread, color=f"C{i % 10}", alpha=0.7, capsize=3)
            ax.plot([i] * len(values), values, "k.", markersize=4)
        present = [v for _, values in arms.values() for v in values.get(row, [])]
        if "pearson" not in row[1] and min(present) > 0 and max(present) / min(present) > 20:
            ax.set_yscale("log")
        scales[row] = ax.get_yscale()
        ax.set_title(titles[row].replace("\\|", "|"), fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    for ax in list(axes.flat)[len(drawn) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return scales


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", action="append", required=True, metavar="NAME=FILE:MODEL,...")
    parser.add_argument("--plot", type=Path, help="also draw the issue's targets into this image")
    parser.add_argument("--title", help="the figure's title")
    args = parser.parse_args()
    arms = {}
    for spec in args.arm:
        name, _, runs = spec.partition("=")
        parsed = [(Path(f), m) for f, _, m in (r.rpartition(":") for r in runs.split(","))]
        arms[name] = (len(parsed), arm_values(parsed))
    print("| | " + " | ".join(f"{name} ({n})" for name, (n, _) in arms.items()) + " |")
    print("|---|" + "---|" * len(arms))
    for split, key, title, fmt in ROWS:
        cells = [cell(values.get((split, key)), fmt) for _, values in arms.values()]
        print(f"| {title} | " + " | ".join(cells) + " |")
    if args.plot is not None:
        plot_arms(arms, args.plot, title=args.title)


if __name__ == "__main__":
    main()
