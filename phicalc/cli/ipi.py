"""``phicalc ipi``: serve a phicalc model to an i-PI server (see :mod:`phicalc.engines.ipi`).

    i-pi input.xml &                       # the server: PIMD, thermostats, outputs
    phicalc ipi --model phi-painn-organic --structure h2o.xyz --address unix:phicalc

Start one client per process you want evaluating beads; i-PI shares the beads between them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ipi",
        help="serve a model to an i-PI server (path-integral MD and more)",
        description="Connect to an i-PI server and answer its force requests with a phicalc "
        "model: energy, forces, virial, and charges/potentials as JSON extras.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="shipped model name or model file")
    parser.add_argument(
        "--structure",
        required=True,
        help="structure with the server's atoms in the same order (symbols, periodicity; an "
        "xyz/extxyz file, a name or SMILES as phicalc md takes)",
    )
    parser.add_argument(
        "--address", required=True, help="unix:NAME (i-PI's /tmp/ipi_NAME) or HOST:PORT"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--charge", type=float, default=None, help="total charge Q (e)")
    parser.add_argument("--spin", type=int, default=None, help="spin multiplicity 2S+1")
    parser.add_argument(
        "--connect-timeout", type=float, default=60.0, help="seconds to wait for the server"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from phicalc.calculator import PhiCalculator
    from phicalc.data.structures import structure_from_string
    from phicalc.engines.ipi import Address, IPIClient

    try:
        address = Address.parse(args.address)
    except ValueError as error:
        from phicalc.errors import ConfigError

        raise ConfigError(str(error)) from error
    atoms = structure_from_string(args.structure)
    if args.charge is not None:
        atoms.info["charge"] = args.charge
    if args.spin is not None:
        atoms.info["spin"] = args.spin
    calc = PhiCalculator(args.model, device=args.device, dtype=args.dtype)
    try:
        n = IPIClient(calc, atoms, address).serve(connect_timeout=args.connect_timeout)
    except ConnectionError as error:
        print(f"phicalc ipi: error: {error}", file=sys.stderr)
        return 1
    print(f"phicalc ipi: {n} evaluations served")
    return 0
