"""What the electrostatics cost beside the backbone: a PaiNN force call with and without them.

Arms, all with the shipped ``phi-painn-organic`` backbone size (PaiNN, F = 64, 3 blocks, 5 Å):

* ``painn``: no electrostatics;
* ``+Φ``: the Φ-Module as shipped (spectral, K = 8);
* ``+Φ+C``: Φ + total-charge/spin input + charge equilibration + Coulomb (method ``auto``:
  direct / DSF for open structures, Ewald / PME for periodic ones);
* ``+Φ+C,s``: the same with the Coulomb term switched off inside the 5 Å cutoff
  (``switch_radius``); column ``s %``: its time over ``+Φ+C``'s;
* ``+C``: ``+Φ+C`` without the Φ-Module (Coulomb on the equilibrated charges, no graph
  Laplacian: ablation arm h); column ``L %``: ``+Φ+C``'s time over its, what the Laplacian
  part costs in a charge-aware model.

Systems: water clusters (open) and boxes (periodic) of 14, 64, 512 and 4,096 waters
(42 … 12,288 atoms; ``benchmarks/coulomb_speed.py`` builds them). Times are CPU seconds of
``Potential.forward`` (energy + forces), one thread, float32, median of repeats; the graph is
built once outside the timing (the same for every arm). Overheads are relative to ``painn``.

A difference of two whole force calls is noisy on a shared VM (±10 % per call), so the
electrostatics of the ``+Φ+C`` model are also timed alone (column ``ES``): its charge
equilibration, Φ-Module, Coulomb term and dipole from the backbone's features (given), and the
gradient of their energy with respect to positions and those features, the work they add to a
force call. Each column is the median of its own repeats.

At small sizes an eager call is bound by dispatching a few hundred small operators, so a second
table times open clusters through ``torch.compile`` (:class:`~phicalc.graph_replay.GraphReplay`
with ``compile=True``, what ``PhiCalculator(compile=True)`` and ``phicalc md --compile`` use):
``painn`` against ``+Φ+C``, compiled once each (about a minute) and then timed interleaved.

    python benchmarks/electrostatics_cost.py [--waters 14 64 512 4096] [--repeats 3]
        [--compiled-waters 14 64] [--keep-freed-memory]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from ase import Atoms
from coulomb_speed import waters

from phicalc import build_model
from phicalc.graph.batch import atoms_to_graph
from phicalc.graph.neighbors import edge_vectors
from phicalc.graph_replay import GraphReplay
from phicalc.nn.backbones.base import Geometry
from phicalc.nn.electrostatics.dipole import dipole_about_com
from phicalc.potential import Potential

BACKBONE = {"num_features": 64, "num_blocks": 3, "num_radial": 16}
ARMS = {
    "painn": {"phi": False},
    "+Φ": {"phi": {"method": "spectral", "filter_degree": 8}},
    "+Φ+C": {
        "phi": {"method": "spectral", "filter_degree": 8},
        "charge_spin": True,
        "charge_equilibration": True,
        "coulomb": True,
    },
    "+Φ+C,s": {
        "phi": {"method": "spectral", "filter_degree": 8},
        "charge_spin": True,
        "charge_equilibration": True,
        "coulomb": {"switch_radius": 5.0},
    },
    "+C": {"phi": False, "charge_spin": True, "charge_equilibration": True, "coulomb": True},
}


def water_atoms(n: int, periodic: bool) -> Atoms:
    _, positions, edge = waters(n)
    atoms = Atoms("OHH" * n, positions=positions.numpy())
    if periodic:
        atoms.set_cell(np.eye(3) * edge)
        atoms.set_pbc(True)
    return atoms


def cpu_ms(models: dict, graph, repeats: int, call=None) -> dict[str, float]:
    """Median CPU ms per arm; the arms take turns, so a load change hits them alike.

    ``call(model, graph)`` makes one force call (default: ``model(graph, compute_forces=True)``).
    """
    call = call or (lambda model, g: model(g, compute_forces=True))
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats + 1):  # the first round warms up
        for name, model in models.items():
            start = time.process_time()
            call(model, graph)
            times[name].append(time.process_time() - start)
    return {name: 1e3 * statistics.median(values[1:]) for name, values in times.items()}


def electrostatics_ms(model: Potential, graph, repeats: int) -> float:
    """Median CPU ms of the model's electrostatics alone (see the module docstring)."""
    species = model.species(graph.numbers)
    vectors = edge_vectors(
        graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
    )
    geometry = Geometry(
        graph, species, graph.positions, graph.cell, vectors, torch.linalg.norm(vectors, dim=-1)
    )
    with torch.no_grad():
        features = model.backbone(geometry)
    features.node_features.requires_grad_(True)
    features.block_features = [h.detach().requires_grad_(True) for h in features.block_features]
    leaves = [features.node_features, *features.block_features]
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        start = time.process_time()
        positions = graph.positions.detach().requires_grad_(True)
        vectors = edge_vectors(
            positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
        )
        lengths = torch.linalg.norm(vectors, dim=-1)
        out = model._electrostatics(graph, features, lengths, positions, graph.cell)
        dipole_about_com(out["charges"], positions, graph, model.masses_of_z)
        torch.autograd.grad(out["electrostatic_energy"].sum(), [positions, *leaves])
        times.append(time.process_time() - start)
    return 1e3 * statistics.median(times[1:])


