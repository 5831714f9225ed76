"""Structures per second: batched inference (PhiCalculator.calculate_batch) against one-by-one
ASE calls, on the CPU.

Workload: 64 rattled copies (σ = 0.05 Å, seeded) of Ac-Ala3-NHMe (42 atoms, from RDKit via
``structure_from_string("ac-ala3")``), evaluated with the shipped ``phi-painn-ac-ala3`` model
(energy + forces + Φ charges). Both paths run in the same process, same threads, same dtype; the
batched path is also run with smaller atom budgets to show where the gain comes from (Python and
per-call overhead amortised over a chunk).

    python benchmarks/batch_inference.py [--n 64] [--repeats 3] [--threads 1] [--dtype float32]

Prints a table (s per pass, structures/s, speed-up over one-by-one) and the largest difference
between the two paths (energy in eV, forces in eV/Å).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="number of structures")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--model", default="phi-painn-ac-ala3")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from phicalc.calculator import PhiCalculator
    from phicalc.data.structures import structure_from_string

    base = structure_from_string("ac-ala3", seed=0)
    structures = []
    for k in range(args.n):
        atoms = base.copy()
        atoms.rattle(0.05, seed=k)
        structures.append(atoms)
    calc = PhiCalculator(args.model, device="cpu", dtype=args.dtype)

    def one_by_one() -> list[dict]:
        out = []
        for atoms in structures:
            atoms = atoms.copy()
            atoms.calc = calc
            atoms.get_forces()
            out.append(dict(calc.results))
        return out

    def best(fn) -> tuple[float, list[dict]]:
        fn()  # warm-up
        times, result = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return min(times), result

    t_single, ref = best(one_by_one)
    rows = [("one-by-one (ASE calls)", "-", t_single)]
    n_atoms = len(base)
    worst_e = worst_f = 0.0
    for structures_per_chunk in (args.n, 24, 16, 8, 4):
        budget = structures_per_chunk * n_atoms
        t, got = best(lambda b=budget: calc.calculate_batch(structures, max_atoms=b))
        rows.append((f"batched, {structures_per_chunk}/chunk", str(budget), t))
        for a, b in zip(got, ref):
            worst_e = max(worst_e, abs(a["energy"] - b["energy"]))
            worst_f = max(worst_f, float(np.abs(a["forces"] - b["forces"]).max()))

    print(
        f"{args.n} x Ac-Ala3-NHMe ({n_atoms} atoms, rattled 0.05 Å), model {args.model}, "
        f"{args.dtype}, CPU, {args.threads} torch thread(s), torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}; best of {args.repeats}"
    )
    print(f"{'path':26s} {'max atoms':>9s} {'s/pass':>8s} {'structures/s':>13s} {'speed-up':>9s}")
    for name, budget, t in rows:
        print(f"{name:26s} {budget:>9s} {t:8.3f} {args.n / t:13.1f} {t_single / t:8.1f}x")
    print(f"largest |batched - one-by-one|: energy {worst_e:.2e} eV, forces {worst_f:.2e} eV/Å")


if __name__ == "__main__":
    main()
