"""Anchors: phicalc's cost next to MACE (MACE-OFF23-small's size) and GFN2-xTB, CPU, 1 thread.

Part 1, per call (energy + forces; + stress for the periodic water boxes, for every model that
can, unless ``--no-stress``: what MD without a barostat asks for), float32 for the neural
models, in one run with the arms interleaved round-robin and the
median process CPU time (``time.process_time``) per arm, at 42 (Ac-Ala3-NHMe), 192 and 1,536
atoms (water boxes):

* ``phi-painn-organic`` and ``painn-organic`` through :class:`phicalc.PhiCalculator`, plain
  and ``compiled``: the calculator ``phicalc md`` makes (``compile=True``, Verlet skin 0.5 Å;
  the compiled replay for the open molecule, the compiled backbone for the boxes; compiled
  before the timed calls);
* MACE with MACE-OFF23-small's architecture and random weights (mace-torch ``ScaleShiftMACE``:
  hidden irreps 96x0e, max_L 0, spherical harmonics to l = 3, r_max 4.5 Å, 8 Bessel functions,
  polynomial cutoff p = 5, correlation order 3, 2 interactions, residual interaction blocks,
  readout MLP 16x0e, 10 elements H C N O F P S Cl Br I, as in Kovács et al., MACE-OFF23,
  arXiv:2312.15211, Table 1 "small"); its neighbour list (vesin, the same builder) is inside the
  timed call. Timings of random weights equal those of trained ones (same operations);
* GFN2-xTB via tblite's ASE calculator (float64 SCF, the only precision it has), at 42 and 192
  atoms only unless ``--gfn2-max-atoms`` says more.

Part 2, ``phi-painn-organic`` from 10³ atoms up (periodic water boxes; the 1,536-atom box tiled
2³, 3³, 4³), plain or with ``--compile`` the compiled backbone (compiled on a smaller box first,
outside the timing and the memory peak): the median ms of ``--scaling-calls`` force calls (what
MD asks for: energy and forces, without the stress since 2026-12-01) (default 3;
single calls of a 12,288-atom box varied by up to 1.6x) after a warm-up call, µs per atom and
peak memory, each size in a fresh process, memory as the peak resident set (VmHWM, reset just
before the calls) over the RSS after loading the model and structure. A size is skipped when
the previous one's per-atom time or memory, scaled linearly, predicts it would overrun
``--budget-s`` or ``--max-rss-gb``. ``--edge-chunk`` is the calculator's option: "auto"
(default: messages summed in runs of receivers above 524,288 edges, about 10⁴ atoms), "none"
or a number of edges per run for every size.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/anchors.py [--rounds 5] [--no-stress]
        [--models-only]
        [--anchor-sizes 42 192 1536] [--sizes N ...] [--compile] [--keep-freed-memory]
        (--sizes alone: part 1 only)

Needs ``pip install phicalc[bench]`` (mace-torch) and tblite.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tblite's OpenMP: one thread, like torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

from phicalc.config import parse_edge_chunk  # noqa: E402

SIZES = {42: None, 192: 64, 1536: 512}
MODELS = ("phi-painn-organic", "painn-organic")  # the default model and its own baseline
MACE_OFF_ELEMENTS = [1, 6, 7, 8, 9, 15, 16, 17, 35, 53]


def structure(n_atoms: int):
    from phicalc.data.structures import structure_from_string, water_box

    if n_atoms == 42:
        return structure_from_string("ac-ala3")
    if n_atoms in SIZES:
        return water_box(SIZES[n_atoms], seed=0)
    factor = round((n_atoms / 1536) ** (1 / 3))
    if factor >= 2 and 1536 * factor**3 == n_atoms:
        return water_box(512, seed=0).repeat((factor, factor, factor))
    return water_box(n_atoms // 3, seed=0)


def mace_off_small():
    """ScaleShiftMACE with MACE-OFF23-small's hyperparameters, random weights, float32."""
    import mace  # first: it lets e3nn torch.load its own constants (weights_only off)
    from e3nn import o3
    from mace.modules import ScaleShiftMACE
    from mace.modules.blocks import RealAgnosticResidualInteractionBlock

    del mace

    torch.manual_seed(0)
    model = ScaleShiftMACE(
        r_max=4.5,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=3,
        interaction_cls=RealAgnosticResidualInteractionBlock,
        interaction_cls_first=RealAgnosticResidualInteractionBlock,
        num_interactions=2,
        num_elements=len(MACE_OFF_ELEMENTS),
        hidden_irreps=o3.Irreps("96x0e"),
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.zeros(len(MACE_OFF_ELEMENTS)),
        avg_num_neighbors=20.0,
        atomic_numbers=MACE_OFF_ELEMENTS,
        correlation=3,
        gate=torch.nn.functional.silu,
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )
    return model.float().eval()


