"""Molecules and formal charges brought by the caller, for passes that must not read device
memory back in the middle (graph replay, compiled batches).

A model with ``equilibration_scope="molecule"`` equilibrates charges per molecule at integer
formal charges. A plain call finds the molecules and the formal charges itself, on the host, from
the structure-wide equilibrium it has just computed. A replayed or compiled pass cannot stop for
that: the caller finds the molecules (covalent bonds, on the host), guesses their formal charges,
and checks the guess against the rule applied to the equilibrium sums the pass returns
(:data:`~phicalc.potential.MOLECULE_EQUILIBRIUM_CHARGES`); where they differ it runs once more
with the rule's charges. The equilibrium does not depend on the formal charges, so the second
pass agrees, and the numbers are always a plain call's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from phicalc.graph.batch import AtomGraph
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn.electrostatics.fragments import FormalChargeRule, covalent_molecules
from phicalc.potential import MOLECULE_EQUILIBRIUM_CHARGES


def edge_lengths(graph: AtomGraph) -> torch.Tensor:
    """[n_edges] pair distances of ``graph`` (Å), without gradients."""
    with torch.no_grad():
        vectors = edge_vectors(
            graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
        )
        return torch.linalg.norm(vectors, dim=-1)


def with_molecules(
    graph: AtomGraph, lengths: torch.Tensor | None = None
) -> tuple[AtomGraph, FormalChargeRule]:
    """``graph`` (a batch, on the CPU) with its molecules and a first guess of their formal
    charges (the rule applied to zero sums), and the rule for those molecules.

    ``lengths``: [n_edges] the graph's edge lengths (Å) where the caller has them."""
    if lengths is None:
        lengths = edge_lengths(graph)
    molecules, owner = covalent_molecules(graph.numbers, graph.edge_index, lengths, graph.batch)
    rule = FormalChargeRule(molecules, owner, graph.total_charge, graph.numbers)
    guess = rule(torch.zeros(owner.shape[0], dtype=torch.float64))
    return replace(graph, molecules=molecules, molecule_charges=guess), rule


def run_at_formal_charges(
    run: Callable[[AtomGraph], dict[str, torch.Tensor]], graph: AtomGraph, rule: FormalChargeRule
) -> tuple[dict[str, torch.Tensor], torch.Tensor, bool]:
    """``run(graph)`` at the formal charges the rule gives for the pass's own equilibrium.

    Args:
        run: the pass (the model's outputs for a graph that brings its molecules).
        graph: with ``molecules`` [n_atoms] and a guess ``molecule_charges`` [n_groups] (e).
        rule: the formal-charge rule of ``graph``'s molecules.

    Returns:
        The outputs (without the equilibrium sums), the formal charges used [n_groups] (e,
        float64, CPU), and whether the guess was wrong (the pass ran twice).
    """
    assert graph.molecules is not None and graph.molecule_charges is not None
    out = run(graph)
    sums = out[MOLECULE_EQUILIBRIUM_CHARGES].detach().cpu()
    formal = rule(sums)
    reran = not torch.equal(formal, graph.molecule_charges)
    if reran:
        out = run(replace(graph, molecule_charges=formal))
    return {k: v for k, v in out.items() if k != MOLECULE_EQUILIBRIUM_CHARGES}, formal, reran
