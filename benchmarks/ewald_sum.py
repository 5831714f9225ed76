"""The default model's periodic Coulomb term with the plain and the compiled Ewald sum.

For periodic water boxes the ``auto`` method sums by Ewald (up to 200 atoms), with charges −0.8 /
+0.4 e on O / H: energy, forces and stress (gradients in charges, positions and strain) of
``phi-painn-organic``'s Coulomb term alone, with the plain
:func:`~phicalc.nn.electrostatics.periodic.structure_factor_sum` and through
:class:`~phicalc.compiled.CompiledEwaldSum` (what ``PhiCalculator(compile=True)`` uses), float32,
one thread, process CPU ms, median of interleaved rounds after an untimed compilation; the
largest force difference between the two in float64; and the sum's terms (k-vectors × atoms).
Every sum is compiled here, also those below ``COMPILED_EWALD_MIN_TERMS``, which the calculator
leaves plain (this table is where that limit comes from).

    PYTHONPATH=$PWD python benchmarks/ewald_sum.py [--waters 14 32 64] [--rounds 21]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from phicalc import PhiCalculator, compiled, keep_freed_memory
from phicalc.data.structures import water_box
from phicalc.graph.batch import atoms_to_graph
from phicalc.nn.electrostatics.periodic import PeriodicSums, ewald_cutoff, ewald_kvectors


def coulomb_gradients(model, graph, charges: torch.Tensor, ewald_sum) -> list[torch.Tensor]:
    """(−forces, ∂E/∂q, ∂E/∂ε) of the Coulomb energy of ``charges`` in ``graph``'s cell, with
    ``ewald_sum`` (None: the plain one) as the structure-factor sum."""
    dtype = charges.dtype
    strain = torch.zeros(1, 3, 3, dtype=dtype, requires_grad=True)
    positions = graph.positions.to(dtype).requires_grad_(True)
    charges = charges.clone().requires_grad_(True)
    cell = graph.cell.to(dtype)
    out = model.coulomb(
        charges,
        positions + positions @ strain[0],
        cell + cell @ strain,
        graph.pbc,
        graph.batch,
        1,
        graph.host_layout,
        None,
        PeriodicSums(structure_sum=ewald_sum),
    )
    return list(torch.autograd.grad(out.energy.sum(), (positions, charges, strain)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="*", default=[14, 32, 64])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    model = PhiCalculator("phi-painn-organic", dtype="float32").model
    compiled.COMPILED_EWALD_MIN_TERMS = 0
    compiled_sum = compiled.CompiledEwaldSum(model)
    config = model.coulomb.config
    k_cut = ewald_cutoff(config.accuracy, config.sigma)
    print("Coulomb term (energy, forces, stress), Ewald sum plain / compiled, float32, 1 thread")
    print(
        f"{'atoms':>6s}{'terms':>9s}{'plain ms':>10s}{'compiled ms':>13s}{'ratio':>7s}"
        f"{'max |dF| f64':>14s}"
    )
    for waters in args.waters:
        atoms = water_box(waters, seed=0)
        graph = atoms_to_graph(atoms, model.cutoff)
        charges = torch.tensor([-0.8 if z == 8 else 0.4 for z in atoms.numbers])
        terms = len(ewald_kvectors(graph.cell[0], k_cut)) * len(atoms)
        reference = coulomb_gradients(model, graph, charges.double(), None)[0]
        difference = coulomb_gradients(model, graph, charges.double(), compiled_sum)[0] - reference
        arms = {"plain": None, "compiled": compiled_sum}
        for ewald_sum in arms.values():  # compilation and warm-up
            coulomb_gradients(model, graph, charges, ewald_sum)
        times: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(args.rounds):
            for name, ewald_sum in arms.items():
                start = time.process_time()
                coulomb_gradients(model, graph, charges, ewald_sum)
                times[name].append(time.process_time() - start)
        ms = {name: 1e3 * statistics.median(values) for name, values in times.items()}
        print(
            f"{len(atoms):6d}{terms:9d}{ms['plain']:10.2f}{ms['compiled']:13.2f}"
            f"{ms['compiled'] / ms['plain']:7.2f}{float(difference.abs().max()):14.1e}"
        )


if __name__ == "__main__":
    main()
