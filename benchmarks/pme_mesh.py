"""PME mesh against accuracy and cost: the 1,536-atom water box, water-like charges, float64.

Each arm sets the smearing floor and torch-pme's mesh_spacing per smearing
(:data:`phicalc.nn.electrostatics.periodic.PME_MIN_SMEARING`, ``PME_MESH_PER_SMEARING``) and is
compared with a converged Ewald sum (ε = 1e-10): relative energy error, RMS force error over the
RMS force, largest potential error, and process CPU ms of potentials + forces (median of 3);
the Ewald path at the default ε = 1e-5 for scale.

    PYTHONPATH=$PWD python benchmarks/pme_mesh.py
"""

from __future__ import annotations

import statistics
import time

import torch

from phicalc.data.structures import water_box
from phicalc.nn.electrostatics import periodic

ARMS = {  # label: (smearing floor Å, mesh_spacing / smearing)
    "default: s >= 1.2, h = s/2": (1.2, 0.5),
    "s >= 1.2, h = 0.75 s": (1.2, 0.75),
    "s >= 1.2, h = s": (1.2, 1.0),
    "s >= 1.0, h = s/2": (1.0, 0.5),
    "s >= 1.0, h = s": (1.0, 1.0),
}


def potentials_and_forces(q, positions, cell, method: str, accuracy: float):
    """(energy eV, forces [n, 3] eV/Å, potentials [n] V) of charges ``q`` (σ = 1 Å)."""
    positions = positions.clone().requires_grad_(True)
    potentials = periodic.periodic_potentials(q, positions, cell, 1.0, method, accuracy)
    energy = 0.5 * (q * potentials).sum()
    forces = -torch.autograd.grad(energy, positions)[0]
    return float(energy.detach()), forces, potentials.detach()


def main() -> None:
    torch.set_num_threads(1)
    atoms = water_box(512, seed=0)
    positions = torch.tensor(atoms.positions, dtype=torch.float64)
    cell = torch.tensor(atoms.cell.array, dtype=torch.float64)
    q = torch.tensor([-0.8 if z == 8 else 0.4 for z in atoms.numbers], dtype=torch.float64)
    ref_e, ref_f, ref_v = potentials_and_forces(q, positions, cell, "ewald", 1e-10)
    f_rms = float(ref_f.pow(2).mean().sqrt())
    print(f"{len(atoms)} atoms, cell {atoms.cell.lengths().round(2).tolist()} Å, float64, 1 thread")
    print(f"{'arm':30s}{'|dE/E|':>10s}{'F rms err':>11s}{'max |dV| V':>12s}{'ms':>8s}")
    floor, ratio = periodic.PME_MIN_SMEARING, periodic.PME_MESH_PER_SMEARING
    arms = {label: ("pme", 1e-5, setting) for label, setting in ARMS.items()}
    arms["Ewald, eps = 1e-5"] = ("ewald", 1e-5, (floor, ratio))
    try:
        for label, (method, accuracy, (floor_a, ratio_a)) in arms.items():
            periodic.PME_MIN_SMEARING, periodic.PME_MESH_PER_SMEARING = floor_a, ratio_a
            energy, forces, potentials = potentials_and_forces(q, positions, cell, method, accuracy)
            times = []
            for _ in range(3):
                start = time.process_time()
                potentials_and_forces(q, positions, cell, method, accuracy)
                times.append(time.process_time() - start)
            print(
                f"{label:30s}{abs(energy - ref_e) / abs(ref_e):10.1e}"
                f"{float((forces - ref_f).pow(2).mean().sqrt()) / f_rms:11.1e}"
                f"{float((potentials - ref_v).abs().max()):12.1e}"
                f"{1e3 * statistics.median(times):8.0f}"
            )
    finally:
        periodic.PME_MIN_SMEARING, periodic.PME_MESH_PER_SMEARING = floor, ratio


if __name__ == "__main__":
    main()
