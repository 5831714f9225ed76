"""scripts/compare_scores.py: arms averaged over their runs, as a table and as bars."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "compare_scores.py"


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_scores", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_scores(path: Path, model: str, organic_e: float, charge_r: float | None) -> None:
    """A file as default_model_report.py writes it, with two of its metrics."""
    val = {} if charge_r is None else {"charges_pearson_r": charge_r}
    path.write_text(
        json.dumps({model: {"organic": {"energy_mae_per_atom_meV": organic_e}, "val": val}})
    )


def test_arm_values_collect_each_run(compare: ModuleType, tmp_path: Path) -> None:
    for seed, (e, r) in enumerate([(10.0, 0.9), (14.0, 0.7)]):
        write_scores(tmp_path / f"s{seed}.json", f"seed{seed}", e, r)
    values = compare.arm_values([(tmp_path / "s0.json", "seed0"), (tmp_path / "s1.json", "seed1")])
    assert values[("organic", "energy_mae_per_atom_meV")] == [10.0, 14.0]
    assert values[("val", "charges_pearson_r")] == [0.9, 0.7]
    assert ("val", "dipole_mae_eA") not in values
    # mean ± sample std (ddof 1): 12 ± 2.83; one run alone; none
    assert compare.cell([10.0, 14.0], "{:.2f}") == "12.00 ± 2.83"
    assert compare.cell([10.0], "{:.2f}") == "10.00"
    assert compare.cell(None, "{:.2f}") == "–"


def test_table_and_plot_from_the_command_line(compare: ModuleType, tmp_path: Path) -> None:
    write_scores(tmp_path / "a0.json", "a0", 20.0, None)  # a baseline: no charges
    write_scores(tmp_path / "a1.json", "a1", 22.0, None)
    write_scores(tmp_path / "f0.json", "f0", 12.0, 0.98)
    plot = tmp_path / "arms.png"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--arm",
            f"base={tmp_path / 'a0.json'}:a0,{tmp_path / 'a1.json'}:a1",
            "--arm",
            f"charges={tmp_path / 'f0.json'}:f0",
            "--plot",
            str(plot),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "| | base (2) | charges (1) |"
    assert "| val organic E (meV/atom) | 21.00 ± 1.41 | 12.00 |" in lines
    assert "| val charge r | – | 0.980 |" in lines
    assert plot.stat().st_size > 0


def test_plot_leaves_out_metrics_no_arm_has(compare: ModuleType, tmp_path: Path) -> None:
    write_scores(tmp_path / "f0.json", "f0", 12.0, 0.98)
    arms = {"f": (1, compare.arm_values([(tmp_path / "f0.json", "f0")]))}
    scales = compare.plot_arms(arms, tmp_path / "p.png")
    assert set(scales) == {("organic", "energy_mae_per_atom_meV"), ("val", "charges_pearson_r")}
    empty = {"x": (1, {})}
    with pytest.raises(SystemExit, match="no arm has"):
        compare.plot_arms(empty, tmp_path / "q.png")


def test_log_axis_for_errors_spanning_arms_never_for_correlations(
    compare: ModuleType, tmp_path: Path
) -> None:
    # organic E 0.5 against 40 meV/atom (80x): log; charge r 0.01 against 0.99 (99x): linear
    write_scores(tmp_path / "b.json", "b", 40.0, 0.01)
    write_scores(tmp_path / "f.json", "f", 0.5, 0.99)
    arms = {
        name: (1, compare.arm_values([(tmp_path / f"{name}.json", name)])) for name in ("b", "f")
    }
    scales = compare.plot_arms(arms, tmp_path / "p.png")
    assert scales[("organic", "energy_mae_per_atom_meV")] == "log"
    assert scales[("val", "charges_pearson_r")] == "linear"
    write_scores(tmp_path / "f.json", "f", 30.0, 0.99)  # 40 against 30: linear
    arms["f"] = (1, compare.arm_values([(tmp_path / "f.json", "f")]))
    assert (
        compare.plot_arms(arms, tmp_path / "q.png")[("organic", "energy_mae_per_atom_meV")]
        == "linear"
    )
