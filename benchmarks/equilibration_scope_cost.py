"""What charge equilibration per molecule costs: one force call, structure-wide against per molecule.

Both arms carry the weights of the shipped ``phi-painn-organic`` (the per-molecule arm adds its
transfer strength, 0.1 e/V·Å, and the charge-state energy with μ = 0): the same network, so the
difference is the per-molecule step (bond graph and its components on the host, formal charges,
a second closed-form equilibration, one Laplacian product). Systems: Ac-Ala3-NHMe (42 atoms, one
molecule), and periodic water boxes with a Na⁺Cl⁻ pair (98 and 770 atoms: 34 and 258 molecules).
CPU time of ``Potential.forward`` (energy + forces, stress for the boxes), float32, one thread,
graph built once outside the timing, arms interleaved, median of repeats.

    python benchmarks/equilibration_scope_cost.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from phicalc.data.structures import structure_from_string
from phicalc.graph.batch import atoms_to_graph
from phicalc.potential import Potential
from phicalc.serialization import load_model

SYSTEMS = {
    "Ac-Ala3-NHMe": "ac-ala3",
    "Na⁺Cl⁻ + 32 waters": "water-box:32+Na+Cl",
    "Na⁺Cl⁻ + 256 waters": "water-box:256+Na+Cl",
}


def arms() -> dict[str, Potential]:
    shipped = load_model("phi-painn-organic")
    config = dataclasses.replace(
        shipped.config,
        charge_input="equilibrated",
        charge_state_energy=True,
        equilibration_scope="molecule",
    )
    per_molecule = Potential(config)
    state = per_molecule.state_dict()
    state.update(shipped.state_dict())
    per_molecule.load_state_dict(state)
    structure = Potential(dataclasses.replace(config, equilibration_scope="structure"))
    structure.load_state_dict({k: v for k, v in state.items() if "transfer" not in k})
    return {"per structure": structure.float().eval(), "per molecule": per_molecule.float().eval()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = arms()
    print(f"{'system':22s} {'atoms':>6s} {'per structure ms':>17s} {'per molecule ms':>16s} ratio")
    for name, spec in SYSTEMS.items():
        atoms = structure_from_string(spec)
        graph = atoms_to_graph(atoms, 5.0, dtype=torch.float32)
        stress = bool(atoms.pbc.any())
        times: dict[str, list[float]] = {arm: [] for arm in models}
        for _ in range(args.repeats + 1):  # the first round warms up
            for arm, model in models.items():
                start = time.process_time()
                model(graph, compute_forces=True, compute_stress=stress)
                times[arm].append(time.process_time() - start)
        medians = {arm: 1e3 * statistics.median(values[1:]) for arm, values in times.items()}
        ratio = medians["per molecule"] / medians["per structure"]
        print(
            f"{name:22s} {len(atoms):6d} {medians['per structure']:17.1f} "
            f"{medians['per molecule']:16.1f} {ratio:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
