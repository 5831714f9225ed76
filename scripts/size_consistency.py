"""Size consistency of charged dimers: where a model's interaction energy beyond its cutoff comes from.

For dimers A···B (an ion and a neutral molecule, or two ions) at closest-atom distances of 6–15 Å,
prints per model

* E_int = E(AB) − E(A) − E(B) in meV (each at its own total charge; GFN2-xTB beside it with
  ``--gfn2``), which for a size-consistent model tends to the A–B Coulomb energy and to 0;
* q_A, the summed learned charge of fragment A in the complex (e; its integer charge is right);
* ΔE_A and ΔE_B (meV): the fragment's share of the complex's per-atom energies minus the energy
  of the isolated fragment. Both are zero for fragments beyond the cutoff that do not talk to each
  other; a constant offset at 15 Å is a size-consistency error (charge leaking between
  fragments, or the total charge entering every atom's features).

    python scripts/size_consistency.py [--models phi-painn-organic painn-organic] [--gfn2]
"""

from __future__ import annotations

import argparse

import numpy as np
from ase import Atoms

from phicalc.calculator import PhiCalculator
from phicalc.data.structures import structure_from_string

DIMERS = [
    ("[NH4+]", "H2O"),
    ("CC(=O)[O-]", "H2O"),
    ("[Na+]", "H2O"),
    ("[Cl-]", "H2O"),
    ("C[NH3+]", "CC(=O)[O-]"),
]
DISTANCES = (6.0, 9.0, 12.0, 15.0)


def place(a: Atoms, b: Atoms, distance: float) -> Atoms:
    """A and B along x with closest-atom distance ``distance`` Å; info['charge'] = Q_A + Q_B."""
    a = a.copy()
    b = b.copy()
    a.translate(-a.get_center_of_mass())
    b.translate(-b.get_center_of_mass())
    gap = a.positions[:, 0].max() - b.positions[:, 0].min()
    b.translate([gap + distance, 0.0, 0.0])
    for _ in range(50):  # the closest pair need not lie on the x axis: widen until it is exact
        closest = np.linalg.norm(a.positions[:, None] - b.positions[None], axis=-1).min()
        if abs(closest - distance) < 1e-6:
            break
        b.translate([distance - closest, 0.0, 0.0])
    dimer = a + b
    dimer.info["charge"] = a.info.get("charge", 0) + b.info.get("charge", 0)
    return dimer


def energies(atoms: Atoms, calc) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Total energy (eV), per-atom energies (eV) and learned charges (e, or None)."""
    atoms = atoms.copy()
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    per_atom = atoms.get_potential_energies()
    return energy, per_atom, calc.results.get("charges")


def gfn2_energy(atoms: Atoms) -> float:
    """GFN2-xTB energy in eV; NaN where its SCF does not converge."""
    from ase.calculators.calculator import CalculationFailed

    from phicalc.data.xtb.single_point import xtb_calculator

    atoms = atoms.copy()
    atoms.calc = xtb_calculator(charge=int(atoms.info.get("charge", 0)))
    try:
        return atoms.get_potential_energy()
    except CalculationFailed:
        return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["phi-painn-organic", "painn-organic"])
    parser.add_argument("--gfn2", action="store_true", help="also GFN2-xTB's E_int (tblite)")
    args = parser.parse_args()
    calcs = {name: PhiCalculator(name) for name in args.models}
    print(
        f"{'dimer':22s} {'d Å':>5s} {'model':18s} {'E_int':>8s} {'q_A':>7s} {'ΔE_A':>8s} {'ΔE_B':>8s}"
    )
    for spec_a, spec_b in DIMERS:
        a, b = structure_from_string(spec_a), structure_from_string(spec_b)
        n_a = len(a)
        for distance in DISTANCES:
            dimer = place(a, b, distance)
            label = f"{spec_a}···{spec_b}"
            if args.gfn2:
                e_int = gfn2_energy(dimer) - gfn2_energy(a) - gfn2_energy(b)
                print(f"{label:22s} {distance:5.1f} {'GFN2-xTB':18s} {1e3 * e_int:8.1f}")
            for name, calc in calcs.items():
                e_ab, per_atom, charges = energies(dimer, calc)
                e_a, _, _ = energies(a, calc)
                e_b, _, _ = energies(b, calc)
                q_a = "" if charges is None else f"{charges[:n_a].sum():7.3f}"
                print(
                    f"{label:22s} {distance:5.1f} {name:18s} {1e3 * (e_ab - e_a - e_b):8.1f}"
                    f" {q_a:>7s} {1e3 * (per_atom[:n_a].sum() - e_a):8.1f}"
                    f" {1e3 * (per_atom[n_a:].sum() - e_b):8.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
