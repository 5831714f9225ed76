"""Every shipped model on CUDA against the CPU: agreement and ms per energy+forces call.

Agreement (float64 on both devices): |ΔE| (eV), max |ΔF| (eV/Å), max |Δq| (e) on a molecule,
and max |Δσ| (eV/Å³) on a periodic 64-water box. Speed (float32, median of ``--repeats`` calls
after a warm-up, positions rattled between calls so nothing is cached): the molecule and a
periodic water box of ``--box-waters`` molecules, on the CPU (``--threads``) and on the GPU.

    python benchmarks/cuda_inference.py [--molecule data/ac_ala3_500K_test.extxyz]
        [--models phi-painn-organic ...] [--box-waters 3333] [--json out.json]

Needs a CUDA device; prints two tables. The molecule is anything ``phicalc md --structure``
takes; it defaults to ``ac-ala3`` (RDKit), and a file (its last frame) avoids RDKit where it is
not installed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch


def _evaluate(atoms, calc, *, stress: bool) -> dict[str, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = calc
    out = {
        "energy": np.array(atoms.get_potential_energy()),
        "forces": atoms.get_forces(),
        # models without Φ learn no charges: NaN marks the column as not applicable
        "charges": atoms.get_charges() if calc.model.has_phi else np.full(len(atoms), np.nan),
    }
    if stress:
        out["stress"] = atoms.get_stress()
    return out


def agreement(name: str, molecule, box) -> dict[str, float]:
    """Largest CPU–CUDA differences of one model in float64."""
    from phicalc import PhiCalculator

    rows: dict[str, float] = {}
    results = {
        device: (
            _evaluate(molecule, PhiCalculator(name, device=device, dtype="float64"), stress=False),
            _evaluate(box, PhiCalculator(name, device=device, dtype="float64"), stress=True),
        )
        for device in ("cpu", "cuda")
    }
    (mol_cpu, box_cpu), (mol_gpu, box_gpu) = results["cpu"], results["cuda"]
    rows["dE_eV"] = float(abs(mol_cpu["energy"] - mol_gpu["energy"]))
    rows["dF_eV_A"] = float(np.abs(mol_cpu["forces"] - mol_gpu["forces"]).max())
    rows["dq_e"] = float(np.abs(mol_cpu["charges"] - mol_gpu["charges"]).max())
    rows["dE_box_eV"] = float(abs(box_cpu["energy"] - box_gpu["energy"]))
    rows["dF_box_eV_A"] = float(np.abs(box_cpu["forces"] - box_gpu["forces"]).max())
    rows["dstress_eV_A3"] = float(np.abs(box_cpu["stress"] - box_gpu["stress"]).max())
    return rows


def ms_per_call(name: str, atoms, device: str, repeats: int) -> float:
    """Median wall time of one energy+forces call, float32."""
    from phicalc import PhiCalculator

    atoms = atoms.copy()
    atoms.calc = PhiCalculator(name, device=device, dtype="float32")
    rng = np.random.default_rng(0)
    reference = atoms.positions.copy()
    atoms.get_forces()  # warm-up
    times = []
    for _ in range(repeats):
        atoms.positions = reference + rng.normal(scale=0.01, size=reference.shape)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        atoms.get_forces()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecule", default="ac-ala3", help="name, SMILES or structure file")
    parser.add_argument("--models", nargs="+", default=None, help="default: every shipped one")
    parser.add_argument("--speed-models", nargs="+", default=None, help="default: --models")
    parser.add_argument("--box-waters", type=int, default=3333, help="waters in the speed box")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU torch threads")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("cuda_inference: no CUDA device", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    from phicalc import list_models
    from phicalc.data.structures import structure_from_string, water_box

    models = args.models or list_models()
    molecule, small_box = structure_from_string(args.molecule), water_box(64, seed=0)
    print(
        f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    print(f"\nCPU vs CUDA, float64 ({len(molecule)}-atom molecule; 192-atom periodic water box)")
    header = (
        f"{'model':24s} {'|ΔE| eV':>9s} {'max|ΔF|':>9s} {'max|Δq|':>9s} {'box |ΔE|':>9s} "
        f"{'box|ΔF|':>9s} {'max|Δσ|':>9s}"
    )
    print(header)
    results: dict[str, object] = {"device": torch.cuda.get_device_name(), "agreement": {}}
    for name in models:
        rows = agreement(name, molecule, small_box)
        results["agreement"][name] = rows
        print(f"{name:24s} " + " ".join(f"{v:9.1e}" for v in rows.values()), flush=True)

    big_box = water_box(args.box_waters, seed=0)
    print(f"\nms per energy+forces call, float32, median of {args.repeats}")
    print(f"{'model':24s} {'atoms':>7s} {'CPU ms':>9s} {'CUDA ms':>9s} {'CPU/CUDA':>9s}")
    results["speed"] = []
    for name in args.speed_models or models:
        for atoms in (molecule, big_box):
            cpu = ms_per_call(name, atoms, "cpu", args.repeats)
            gpu = ms_per_call(name, atoms, "cuda", args.repeats)
            results["speed"].append(
                {"model": name, "atoms": len(atoms), "cpu_ms": cpu, "cuda_ms": gpu}
            )
            print(f"{name:24s} {len(atoms):7d} {cpu:9.1f} {gpu:9.1f} {cpu / gpu:9.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