class MaceCall:
    """Energy and forces (and, with ``stress``, the stress of 3D cells) of ``atoms`` from a MACE
    model."""

    def __init__(self, model, atoms, stress: bool = True) -> None:
        self.model = model
        self.atoms = atoms
        index = {z: k for k, z in enumerate(MACE_OFF_ELEMENTS)}
        species = torch.tensor([index[int(z)] for z in atoms.numbers])
        self.node_attrs = torch.nn.functional.one_hot(species, len(MACE_OFF_ELEMENTS)).float()
        self.stress = stress and bool(atoms.pbc.all())

    def __call__(self) -> float:
        from phicalc.graph.neighbors import build_neighbor_list

        atoms = self.atoms
        positions = torch.tensor(atoms.positions, dtype=torch.float32)
        cell = torch.tensor(atoms.cell.array, dtype=torch.float32)
        pbc = torch.tensor(atoms.pbc)
        edge_index, unit_shifts = build_neighbor_list(positions, cell, pbc, 4.5)
        unit = unit_shifts.float()
        data = {
            "positions": positions,
            "node_attrs": self.node_attrs,
            "edge_index": edge_index,
            "shifts": unit @ cell,
            "unit_shifts": unit,
            "cell": cell.reshape(1, 3, 3),
            "batch": torch.zeros(len(atoms), dtype=torch.int64),
            "ptr": torch.tensor([0, len(atoms)]),
        }
        out = self.model(data, compute_force=True, compute_stress=self.stress)
        out["forces"].detach().numpy()
        return float(out["energy"][0].detach())


def arms_for(n_atoms: int, gfn2_max: int, stress: bool, anchors: bool = True) -> dict:
    """Callables (one energy + forces call each) of every arm at ``n_atoms``."""
    from phicalc import PhiCalculator

    arms = {}
    for name in MODELS:
        atoms = structure(n_atoms)
        atoms.calc = PhiCalculator(name, device="cpu", dtype="float32")
        arms[name] = atoms
    for name in MODELS:  # what `phicalc md` runs: compiled, Verlet list
        atoms = structure(n_atoms)
        atoms.calc = PhiCalculator(
            name, device="cpu", dtype="float32", compile=True, neighbor_skin=0.5
        )
        atoms.get_forces()  # compilation (about a minute) before the timed calls
        arms[f"{name} compiled"] = atoms
    if not anchors:
        return arms
    arms["MACE-OFF23-small size"] = MaceCall(mace_off_small(), structure(n_atoms), stress)
    if n_atoms <= gfn2_max:
        from tblite.ase import TBLite

        atoms = structure(n_atoms)
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        arms["GFN2-xTB (tblite)"] = atoms
    return arms


def call(arm, rng, stress: bool) -> float:
    """Process CPU seconds of one energy + forces call after a small random displacement."""
    from phicalc import PhiCalculator

    atoms = arm.atoms if isinstance(arm, MaceCall) else arm
    atoms.positions += rng.normal(scale=1e-3, size=atoms.positions.shape)
    start = time.process_time()
    if isinstance(arm, MaceCall):
        arm()
    else:
        if stress and atoms.pbc.all() and isinstance(atoms.calc, PhiCalculator):
            atoms.get_stress()  # phicalc computes stress when asked: one pass fills all three
        arm.get_potential_energy()
        arm.get_forces()
    return time.process_time() - start


