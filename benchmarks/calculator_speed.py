"""ms per energy+forces call and peak memory of PhiCalculator against system size.

Systems: Ac-Ala3-NHMe (42 atoms) and periodic water boxes of ~200, ~1,500 and ~12,000 atoms
(the largest is the 1,500-atom box tiled 2×2×2). Variants: PaiNN and SchNet without Φ, with the
spectral-filter Φ path, and with the eigenbasis Φ path (dense O(n³) eigh: molecules and ≤ 1,500
atoms only). Each (system, variant) runs in a fresh process so its peak RSS is its own.

    python benchmarks/calculator_speed.py [--repeats 5] [--threads 2] [--max-atoms 13000]

Prints a table (ms/call, graph-build share, peak RSS over the process baseline) and the Φ
overhead ratios measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

VARIANTS = {
    "painn": ("painn", False),
    "painn+phi(spectral)": ("painn", {"method": "spectral"}),
    "painn+phi(eigenbasis)": ("painn", {"method": "eigenbasis", "num_modes": 8}),
    "schnet": ("schnet", False),
    "schnet+phi(spectral)": ("schnet", {"method": "spectral"}),
}
EIGENBASIS_MAX_ATOMS = 1600


def build_system(name: str):
    from phicalc.data.structures import structure_from_string, water_box

    if name == "ac-ala3":
        return structure_from_string("ac-ala3")
    n_atoms = int(name.split(":")[1])
    if n_atoms <= 1500:
        return water_box(n_atoms // 3, seed=0)
    base = water_box(500, seed=0)  # 1,500 atoms
    factor = round((n_atoms / 1500) ** (1 / 3))
    return base.repeat((factor, factor, factor))


def measure(system: str, variant: str, repeats: int, threads: int, queue) -> None:
    import numpy as np
    import torch

    from phicalc import PhiCalculator, build_model
    from phicalc.graph import atoms_to_graph

    torch.set_num_threads(threads)
    atoms = build_system(system)
    backbone, phi = VARIANTS[variant]
    model = build_model(backbone, phi=phi, elements=["H", "C", "N", "O"], cutoff=5.0, seed=0)
    calc = PhiCalculator(model, device="cpu", dtype="float32")
    atoms.calc = calc
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rng = np.random.default_rng(0)
    atoms.get_forces()  # warm-up
    times, graph_times = [], []
    for _ in range(repeats):
        atoms.positions += rng.normal(scale=1e-3, size=atoms.positions.shape)
        start = time.perf_counter()
        atoms.get_forces()
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        atoms_to_graph(atoms, 5.0, dtype=torch.float32)
        graph_times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put(
        {
            "system": system,
            "n_atoms": len(atoms),
            "variant": variant,
            "ms": 1e3 * float(np.median(times)),
            "graph_ms": 1e3 * float(np.median(graph_times)),
            "peak_mb": (peak - baseline) / 1024.0,
        }
    )


def measure_interleaved(
    system: str, variants: list[str], repeats: int, threads: int, queue
) -> None:
    """ms/call of every variant on one system, calls alternating between variants (same load)."""
    import numpy as np
    import torch

    from phicalc import PhiCalculator, build_model

    torch.set_num_threads(threads)
    atoms = build_system(system)
    calcs = {}
    for variant in variants:
        backbone, phi = VARIANTS[variant]
        model = build_model(backbone, phi=phi, elements=["H", "C", "N", "O"], cutoff=5.0, seed=0)
        calcs[variant] = PhiCalculator(model, device="cpu", dtype="float32")
        calcs[variant].get_forces(atoms)  # warm-up
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(repeats):
        atoms.positions += rng.normal(scale=1e-3, size=atoms.positions.shape)
        for variant in variants:
            start = time.perf_counter()
            calcs[variant].get_forces(atoms)
            times[variant].append(time.perf_counter() - start)
    queue.put({v: 1e3 * float(np.median(t)) for v, t in times.items()})


def run_isolated(system: str, variant, repeats: int, threads: int, target=measure) -> dict | None:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(system, variant, repeats, threads, queue))
    process.start()
    process.join()
    return queue.get() if process.exitcode == 0 and not queue.empty() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-atoms", type=int, default=13000)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument(
        "--interleaved-max-atoms",
        type=int,
        default=1600,
        help="also time all variants alternating in one process up to this size (load-robust ratios)",
    )
    parser.add_argument(
        "--interleaved-only", action="store_true", help="skip the per-variant processes (no memory)"
    )
    args = parser.parse_args()

    systems = [
        s
        for s in ("ac-ala3", "water:201", "water:1500", "water:12000")
        if s == "ac-ala3" or int(s.split(":")[1]) <= args.max_atoms
    ]
    rows = []
    for system in [] if args.interleaved_only else systems:
        for variant in args.variants:
            n_atoms = 42 if system == "ac-ala3" else int(system.split(":")[1])
            if "eigenbasis" in variant and n_atoms > EIGENBASIS_MAX_ATOMS:
                continue
            row = run_isolated(system, variant, args.repeats, args.threads)
            if row is None:
                print(f"{system:12s} {variant:24s} failed")
                continue
            rows.append(row)
            print(
                f"{row['system']:12s} {row['n_atoms']:7d} {variant:24s} {row['ms']:10.1f} ms "
                f"(graph {row['graph_ms']:7.1f} ms) peak +{row['peak_mb']:8.1f} MB",
                flush=True,
            )

    print("\n| system | atoms | variant | ms/call | graph ms | peak RSS (MB) | Φ overhead |")
    print("|---|---|---|---|---|---|---|")
    by_key = {(r["system"], r["variant"]): r for r in rows}
    for r in rows:
        base = by_key.get((r["system"], r["variant"].split("+")[0]))
        overhead = f"{r['ms'] / base['ms'] - 1:+.1%}" if base and base is not r else ""
        print(
            f"| {r['system']} | {r['n_atoms']} | {r['variant']} | {r['ms']:.1f} | "
            f"{r['graph_ms']:.1f} | {r['peak_mb']:.0f} | {overhead} |"
        )
    print(
        "\nInterleaved timing (variants alternate call by call in one process; ms/call, Φ overhead):"
    )
    for system in systems:
        n_atoms = 42 if system == "ac-ala3" else int(system.split(":")[1])
        if n_atoms > args.interleaved_max_atoms:
            continue
        variants = [
            v for v in args.variants if "eigenbasis" not in v or n_atoms <= EIGENBASIS_MAX_ATOMS
        ]
        times = run_isolated(
            system, variants, args.repeats, args.threads, target=measure_interleaved
        )
        if times is None:
            print(f"{system}: failed")
            continue
        cells = []
        for variant in variants:
            base = times.get(variant.split("+")[0])
            ratio = f" ({times[variant] / base - 1:+.1%})" if base and "+" in variant else ""
            cells.append(f"{variant} {times[variant]:.1f}{ratio}")
        print(f"{system:12s} " + "; ".join(cells), flush=True)
    for variant in args.variants:
        small, large = by_key.get(("water:1500", variant)), by_key.get(("water:12000", variant))
        if small and large:
            print(
                f"{variant}: 1,500 → 12,000 atoms (8×): time ×{large['ms'] / small['ms']:.1f}, "
                f"memory ×{large['peak_mb'] / max(small['peak_mb'], 1e-9):.1f}"
            )


if __name__ == "__main__":
    main()