def compiled_ms(models: dict, graph, repeats: int) -> dict[str, float]:
    """Median CPU ms per compiled force call of ``painn`` and ``+Φ+C`` (one open structure)."""
    replays = {name: GraphReplay(models[name], compile=True) for name in ("painn", "+Φ+C")}
    for replay in replays.values():
        replay(graph)  # compiles
    return cpu_ms(replays, graph, repeats, call=lambda replay, g: replay(g))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waters", type=int, nargs="*", default=[14, 64, 512, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compiled-waters", type=int, nargs="*", default=[14, 64])
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="call phicalc.keep_freed_memory() first (what the phicalc command does)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.keep_freed_memory:
        from phicalc import keep_freed_memory

        keep_freed_memory()
    print(f"keep_freed_memory: {args.keep_freed_memory}")
    models = {
        name: build_model("painn", elements=["H", "C", "N", "O"], seed=0, **arm, **BACKBONE).eval()
        for name, arm in ARMS.items()
    }
    header = f"{'kind':9s} {'atoms':>6s} {'coulomb':>8s}" + "".join(f" {n:>10s}" for n in ARMS)
    print(
        header
        + f" {'Φ %':>7s} {'Φ+C %':>7s} {'s %':>6s} {'L %':>6s} {'µs/atom':>8s} {'ES':>9s}"
        + f" {'ES %':>6s}"
    )
    for periodic in (False, True):
        for n in args.waters:
            atoms = water_atoms(n, periodic)
            graph = atoms_to_graph(atoms, 5.0, dtype=torch.float32)
            repeats = 1 if len(atoms) > 5000 else args.repeats
            ms = cpu_ms(models, graph, repeats)
            method = models["+Φ+C"].coulomb.method_for(len(atoms), graph.pbc[0])
            base = ms["painn"]
            alone = electrostatics_ms(models["+Φ+C"], graph, max(repeats, 3 * args.repeats))
            print(
                f"{'periodic' if periodic else 'open':9s} {len(atoms):6d} {method:>8s}"
                + "".join(f" {ms[name]:10.1f}" for name in ARMS)
                + f" {100 * (ms['+Φ'] / base - 1):7.1f} {100 * (ms['+Φ+C'] / base - 1):7.1f}"
                + f" {100 * (ms['+Φ+C,s'] / ms['+Φ+C'] - 1):6.1f}"
                + f" {100 * (ms['+Φ+C'] / ms['+C'] - 1):6.1f}"
                + f" {1e3 * ms['+Φ+C'] / len(atoms):8.1f}"
                + f" {alone:9.1f} {100 * alone / base:6.1f}",
                flush=True,
            )
    if args.compiled_waters:
        print(f"\ncompiled, open {'atoms':>6s} {'painn':>10s} {'+Φ+C':>10s} {'Φ+C %':>7s}")
    for n in args.compiled_waters:
        graph = atoms_to_graph(water_atoms(n, False), 5.0, dtype=torch.float32)
        ms = compiled_ms(models, graph, 4 * args.repeats)
        print(
            f"{'':14s} {3 * n:6d} {ms['painn']:10.1f} {ms['+Φ+C']:10.1f}"
            + f" {100 * (ms['+Φ+C'] / ms['painn'] - 1):7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
