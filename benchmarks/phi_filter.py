"""The Φ-Module's Chebyshev filter: L̂ as a dense matrix against the path over the edges.

For periodic water boxes of growing size, one call of :class:`~phicalc.nn.phi.filters.ChebyshevFilter`
(degree 8) on the Laplacian weights of the box, and the gradient of a scalar of its output with
respect to the positions (what a force call does), in float32 on one thread, process CPU ms,
median of interleaved rounds; the largest relative difference of the gradients between the paths.
The dense path is what batches of up to ``DENSE_MAX_ATOMS`` atoms take; the other arm sets that
limit to 0 for the call.

    PYTHONPATH=$PWD python benchmarks/phi_filter.py [--waters 14 32 64 100 150 256] [--rounds 21]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from phicalc.data.structures import water_box
from phicalc.graph.batch import atoms_to_graph
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn.phi import filters, laplacian
from phicalc.nn.phi.laplacian import GraphLaplacian, LaplacianWeights

CUTOFF = 5.0


def filter_gradient(module: filters.ChebyshevFilter, graph, dense_max_atoms: int) -> torch.Tensor:
    """∂(Σ φ̂²)/∂r [n_atoms, 3] with the filter's dense limit set to ``dense_max_atoms``."""
    default = laplacian.DENSE_MAX_ATOMS
    laplacian.DENSE_MAX_ATOMS = dense_max_atoms
    try:
        positions = graph.positions.clone().requires_grad_(True)
        vectors = edge_vectors(
            positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
        )
        weights = LaplacianWeights(CUTOFF)(vectors.norm(dim=-1))
        sources = torch.sin(positions[:, 0])
        graph_laplacian = GraphLaplacian.of(weights, graph.edge_index, graph.n_atoms)
        phi = module(sources, graph_laplacian, graph.batch, 1)
        return torch.autograd.grad((phi * phi).sum(), positions)[0]
    finally:
        laplacian.DENSE_MAX_ATOMS = default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="*", default=[14, 32, 64, 100, 150, 256])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    torch.set_num_threads(1)
    module = filters.ChebyshevFilter(8)
    arms = {"edges": 0, "dense": 10**9}
    print("Chebyshev filter (K = 8) + its gradient, float32, 1 thread, process CPU ms")
    print(
        f"{'atoms':>6s}{'edges':>8s}{'edges ms':>10s}{'dense ms':>10s}{'ratio':>7s}{'rel. diff':>11s}"
    )
    for waters in args.waters:
        graph = atoms_to_graph(water_box(waters, seed=0), CUTOFF, dtype=torch.float32)
        results = {name: filter_gradient(module, graph, limit) for name, limit in arms.items()}
        times: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(args.rounds):
            for name, limit in arms.items():
                start = time.process_time()
                filter_gradient(module, graph, limit)
                times[name].append(time.process_time() - start)
        ms = {name: 1e3 * statistics.median(values) for name, values in times.items()}
        scale = float(results["edges"].abs().max())
        difference = float((results["dense"] - results["edges"]).abs().max()) / scale
        print(
            f"{graph.n_atoms:6d}{graph.edge_index.shape[1]:8d}{ms['edges']:10.2f}"
            f"{ms['dense']:10.2f}{ms['dense'] / ms['edges']:7.2f}{difference:11.1e}"
        )


if __name__ == "__main__":
    main()
