"""Cost of one energy + forces call of Erwin and PaiNN against system size (water clusters).

Each (model, size) case runs in a fresh subprocess so its peak memory is its own: the peak
resident set size is reset (``/proc/self/clear_refs``) after the structure, graph and model are
built, so "peak MiB" is the extra memory of the first forward + backward pass (float32, eval mode).
"cpu ms" is the process CPU time of a call (robust when other jobs share the cores; with one
thread it is the cost of the call), "µs/atom" is cpu ms per atom, "tree ms" the CPU time of
Erwin's ball-tree build alone (part of cpu ms).

Systems are open water clusters (cubic lattice of randomly oriented rigid waters at 1 g/cm³, the
box edge grows with N), so Erwin runs its ball-tree path; periodic cells use the local-graph path
instead (see :mod:`phicalc.nn.backbones.erwin`). Neighbour-list time is reported separately and
not included in "ms/call"; Erwin's tree build is included (it runs inside every call).

Usage::

    python benchmarks/erwin_scaling.py                      # 1e2 … 1e5 atoms, table on stdout
    python benchmarks/erwin_scaling.py --sizes 300 3000 --features 64 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

DEFAULT_SIZES = (100, 300, 1_000, 3_000, 10_000, 30_000, 100_000)
WATER_VOLUME = 29.9  # Å³ per molecule at 1 g/cm³


def water_cluster(n_atoms: int, seed: int = 0):
    """An open cluster of ⌈n_atoms/3⌉ waters on a jittered cubic lattice (3.1 Å spacing)."""
    from ase import Atoms
    from ase.build import molecule
    from scipy.spatial.transform import Rotation

    n_molecules = max(1, round(n_atoms / 3))
    spacing = WATER_VOLUME ** (1.0 / 3.0)
    side = int(np.ceil(n_molecules ** (1.0 / 3.0)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    centres = (grid[:n_molecules] + rng.uniform(-0.1, 0.1, (n_molecules, 3))) * spacing
    template = molecule("H2O").positions
    template = template - template[0]
    rotations = Rotation.random(n_molecules, random_state=seed).as_matrix()  # [n, 3, 3]
    positions = centres[:, None, :] + np.einsum("nab,kb->nka", rotations, template)
    return Atoms("OHH" * n_molecules, positions=positions.reshape(-1, 3))


def _rss_mib(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def run_case(backbone: str, n_atoms: int, features: int, cutoff: float, repeats: int) -> dict:
    """Time one (backbone, size) case in this process; returns a dict of measurements."""
    import torch

    from phicalc.build import build_model
    from phicalc.graph.batch import atoms_to_graph
    from phicalc.nn.backbones.erwin_tree import build_ball_tree

    atoms = water_cluster(n_atoms)
    start = time.perf_counter()
    graph = atoms_to_graph(atoms, cutoff, dtype=torch.float32)
    neighbour_ms = 1e3 * (time.perf_counter() - start)
    if backbone == "erwin":
        hp = {"num_features": features, "num_local_blocks": 2}
    else:
        hp = {"num_features": features, "num_blocks": 3}
    model = build_model(backbone, phi=False, elements=("H", "O"), cutoff=cutoff, seed=0, **hp)
    model = model.float().eval()
    tree_ms = float("nan")
    if backbone == "erwin":
        config = model.backbone.config
        start = time.process_time()
        build_ball_tree(
            graph.positions,
            graph.batch,
            1,
            torch.tensor([True]),
            ball_size=config.ball_size,
            num_levels=config.num_levels,
        )
        tree_ms = 1e3 * (time.process_time() - start)
    before = _rss_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:  # reset the peak RSS (VmHWM)
        handle.write("5")
    start, cpu_start = time.perf_counter(), time.process_time()
    model(graph)  # first call: peak memory (later calls reuse freed pages)
    times, cpu_times = [time.perf_counter() - start], [time.process_time() - cpu_start]
    peak = _rss_mib("VmHWM") - before
    for _ in range(repeats - 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = model(graph)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    assert torch.isfinite(out["forces"]).all()
    return {
        "backbone": backbone,
        "atoms": len(atoms),
        "edges": int(graph.edge_index.shape[1]),
        "ms": 1e3 * float(np.median(times)),
        "cpu_ms": 1e3 * float(np.median(cpu_times)),
        "tree_ms": tree_ms,
        "neighbour_ms": neighbour_ms,
        "peak_mib": peak,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--backbones", nargs="+", default=["erwin", "painn"])
    parser.add_argument("--features", type=int, default=32, help="width F of both models")
    parser.add_argument("--cutoff", type=float, default=4.0, help="Å")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--max-memory-gib",
        type=float,
        default=14.0,
        help="skip a case whose peak, extrapolated from the previous size, would exceed this",
    )
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--case", nargs=2, metavar=("BACKBONE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        import torch

        torch.set_num_threads(args.threads)
        n = int(args.case[1])
        repeats = 5 if n <= 3_000 else (3 if n <= 10_000 else 2)
        print(json.dumps(run_case(args.case[0], n, args.features, args.cutoff, repeats)))
        return
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    kib_per_atom: dict[str, float] = {}
    for n in args.sizes:
        for backbone in args.backbones:
            predicted = kib_per_atom.get(backbone, 0.0) * n / 2**20  # GiB
            if predicted > args.max_memory_gib:
                print(f"{backbone:>8} {n:>7} skipped: predicted peak {predicted:.1f} GiB")
                continue
            command = [sys.executable, __file__, "--case", backbone, str(n)]
            command += ["--features", str(args.features), "--cutoff", str(args.cutoff)]
            command += ["--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"{backbone} N={n} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            kib_per_atom[backbone] = 1024 * rows[-1]["peak_mib"] / rows[-1]["atoms"]
            print_row(rows[-1], rows)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


def print_row(row: dict, rows: list[dict]) -> None:
    if len(rows) == 1:
        print(
            f"{'backbone':>8} {'atoms':>7} {'edges':>9} {'ms/call':>9} {'cpu ms':>9} {'µs/atom':>8} "
            f"{'tree ms':>8} {'nlist ms':>8} {'peak MiB':>9} {'KiB/atom':>8}"
        )
    print(
        f"{row['backbone']:>8} {row['atoms']:>7} {row['edges']:>9} {row['ms']:>9.1f} "
        f"{row['cpu_ms']:>9.1f} {1e3 * row['cpu_ms'] / row['atoms']:>8.1f} {row['tree_ms']:>8.1f} "
        f"{row['neighbour_ms']:>8.1f} {row['peak_mib']:>9.1f} "
        f"{1024 * row['peak_mib'] / row['atoms']:>8.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
