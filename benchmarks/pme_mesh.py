"""Periodic Coulomb settings against accuracy and cost: water boxes, water-like charges.

Each arm sets the PME mesh spacing per smearing and the interpolation nodes
(:data:`phicalc.nn.electrostatics.periodic.PME_MESH_PER_SMEARING`, ``PME_INTERPOLATION_NODES``)
or the Ewald tail margin (``EWALD_TAIL_MARGIN``), σ = 1 Å (the shipped models' width, so s = σ
and everything is summed in reciprocal space), and is compared with a converged Ewald sum
(ε = 1e-13) in float64: absolute energy error, largest and RMS force error, largest virial
error (the strain derivative, what the stress is made of). Cost: process CPU ms of energy,
forces and virial in float32 (median of 5), one thread.

A last table puts 16 waters (48 atoms, Ewald) in cubic boxes of growing edge: the default, whose
splitting width grows with the mean spacing in a sparse cell (``SPARSE_SMEARING_PER_SPACING``),
against everything in reciprocal space (that factor set to 0).

    PYTHONPATH=$PWD python benchmarks/pme_mesh.py [--waters 64 512] [--sparse-edges 12 25 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from phicalc.data.structures import water_box
from phicalc.nn.electrostatics import periodic

SIGMA = 1.0
ARMS = {  # label: (method, mesh spacing / smearing, interpolation nodes, Ewald tail margin)
    "Ewald, default": ("ewald", None, None, None),
    "Ewald, cut at eps itself": ("ewald", None, None, 1.0),
    "PME, default": ("pme", None, None, None),
    "PME h = 0.4 s, 7 nodes": ("pme", 0.4, 7, None),
    "PME h = 0.6 s, 7 nodes": ("pme", 0.6, 7, None),
    "PME h = 0.5 s, 6 nodes": ("pme", 0.5, 6, None),
    "PME h = 0.75 s, 7 nodes": ("pme", 0.75, 7, None),
}


def energy_forces_virial(q, positions, cell, method: str, accuracy: float = 1e-5):
    """(energy eV, forces [n, 3] eV/Å, virial ∂E/∂ε [3, 3] eV) of charges ``q``."""
    positions = positions.clone().requires_grad_(True)
    strain = torch.zeros(3, 3, dtype=positions.dtype, requires_grad=True)
    deform = torch.eye(3, dtype=positions.dtype) + 0.5 * (strain + strain.T)
    potentials = periodic.periodic_potentials(
        q, positions @ deform, cell @ deform, SIGMA, method, accuracy
    )
    energy = 0.5 * (q * potentials).sum()
    grad_pos, virial = torch.autograd.grad(energy, (positions, strain))
    return float(energy.detach()), -grad_pos, virial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="*", default=[64, 512])
    parser.add_argument("--sparse-edges", type=float, nargs="*", default=[12.0, 25.0, 50.0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    defaults = (
        periodic.PME_MESH_PER_SMEARING,
        periodic.PME_INTERPOLATION_NODES,
        periodic.EWALD_TAIL_MARGIN,
    )
    for waters in args.waters:
        atoms = water_box(waters, seed=0)
        positions = torch.tensor(atoms.positions, dtype=torch.float64)
        cell = torch.tensor(atoms.cell.array, dtype=torch.float64)
        q = torch.tensor([-0.8 if z == 8 else 0.4 for z in atoms.numbers], dtype=torch.float64)
        ref_e, ref_f, ref_v = energy_forces_virial(q, positions, cell, "ewald", 1e-13)
        print(
            f"\n{len(atoms)} atoms, cell {atoms.cell.lengths().round(2).tolist()} Å, E {ref_e:.3f} eV"
        )
        header = ("arm", "|dE| eV", "max dF eV/Å", "rms dF", "max dvir eV", "ms f32")
        print(f"{header[0]:28s}" + "".join(f"{h:>13s}" for h in header[1:]))
        for label, (method, spacing, nodes, margin) in ARMS.items():
            periodic.PME_MESH_PER_SMEARING = spacing or defaults[0]
            periodic.PME_INTERPOLATION_NODES = nodes or defaults[1]
            periodic.EWALD_TAIL_MARGIN = margin or defaults[2]
            try:
                energy, forces, virial = energy_forces_virial(q, positions, cell, method)
                times = []
                for _ in range(5):
                    start = time.process_time()
                    energy_forces_virial(q.float(), positions.float(), cell.float(), method)
                    times.append(time.process_time() - start)
            finally:
                (
                    periodic.PME_MESH_PER_SMEARING,
                    periodic.PME_INTERPOLATION_NODES,
                    periodic.EWALD_TAIL_MARGIN,
                ) = defaults
            errors = (
                abs(energy - ref_e),
                float((forces - ref_f).abs().max()),
                float((forces - ref_f).pow(2).mean().sqrt()),
                float((virial - ref_v).abs().max()),
            )
            print(
                f"{label:28s}"
                + "".join(f"{e:13.1e}" for e in errors)
                + f"{1e3 * statistics.median(times):13.1f}"
            )
    sparse_cells(args.sparse_edges)


def sparse_cells(edges: list[float]) -> None:
    """16 waters in cubic boxes of the given edges (Å): ms and energy, split against unsplit."""
    if not edges:
        return
    cluster = water_box(16, seed=0)
    print("\n16 waters (48 atoms, Ewald) in a cubic box; ms f32 (energy, forces, virial)")
    print(
        f"{'edge Å':>8s}{'V/N Å³':>9s}{'s Å':>6s}{'split ms':>10s}{'unsplit ms':>12s}{'|dE| eV':>10s}"
    )
    default = periodic.SPARSE_SMEARING_PER_SPACING
    for edge in edges:
        positions = torch.tensor(cluster.positions, dtype=torch.float64)
        cell = edge * torch.eye(3, dtype=torch.float64)
        q = torch.tensor([-0.8 if z == 8 else 0.4 for z in cluster.numbers], dtype=torch.float64)
        volume = edge**3
        s, _ = periodic.smearing_and_cutoff(SIGMA, 1e-5, volume, len(q))
        results = {}
        try:
            for label, factor in (("split", default), ("unsplit", 0.0)):
                periodic.SPARSE_SMEARING_PER_SPACING = factor
                energy = energy_forces_virial(q, positions, cell, "ewald")[0]
                times = []
                for _ in range(3):
                    start = time.process_time()
                    energy_forces_virial(q.float(), positions.float(), cell.float(), "ewald")
                    times.append(time.process_time() - start)
                results[label] = (energy, 1e3 * statistics.median(times))
        finally:
            periodic.SPARSE_SMEARING_PER_SPACING = default
        print(
            f"{edge:8.1f}{volume / len(q):9.1f}{s:6.2f}{results['split'][1]:10.1f}"
            f"{results['unsplit'][1]:12.1f}{abs(results['split'][0] - results['unsplit'][0]):10.1e}"
        )


if __name__ == "__main__":
    main()