def anchors(
    rounds: int, gfn2_max: int, sizes: list[int], stress: bool, with_anchors: bool = True
) -> None:
    what = "stress too for the periodic boxes" if stress else "no stress"
    print(f"Part 1: energy + forces per call ({what}), process CPU ms,")
    print(f"median of {rounds} interleaved rounds, 1 thread; neural models float32, GFN2 float64")
    print(f"{'atoms':>6s} {'arm':28s}{'ms':>10s}{'µs/atom':>9s}")
    summary = []
    for n_atoms in sizes:
        arms = arms_for(n_atoms, gfn2_max, stress, with_anchors)
        rng = np.random.default_rng(0)
        for arm in arms.values():
            call(arm, rng, stress)  # warm-up
        times = {name: [] for name in arms}
        for _ in range(rounds):
            for name, arm in arms.items():
                times[name].append(call(arm, rng, stress))
        ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
        for name, value in ms.items():
            print(f"{n_atoms:6d} {name:28s}{value:10.1f}{1e3 * value / n_atoms:9.1f}")
        summary.append((n_atoms, ms))
    print("\nratios (time of phicalc / time of the anchor; < 1: phicalc is faster); / own")
    print("baseline: phi-painn-organic over painn-organic on the same path (plain or compiled)")
    print(f"{'atoms':>6s} {'model':28s}{'/ MACE':>9s}{'/ GFN2':>9s}{'/ own':>8s}")
    for n_atoms, ms in summary:
        for path in ("", " compiled"):
            for name in MODELS:
                arm = name + path
                mace = ms.get("MACE-OFF23-small size")
                mace_text = f"{ms[arm] / mace:9.2f}" if mace else f"{'—':>9s}"
                gfn2 = ms.get("GFN2-xTB (tblite)")
                gfn2_text = f"{ms[arm] / gfn2:9.4f}" if gfn2 else f"{'—':>9s}"
                own = ms[arm] / ms[MODELS[1] + path] if name == MODELS[0] else None
                own_text = f"{own:8.2f}" if own is not None else f"{'':8s}"
                print(f"{n_atoms:6d} {arm:28s}{mace_text}{gfn2_text}{own_text}")


def reset_peak_rss() -> int:
    """Reset the process's high-water mark (Linux ``/proc/self/clear_refs``) and return the
    current RSS in kB, the baseline the peak is measured from."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return peak_rss_kb()


def peak_rss_kb() -> int:
    """Peak resident memory (VmHWM) of this process since the last reset, kB; falls back on
    ``ru_maxrss`` where ``/proc`` lacks it."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_size(
    n_atoms: int, compiled: bool, keep: bool, calls: int, edge_chunk: int | str | None, queue
) -> None:
    """One fresh process: median ms of ``calls`` calls after a warm-up call (the first touch of
    a large structure's memory costs up to as much again), peak RSS of them all; ``compiled``:
    through the compiled backbone (or the compiled runs of a chunked pass), compiled on the
    192-atom box beforehand; ``keep``: :func:`phicalc.keep_freed_memory` first; ``edge_chunk``:
    the calculator's option (messages summed in runs of receivers)."""
    torch.set_num_threads(1)
    if keep:
        from phicalc import keep_freed_memory

        keep_freed_memory()
    from phicalc import PhiCalculator

    calc = PhiCalculator(
        "phi-painn-organic",
        device="cpu",
        dtype="float32",
        compile=compiled,
        edge_chunk=edge_chunk,
    )
    if compiled:
        small = structure(192)
        small.calc = calc
        small.get_forces()
    atoms = structure(n_atoms)
    atoms.calc = calc
    baseline = reset_peak_rss()
    atoms.get_forces()
    times = []
    for _ in range(calls):
        atoms.positions += 1e-3
        start = time.process_time()
        atoms.get_forces()
        times.append(time.process_time() - start)
    seconds = statistics.median(times)
    peak = peak_rss_kb()
    from phicalc.graph import atoms_to_graph

    edges = atoms_to_graph(atoms, atoms.calc.model.cutoff).edge_index.shape[1]
    queue.put({"ms": 1e3 * seconds, "peak_mb": (peak - baseline) / 1024, "edges": edges})


