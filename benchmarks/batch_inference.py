"""Structures per second: batched inference (PhiCalculator.calculate_batch) against one-by-one
ASE calls, on the CPU (or a GPU with ``--device cuda``).

Workload: 64 rattled copies (σ = 0.05 Å, seeded) of Ac-Ala3-NHMe (42 atoms, from RDKit via
``--molecule``, default "ac-ala3" from RDKit), evaluated with the shipped ``phi-painn-ac-ala3`` model
(energy + forces + Φ charges). Both paths run in the same process, same threads, same dtype; the
batched path is also run with smaller atom budgets to show where the gain comes from (Python and
per-call overhead amortised over a chunk).

    python benchmarks/batch_inference.py [--n 64] [--repeats 3] [--threads 1] [--dtype float32]
        [--device cuda] [--molecule FILE] [--compile] [--chunks 64,24,16,8,4]

On CUDA the one-by-one calls replay a recorded CUDA graph (the calculator's default there); a
third path, one by one without graphs, shows what the replay is worth. On a CPU, ``--compile``
adds the compiled calculator (``PhiCalculator(compile=True)``) both ways: one by one (each call a
replay of the compiled 42-atom graph, as ``phicalc md`` runs) and batched (one compilation with
symbolic sizes for every chunk); each compiled path's first pass, with its compilation, is
printed apart and is not in the table.

Prints a table (wall and process-CPU seconds per pass of all structures, structures/s, speed-ups over
one-by-one; CPU time is the steadier figure on a shared machine) and the largest difference
between the two paths (energy in eV, forces in eV/Å).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="number of structures")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--model", default="phi-painn-ac-ala3")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--molecule", default="ac-ala3", help="name, SMILES or structure file")
    parser.add_argument("--compile", action="store_true", help="add the compiled paths (CPU)")
    parser.add_argument(
        "--chunks", default="64,24,16,8,4", help="structures per batched pass, comma-separated"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from phicalc.calculator import PhiCalculator
    from phicalc.md.inputs import load_structure

    base = load_structure(args.molecule)
    structures = []
    for k in range(args.n):
        atoms = base.copy()
        atoms.rattle(0.05, seed=k)
        structures.append(atoms)
    calc = PhiCalculator(args.model, device=args.device, dtype=args.dtype)

    def one_by_one(calculator=calc) -> list[dict]:
        out = []
        for atoms in structures:
            atoms = atoms.copy()
            atoms.calc = calculator
            atoms.get_forces()
            out.append(dict(calculator.results))
        return out

    n_atoms = len(base)
    paths: list[tuple[str, str, object]] = [("one-by-one (ASE calls)", "-", one_by_one)]
    if calc.graph_replay is not None:
        plain = PhiCalculator(args.model, device=args.device, dtype=args.dtype, cuda_graphs=False)
        paths.append(("one-by-one, no graphs", "-", lambda: one_by_one(plain)))
    chunks = [min(int(c), args.n) for c in args.chunks.split(",")]
    compiled = None
    if args.compile:
        compiled = PhiCalculator(args.model, device=args.device, dtype=args.dtype, compile=True)
        paths.append(("one-by-one, compiled", "-", lambda: one_by_one(compiled)))
    for per_chunk in dict.fromkeys(chunks):
        budget = per_chunk * n_atoms
        for label, batcher in (("", calc), (", compiled", compiled)):
            if batcher is None:
                continue
            paths.append(
                (
                    f"batched, {per_chunk}/chunk{label}",
                    str(budget),
                    lambda b=budget, c=batcher: c.calculate_batch(structures, max_atoms=b),
                )
            )
    # Interleaved rounds (every path once per round) so that load from other processes on a
    # shared machine hits all paths alike; wall and process-CPU time, best round of each kept.
    wall = {name: float("inf") for name, _, _ in paths}
    cpu = dict(wall)
    outputs: dict[str, list[dict]] = {}
    first_pass = {}
    for name, _, fn in paths:  # warm-up; a compiled path compiles here
        w0 = time.perf_counter()
        fn()
        first_pass[name] = time.perf_counter() - w0
    for _ in range(args.repeats):
        for name, _, fn in paths:
            w0, c0 = time.perf_counter(), time.process_time()
            outputs[name] = fn()
            wall[name] = min(wall[name], time.perf_counter() - w0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    ref = outputs[paths[0][0]]
    worst_e = worst_f = 0.0
    for name, _, _ in paths[1:]:
        for a, b in zip(outputs[name], ref):
            worst_e = max(worst_e, abs(a["energy"] - b["energy"]))
            worst_f = max(worst_f, float(np.abs(a["forces"] - b["forces"]).max()))
    single = paths[0][0]

    print(
        f"{args.n} x Ac-Ala3-NHMe ({n_atoms} atoms, rattled 0.05 Å), model {args.model}, "
        f"{args.dtype}, {calc.device}, {args.threads} torch thread(s), torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}; best of {args.repeats}"
    )
    print(
        f"{'path':34s} {'max atoms':>9s} {'wall s':>7s} {'structs/s':>9s} {'speed-up':>8s} "
        f"{'CPU s':>7s} {'CPU speed-up':>12s}"
    )
    for name, budget, _ in paths:
        print(
            f"{name:34s} {budget:>9s} {wall[name]:7.3f} {args.n / wall[name]:9.1f} "
            f"{wall[single] / wall[name]:7.1f}x {cpu[name]:7.3f} {cpu[single] / cpu[name]:11.1f}x"
        )
    for name, seconds in first_pass.items():
        if "compiled" in name:
            print(f"first pass of '{name}' (compiling where it is the first): {seconds:.1f} s")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"1-min load average at the end: {load:.1f} on {os.cpu_count()} logical CPUs")
    print(f"largest |batched - one-by-one|: energy {worst_e:.2e} eV, forces {worst_f:.2e} eV/Å")


if __name__ == "__main__":
    main()
