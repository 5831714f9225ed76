"""What each electrostatic part of the default model costs in a plain call of one molecule.

Arms, all plain calls (what ``PhiCalculator("phi-painn-organic")`` does for a molecule without
``compile=True``): ``painn-organic`` (the baseline), ``phi-painn-organic``, the same without its
Coulomb term, without Coulomb and Φ, without the charge-state energy E_Q as well, and the default
model with its charges equilibrated over the whole structure instead of per molecule (no
molecules to find, no formal charges, no transfer). Energy and forces of one
``Potential.forward`` (the graph built once outside the timing), float32, one thread, process CPU
ms, median of interleaved rounds; the differences give the Coulomb sum, Φ, E_Q and the
per-molecule scope. Copies of the loaded model with a part taken out are timing arms only: their
numbers are not the model's.

    PYTHONPATH=$PWD python benchmarks/electrostatics_parts_plain.py [--molecule ac-ala3] [--rounds 151]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecule", default="ac-ala3", help="name, SMILES or structure file")
    parser.add_argument("--rounds", type=int, default=151)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from phicalc import PhiCalculator
    from phicalc.graph.batch import atoms_to_graph
    from phicalc.md.inputs import load_structure
    from phicalc.testing import without_parts

    default = PhiCalculator("phi-painn-organic", dtype="float32").model
    arms = {
        "painn-organic (baseline)": PhiCalculator("painn-organic", dtype="float32").model,
        "phi-painn-organic": default,
        "  without Coulomb": without_parts(default, coulomb=True),
        "  without Coulomb and Φ": without_parts(default, coulomb=True, phi=True),
        "  without Coulomb, Φ and E_Q": without_parts(
            default, coulomb=True, phi=True, charge_state_energy=True
        ),
        "  equilibrated per structure": without_parts(default, equilibration_scope="structure"),
    }
    atoms = load_structure(args.molecule)
    graph = atoms_to_graph(
        atoms, default.cutoff, total_charge=0.0, multiplicity=1.0, dtype=torch.float32
    )
    for model in arms.values():  # warm-up
        model(graph, compute_forces=True)
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name, model in arms.items():
            start = time.process_time()
            model(graph, compute_forces=True)
            times[name].append(time.process_time() - start)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    base, full = ms["painn-organic (baseline)"], ms["phi-painn-organic"]
    print(
        f"plain calls, {atoms.get_chemical_formula()} ({len(atoms)} atoms), float32, 1 thread, "
        f"process CPU ms per energy+forces call, median of {args.rounds} interleaved rounds"
    )
    for name, value in ms.items():
        print(f"  {name:30s}{value:8.2f} ms {value / base:6.2f}x")
    print(
        f"  Coulomb {full - ms['  without Coulomb']:.2f} ms, Φ "
        f"{ms['  without Coulomb'] - ms['  without Coulomb and Φ']:.2f} ms, E_Q "
        f"{ms['  without Coulomb and Φ'] - ms['  without Coulomb, Φ and E_Q']:.2f} ms, the rest "
        f"{ms['  without Coulomb, Φ and E_Q'] - base:.2f} ms of the {full - base:.2f} ms the "
        f"electrostatics add; the per-molecule scope "
        f"{full - ms['  equilibrated per structure']:.2f} ms"
    )


if __name__ == "__main__":
    main()
