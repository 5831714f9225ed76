"""Periodic Coulomb settings against accuracy and cost: water boxes, water-like charges.

Each arm sets the PME mesh spacing per smearing and the interpolation nodes
(:data:`phicalc.nn.electrostatics.periodic.PME_MESH_PER_SMEARING`, ``PME_INTERPOLATION_NODES``)
or the Ewald tail margin (``EWALD_TAIL_MARGIN``), σ = 1 Å (the shipped models' width, so s = σ
and everything is summed in reciprocal space), and is compared with a converged Ewald sum
(ε = 1e-13) in float64: absolute energy error, largest and RMS force error, largest virial
error (the strain derivative, what the stress is made of). Cost: process CPU ms of energy,
forces and virial in float32 (median of 5), one thread.

    PYTHONPATH=$PWD python benchmarks/pme_mesh.py [--waters 64 512]
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


if __name__ == "__main__":
    main()
