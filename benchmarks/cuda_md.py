"""MD on a GPU: replayed CUDA graphs against plain calls, side by side in one process.

For one molecule (default Ac-Ala3-NHMe, 42 atoms) and the default model:

1. Agreement in float64: energy, forces and charges on the CPU, on CUDA with plain calls and on
   CUDA with graph replay (``PhiCalculator(cuda_graphs=...)``), over a short NVE run so the
   neighbour list is rebuilt and the replay reuses its recording.
2. Speed: ms per velocity-Verlet step at 0.5 fs (the calculator as ``phicalc md`` makes it:
   Verlet skin 0.5 Å), in float32 and float64, replay vs plain, with ns/day and the NVE drift of
   the total energy (meV/atom/ps) of each run.
3. A periodic water box (``--box-waters``, plain calls: replay takes open structures only),
   ms per MD step in float32 and float64.

    python benchmarks/cuda_md.py --molecule ac_ala3.xyz [--steps 2000] [--box-waters 1000]
        [--json out.json]

Needs a CUDA device. The molecule is anything ``phicalc md --structure`` takes (a file avoids
RDKit where it is not installed).
"""

from __future__ import annotations

import argparse
import json
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
    dynamics.run(20)  # warm-up: recording, allocator, first list
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


def agreement(atoms, model: str, steps: int) -> dict[str, float]:
    """Largest differences (float64) between CPU, CUDA plain and CUDA replay along one run."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from phicalc import PhiCalculator

    frames = []
    start = atoms.copy()
    start.set_velocities(np.random.default_rng(1).normal(0, 0.01, (len(start), 3)))
    probe = start.copy()
    probe.calc = PhiCalculator(model, device="cpu", dtype="float64", neighbor_skin=0.5)
    dynamics = VelocityVerlet(probe, 0.5 * units.fs)
    for _ in range(steps):
        dynamics.run(1)
        frames.append(probe.positions.copy())
    calcs = {
        "cpu": PhiCalculator(model, device="cpu", dtype="float64", neighbor_skin=0.5),
        "cuda": PhiCalculator(
            model, device="cuda", dtype="float64", neighbor_skin=0.5, cuda_graphs=False
        ),
        "replay": PhiCalculator(
            model, device="cuda", dtype="float64", neighbor_skin=0.5, cuda_graphs=True
        ),
    }
    worst = {"replay_vs_cuda_dE": 0.0, "replay_vs_cuda_dF": 0.0, "replay_vs_cuda_dq": 0.0}
    worst.update({"cuda_vs_cpu_dE": 0.0, "cuda_vs_cpu_dF": 0.0, "replay_vs_cpu_dF": 0.0})
    for positions in frames:
        out = {}
        for name, calc in calcs.items():
            a = start.copy()
            a.positions = positions
            a.calc = calc
            out[name] = (a.get_potential_energy(), a.get_forces(), a.get_charges())
        worst["replay_vs_cuda_dE"] = max(
            worst["replay_vs_cuda_dE"], abs(out["replay"][0] - out["cuda"][0])
        )
        for key, (x, y) in {
            "replay_vs_cuda_dF": (out["replay"][1], out["cuda"][1]),
            "replay_vs_cuda_dq": (out["replay"][2], out["cuda"][2]),
            "cuda_vs_cpu_dF": (out["cuda"][1], out["cpu"][1]),
            "replay_vs_cpu_dF": (out["replay"][1], out["cpu"][1]),
        }.items():
            worst[key] = max(worst[key], float(np.abs(x - y).max()))
        worst["cuda_vs_cpu_dE"] = max(worst["cuda_vs_cpu_dE"], abs(out["cuda"][0] - out["cpu"][0]))
    worst["recordings"] = calcs["replay"].graph_replay.recordings
    worst["list_builds"] = calcs["replay"].neighbor_cache.builds
    worst["frames"] = len(frames)
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecule", default="ac-ala3", help="name, SMILES or structure file")
    parser.add_argument("--model", default="phi-painn-organic")
    parser.add_argument("--steps", type=int, default=2000, help="timed MD steps, replay arms")
    parser.add_argument("--plain-steps", type=int, default=500, help="timed MD steps, plain arms")
    parser.add_argument("--agreement-steps", type=int, default=60)
    parser.add_argument("--box-waters", type=int, default=1000, help="0: no water box")
    parser.add_argument("--box-steps", type=int, default=50)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure", file=sys.stderr)
        return 1

    from phicalc import PhiCalculator
    from phicalc.data.structures import water_box
    from phicalc.md.inputs import load_structure, make_calculator

    molecule = load_structure(args.molecule)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    results: dict[str, object] = {"molecule": molecule.get_chemical_formula(), "model": args.model}

    worst = agreement(molecule, args.model, args.agreement_steps)
    results["agreement_float64"] = worst
    print(
        f"\nfloat64 agreement over {worst['frames']} MD frames of {results['molecule']} "
        f"({worst['list_builds']} list builds, {worst['recordings']} recording(s))"
    )
    for key, value in worst.items():
        if key.startswith(("replay", "cuda")):
            print(f"  {key:<22s} {value:.2e}")

    print(
        f"\nvelocity Verlet, 0.5 fs, {args.steps} (replay) / {args.plain_steps} (plain) steps, "
        f"{len(molecule)} atoms ({args.model})"
    )
    print(f"{'dtype':<8} {'path':<7} {'ms/step':>8} {'ns/day':>8} {'drift meV/atom/ps':>18}")
    speed = {}
    for dtype in ("float32", "float64"):
        for path, graphs in (("plain", False), ("replay", True)):
            calc = PhiCalculator(
                args.model, device="cuda", dtype=dtype, neighbor_skin=0.5, cuda_graphs=graphs
            )  # as phicalc md makes it (make_calculator), replay switched on or off
            row = nve_run(molecule, calc, args.steps if graphs else args.plain_steps)
            speed[f"{dtype}/{path}"] = row
            print(
                f"{dtype:<8} {path:<7} {row['ms_per_step']:8.2f} {row['ns_per_day']:8.1f} "
                f"{row['drift_meV_atom_ps']:18.4f}"
            )
    results["molecule_md"] = speed

    if args.box_waters:
        box = water_box(args.box_waters, seed=0)
        print(f"\nperiodic water box, {len(box)} atoms, plain calls, {args.box_steps} steps")
        rows = {}
        for dtype in ("float32", "float64"):
            row = nve_run(
                box, make_calculator(args.model, device="cuda", dtype=dtype), args.box_steps
            )
            rows[dtype] = row
            print(f"{dtype:<8} {row['ms_per_step']:8.2f} ms/step {row['ns_per_day']:8.3f} ns/day")
        results["water_box_md"] = {"atoms": len(box), **rows}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
