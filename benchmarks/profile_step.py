"""Where the time of one force call and one MD step goes (CPU, one torch thread).

Systems: Ac-Ala3-NHMe (42 atoms, open) and periodic water boxes of 64 and 512 molecules (192
and 1,536 atoms; stress is computed there, as the calculator does for 3D cells). Model:
``phi-painn-organic`` in float32 and float64, through :class:`phicalc.PhiCalculator`.

Timers are put in by this script, not kept in the library's code paths: forward hooks on the
model's submodules and wrappers (:class:`phicalc.testing.PhaseTimer`) around the neighbour list, ``atoms_to_graph`` and ``torch.autograd.grad`` add up process CPU
time (``time.process_time``) per phase. The arms (system × dtype) run round-robin, one call and
one MD step each per round, so load from other processes hits all arms alike; every row is the
median over rounds (rows need not add up to the median total exactly). "calculator overhead"
is the whole call minus the timed phases: ASE's state check, the distance and extrapolation
checks, the finite-value check and the numpy conversion. "MD integrator" is one Langevin step
(the ``phicalc md`` default, FixCom) minus its force call.

A second table times MD steps (float64, as ``phicalc md``) with a fresh neighbour list per
step against the Verlet list of ``neighbor_skin=0.5`` Å, interleaved, with its rebuild count.

    PYTHONPATH=$PWD python benchmarks/profile_step.py [--rounds 7] [--md-steps 60]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
import torch
from ase import units
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

import phicalc.calculator as calculator_module
import phicalc.graph.batch as batch_module
from phicalc import PhiCalculator
from phicalc.data.structures import structure_from_string, water_box
from phicalc.testing import PhaseTimer

MODEL = "phi-painn-organic"
SYSTEMS = {"ac-ala3 (42)": None, "water (192)": 64, "water (1536)": 512}
ROWS = [
    "neighbour list (vesin)",
    "graph assembly",
    "edge vectors, species, sums",
    "backbone: embedding + radial",
    "backbone: 3 message+update blocks",
    "Φ: source heads",
    "Φ: Laplacian weights",
    "Φ: Chebyshev filter (K=8)",
    "Φ: gauge, charges, energy",
    "readout MLP",
    "autograd backward (F, σ)",
    "calculator overhead",
]


def system(name: str):
    count = SYSTEMS[name]
    return structure_from_string("ac-ala3") if count is None else water_box(count, seed=0)


def instrument(calc: PhiCalculator, timer_of) -> None:
    """Forward hooks adding each submodule's process-CPU time to ``timer_of()``."""
    model = calc.model
    starts: dict[int, float] = {}

    def hook(module: torch.nn.Module, name: str) -> None:
        def before(mod, args):
            starts[id(mod)] = time.process_time()

        def after(mod, args, output):
            timer_of().times[name] += time.process_time() - starts.pop(id(mod))

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)

    hook(model, "forward")
    hook(model.backbone, "backbone")
    for block in (*model.backbone.messages, *model.backbone.updates):
        hook(block, "blocks")
    hook(model.phi, "phi")
    for head in model.phi.heads:
        hook(head, "heads")
    hook(model.phi.weights, "weights")
    hook(model.phi.filter, "filter")
    hook(model.readout, "readout")


def install_wrappers(timer_of) -> None:
    """Route the neighbour list, graph builder and autograd through ``timer_of()``'s clock."""
    build, cached, to_graph, grad = (
        batch_module.build_neighbor_list,
        batch_module.cached_neighbor_list,
        calculator_module.atoms_to_graph,
        torch.autograd.grad,
    )
    batch_module.build_neighbor_list = lambda *a, **k: timer_of().wrap(build, "nl")(*a, **k)
    batch_module.cached_neighbor_list = lambda *a, **k: timer_of().wrap(cached, "nl")(*a, **k)
    calculator_module.atoms_to_graph = lambda *a, **k: timer_of().wrap(to_graph, "graph")(*a, **k)
    torch.autograd.grad = lambda *a, **k: timer_of().wrap(grad, "backward")(*a, **k)


def rows_of(t: dict[str, float], whole: float) -> dict[str, float]:
    forward = t["forward"] - t["backward"]
    phi_rest = t["phi"] - t["heads"] - t["weights"] - t["filter"]
    timed = t["graph"] + t["forward"]
    return {
        ROWS[0]: t["nl"],
        ROWS[1]: t["graph"] - t["nl"],
        ROWS[2]: forward - t["backbone"] - t["phi"] - t["readout"],
        ROWS[3]: t["backbone"] - t["blocks"],
        ROWS[4]: t["blocks"],
        ROWS[5]: t["heads"],
        ROWS[6]: t["weights"],
        ROWS[7]: t["filter"],
        ROWS[8]: phi_rest,
        ROWS[9]: t["readout"],
        ROWS[10]: t["backward"],
        ROWS[11]: whole - timed,
    }


