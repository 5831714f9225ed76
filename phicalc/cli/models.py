"""``phicalc models``: the shipped models this installation finds, one line each.

For every name in :func:`phicalc.serialization.list_models` it prints the elements, the cutoff
(Å), how the model treats the total charge Q and spin multiplicity 2S+1 (``Q,2S+1 in``: they are
inputs of the model; ``neutral only``: the model refuses Q ≠ 0 or 2S+1 ≠ 1), whether it predicts
per-atom charges, and the first sentence of its model card. The model files are read without
building the networks, so listing is quick.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the shipped models",
        description="List the shipped models found in $PHICALC_MODELS and the installed package: "
        "elements, cutoff, charge handling and the model card's summary.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    parser.set_defaults(run=run)


def card_summary(card: Path, width: int = 100) -> str:
    """First sentence of a model card's first prose paragraph (after the ``#`` title), cut to
    ``width`` characters; "" when there is no card."""
    if not card.is_file():
        return ""
    for block in card.read_text(encoding="utf-8").split("\n\n"):
        text = " ".join(block.split())
        if text and not text.startswith(("#", "-", "|", "`")):
            sentence = text.split(". ")[0].rstrip(".") + "."
            return sentence if len(sentence) <= width else sentence[: width - 1] + "…"
    return ""


def describe(name: str) -> dict[str, Any]:
    """Elements, cutoff (Å), charge handling and card summary of one shipped model, from its
    file's config (the weights are not built)."""
    from phicalc.serialization import read_model_file, resolve_model_path

    path = resolve_model_path(name)
    config = read_model_file(path)["config"]
    charge_spin = bool(config.get("charge_spin", False))
    has_charges = config.get("phi") is not None or bool(config.get("charge_equilibration", False))
    return {
        "name": name,
        "path": str(path),
        "backbone": config["backbone"],
        "elements": list(config["elements"]),
        "cutoff": float(config.get("cutoff", 5.0)),
        "charge_spin": charge_spin,
        "charges": has_charges,
        "coulomb": config.get("coulomb") is not None,
        "summary": card_summary(path.parent / "model_card.md"),
    }


def run(args: argparse.Namespace) -> int:
    from phicalc.serialization import list_models, models_directories

    rows = [describe(name) for name in list_models()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        searched = ", ".join(str(d) for d in models_directories())
        print(f"no shipped models found (searched {searched})")
        return 0
    width = max(len("elements"), *(len(",".join(row["elements"])) for row in rows))
    header = (
        f"{'name':22s} {'elements':{width}s} {'cutoff':>6s}  {'total charge':14s} {'charges':7s}"
        "  summary"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        charge = "Q,2S+1 in" if row["charge_spin"] else "neutral only"
        charges = "yes" if row["charges"] else "no"
        if row["coulomb"]:
            charges += "+C"
        print(
            f"{row['name']:22s} {','.join(row['elements']):{width}s} {row['cutoff']:6.2f}  "
            f"{charge:14s} {charges:7s}  {row['summary']}"
        )
    return 0
