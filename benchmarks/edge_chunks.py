"""Messages summed in runs of receivers (``PhiCalculator(edge_chunk=)``) against unchunked calls,
side by side: time per force call and what each keeps for the backward pass.

phi-painn-organic, float32, one thread, periodic water boxes (energy, forces, stress). Arms,
interleaved round-robin, median process CPU time of ``--rounds`` rounds after a warm-up round:

* ``plain``: an unchunked plain call; ``plain, runs``: runs of ``--edge-chunk`` edges;
* ``compiled backbone``: the calculator's compiled backbone (``compile=True``, unchunked);
* ``compiled runs``: runs of ``--edge-chunk`` edges, each through the compiled receiver sums and
  its gradients through the compiled run gradients (what ``compile=True`` does).

"kept MB" is the size of the distinct storages autograd keeps for the backward pass of one call
(``torch.autograd.graph.saved_tensors_hooks``; the compiled backbone's own saved tensors are
counted as it hands them to autograd). Peak process memory per size: ``anchors.py`` part 2.

    PYTHONPATH=$PWD python benchmarks/edge_chunks.py [--waters 64 512 1000] [--rounds 5]
        [--edge-chunk 8192] [--keep-freed-memory]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from phicalc.compiled import CompiledBackbone, CompiledReceiverSums, CompiledRunGradients
from phicalc.data.structures import water_box
from phicalc.graph.batch import atoms_to_graph
from phicalc.nn.edge_chunks import DEFAULT_EDGES_PER_CHUNK, EdgeChunking
from phicalc.serialization import load_model
from phicalc.testing import kept_for_backward_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="*", default=[64, 512, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--edge-chunk", type=int, default=DEFAULT_EDGES_PER_CHUNK)
    parser.add_argument("--keep-freed-memory", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.keep_freed_memory:
        from phicalc import keep_freed_memory

        print(f"keep_freed_memory: {keep_freed_memory()}")
    model = load_model("phi-painn-organic").float().eval()
    backbone = CompiledBackbone(model)
    sums, gradients = CompiledReceiverSums(model), CompiledRunGradients(model)
    arms = {
        "plain": {},
        "plain, runs": {"edge_chunking": EdgeChunking(args.edge_chunk)},
        "compiled backbone": {"backbone_call": backbone},
        "compiled runs": {"edge_chunking": EdgeChunking(args.edge_chunk, sums, gradients)},
    }
    print(f"phi-painn-organic, float32, 1 thread, runs of {args.edge_chunk} edges")
    print(f"{'atoms':>6s} {'edges':>8s} {'arm':20s}{'ms/call':>10s}{'/ plain':>9s}{'kept MB':>9s}")
    for n_waters in args.waters:
        graph = atoms_to_graph(water_box(n_waters, seed=0), model.cutoff)

        def call(options, graph=graph):
            return model(graph, compute_forces=True, compute_stress=True, **options)

        for options in arms.values():  # compiles, warms up
            call(options)
        times: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(args.rounds):
            for name, options in arms.items():
                start = time.process_time()
                call(options)
                times[name].append(time.process_time() - start)
        plain = statistics.median(times["plain"])
        for name, options in arms.items():
            ms = statistics.median(times[name])
            kept = kept_for_backward_bytes(lambda options=options: call(options)) / 1e6
            print(
                f"{graph.n_atoms:6d} {graph.edge_index.shape[1]:8d} {name:20s}"
                f"{1e3 * ms:10.1f}{ms / plain:9.2f}{kept:9.1f}"
            )


if __name__ == "__main__":
    main()
