"""Before/after of a code change: force calls of two source trees, side by side, interleaved.

Each tree (a directory holding a ``phicalc`` package, e.g. this checkout and a ``git archive``
of an earlier commit) gets one worker process per (system, dtype) with ``PYTHONPATH`` pointing
at it. The workers answer one ``phi-painn-organic`` energy + forces call (PhiCalculator, CPU,
one torch thread) at a time, round-robin across trees, so load from other processes hits both
alike; the table gives the median process CPU ms per call of each tree, their ratio and the
largest force difference between the trees (0 where the change is bit-identical).

With ``--md`` each worker instead runs the MD of ``phicalc md`` on Ac-Ala3-NHMe (or, with
``--sizes 192``, a periodic water box of 64 molecules: its compiled backbone): the calculator
it makes (``neighbor_skin=0.5`` Å, ``compile=True``), velocity Verlet at 0.5 fs from the same
300 K velocities, 10 steps per turn after an untimed warm-up (compilation); the table gives ms
per step and the largest force difference at the end of the run (both trees follow the same
trajectory, so 0 where the change is bit-identical).

With ``--after-keeps-freed-memory`` the "after" workers call :func:`phicalc.keep_freed_memory`
first (give the same tree twice to measure that alone); with ``--keep-freed-memory`` both do.

    git archive <commit> | tar -x -C /tmp/base
    PYTHONPATH=$PWD python benchmarks/ab_compare.py /tmp/base . [--rounds 15] [--md]
        [--after-keeps-freed-memory | --keep-freed-memory]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

import numpy as np

WORKER = r"""
import sys, time, numpy as np, torch
torch.set_num_threads(1)
import os
if os.environ.get("AB_KEEP_FREED_MEMORY"):
    from phicalc import keep_freed_memory
    keep_freed_memory()
from phicalc import PhiCalculator
from phicalc.data.structures import structure_from_string, water_box
n, dtype = int(sys.argv[1]), sys.argv[2]
atoms = structure_from_string("ac-ala3") if n == 42 else water_box(n // 3, seed=0)
atoms.calc = PhiCalculator("phi-painn-organic", device="cpu", dtype=dtype)
rng = np.random.default_rng(0)
reference = atoms.positions.copy()
for line in sys.stdin:
    atoms.positions = reference + rng.normal(scale=1e-3, size=reference.shape)
    start = time.process_time()
    forces = atoms.get_forces()
    seconds = time.process_time() - start
    np.save(sys.argv[3], forces)
    print(seconds, flush=True)
"""

MD_WORKER = r"""
import sys, time, numpy as np, torch
torch.set_num_threads(1)
import os
if os.environ.get("AB_KEEP_FREED_MEMORY"):
    from phicalc import keep_freed_memory
    keep_freed_memory()
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from phicalc import PhiCalculator
from phicalc.data.structures import structure_from_string, water_box
n, dtype = int(sys.argv[1]), sys.argv[2]
atoms = structure_from_string("ac-ala3") if n == 42 else water_box(n // 3, seed=0)
MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
atoms.calc = PhiCalculator(
    "phi-painn-organic", device="cpu", dtype=dtype, neighbor_skin=0.5, compile=True
)
dynamics = VelocityVerlet(atoms, 0.5 * units.fs)
dynamics.run(20)
for line in sys.stdin:
    start = time.process_time()
    dynamics.run(10)
    seconds = (time.process_time() - start) / 10
    np.save(sys.argv[3], atoms.get_forces())
    print(seconds, flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sizes", type=int, nargs="*", help="default 42 192 1536; --md: 42")
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    parser.add_argument("--md", action="store_true", help="ms per compiled MD step")
    parser.add_argument(
        "--after-keeps-freed-memory",
        action="store_true",
        help="the after workers call phicalc.keep_freed_memory() first (as the command does)",
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="both trees' workers call phicalc.keep_freed_memory() first",
    )
    args = parser.parse_args()
    worker = MD_WORKER if args.md else WORKER
    if args.sizes is None:
        args.sizes = [42] if args.md else [42, 192, 1536]
    trees = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    what = "compiled MD step (velocity Verlet)" if args.md else "force call"
    print(f"phi-painn-organic {what}, process CPU ms, median of {args.rounds} rounds")
    print(
        f"{'atoms':>6s} {'dtype':8s}{'before':>10s}{'after':>10s}{'after/before':>14s}{'max |ΔF|':>11s}"
    )
    for n in args.sizes:
        rounds = args.rounds if n < 1000 else max(3, args.rounds // 3)
        for dtype in args.dtypes:
            workers, times = {}, {name: [] for name in trees}
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": tree, "OMP_NUM_THREADS": "1"}
                if args.keep_freed_memory or (name == "after" and args.after_keeps_freed_memory):
                    env["AB_KEEP_FREED_MEMORY"] = "1"
                out = f"/tmp/ab_{name}_{os.getpid()}.npy"
                workers[name] = (
                    subprocess.Popen(
                        [sys.executable, "-c", worker, str(n), dtype, out],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                        env=env,
                        cwd=tree,
                    ),
                    out,
                )
            for step in range(rounds + 1):  # round 0 is a warm-up
                for name, (process, _) in workers.items():
                    process.stdin.write("go\n")
                    process.stdin.flush()
                    seconds = float(process.stdout.readline())
                    if step:
                        times[name].append(seconds)
            diff = float(np.abs(np.load(workers["before"][1]) - np.load(workers["after"][1])).max())
            for process, out in workers.values():
                process.stdin.close()
                process.wait()
                os.remove(out)
            before, after = (1e3 * statistics.median(times[k]) for k in ("before", "after"))
            print(f"{n:6d} {dtype:8s}{before:10.2f}{after:10.2f}{after / before:14.3f}{diff:11.2e}")


if __name__ == "__main__":
    main()
