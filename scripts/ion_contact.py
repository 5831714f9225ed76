"""Na⁺ and Cl⁻ at contact: does a model keep them apart?

Two checks, printed as tables:

* ``--scan``: the NaCl pair in vacuum (Q = 0) from 1.3 to 5 Å, energy relative to 5 Å, for each
  ``--model`` and GFN2-xTB (tblite). GFN2-xTB has its minimum near 2.3 Å and a wall inside it;
  a model without short-range repulsion between the ions keeps falling.
* ``--trajectory FILE --frame K``: float64 velocity Verlet at 0.5 fs from frame ``K`` of an MD
  trajectory (positions and momenta), with the first model; the Na–Cl distance (minimum image),
  temperature and total energy every ``--every`` steps, and the closest approach of the ions
  over every step. Total energy flat while the ions fall together means the model's potential,
  not the integration, pulls them there. ``--temperature T --seed S`` draws Maxwell–Boltzmann
  momenta instead (for a frame without momenta, e.g. a held-out cluster of
  ``scripts/nacl_cluster_scan.py``).

    python scripts/ion_contact.py --scan --model phi-painn-organic --model painn-organic
    python scripts/ion_contact.py --model phi-painn-organic \\
        --trajectory md_runs/nacl_water_v6_f32_nve/trajectory.traj --frame 340 --steps 600
    python scripts/ion_contact.py --model phi-painn-organic --trajectory \\
        data/nacl_cluster_scan.extxyz --frame 70 --temperature 300 --seed 0 --steps 2000
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from ase import Atoms, units
from ase.io import read
from ase.md.verlet import VelocityVerlet

from phicalc import PhiCalculator

SCAN_DISTANCES = (1.3, 1.5, 1.7, 1.9, 2.1, 2.36, 2.6, 3.0, 3.5, 4.0, 5.0)


def scan(models: list[str]) -> None:
    """Energy (eV) of NaCl in vacuum against the Na–Cl distance, relative to 5 Å."""
    from tblite.ase import TBLite

    calculators = {name: PhiCalculator(name, device="cpu", dtype="float64") for name in models}
    calculators["GFN2-xTB"] = TBLite(method="GFN2-xTB", verbosity=0)
    energies: dict[str, list[float]] = {name: [] for name in calculators}
    for r in SCAN_DISTANCES:
        pair = Atoms("NaCl", positions=[[0.0, 0.0, 0.0], [r, 0.0, 0.0]])
        pair.info["charge"] = 0
        for name, calc in calculators.items():
            pair.calc = calc
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the extrapolation warning at short range
                energies[name].append(pair.get_potential_energy())
    print("NaCl in vacuum, E(r) - E(5 Å) in eV")
    print(f"{'r (Å)':>6s}" + "".join(f"{name:>24s}" for name in calculators))
    for k, r in enumerate(SCAN_DISTANCES):
        row = "".join(f"{values[k] - values[-1]:24.3f}" for values in energies.values())
        print(f"{r:6.2f}{row}")


def continue_run(
    model: str,
    trajectory: str,
    frame: int,
    steps: int,
    every: int,
    temperature: float | None = None,
    seed: int = 0,
) -> None:
    """Float64 NVE from one frame of ``trajectory``: Na–Cl distance, T and total energy; the
    frame's momenta, or thermal ones at ``temperature`` K drawn with ``seed``."""
    from phicalc.md.drivers import draw_thermal_momenta

    start = read(trajectory, index=frame)
    atoms = start.copy()
    if temperature is None:
        atoms.set_momenta(start.get_momenta())
    else:
        draw_thermal_momenta(atoms, temperature, np.random.default_rng(seed))
    numbers = atoms.numbers
    na, cl = int(np.flatnonzero(numbers == 11)[0]), int(np.flatnonzero(numbers == 17)[0])
    atoms.calc = PhiCalculator(model, device="cpu", dtype="float64", neighbor_skin=0.5)
    dynamics = VelocityVerlet(atoms, 0.5 * units.fs)
    closest = [atoms.get_distance(na, cl, mic=True)]
    dynamics.attach(lambda: closest.append(atoms.get_distance(na, cl, mic=True)), interval=1)
    drawn = "" if temperature is None else f", momenta drawn at {temperature:g} K (seed {seed})"
    print(f"{model}, float64 NVE at 0.5 fs from frame {frame} of {trajectory}{drawn}")
    print(f"{'step':>6s}{'Na-Cl (Å)':>11s}{'T (K)':>8s}{'E_total (eV)':>15s}")
    for step in range(0, steps + 1, every):
        if step:
            dynamics.run(every)
        distance = atoms.get_distance(na, cl, mic=True)
        print(
            f"{step:6d}{distance:11.2f}{atoms.get_temperature():8.0f}"
            f"{atoms.get_total_energy():15.4f}"
        )
    print(f"closest Na-Cl over {steps} steps: {min(closest):.2f} Å")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None, help="repeatable")
    parser.add_argument("--scan", action="store_true")
    parser.add_argument("--trajectory")
    parser.add_argument("--frame", type=int, default=-1)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=60)
    parser.add_argument("--temperature", type=float, help="draw momenta at this T (K)")
    parser.add_argument("--seed", type=int, default=0, help="for --temperature")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = args.model or ["phi-painn-organic"]
    if args.scan:
        scan(models)
    if args.trajectory:
        continue_run(
            models[0],
            args.trajectory,
            args.frame,
            args.steps,
            args.every,
            args.temperature,
            args.seed,
        )


if __name__ == "__main__":
    main()
