"""The periodic Coulomb term with full sums against energy-only sums (a force call without the
stress).

Periodic water boxes (charges −0.8 / +0.4 e on O / H, slightly perturbed so the cells are not
exactly neutral per molecule; σ = 1 Å, the shipped models' width) through
:class:`~phicalc.nn.electrostatics.Coulomb`: the energy (the shares' sum) and its gradient in
positions and charges, once with the full sums (differentiable in everything: what a call with
the stress takes) and once with ``energy_only=True`` (each potential differentiable in its own
atom's position only: no structure factors, mesh or FFTs in the backward pass). Ewald up to
200 atoms, PME beyond (kept k-space filters, as ``PhiCalculator`` keeps them); plain Ewald
structure sums. float32, one thread, process CPU ms, median of interleaved rounds; the largest
force and charge-gradient differences between the arms in float64.

    PYTHONPATH=$PWD python benchmarks/energy_only_sums.py [--waters 64 512 1000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from phicalc.data.structures import water_box
from phicalc.nn.electrostatics import Coulomb
from phicalc.nn.electrostatics.periodic import PeriodicSums


def energy_and_gradients(
    coulomb: Coulomb,
    charges: torch.Tensor,
    positions: torch.Tensor,
    cell: torch.Tensor,
    sums: PeriodicSums,
    energy_only: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(E, ∂E/∂r, ∂E/∂q) of one periodic structure."""
    n = charges.shape[0]
    positions = positions.clone().requires_grad_(True)
    charges = charges.clone().requires_grad_(True)
    out = coulomb(
        charges,
        positions,
        cell[None],
        torch.ones(1, 3, dtype=torch.bool),
        torch.zeros(n, dtype=torch.int64),
        1,
        [(n, (True, True, True))],
        None,
        sums,
        energy_only,
    )
    energy = out.shares.sum()
    return (energy.detach(), *torch.autograd.grad(energy, (positions, charges)))


def measure(waters: int, rounds: int) -> None:
    """Print the table's row for a box of ``waters`` waters."""
    atoms = water_box(waters, seed=0)
    base = torch.tensor([-0.8 if z == 8 else 0.4 for z in atoms.numbers], dtype=torch.float64)
    charges = base + 0.01 * torch.sin(torch.arange(len(atoms), dtype=torch.float64))
    positions = torch.tensor(atoms.positions)
    cell = torch.tensor(atoms.cell.array)
    coulomb = Coulomb()
    full64 = energy_and_gradients(coulomb, charges, positions, cell, PeriodicSums(), False)
    only64 = energy_and_gradients(coulomb, charges, positions, cell, PeriodicSums(), True)
    d_forces = float((full64[1] - only64[1]).abs().max())
    d_charges = float((full64[2] - only64[2]).abs().max())
    as32 = [t.float() for t in (charges, positions, cell)]
    sums = {flag: PeriodicSums.kept() for flag in (False, True)}

    def arm(flag: bool) -> None:
        energy_and_gradients(coulomb, *as32, sums[flag], flag)

    times: dict[bool, list[float]] = {False: [], True: []}
    for flag in times:
        arm(flag)
    for _ in range(rounds):
        for flag in times:
            start = time.process_time()
            arm(flag)
            times[flag].append(time.process_time() - start)
    full, only = (1e3 * statistics.median(times[flag]) for flag in (False, True))
    method = coulomb.method_for(len(atoms), (True, True, True))
    print(
        f"{len(atoms):6d}{method:>7s}{full:10.2f}{only:13.2f}{only / full:8.3f}"
        f"{d_forces:14.1e}{d_charges:14.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="*", default=[64, 512, 1000])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("Coulomb energy + gradients, periodic water, float32, 1 thread, process CPU ms")
    print(
        f"{'atoms':>6s}{'method':>7s}{'full ms':>10s}{'energy-only':>13s}{'ratio':>8s}"
        f"{'max |dF| f64':>14s}{'max |dq| f64':>14s}"
    )
    for waters in args.waters:
        measure(waters, args.rounds)


if __name__ == "__main__":
    main()
