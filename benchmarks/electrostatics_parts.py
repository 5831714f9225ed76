"""What each electrostatic part of the default model costs on the compiled path, periodic boxes.

Arms, each through its own :class:`~phicalc.compiled.CompiledBackbone` and kept Ewald grids and
PME k-space filters (what ``PhiCalculator(compile=True)`` does for a periodic cell) in a process
that keeps freed memory (what the ``phicalc`` command does): ``painn-organic`` (the baseline),
``phi-painn-organic``, the same making its Ewald grid or PME filter afresh at every call, without
its Coulomb term, and without Coulomb and Φ (charge equilibration and E_Q left); and the
default model computing the stress as well (what a call with a barostat costs).
Energy and forces (what MD asks for; with ``--stress`` the stress too) of one
``Potential.forward`` on a water box (float32, one thread, process CPU ms, median of interleaved
rounds; the graph built once outside the timing). The
differences give the Coulomb sum (Ewald up to 200 atoms, PME beyond), Φ and the rest.

    PYTHONPATH=$PWD python benchmarks/electrostatics_parts.py [--waters 64 512] [--rounds 15] [--stress]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="*", default=[64, 512])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--stress", action="store_true", help="compute the stress as well")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from phicalc import PhiCalculator, keep_freed_memory
    from phicalc.compiled import CompiledBackbone
    from phicalc.data.structures import water_box
    from phicalc.graph.batch import atoms_to_graph
    from phicalc.nn.electrostatics.periodic import PeriodicSums
    from phicalc.testing import without_parts

    keep_freed_memory()
    default = PhiCalculator("phi-painn-organic", device="cpu", dtype="float32").model
    no_coulomb = without_parts(default, coulomb=True)
    no_phi = without_parts(default, coulomb=True, phi=True)
    models = {
        "painn-organic (baseline)": PhiCalculator("painn-organic", dtype="float32").model,
        "phi-painn-organic": default,
        "  with fresh grids, filters": default,
        "  with the stress as well": default,
        "  without Coulomb": no_coulomb,
        "  without Coulomb and Φ": no_phi,
    }
    arms = {
        name: (
            model,
            {
                "backbone_call": CompiledBackbone(model),
                "periodic_sums": PeriodicSums() if "fresh" in name else PeriodicSums.kept(),
                "compute_stress": args.stress or "stress" in name,
            },
        )
        for name, model in models.items()
    }
    what = "energy+forces+stress" if args.stress else "energy+forces"
    print(
        "compiled backbone, kept Ewald grids and PME filters, float32, 1 thread, process CPU ms "
        f"per {what} call (Ewald up to 200 atoms, PME beyond)"
    )
    for waters in args.waters:
        atoms = water_box(waters, seed=0)
        graph = atoms_to_graph(atoms, default.cutoff, dtype=torch.float32)
        for model, compiled in arms.values():  # compilation and warm-up
            model(graph, compute_forces=True, **compiled)
        times = {name: [] for name in arms}
        rounds = args.rounds if len(atoms) < 1000 else max(3, args.rounds // 3)
        for _ in range(rounds):
            for name, (model, compiled) in arms.items():
                start = time.process_time()
                model(graph, compute_forces=True, **compiled)
                times[name].append(time.process_time() - start)
        ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
        base = ms["painn-organic (baseline)"]
        print(f"\n{len(atoms)} atoms (periodic water), median of {rounds} rounds")
        for name, value in ms.items():
            print(f"  {name:28s}{value:9.1f} ms {value / base:6.2f}x")
        full = ms["phi-painn-organic"]
        print(
            f"  Coulomb sum {full - ms['  without Coulomb']:.1f} ms, Φ "
            f"{ms['  without Coulomb'] - ms['  without Coulomb and Φ']:.1f} ms, the rest "
            f"{ms['  without Coulomb and Φ'] - base:.1f} ms of the {full - base:.1f} ms the "
            "electrostatics add"
        )


if __name__ == "__main__":
    main()
