"""The least a torch-pme reciprocal-space call costs for a small periodic cell, beside PaiNN.

How low can the periodic Coulomb term go at 42 and 192 atoms with torch-pme as the Ewald/PME
engine?  Everything here favours torch-pme: the damping width equals the smearing (s = σ = 1 Å),
so there is no real-space sum and no neighbour list at all; only the reciprocal-space call,
energy and its gradient with respect to positions, charges and cell (forces and stress), is
timed.  Ewald at two k-grids (``lr_wavelength`` 0.5 Å, which covers |k| ≤ √2·η/σ at ε = 1e-5, and a
coarser 0.65 Å) and PME at ``mesh_spacing`` 0.5 Å.  The PaiNN column is a force call of the
shipped backbone size (F = 64, 3 blocks, 5 Å) on the same cell: the denominator of the 15 %
target of issue #14.  CPU time, one thread, float32, median of repeats, arms interleaved.

    cd benchmarks && python torchpme_floor.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from electrostatics_cost import BACKBONE, water_atoms
from torchpme import CoulombPotential, EwaldCalculator, PMECalculator

from phicalc import build_model
from phicalc.graph.batch import atoms_to_graph

SIGMA = 1.0  # Å, the default Gaussian width of phicalc's Coulomb term


def calculators() -> dict[str, torch.nn.Module]:
    potential = CoulombPotential(smearing=SIGMA)
    return {
        "ewald λ=0.50": EwaldCalculator(potential, lr_wavelength=0.5, full_neighbor_list=True),
        "ewald λ=0.65": EwaldCalculator(potential, lr_wavelength=0.65, full_neighbor_list=True),
        "pme h=0.50": PMECalculator(
            potential, mesh_spacing=0.5, interpolation_nodes=6, full_neighbor_list=True
        ),
    }


def reciprocal(calculator: torch.nn.Module, graph, charges: torch.Tensor) -> None:
    """One reciprocal-space energy and its gradient w.r.t. positions, charges and cell."""
    positions = graph.positions.clone().requires_grad_(True)
    cell = graph.cell[0].clone().requires_grad_(True)
    q = charges.clone().requires_grad_(True)
    no_pairs = torch.zeros((0, 2), dtype=torch.int64)
    out = calculator(q, cell, positions, no_pairs, torch.zeros(0))
    torch.autograd.grad((q * out).sum(), [positions, q, cell])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="+", default=[14, 64])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    painn = build_model("painn", elements=["H", "C", "N", "O"], seed=0, phi=False, **BACKBONE)
    painn.eval()
    arms = calculators()
    print(f"{'atoms':>6s} {'painn ms':>9s}" + "".join(f" {name:>13s}" for name in arms))
    for n in args.waters:
        atoms = water_atoms(n, periodic=True)
        graph = atoms_to_graph(atoms, 5.0, dtype=torch.float32)
        charges = torch.tensor([-0.8, 0.4, 0.4] * n, dtype=torch.float32)[:, None]
        times: dict[str, list[float]] = {name: [] for name in ["painn", *arms]}
        for _ in range(args.repeats + 1):  # the first round warms up
            for name in times:
                start = time.process_time()
                if name == "painn":
                    painn(graph, compute_forces=True)
                else:
                    reciprocal(arms[name], graph, charges)
                times[name].append(time.process_time() - start)
        ms = {name: 1e3 * statistics.median(values[1:]) for name, values in times.items()}
        cells = "".join(f" {ms[name]:6.1f} ({100 * ms[name] / ms['painn']:3.0f}%)" for name in arms)
        print(f"{3 * n:6d} {ms['painn']:9.1f}" + cells, flush=True)


if __name__ == "__main__":
    main()
