"""Graph construction: neighbour lists, AtomGraph batches (and their conventions)."""

from phicalc.graph.batch import AtomGraph, atoms_list_to_graph, atoms_to_graph, collate
from phicalc.graph.neighbors import build_neighbor_list, edge_vectors

__all__ = [
    "AtomGraph",
    "atoms_to_graph",
    "atoms_list_to_graph",
    "collate",
    "build_neighbor_list",
    "edge_vectors",
]
