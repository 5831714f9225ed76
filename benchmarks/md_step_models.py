"""The default model's MD step against its own baseline's, side by side, and where it differs.

For one molecule (default Ac-Ala3-NHMe) and the calculator ``phicalc md`` makes (Verlet skin
0.5 Å; ``compile=True``, the replay that ``phicalc md`` uses for CPU runs from 20,000 steps, or
plain calls with ``--plain``): velocity Verlet at 0.5 fs from the same 300 K velocities for
``phi-painn-organic`` and ``painn-organic``, taking turns of 10 steps after an untimed warm-up
(the compilation), process CPU ms per step, one torch thread, freed memory kept. Timers are put
in by this script, not kept in the library's code paths: wrappers
(:class:`phicalc.testing.PhaseTimer`) add up the time of the calculator's parts (the model's pass
through the replay, its molecules, the graph, the checks, the conversion to NumPy); each row is
the median over turns.

    PYTHONPATH=$PWD python benchmarks/md_step_models.py [--molecule ac-ala3] [--turns 60]
        [--plain] [--dtype float32]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
import torch

import phicalc.calculator as calculator_module
import phicalc.graph_replay as replay_module

MODELS = ("phi-painn-organic", "painn-organic")
#: (module or class, function name, row label) of the parts timed.
PARTS = (
    (calculator_module.PhiCalculator, "calculate", "force call"),
    (replay_module.GraphReplay, "__call__", "  replay"),
    (replay_module.GraphReplay, "_forward", "    model pass"),
    (replay_module.GraphReplay, "_with_molecules", "    molecules"),
    (calculator_module, "atoms_to_graph", "  graph (Verlet list)"),
    (calculator_module.PhiCalculator, "check_state", "  state check"),
    (calculator_module, "check_min_distance", "  distance check"),
    (calculator_module, "outputs_to_host", "  outputs to NumPy"),
    (calculator_module.PhiCalculator, "_check_extrapolation", "  extrapolation check"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecule", default="ac-ala3", help="name, SMILES or structure file")
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--plain", action="store_true", help="plain calls instead of compiled")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    from phicalc import PhiCalculator, keep_freed_memory
    from phicalc.md.inputs import load_structure
    from phicalc.testing import PhaseTimer

    keep_freed_memory()
    molecule = load_structure(args.molecule)
    runs = {}
    for name in MODELS:
        atoms = molecule.copy()
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
        atoms.calc = PhiCalculator(
            name, dtype=args.dtype, compile=not args.plain, neighbor_skin=0.5
        )
        runs[name] = VelocityVerlet(atoms, 0.5 * units.fs)
        runs[name].run(20)  # warm-up: compilation, first list
    timer = PhaseTimer()
    for owner, function, label in PARTS:
        setattr(owner, function, timer.wrap(getattr(owner, function), label))
    rows: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in MODELS}
    for _ in range(args.turns):
        for name, dynamics in runs.items():
            timer.times.clear()
            start = time.process_time()
            dynamics.run(10)
            rows[name]["MD step"].append((time.process_time() - start) / 10)
            for label, seconds in timer.times.items():
                rows[name][label].append(seconds / 10)
    path = "plain calls" if args.plain else "compiled replay"
    print(
        f"MD step of {molecule.get_chemical_formula()} ({len(molecule)} atoms), {path}, "
        f"{args.dtype}, 1 thread, process CPU ms per step, median of {args.turns} turns of 10"
    )
    labels = ["MD step"] + [label for _, _, label in PARTS]
    print(f"{'':26s}" + "".join(f"{name:>20s}" for name in MODELS) + f"{'ratio':>8s}")
    for label in labels:
        if not any(rows[name][label] for name in MODELS):
            continue  # a part this path does not run (the replay, in plain calls)
        values = [
            statistics.median(rows[name][label]) if rows[name][label] else 0.0 for name in MODELS
        ]
        ratio = f"{values[0] / values[1]:8.2f}" if values[1] else f"{'':8s}"
        print(f"{label:26s}" + "".join(f"{1e3 * v:20.3f}" for v in values) + ratio)


if __name__ == "__main__":
    main()
