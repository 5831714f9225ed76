"""The PME sum at a fixed cell with a fresh k-space filter per call and with kept filters.

Periodic water boxes (charges −0.8 / +0.4 e on O / H, σ = 1 Å, the shipped models' width):
potentials and their gradients in positions and charges (a force call at a fixed cell, as in MD
without a barostat) through :func:`~phicalc.nn.electrostatics.periodic.periodic_potentials` with
method "pme", each call making torch-pme's ``KSpaceFilter`` (the kernel G(k) on the mesh's
Fourier grid) afresh, against :class:`~phicalc.nn.electrostatics.periodic.KeptForCell` kept
between calls (what ``PhiCalculator`` does); and making the filter alone. float32, one thread,
process CPU ms, median of interleaved rounds; the largest force difference in float64.

    PYTHONPATH=$PWD python benchmarks/pme_kspace.py [--waters 512 1000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from phicalc.data.structures import water_box
from phicalc.nn.electrostatics import periodic


def gradients(charges, positions, cell, sums) -> list[torch.Tensor]:
    """(∂E/∂r, ∂E/∂q) of E = Σ q V with the PME potentials V."""
    positions = positions.clone().requires_grad_(True)
    charges = charges.clone().requires_grad_(True)
    v = periodic.periodic_potentials(charges, positions, cell, 1.0, "pme", 1e-5, sums)
    return list(torch.autograd.grad((charges * v).sum(), (positions, charges)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="*", default=[512, 1000])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("PME sum at a fixed cell (potentials + gradients), float32, 1 thread, process CPU ms")
    header = ("atoms", "mesh", "filter alone", "fresh", "kept", "kept/fresh", "max |dF| f64")
    print(f"{header[0]:>6s}{header[1]:>14s}" + "".join(f"{h:>13s}" for h in header[2:]))
    for waters in args.waters:
        measure(waters, args.rounds)


def measure(waters: int, rounds: int) -> None:
    """Print the table's row for a box of ``waters`` waters."""
    atoms = water_box(waters, seed=0)
    charges = torch.tensor([-0.8 if z == 8 else 0.4 for z in atoms.numbers])
    positions = torch.tensor(atoms.positions, dtype=torch.float32)
    cell = torch.tensor(atoms.cell.array, dtype=torch.float32)
    as64 = [t.double() for t in (charges, positions, cell)]
    kept64 = periodic.PeriodicSums(kspace_filters=periodic.KeptForCell())
    gradients(*as64, kept64)
    difference = gradients(*as64, kept64)[0] - gradients(*as64, None)[0]
    mesh = periodic.pme_mesh(cell, periodic.PME_MESH_PER_SMEARING)
    potential = periodic.CoulombPotential(smearing=1.0)
    kept = periodic.PeriodicSums(kspace_filters=periodic.KeptForCell())
    arms = {
        "filter alone": lambda: periodic._kspace_filter(cell, mesh, potential),
        "fresh": lambda: gradients(charges, positions, cell, None),
        "kept": lambda: gradients(charges, positions, cell, kept),
    }
    for arm in arms.values():
        arm()
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, arm in arms.items():
            start = time.process_time()
            arm()
            times[name].append(time.process_time() - start)
    ms = {name: 1e3 * statistics.median(values) for name, values in times.items()}
    shape = "x".join(str(int(n)) for n in mesh)
    print(
        f"{len(atoms):6d}{shape:>14s}{ms['filter alone']:13.1f}{ms['fresh']:13.1f}"
        f"{ms['kept']:13.1f}{ms['kept'] / ms['fresh']:13.2f}"
        f"{float(difference.abs().max()):13.1e}"
    )


if __name__ == "__main__":
    main()
