"""MD step cost of one molecule: plain calls, CUDA-graph replay and torch.compile, side by side.

For one molecule (default Ac-Ala3-NHMe, 42 atoms) and the default model, on ``--device``:

1. Agreement in float64 along a short NVE run (the neighbour list is rebuilt on the way):
   energy, forces and charges of each arm against plain calls, and on CUDA against the CPU.
2. Speed: ms per velocity-Verlet step at 0.5 fs with the calculator ``phicalc md`` makes
   (Verlet skin 0.5 Å), in float32 and float64, for each arm: ``plain`` (no replay), ``graphs``
   (CUDA only: ``PhiCalculator(cuda_graphs=True)``, the default there), ``compiled`` (CPU only:
   ``compile=True``, i.e. ``phicalc md --compile``); with ns/day and the NVE drift of the total
   energy (meV/atom/ps) of each run. Compilation happens in the untimed warm-up.
3. A periodic water box (``--box-waters``: default 1,000 on CUDA, 64 on a CPU), ms per MD step
   in float32 and float64 for each arm (the replay takes open structures only: on CUDA the box
   runs plain calls under either arm; on a CPU ``compiled`` is the compiled backbone).

    python benchmarks/md_step_speed.py [--device cpu|cuda] [--molecule ac_ala3.xyz]
        [--steps 2000] [--plain-steps 500] [--box-waters N] [--json out.json]
        [--keep-freed-memory]

The molecule is anything ``phicalc md --structure`` takes (a file avoids RDKit where it is not
installed).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch


def nve_run(atoms, calc, steps: int, seed: int = 0) -> dict[str, float]:
    """``steps`` velocity-Verlet steps at 0.5 fs from 300 K; ms/step, ns/day, drift."""
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    atoms = atoms.copy()
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
    atoms.calc = calc
    dynamics = VelocityVerlet(atoms, 0.5 * units.fs)
    dynamics.run(20)  # warm-up: recording, compilation, allocator, first list
    energies = []
    if calc.device.type == "cuda":
        torch.cuda.synchronize(calc.device)
    start = time.perf_counter()
    for _ in range(steps // 10):
        dynamics.run(10)
        energies.append(atoms.get_total_energy())
    seconds = time.perf_counter() - start
    ms = 1e3 * seconds / steps
    times_ps = 0.005 * np.arange(1, len(energies) + 1)
    drift = np.polyfit(times_ps, np.array(energies) / len(atoms), 1)[0] * 1e3
    return {"ms_per_step": ms, "ns_per_day": 86400e3 / ms * 0.5e-6, "drift_meV_atom_ps": drift}


ARMS = {  # name: PhiCalculator options
    "plain": {"cuda_graphs": False, "compile": False},
    "graphs": {"cuda_graphs": True, "compile": False},
    "compiled": {"cuda_graphs": False, "compile": True},
}


def arms_for(device: str) -> list[str]:
    """The arms that exist on ``device``: CUDA graphs only on CUDA, compile only on a CPU
    (refused on CUDA, where it gave wrong charges: reports/gpu_md.md)."""
    return ["plain", "graphs"] if device == "cuda" else ["plain", "compiled"]


def make(model: str, device: str, dtype: str, arm: str):
    """The calculator ``phicalc md`` makes (Verlet skin 0.5 Å), with the arm's options."""
    from phicalc import PhiCalculator

    return PhiCalculator(model, device=device, dtype=dtype, neighbor_skin=0.5, **ARMS[arm])