def scaling(
    sizes: list[int],
    budget_s: float,
    max_rss_gb: float,
    compiled: bool,
    keep: bool,
    calls: int,
    edge_chunk: int | str | None = "auto",
) -> None:
    path = "compile=True" if compiled else "plain calls"
    print(f"\nPart 2: phi-painn-organic, {path}, edge_chunk={edge_chunk!r}, float32, 1 thread,")
    print("water boxes, one process per size")
    print(
        f"{'atoms':>7s}{'edges':>10s}{'ms/call':>11s}{'µs/atom':>9s}{'peak MB':>9s}{'kB/atom':>9s}"
    )
    context = mp.get_context("spawn")
    spent, last = 0.0, None
    for n_atoms in sizes:
        if last is not None:
            predicted_s = (1 + calls) * last["ms"] / 1e3 / last["atoms"] * n_atoms
            predicted_gb = last["peak_mb"] / 1024 / last["atoms"] * n_atoms
            if spent + predicted_s > budget_s or predicted_gb > max_rss_gb:
                print(
                    f"{n_atoms:7d}  skipped: predicted {predicted_s:.0f} s and "
                    f"{predicted_gb:.1f} GB (budget {budget_s:.0f} s left {budget_s - spent:.0f} "
                    f"s, {max_rss_gb:g} GB)"
                )
                continue
        queue = context.Queue()
        process = context.Process(
            target=measure_size, args=(n_atoms, compiled, keep, calls, edge_chunk, queue)
        )
        start = time.perf_counter()
        process.start()
        result = queue.get()
        process.join()
        spent += time.perf_counter() - start
        result["atoms"] = n_atoms
        last = result
        print(
            f"{n_atoms:7d}{result['edges']:10d}{result['ms']:11.1f}"
            f"{1e3 * result['ms'] / n_atoms:9.1f}{result['peak_mb']:9.1f}"
            f"{1024 * result['peak_mb'] / n_atoms:9.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gfn2-max-atoms", type=int, default=192)
    parser.add_argument("--sizes", type=int, nargs="*", default=[999, 3000, 12288, 41472, 98304])
    parser.add_argument("--budget-s", type=float, default=120.0, help="wall time for part 2")
    parser.add_argument("--max-rss-gb", type=float, default=8.0)
    parser.add_argument("--skip-anchors", action="store_true")
    parser.add_argument(
        "--no-stress", action="store_true", help="part 1: energy + forces alone for the boxes too"
    )
    parser.add_argument(
        "--models-only",
        action="store_true",
        help="part 1: the phicalc arms alone (the default model against its own baseline)",
    )
    parser.add_argument("--compile", action="store_true", help="part 2 through compile=True")
    parser.add_argument("--scaling-calls", type=int, default=3, help="timed calls per size")
    parser.add_argument(
        "--edge-chunk",
        default="auto",
        help='part 2: PhiCalculator(edge_chunk=): "auto" (default), "none" or a number of edges',
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="phicalc.keep_freed_memory() first, as the phicalc command does (every arm gains)",
    )
    parser.add_argument(
        "--anchor-sizes", type=int, nargs="*", default=list(SIZES), choices=list(SIZES)
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.keep_freed_memory:
        from phicalc import keep_freed_memory

        print(f"keep_freed_memory: {keep_freed_memory()}")
    if not args.skip_anchors:
        anchors(
            args.rounds,
            args.gfn2_max_atoms,
            args.anchor_sizes,
            not args.no_stress,
            not args.models_only,
        )
    scaling(
        args.sizes,
        args.budget_s,
        args.max_rss_gb,
        args.compile,
        args.keep_freed_memory,
        args.scaling_calls,
        parse_edge_chunk(args.edge_chunk),
    )


if __name__ == "__main__":
    main()
