"""torch.compile against eager, piece by piece, for the default model on the CPU and on CUDA.

Prints the largest absolute difference of each compiled piece from its eager result (the atom
count scatter, a scatter sum, the charge equilibration, the direct Coulomb sum, the Coulomb
module, and the model's charges without forces). On the H200 with torch 2.11 the charge
equilibration came back NaN (``reports/device/compile_diagnostic_parts.txt``); run this before
allowing ``compile=True`` on CUDA again (``phicalc/graph_replay.py`` refuses it there).

    python benchmarks/compile_check.py [--structure ac_ala3.xyz] [--model phi-painn-organic]
"""

from __future__ import annotations

import argparse

import torch
from ase import Atoms
from ase.io import read

from phicalc.graph.batch import atoms_to_graph
from phicalc.nn.electrostatics.coulomb import direct_potentials
from phicalc.nn.electrostatics.equilibration import equilibrate
from phicalc.nn.scatter import scatter_sum
from phicalc.serialization import load_model


def check(device: str, atoms: Atoms, model_name: str) -> dict[str, str]:
    """Max |compiled − eager| of each piece on ``device`` (or the error it raised)."""
    torch._dynamo.reset()
    model = load_model(model_name).to(device=device, dtype=torch.float64).eval()
    g = atoms_to_graph(atoms, model.cutoff, dtype=torch.float64).to(device)
    gen = torch.Generator().manual_seed(0)
    n = g.n_atoms
    chi = torch.randn(n, generator=gen, dtype=torch.float64).to(device)
    hardness = (torch.rand(n, generator=gen, dtype=torch.float64) + 0.5).to(device)
    q = (0.3 * torch.randn(n, generator=gen, dtype=torch.float64)).to(device)
    pos = g.positions

    def coulomb(c, p):
        return model.coulomb(c, p, g.cell, g.pbc, g.batch, 1, g.host_layout).potentials

    def charges(graph):
        return model(graph, compute_forces=False, training=False, validate=False)["charges"]

    pieces = {
        "n_atoms_per_graph": (lambda: g.n_atoms_per_graph, ()),
        "scatter_sum": (lambda x: scatter_sum(x, g.batch, 1), (q,)),
        "equilibrate": (
            lambda c, h: equilibrate(c, h, g.total_charge, g.batch, 1),
            (chi, hardness),
        ),
        "direct_potentials": (lambda c, p: direct_potentials(c, p, 1.0), (q, pos)),
        "coulomb_module": (coulomb, (q, pos)),
        "model charges (no forces)": (charges, (g,)),
    }
    out = {}
    for name, (fn, args) in pieces.items():
        try:
            eager = fn(*args)
            compiled = torch.compile(fn, dynamic=False)(*args)
            out[name] = f"{float((compiled.double() - eager.double()).abs().max()):.2e}"
        except Exception as error:  # a piece that fails to compile is a finding, not the end
            out[name] = f"FAILED {type(error).__name__}: {str(error)[:300]}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default=".gpu/ac_ala3.xyz", help="any ASE-readable file")
    parser.add_argument("--model", default="phi-painn-organic")
    args = parser.parse_args()
    atoms = read(args.structure)
    for device in ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",):
        for name, result in check(device, atoms, args.model).items():
            print(device, name, result, flush=True)


if __name__ == "__main__":
    main()