def agreement(atoms, model: str, device: str, steps: int) -> dict[str, float]:
    """Largest float64 differences of each arm from plain calls (and on CUDA from the CPU)
    along one short NVE run."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    start = atoms.copy()
    start.set_velocities(np.random.default_rng(1).normal(0, 0.01, (len(start), 3)))
    probe = start.copy()
    probe.calc = make(model, "cpu", "float64", "plain")
    dynamics = VelocityVerlet(probe, 0.5 * units.fs)
    frames = []
    for _ in range(steps):
        dynamics.run(1)
        frames.append(probe.positions.copy())
    calcs = {arm: make(model, device, "float64", arm) for arm in arms_for(device)}
    if device == "cuda":
        calcs["cpu"] = make(model, "cpu", "float64", "plain")
    worst: dict[str, float] = {}
    failed: dict[str, str] = {}
    for positions in frames:
        out = {}
        for name, calc in list(calcs.items()):
            a = start.copy()
            a.positions = positions
            a.calc = calc
            try:
                out[name] = (a.get_potential_energy(), a.get_forces(), a.get_charges())
            except Exception as error:  # report the arm as failed, measure the others
                failed[name] = f"{type(error).__name__}: {error}"
                print(f"arm {name} failed: {failed[name]}", file=sys.stderr)
                del calcs[name]
        for name in calcs:
            if name == "plain":
                continue
            for k, quantity in enumerate(("dE", "dF", "dq")):
                key = f"{name}_vs_plain_{quantity}"
                diff = float(np.abs(np.asarray(out[name][k]) - out["plain"][k]).max())
                worst[key] = max(worst.get(key, 0.0), diff)
    replayed = calcs.get("compiled") or calcs.get("graphs") or calcs["plain"]
    worst.update(
        recordings=replayed.graph_replay.recordings if replayed.graph_replay else 0,
        list_builds=replayed.neighbor_cache.builds,
        frames=len(frames),
        failed=failed,
    )
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cpu | cuda")
    parser.add_argument("--molecule", default="ac-ala3", help="name, SMILES or structure file")
    parser.add_argument("--model", default="phi-painn-organic")
    parser.add_argument("--steps", type=int, default=2000, help="timed MD steps, fast arms")
    parser.add_argument("--plain-steps", type=int, default=500, help="timed MD steps, plain arm")
    parser.add_argument("--agreement-steps", type=int, default=60)
    parser.add_argument(
        "--box-waters", type=int, default=None, help="default 1000 (CUDA), 64 (CPU); 0: none"
    )
    parser.add_argument("--box-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="CPU torch threads")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="phicalc.keep_freed_memory() first, as the phicalc command does",
    )
    args = parser.parse_args(argv)
    for name in ("steps", "plain_steps", "box_steps"):  # the drift fits one energy per 10 steps
        if getattr(args, name) < 20:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 20 (the drift needs two "
                f"energies, one every 10 steps), got {getattr(args, name)}"
            )
    if args.keep_freed_memory:
        from phicalc import keep_freed_memory

        print(f"keep_freed_memory: {keep_freed_memory()}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)

    from phicalc.data.structures import water_box
    from phicalc.md.inputs import load_structure

    molecule = load_structure(args.molecule)
    where = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    print(
        f"device: {args.device} ({where or platform.machine()}), torch {torch.__version__}, "
        f"{args.threads} CPU thread(s)"
    )
    results: dict[str, object] = {
        "molecule": molecule.get_chemical_formula(),
        "model": args.model,
        "device": args.device,
    }
    worst = agreement(molecule, args.model, args.device, args.agreement_steps)
    results["agreement_float64"] = worst
    print(
        f"\nfloat64 agreement over {worst['frames']} MD frames of {results['molecule']} "
        f"({worst['list_builds']} list builds, {worst['recordings']} recording(s))"
    )
    for key, value in worst.items():
        if "_vs_" in key:
            print(f"  {key:<26s} {value:.2e}")
    for arm, error in worst["failed"].items():
        print(f"  {arm} failed: {error}")

    print(
        f"\nvelocity Verlet, 0.5 fs, {args.steps} (fast arms) / {args.plain_steps} (plain) steps,"
        f" {len(molecule)} atoms ({args.model})"
    )
    print(f"{'dtype':<8} {'arm':<9} {'ms/step':>8} {'ns/day':>8} {'drift meV/atom/ps':>18}")
    speed = {}
    for dtype in ("float32", "float64"):
        for arm in arms_for(args.device):
            calc = make(args.model, args.device, dtype, arm)
            steps = args.plain_steps if arm == "plain" else args.steps
            try:
                row = nve_run(molecule, calc, steps)
            except Exception as error:  # report the arm as failed, measure the others
                print(f"{dtype:<8} {arm:<9} failed: {type(error).__name__}: {error}")
                continue
            speed[f"{dtype}/{arm}"] = row
            print(
                f"{dtype:<8} {arm:<9} {row['ms_per_step']:8.2f} {row['ns_per_day']:8.1f} "
                f"{row['drift_meV_atom_ps']:18.4f}"
            )
    results["molecule_md"] = speed

    waters = args.box_waters
    if waters is None:
        waters = 1000 if args.device == "cuda" else 64
    if waters:
        box = water_box(waters, seed=0)
        print(f"\nperiodic water box, {len(box)} atoms, {args.box_steps} steps")
        rows = {}
        for dtype in ("float32", "float64"):
            for arm in arms_for(args.device):
                row = nve_run(box, make(args.model, args.device, dtype, arm), args.box_steps)
                rows[f"{dtype}/{arm}"] = row
                print(
                    f"{dtype:<8} {arm:<9} {row['ms_per_step']:8.2f} ms/step "
                    f"{row['ns_per_day']:8.3f} ns/day"
                )
        results["water_box_md"] = {"atoms": len(box), **rows}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
