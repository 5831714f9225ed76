"""How many small operators the default model's electrostatics add to a force call, and what
finding the covalent molecules costs.

Part 1: one force call (energy + forces, float32) of Ac-Ala3-NHMe (42 atoms) through
``Potential.forward`` of ``phi-painn-organic`` and of its baseline ``painn-organic``: the aten
operators dispatched in the forward pass, per part (backbone, charge equilibration, Φ,
Coulomb, the rest), and the autograd nodes the backward pass evaluates. At this size each
operator costs its dispatch more than its arithmetic, so these counts are what the
electrostatics cost in plain calls.

Part 2: :func:`~phicalc.nn.electrostatics.fragments.covalent_molecules` alone (bonds, the
hydrogen rule, connected components) on the 42-atom molecule and a 64-water box, with the
union-find (bond lists up to ``UNION_FIND_MAX_BONDS``) and with SciPy's connected components;
µs per call, median of repeats.

    PYTHONPATH=$PWD python benchmarks/electrostatics_operators.py
"""

from __future__ import annotations

import collections
import statistics
import timeit
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from phicalc import PhiCalculator
from phicalc.data.structures import structure_from_string, water_box
from phicalc.graph.batch import atoms_to_graph
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn.electrostatics import fragments


class OperatorCounter(TorchDispatchMode):
    """Counts the aten operators dispatched while active, under the current part's name."""

    def __init__(self) -> None:
        super().__init__()
        self.part = ["rest"]
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[self.part[-1]] += 1
        return func(*args, **(kwargs or {}))

    def within(self, name: str, call: Callable) -> Callable:
        """``call`` counted under ``name``."""

        def counted(*args, **kwargs):
            self.part.append(name)
            try:
                return call(*args, **kwargs)
            finally:
                self.part.pop()

        return counted


def forward_operators(model: torch.nn.Module, graph) -> collections.Counter[str]:
    """Forward aten operators per part of one force call (the backward pass not counted)."""
    counter = OperatorCounter()
    parts = {"backbone": model.backbone, "readout": model.readout}
    for name, module in (("Φ", model.phi), ("Coulomb", model.coulomb)):
        if module is not None:
            parts[name] = module
    originals = {name: module.forward for name, module in parts.items()}
    equilibrate = getattr(model, "_equilibrate", None)
    grad = torch.autograd.grad
    try:
        for name, module in parts.items():
            module.forward = counter.within(name, originals[name])
        if model.equilibration is not None:
            model._equilibrate = counter.within("charge equilibration", equilibrate)
        torch.autograd.grad = counter.within("backward", grad)
        with counter:
            model(graph, compute_forces=True)
    finally:
        torch.autograd.grad = grad
        for name, module in parts.items():
            module.forward = originals[name]
        if model.equilibration is not None:
            del model._equilibrate
    return counter.counts


def backward_nodes(model: torch.nn.Module, graph) -> int:
    """Autograd nodes the backward pass of one force call evaluates."""
    from torch.profiler import profile

    with profile() as prof:
        model(graph, compute_forces=True)
    prefix = "autograd::engine::evaluate_function: "
    return sum(event.count for event in prof.key_averages() if event.key.startswith(prefix))


def partition_us(graph, repeats: int = 7, number: int = 200) -> float:
    """Median µs of one :func:`covalent_molecules` call on ``graph``."""
    lengths = torch.linalg.norm(
        edge_vectors(graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch),
        dim=-1,
    )
    args = (graph.numbers, graph.edge_index, lengths, graph.batch)
    times = timeit.repeat(
        lambda: fragments.covalent_molecules(*args), number=number, repeat=repeats
    )
    return 1e6 * statistics.median(times) / number


def main() -> None:
    torch.set_num_threads(1)
    molecule = structure_from_string("ac-ala3")
    print("Part 1: Ac-Ala3-NHMe (42 atoms), one force call, float32")
    print(f"{'model':20s}{'backward nodes':>15s}{'forward ops':>13s}  per part")
    for name in ("phi-painn-organic", "painn-organic"):
        model = PhiCalculator(name, dtype="float32").model
        graph = atoms_to_graph(molecule, model.cutoff, dtype=torch.float32)
        model(graph, compute_forces=True)  # warm-up
        counts = forward_operators(model, graph)
        forward = {k: v for k, v in counts.items() if k != "backward"}
        parts = ", ".join(f"{k} {v}" for k, v in sorted(forward.items(), key=lambda kv: -kv[1]))
        nodes = backward_nodes(model, graph)
        print(f"{name:20s}{nodes:15d}{sum(forward.values()):13d}  {parts}")
    print("\nPart 2: covalent_molecules alone, µs per call (median)")
    default = fragments.UNION_FIND_MAX_BONDS
    for label, atoms in (
        ("Ac-Ala3-NHMe, 42 atoms", molecule),
        ("64 waters, 192 atoms", water_box(64, seed=0)),
    ):
        graph = atoms_to_graph(atoms, 5.0)
        union_find = partition_us(graph)
        fragments.UNION_FIND_MAX_BONDS = -1
        try:
            scipy_cc = partition_us(graph)
        finally:
            fragments.UNION_FIND_MAX_BONDS = default
        print(f"  {label:24s} union-find {union_find:7.1f}   SciPy {scipy_cc:7.1f}")


if __name__ == "__main__":
    main()