def profile(rounds: int) -> None:
    arms = {}
    current = {"timer": PhaseTimer()}
    install_wrappers(lambda: current["timer"])
    for name in SYSTEMS:
        for dtype in ("float32", "float64"):
            atoms = system(name)
            atoms.calc = PhiCalculator(MODEL, device="cpu", dtype=dtype)
            instrument(atoms.calc, lambda: current["timer"])
            atoms.set_constraint(FixCom())
            MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
            dyn = Langevin(
                atoms, 0.5 * units.fs, temperature_K=300, friction=0.01 / units.fs, fixcm=False
            )
            dyn.rng = np.random.default_rng(0)
            atoms.get_forces()  # warm-up
            arms[name, dtype] = {"atoms": atoms, "dyn": dyn, "rows": defaultdict(list)}
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        for arm in arms.values():
            atoms = arm["atoms"]
            atoms.positions += rng.normal(scale=1e-3, size=atoms.positions.shape)
            current["timer"] = timer = PhaseTimer()
            start = time.process_time()
            atoms.get_forces()
            whole = time.process_time() - start
            for row, value in rows_of(timer.times, whole).items():
                arm["rows"][row].append(value)
            arm["rows"]["total force call"].append(whole)
            current["timer"] = PhaseTimer()
            start = time.process_time()
            arm["dyn"].run(1)
            step = time.process_time() - start
            arm["rows"]["MD integrator"].append(step - whole)
            arm["rows"]["MD step (Langevin)"].append(step)
    for name in SYSTEMS:
        print(f"\n{name}: one force call and one MD step, ms (share of the force call)")
        header = f"{'phase':36s}" + "".join(f"{d:>22s}" for d in ("float32", "float64"))
        print(header)
        medians = {
            dtype: {row: 1e3 * statistics.median(v) for row, v in arms[name, dtype]["rows"].items()}
            for dtype in ("float32", "float64")
        }
        for row in [*ROWS, "total force call", "MD integrator", "MD step (Langevin)"]:
            cells = ""
            for dtype in ("float32", "float64"):
                ms, total = medians[dtype][row], medians[dtype]["total force call"]
                cells += f"{ms:12.2f} ({100 * ms / total:5.1f}%)"
            print(f"{row:36s}{cells}")


def md_skin(steps: int) -> None:
    """MD steps (float64, Langevin) with a fresh list per step vs a 0.5 Å Verlet skin."""
    print(f"\nMD step, float64, {MODEL}: fresh neighbour list vs neighbor_skin=0.5 Å")
    print(f"(median ms over {steps} steps per arm, arms interleaved step by step)")
    print(f"{'system':16s}{'fresh ms':>10s}{'skin ms':>10s}{'ratio':>8s}{'rebuilds':>10s}")
    for name in ("ac-ala3 (42)", "water (192)"):
        arms = {}
        for skin in (None, 0.5):
            atoms = system(name)
            atoms.calc = PhiCalculator(MODEL, device="cpu", dtype="float64", neighbor_skin=skin)
            atoms.set_constraint(FixCom())
            MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
            dyn = Langevin(
                atoms, 0.5 * units.fs, temperature_K=300, friction=0.01 / units.fs, fixcm=False
            )
            dyn.rng = np.random.default_rng(0)
            dyn.run(1)  # warm-up
            arms[skin] = (atoms, dyn, [])
        for _ in range(steps):
            for _atoms, dyn, times in arms.values():
                start = time.process_time()
                dyn.run(1)
                times.append(time.process_time() - start)
        fresh = 1e3 * statistics.median(arms[None][2])
        skinned = 1e3 * statistics.median(arms[0.5][2])
        builds = arms[0.5][0].calc.neighbor_cache.builds
        print(f"{name:16s}{fresh:10.2f}{skinned:10.2f}{skinned / fresh:8.2f}{builds:>10d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--md-steps", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{MODEL}, CPU, 1 torch thread, process CPU time, median of {args.rounds} rounds")
    profile(args.rounds)
    md_skin(args.md_steps)


if __name__ == "__main__":
    main()
