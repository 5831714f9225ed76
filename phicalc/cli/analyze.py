"""``phicalc analyze RUN_DIR``: RMSD/RMSF or RDF, energy drift, temperature autocorrelation and
charge statistics of a ``phicalc md`` output directory, written to ``analysis.json`` and figures.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="analyse a phicalc md output directory",
        description="RMSD/RMSF (molecules) or RDFs (periodic systems), energy drift, temperature "
        "autocorrelation and charge statistics of a phicalc md output directory, written to "
        "analysis.json and figures in it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("run_dir", help="output directory of phicalc md")
    parser.add_argument("--rdf-bins", type=int, default=100, help="RDF bins (periodic systems)")
    parser.add_argument(
        "--rdf-rmax", type=float, default=None, help="RDF range in Å (default: half the cell)"
    )
    parser.add_argument(
        "--rdf-pairs",
        nargs="+",
        default=None,
        metavar="A-B",
        help="element pairs of the RDFs, e.g. Na-O Cl-H (default: up to six pairs, most "
        "common elements first)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    import logging

    if not getattr(args, "verbose", False):  # MDAnalysis logs every analysis stage at INFO
        logging.getLogger("MDAnalysis").setLevel(logging.ERROR)

    from phicalc.errors import ConfigError
    from phicalc.md import analyze

    if args.rdf_bins < 1:
        raise ConfigError(f"--rdf-bins must be >= 1, got {args.rdf_bins}")
    if args.rdf_rmax is not None and args.rdf_rmax <= 0:
        raise ConfigError(f"--rdf-rmax must be > 0, got {args.rdf_rmax}")
    pairs = None
    if args.rdf_pairs is not None:
        pairs = [tuple(pair.split("-")) for pair in args.rdf_pairs]
        bad = [text for text, pair in zip(args.rdf_pairs, pairs) if len(pair) != 2 or "" in pair]
        if bad:
            raise ConfigError(f"--rdf-pairs takes element pairs like Na-O, not {bad}")
    result = analyze(
        args.run_dir,
        rdf_bins=args.rdf_bins,
        rdf_r_max=args.rdf_rmax,
        rdf_pairs=pairs,
        plots=not args.no_plots,
    )
    brief: dict[str, Any] = {"n_frames": result["n_frames"], "periodic": result["periodic"]}
    if "energy" in result:
        brief["energy_drift_meV_per_atom_per_ps"] = result["energy"]["drift_meV_per_atom_per_ps"]
    if "temperature" in result:
        brief["temperature_mean_K"] = result["temperature"]["mean_K"]
        brief["temperature_correlation_time_fs"] = result["temperature"]["correlation_time_fs"]
    if "rmsd" in result:
        brief["rmsd_final_A"] = result["rmsd"]["all_final_A"]
    if "rdf" in result:
        brief["rdf_pairs"] = list(result["rdf"])
    if result["charges"]:
        brief["mean_charge_e"] = {
            element: stats["mean_e"] for element, stats in result["charges"]["per_element"].items()
        }
    brief["figures"] = result.get("figures", [])
    print(json.dumps(brief, indent=1))
    return 0
