"""torch.compile against eager, piece by piece, for the default model on the CPU and on CUDA.

Prints the largest absolute difference of each compiled piece from its eager result (the atom
count scatter, a scatter sum, the charge equilibration, the direct Coulomb sum, the Coulomb
module, and the model's charges without forces). On the H200 with torch 2.11 the charge
equilibration came back NaN (``reports/device/compile_diagnostic_parts.txt``); run this before
allowing ``compile=True`` on CUDA again (``phicalc/graph_replay.py`` refuses it there).

    python benchmarks/compile_check.py [--structure ac_ala3.xyz]
"""

import argparse

import torch
from ase.io import read

from phicalc.graph.batch import atoms_to_graph
from phicalc.nn.electrostatics.coulomb import direct_potentials
from phicalc.nn.electrostatics.equilibration import equilibrate
from phicalc.nn.scatter import scatter_sum
from phicalc.serialization import load_model

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--structure", default=".gpu/ac_ala3.xyz", help="any ASE-readable file")
atoms = read(parser.parse_args().structure)
for device in ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",):
    torch._dynamo.reset()
    model = load_model("phi-painn-organic").to(device=device, dtype=torch.float64).eval()
    g = atoms_to_graph(atoms, model.cutoff, dtype=torch.float64).to(device)
    n = g.n_atoms
    gen = torch.Generator().manual_seed(0)
    chi = torch.randn(n, generator=gen, dtype=torch.float64).to(device)
    hard = (torch.rand(n, generator=gen, dtype=torch.float64) + 0.5).to(device)
    q = (torch.randn(n, generator=gen, dtype=torch.float64) * 0.3).to(device)
    pos = g.positions
    checks = {
        "n_atoms_per_graph": (lambda: g.n_atoms_per_graph, ()),
        "scatter_sum": (lambda x: scatter_sum(x, g.batch, 1), (q,)),
        "equilibrate": (lambda c, h: equilibrate(c, h, g.total_charge, g.batch, 1), (chi, hard)),
        "direct_potentials": (lambda c, p: direct_potentials(c, p, 1.0), (q, pos)),
        "triu_indices": (
            lambda p: (
                torch.triu_indices(p.shape[0], p.shape[0], offset=1, device=p.device)
                .to(p.dtype)
                .sum()
            ),
            (pos,),
        ),
        "coulomb_module": (
            lambda c, p: model.coulomb(c, p, g.cell, g.pbc, g.batch, 1, g.host_layout).potentials,
            (q, pos),
        ),
    }
    for name, (fn, args) in checks.items():
        try:
            eager = fn(*args)
            compiled = torch.compile(fn, dynamic=False)(*args)
            print(
                device,
                name,
                f"{float((compiled.double() - eager.double()).abs().max()):.2e}",
                flush=True,
            )
        except Exception as e:
            print(device, name, "FAILED", type(e).__name__, str(e)[:300], flush=True)

    # the backbone + heads, forward only
    def charges_only(graph):
        return model(graph, compute_forces=False, training=False, validate=False)["charges"]

    try:
        e = charges_only(g)
        c = torch.compile(charges_only, dynamic=False)(g)
        print(device, "model charges (no forces)", f"{float((c - e).abs().max()):.2e}", flush=True)
    except Exception as ex:
        print(device, "model charges FAILED", type(ex).__name__, str(ex)[:300])
