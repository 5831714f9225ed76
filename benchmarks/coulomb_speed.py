"""Cost of the Coulomb term (energy + forces by autograd) vs system size, CPU, one thread.

Water clusters (open) and water boxes (3D-periodic) of 14, 64, 512 and 4096 randomly oriented
waters (42 … 12,288 atoms) on a cubic grid of 3.1 Å spacing (≈ 1 g/cm³; a 3³ grid holds the
14 waters of the smallest case), random charges ±0.4 e, neutral per water.  The method is the
one ``auto`` picks (direct ≤ 2,000 atoms then DSF; Ewald ≤ 1,000 atoms then PME), float64.
Prints the median of repeats in ms and the cost per atom.

    PYTHONPATH=$PWD python benchmarks/coulomb_speed.py
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import torch
from ase.build import molecule
from scipy.spatial.transform import Rotation

from phicalc.nn.electrostatics import Coulomb, CoulombConfig

SPACING = 3.1  # Å
WATERS = (14, 64, 512, 4096)


def waters(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Charges [3n] e, positions [3n, 3] Å and the cubic box edge (Å) of n grid waters."""
    rng = np.random.default_rng(seed)
    side = math.ceil(round(n ** (1 / 3), 9))
    h2o = molecule("H2O").positions
    grid = np.array(np.meshgrid(*[np.arange(side)] * 3, indexing="ij")).reshape(3, -1).T[:n]
    pos, q = [], []
    for site in grid:
        rot = Rotation.random(random_state=rng).as_matrix()
        pos.append(h2o @ rot.T + SPACING * (site + 0.5))
        qh = rng.uniform(0.2, 0.4, size=2)
        q.append([-qh.sum(), *qh])
    return torch.tensor(np.concatenate(q)), torch.tensor(np.concatenate(pos)), SPACING * side


def time_one(module: Coulomb, q, pos, cell, pbc, repeats: int) -> float:
    batch = torch.zeros(len(q), dtype=torch.int64)
    times = []
    for _ in range(repeats + 1):  # first call is a warm-up
        p = pos.clone().requires_grad_(True)
        t0 = time.perf_counter()
        e = module(q, p, cell, pbc, batch, 1).energy.sum()
        (forces,) = torch.autograd.grad(-e, p)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times[1:])


def main() -> None:
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    module = Coulomb(CoulombConfig())
    print(f"{'kind':9s} {'atoms':>6s} {'method':7s} {'ms':>10s} {'µs/atom':>9s}")
    for periodic in (False, True):
        for n in WATERS:
            q, pos, edge = waters(n)
            n_atoms = len(q)
            pbc = torch.full((1, 3), periodic)
            cell = (torch.eye(3) * edge if periodic else torch.zeros(3, 3))[None]
            method = module.method_for(n_atoms, pbc[0])
            repeats = 5 if n_atoms < 5000 else 2
            ms = time_one(module, q, pos, cell, pbc, repeats)
            kind = "periodic" if periodic else "open"
            print(f"{kind:9s} {n_atoms:6d} {method:7s} {ms:10.1f} {1e3 * ms / n_atoms:9.1f}")


if __name__ == "__main__":
    main()
