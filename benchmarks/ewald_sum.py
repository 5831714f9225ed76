"""The Ewald sum of the default model's Coulomb term: factorised phases against a cosine and a
sine per (k, atom) pair.

For periodic water boxes (the ``auto`` method sums by Ewald up to 200 atoms), charges −0.8 /
+0.4 e on O / H, σ = 1 Å: the reciprocal part of the potentials and the gradients of the energy
through :func:`~phicalc.nn.electrostatics.periodic.structure_factor_sum` (the phases
e^{ik·r} = e^{in₁θ₁}e^{in₂θ₂}e^{in₃θ₃} per axis, two complex matrix products) with its grid made
afresh and kept (what a calculator does at a fixed cell), against the direct sum written here
(what the code did before: k-vectors of half the sphere, cos and sin of every k·r_i, the
structure factors as two matrix-vector products). Two cases: energy, forces and stress (the
full sum), and energy and forces at a fixed cell (``own_positions``, what MD without a barostat
asks for). float32, one thread, process CPU ms, median of interleaved rounds; the largest force
difference between the two in float64; the k-vectors (one of each ±k) × atoms.

    PYTHONPATH=$PWD python benchmarks/ewald_sum.py [--waters 14 32 64] [--rounds 21]
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time
from collections.abc import Callable

import torch

from phicalc import keep_freed_memory
from phicalc.data.structures import water_box
from phicalc.nn.electrostatics.periodic import (
    CoulombPotential,
    KeptForCell,
    ewald_cutoff,
    ewald_grid,
    structure_factor_sum,
)

ACCURACY = 1e-5  # CoulombConfig's default
SIGMA = 1.0


def half_sphere(cell: torch.Tensor, k_cut: float) -> torch.Tensor:
    """[n_k, 3] one k of each ±k pair with 0 < |k| ≤ k_cut, differentiable in ``cell``."""
    reciprocal = 2.0 * math.pi * torch.linalg.inv(cell).transpose(0, 1)
    m = [int(k_cut * float(a) / (2.0 * math.pi)) for a in torch.linalg.norm(cell.detach(), dim=1)]
    axes = [torch.arange(-i, i + 1, dtype=cell.dtype) for i in m]
    n = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    first = torch.where(n[:, 0] != 0, n[:, 0], torch.where(n[:, 1] != 0, n[:, 1], n[:, 2]))
    n = n[first > 0]
    return n[((n @ reciprocal.detach()) ** 2).sum(-1) <= k_cut * k_cut] @ reciprocal


def direct_sum(charges, positions, cell, potential, k_cut, own_positions) -> torch.Tensor:
    """V_i·V before this cut: 2 Σ_k G(k)[cos(k·r_i) C(k) + sin(k·r_i) S(k)] over half the
    sphere."""
    k = half_sphere(cell, k_cut)
    green = potential.lr_from_k_sq((k * k).sum(-1))
    phase = k @ positions.transpose(0, 1)
    cos, sin = torch.cos(phase), torch.sin(phase)
    if own_positions:
        fixed = charges.detach()
        return 2 * ((green * (cos.detach() @ fixed)) @ cos + (green * (sin.detach() @ fixed)) @ sin)
    return 2 * ((green * (cos @ charges)) @ cos + (green * (sin @ charges)) @ sin)


def gradients(
    kept: KeptForCell | None, own_positions: bool, charges, positions, cell
) -> list[torch.Tensor]:
    """(∂E/∂r, ∂E/∂q[, ∂E/∂strain]) of E = ½ Σ q_i V_i·V (without the 1/V's volume: the same
    in both arms): the direct sum where ``kept`` is None, else the factorised one with its grid
    from ``kept``."""
    potential = CoulombPotential(smearing=SIGMA).to(dtype=charges.dtype)
    k_cut = ewald_cutoff(ACCURACY, SIGMA)
    strain = torch.zeros(3, 3, dtype=charges.dtype, requires_grad=not own_positions)
    q = charges.clone().requires_grad_(True)
    r = positions.clone().requires_grad_(True)
    at = cell + cell @ strain if not own_positions else cell
    moved = r + r @ strain if not own_positions else r
    if kept is None:
        v = direct_sum(q, moved, at, potential, k_cut, own_positions)
    else:
        grid = kept.get(at, (k_cut, SIGMA), lambda: ewald_grid(at, k_cut, potential))
        v = structure_factor_sum(q, moved, grid, own_positions)
    energy = (q * v).sum() * (1.0 if own_positions else 0.5)
    return list(torch.autograd.grad(energy, (r, q) if own_positions else (r, q, strain)))


def fresh_grid_gradients(*args) -> list[torch.Tensor]:
    """:func:`gradients` with a grid made for this call alone."""
    return gradients(KeptForCell(), *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="*", default=[14, 32, 64])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    print("Ewald reciprocal sum with gradients, direct phases / factorised, float32, 1 thread, ms")
    print(
        f"{'atoms':>6s}{'terms':>9s}  {'case':24s}{'direct':>8s}{'fresh':>8s}{'kept':>8s}"
        f"{'kept/direct':>12s}{'max |dF| f64':>14s}"
    )
    k_cut = ewald_cutoff(ACCURACY, SIGMA)
    for waters in args.waters:
        atoms = water_box(waters, seed=0)
        inputs64 = (
            torch.tensor([-0.8 if z == 8 else 0.4 for z in atoms.numbers], dtype=torch.float64),
            torch.tensor(atoms.positions),
            torch.tensor(atoms.cell.array),
        )
        inputs = [t.float() for t in inputs64]
        terms = len(half_sphere(inputs64[2], k_cut)) * len(atoms)
        for own, case in ((False, "energy, forces, stress"), (True, "energy, forces")):
            direct64, factorised64 = (
                gradients(None, own, *inputs64),
                fresh_grid_gradients(own, *inputs64),
            )
            difference = float((direct64[0] - factorised64[0]).abs().max())
            arms: dict[str, Callable[[], list[torch.Tensor]]] = {
                "direct": functools.partial(gradients, None, own, *inputs),
                "fresh grid": functools.partial(fresh_grid_gradients, own, *inputs),
                "kept grid": functools.partial(gradients, KeptForCell(), own, *inputs),
            }
            for arm in arms.values():
                arm()
            times: dict[str, list[float]] = {name: [] for name in arms}
            for _ in range(args.rounds):
                for name, arm in arms.items():
                    start = time.process_time()
                    arm()
                    times[name].append(time.process_time() - start)
            ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
            print(
                f"{len(atoms):6d}{terms:9d}  {case:24s}{ms['direct']:8.2f}{ms['fresh grid']:8.2f}"
                f"{ms['kept grid']:8.2f}{ms['kept grid'] / ms['direct']:12.2f}{difference:14.1e}"
            )


if __name__ == "__main__":
    main()
