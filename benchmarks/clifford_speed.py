"""CliffordNet against PaiNN at equal parameter count: ms per energy + forces call, peak memory.

PaiNN's width F is chosen so that its backbone has as many parameters as the CliffordNet
backbone (default config unless ``--channels``/``--blocks`` say otherwise); both use 3 blocks,
8 Bessel functions and the same cutoff, no Φ-Module, float32, eval mode, and the graph is built
before timing (neighbour-list time excluded). Each (model, system) case runs in a fresh process:

- timing: both models in one process, called alternately (so both see the same load from other
  jobs); "cpu ms" is the smallest process CPU time of a call with ``--threads`` intra-op threads
  (1 by default: the cost of the call even when other jobs share the cores), "wall ms" the
  median wall time, "µs/atom" cpu ms per atom;
- memory: one fresh process per model; "peak MiB" is the extra resident memory of the first
  call on the system (after a call on CH4 for lazy initialisation, the peak RSS is reset with
  ``/proc/self/clear_refs``; later calls reuse pages the allocator kept, so their peak would
  read too low).

Systems: ethanol, Ac-Ala3-NHMe (42 atoms) and periodic water boxes at 1 g/cm³.

``--nve`` instead runs a short NVE test of each untrained, seeded model (with the default
Φ-Module): ethanol from 300 K Maxwell–Boltzmann velocities, float64, velocity Verlet at 0.5 fs
for 2 ps; the drift is the slope of a linear fit of the total energy per atom (meV/atom/ps).

Usage::

    python benchmarks/clifford_speed.py                       # speed/memory table
    python benchmarks/clifford_speed.py --waters 64 216 --repeats 3
    python benchmarks/clifford_speed.py --nve [--steps 4000] [--box 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

ELEMENTS = ("H", "C", "N", "O")
DEFAULT_WATERS = (64, 216, 512, 1000)  # 192 … 3000 atoms


def backbone_parameters(backbone: str, cutoff: float, **hp) -> int:
    from phicalc.build import build_model

    model = build_model(backbone, phi=False, elements=ELEMENTS, cutoff=cutoff, seed=0, **hp)
    return sum(p.numel() for p in model.backbone.parameters())


def model_options(channels: int, blocks: int, cutoff: float) -> dict[str, dict]:
    """Clifford hyperparameters and the PaiNN width with the closest backbone parameter count."""
    clifford = {"num_channels": channels, "num_blocks": blocks, "num_radial": 8}
    target = backbone_parameters("clifford", cutoff, **clifford)
    width = min(
        range(4, 257),
        key=lambda f: abs(
            backbone_parameters("painn", cutoff, num_features=f, num_blocks=blocks, num_radial=8)
            - target
        ),
    )
    painn = {"num_features": width, "num_blocks": blocks, "num_radial": 8}
    return {"clifford": clifford, "painn": painn}


def build_system(name: str):
    from phicalc.data.structures import structure_from_string

    return structure_from_string(name)


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _prepare(backbone: str, hp: dict, system: str, cutoff: float):
    import torch

    from phicalc.build import build_model
    from phicalc.graph.batch import atoms_to_graph

    atoms = build_system(system)
    graph = atoms_to_graph(atoms, cutoff, dtype=torch.float32)
    model = build_model(backbone, phi=False, elements=ELEMENTS, cutoff=cutoff, seed=0, **hp)
    return atoms, graph, model.float().eval()


def memory_case(backbone: str, hp: dict, system: str, cutoff: float, threads: int) -> dict:
    """Extra peak RSS of the first energy + forces call of one model (fresh process)."""
    import torch

    torch.set_num_threads(threads)
    from ase.build import molecule

    from phicalc.graph.batch import atoms_to_graph

    atoms, graph, model = _prepare(backbone, hp, system, cutoff)
    model(atoms_to_graph(molecule("CH4"), cutoff, dtype=torch.float32))  # lazy initialisation
    before = _status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:  # reset the peak RSS (VmHWM)
        handle.write("5")
    out = model(graph)  # the first call on it: later calls reuse pages the allocator kept
    assert torch.isfinite(out["forces"]).all()
    return {
        "atoms": len(atoms),
        "edges": int(graph.edge_index.shape[1]),
        "parameters": sum(p.numel() for p in model.backbone.parameters()),
        "peak_mib": _status_mib("VmHWM") - before,
    }


def timing_case(options: dict, system: str, cutoff: float, repeats: int, threads: int) -> dict:
    """CPU and wall time per call of both models, interleaved call by call in one process so
    that both see the same load from other jobs."""
    import torch

    torch.set_num_threads(threads)
    models = {name: _prepare(name, hp, system, cutoff) for name, hp in options.items()}
    times: dict[str, dict[str, list[float]]] = {name: {"cpu": [], "wall": []} for name in models}
    for _, graph, model in models.values():
        model(graph)  # warm-up
    for _ in range(repeats):
        for name, (_, graph, model) in models.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            model(graph)
            times[name]["wall"].append(1e3 * (time.perf_counter() - start))
            times[name]["cpu"].append(1e3 * (time.process_time() - cpu_start))
    return {
        name: {"cpu_ms": float(np.min(t["cpu"])), "wall_ms": float(np.median(t["wall"]))}
        for name, t in times.items()
    }


def nve_drift(
    backbone: str, hp: dict, cutoff: float, steps: int, box: float | None = None, seed: int = 0
) -> dict:
    """Energy drift of NVE dynamics of ethanol with an untrained seeded model (float64).

    An untrained model does not bind the molecule, so free ethanol comes apart within a few
    hundred fs and its atoms leave each other's cutoff; with ``box`` (Å) the molecule sits in a
    periodic cubic cell, so every atom keeps interacting (with images) for the whole run.
    """
    import torch
    from ase import units
    from ase.build import molecule
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
    from ase.md.verlet import VelocityVerlet

    from phicalc.build import build_model
    from phicalc.calculator import PhiCalculator

    torch.set_num_threads(1)
    model = build_model(backbone, phi=True, elements=ELEMENTS, cutoff=cutoff, seed=seed, **hp)
    atoms = molecule("CH3CH2OH")
    if box is not None:
        atoms.set_cell([box, box, box])
        atoms.set_pbc(True)
        atoms.center()
    atoms.calc = PhiCalculator(model, device="cpu", dtype="float64", min_distance=None)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300.0, rng=np.random.default_rng(seed))
    Stationary(atoms)
    ZeroRotation(atoms)
    timestep = 0.5 * units.fs
    dynamics = VelocityVerlet(atoms, timestep=timestep)
    times, energies = [], []

    def record() -> None:
        times.append(dynamics.get_time() / (1000.0 * units.fs))  # ps
        energies.append(atoms.get_total_energy() / len(atoms))  # eV/atom

    dynamics.attach(record, interval=10)
    start = time.perf_counter()
    record()
    dynamics.run(steps)
    elapsed = time.perf_counter() - start
    t, e = np.asarray(times), np.asarray(energies)
    slope = np.polyfit(t, e, 1)[0]
    distances = atoms.get_all_distances(mic=box is not None)
    return {
        "backbone": backbone,
        "steps": steps,
        "ps": float(t[-1]),
        "drift_mev_atom_ps": 1e3 * float(slope),
        "max_dev_mev_atom": 1e3 * float(np.abs(e - e[0]).max()),
        "std_mev_atom": 1e3 * float(e.std()),
        "max_force": float(np.abs(atoms.get_forces()).max()),
        "max_distance": float(distances.max()),
        "ms_per_step": 1e3 * elapsed / steps,
    }


def _in_subprocess(payload: dict) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--case", json.dumps(payload)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", nargs="*", default=["ethanol", "ac-ala3"])
    parser.add_argument("--waters", type=int, nargs="*", default=list(DEFAULT_WATERS))
    parser.add_argument("--channels", type=int, default=16, help="CliffordNet channels C")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--cutoff", type=float, default=5.0, help="Å")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--nve", action="store_true", help="run the NVE drift test instead")
    parser.add_argument("--steps", type=int, default=4000, help="NVE steps of 0.5 fs")
    parser.add_argument("--box", type=float, help="NVE in a periodic cubic cell of this edge, Å")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        payload = json.loads(args.case)
        kind = payload.pop("kind")
        cases = {"nve": nve_drift, "memory": memory_case, "timing": timing_case}
        result = cases[kind](**payload)
        print(json.dumps(result))
        return

    options = model_options(args.channels, args.blocks, args.cutoff)
    print(f"CliffordNet {options['clifford']} vs PaiNN {options['painn']}, cutoff {args.cutoff} Å")
    if args.nve:
        print(
            f"\nNVE: ethanol{f' in a periodic {args.box} Å box' if args.box else ''}, untrained "
            f"seeded models with Φ, float64, VelocityVerlet 0.5 fs, {args.steps} steps, 300 K"
        )
        header = (
            f"{'model':<10}{'ps':>6}{'drift meV/atom/ps':>19}{'max |ΔE| meV/atom':>19}"
            f"{'std meV/atom':>14}{'max |F| eV/Å':>14}{'max r_ij Å':>12}{'ms/step':>9}"
        )
        print(header)
        for backbone in ("clifford", "painn"):
            row = _in_subprocess(
                {
                    "kind": "nve",
                    "backbone": backbone,
                    "hp": options[backbone],
                    "cutoff": args.cutoff,
                    "steps": args.steps,
                    "box": args.box,
                }
            )
            print(
                f"{backbone:<10}{row['ps']:>6.2f}{row['drift_mev_atom_ps']:>19.2e}{row['max_dev_mev_atom']:>19.2e}"
                f"{row['std_mev_atom']:>14.2e}{row['max_force']:>14.3f}{row['max_distance']:>12.2f}"
                f"{row['ms_per_step']:>9.1f}"
            )
        return

    systems = list(args.molecules) + [f"water-box:{n}" for n in args.waters]
    print(
        f"float32, eval, energy + forces, {args.threads} thread(s); cpu ms = min of "
        f"{args.repeats}, wall ms = median, both models interleaved; peak = first call\n"
    )
    print(
        f"{'system':<16}{'atoms':>6}{'edges':>8}{'model':>10}{'params':>8}"
        f"{'cpu ms':>10}{'wall ms':>10}{'µs/atom':>9}{'peak MiB':>10}"
    )
    ratios = []
    for system in systems:
        timing = _in_subprocess(
            {
                "kind": "timing",
                "options": options,
                "system": system,
                "cutoff": args.cutoff,
                "repeats": args.repeats,
                "threads": args.threads,
            }
        )
        rows = {}
        for backbone in ("painn", "clifford"):
            row = _in_subprocess(
                {
                    "kind": "memory",
                    "backbone": backbone,
                    "hp": options[backbone],
                    "system": system,
                    "cutoff": args.cutoff,
                    "threads": args.threads,
                }
            )
            row.update(timing[backbone])
            rows[backbone] = row
            print(
                f"{system:<16}{row['atoms']:>6}{row['edges']:>8}{backbone:>10}{row['parameters']:>8}"
                f"{row['cpu_ms']:>10.1f}{row['wall_ms']:>10.1f}"
                f"{1e3 * row['cpu_ms'] / row['atoms']:>9.1f}{row['peak_mib']:>10.1f}",
                flush=True,
            )
        ratios.append(
            (
                system,
                rows["clifford"]["cpu_ms"] / rows["painn"]["cpu_ms"],
                rows["clifford"]["peak_mib"] / max(rows["painn"]["peak_mib"], 1e-9),
            )
        )
    print("\nCliffordNet / PaiNN:")
    for system, time_ratio, memory_ratio in ratios:
        print(f"  {system:<16} cpu time ×{time_ratio:.2f}   peak memory ×{memory_ratio:.2f}")


if __name__ == "__main__":
    main()
