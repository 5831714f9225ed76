"""The shipped models install: a wheel built from this checkout carries models/ as
phicalc/models/, and an installation without the source checkout lists and loads them;
``phicalc models`` lists them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from phicalc.cli.main import main
from phicalc.serialization import list_models, models_directories

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent.name for p in (ROOT / "models").glob("*/model.pt"))


def test_models_directories_order(monkeypatch, tmp_path):
    monkeypatch.setenv("PHICALC_MODELS", str(tmp_path))
    dirs = models_directories()
    assert dirs[0] == tmp_path
    assert dirs[1].parts[-2:] == ("phicalc", "models")
    assert dirs[-1] == ROOT / "models"


def test_wheel_ships_models(tmp_path):
    """Build a wheel (no isolation: setuptools from this venv), install it with --target into an
    empty directory, and import phicalc from there only: the shipped models are found."""
    build = tmp_path / "src"
    # copy the checkout's tracked build inputs so the build leaves no build/ or egg-info here
    shutil.copytree(
        ROOT,
        build,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "md_runs", "data", "runs", "build", "*.egg-info", "__pycache__"
        ),
    )
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, build],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("phicalc-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", target, wheel], check=True
    )
    script = textwrap.dedent(
        """
        import json, phicalc
        from phicalc.serialization import list_models, load_model
        names = list_models()
        model = load_model("phi-painn-organic")
        print(json.dumps({"file": phicalc.__file__, "names": names, "elements": model.elements}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PHICALC_MODELS")}
    env["PYTHONPATH"] = str(target)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["file"].startswith(str(target))
    assert report["names"] == SHIPPED
    assert report["elements"] == ["H", "C", "N", "O", "F", "Na", "P", "S", "Cl"]
    assert (target / "phicalc" / "models" / "phi-painn-organic" / "model_card.md").is_file()


def test_models_command(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out
    assert "neutral only" in out and "H,C,N,O" in out and "Q,2S+1 in" in out
    # the element column is as wide as its widest entry, so the columns stay aligned
    lines = [line for line in out.splitlines() if line.split()[:1] and line.split()[0] in SHIPPED]
    assert len({line.index(line.split()[2]) for line in lines}) == 1


def test_models_command_json(capsys, monkeypatch, tmp_path, tiny_model_path):
    (tmp_path / "tiny").mkdir()
    shutil.copy(tiny_model_path, tmp_path / "tiny" / "model.pt")
    (tmp_path / "tiny" / "model_card.md").write_text("# tiny\n\nA tiny test model. More text.\n")
    monkeypatch.setenv("PHICALC_MODELS", str(tmp_path))
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["tiny"]["summary"] == "A tiny test model."
    assert rows["tiny"]["cutoff"] == 4.0
    assert rows["tiny"]["charges"] is True and rows["tiny"]["charge_spin"] is False
