"""GFN2-xTB charges that carry each molecule's dipole: charge targets for a Coulomb term.

GFN2-xTB's electrostatics has atomic charges and atomic dipole and quadrupole moments. Its
Mulliken charges alone give the dipole of a water molecule as 0.32 e·Å where GFN2-xTB's is
0.46, so a model whose charges are fitted to them, with a physical Coulomb term on those
charges, draws an ion and a water together at ~0.7× GFN2-xTB's strength at any distance past
the cutoff (``reports/dipole_charges_pilot.md``). Here the charge of each covalent molecule is
moved between its atoms, as little as possible, so that the molecule's charges give GFN2-xTB's
dipole of that molecule alone, its total charge kept:

    Δq = argmin |Δq|²  subject to  Σ_i Δq_i = 0,  Σ_i Δq_i (r_i − r_com) = μ_GFN2 − Σ_i q_i (r_i − r_com)

(a least-norm solution, ``Δq = Aᵀ(AAᵀ)⁺b``; a planar or linear molecule reaches the in-plane or
axial part, which is all its charges can carry). A frame that is one molecule uses its own
dipole. In a frame of several (a dimer, a cluster, a periodic box) each molecule of two or more
atoms is labelled alone at its geometry (unwrapped across the cell) and integer charge by a
``label`` function, and its correction is added to the frame's Mulliken charges on its atoms:
the frame keeps GFN2-xTB's charge transfer and polarisation between molecules, and each molecule
gains the dipole correction it has alone. Molecules are found by the rule the models use
(:func:`~phicalc.nn.electrostatics.fragments.bonded_pairs`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import CalculationFailed
from ase.geometry import find_mic

from phicalc.graph.batch import atoms_to_graph
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn.electrostatics.fragments import bonded_pairs, molecules_of_bonds

#: Neighbour-list cutoff (Å) for finding covalent bonds (longer than any bond of H–Cl, Na).
BOND_SEARCH_CUTOFF = 3.0

#: (charges [n] e, dipole [3] e·Å about the centre of mass) of one molecule at integer charge Q.
Labeller = Callable[[Atoms, int], tuple[np.ndarray, np.ndarray]]


def dipole_correction(
    charges: np.ndarray, positions: np.ndarray, masses: np.ndarray, dipole: np.ndarray
) -> np.ndarray:
    """The least-norm change Δq [n] (e) of ``charges`` [n] at ``positions`` [n, 3] (Å) that keeps
    their sum and makes their dipole about the centre of mass (``masses`` [n]) equal ``dipole``
    [3] (e·Å); zero for a single atom."""
    if len(charges) < 2:
        return np.zeros(len(charges))
    centred = positions - (masses[:, None] * positions).sum(0) / masses.sum()
    constraints = np.vstack([np.ones(len(charges)), centred.T])  # [4, n]
    target = np.concatenate([[0.0], np.asarray(dipole, float) - charges @ centred])
    return constraints.T @ (np.linalg.pinv(constraints @ constraints.T) @ target)


def covalent_molecule_labels(atoms: Atoms) -> np.ndarray:
    """[n_atoms] the covalent molecule of each atom (numbered by first atom), periodic images
    included, by the models' bonding rule."""
    graph = atoms_to_graph(atoms, BOND_SEARCH_CUTOFF, total_charge=0.0)
    vectors = edge_vectors(
        graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
    )
    bonds = bonded_pairs(graph.numbers, graph.edge_index, vectors.norm(dim=-1))
    return molecules_of_bonds(bonds, len(atoms))


def isolated_molecule(atoms: Atoms, members: np.ndarray) -> Atoms:
    """The atoms ``members`` of ``atoms`` as an open molecule, each placed at its minimum image
    from the first (a molecule smaller than half the cell)."""
    positions = atoms.positions[members]
    if atoms.pbc.any():
        offsets, _ = find_mic(positions - positions[0], atoms.cell, atoms.pbc)
        positions = positions[0] + offsets
    return Atoms(numbers=atoms.numbers[members], positions=positions)


def dipole_charges(atoms: Atoms, label: Labeller) -> tuple[np.ndarray, int, int]:
    """Charges [n_atoms] (e) of a labelled frame that carry each molecule's GFN2-xTB dipole.

    Args:
        atoms: a record with Mulliken ``arrays["ref_charges"]`` and, for an open frame of one
            molecule, ``info["ref_dipole"]`` (about the centre of mass).
        label: labels one isolated molecule at an integer charge (:func:`gfn2_labeller`).

    Returns:
        The charges, how many molecules were labelled alone, and how many of those failed
        (SCF; their atoms keep Mulliken charges).
    """
    charges = np.asarray(atoms.arrays["ref_charges"], dtype=float)
    molecule = covalent_molecule_labels(atoms)
    n_molecules = int(molecule.max()) + 1 if len(atoms) else 0
    if n_molecules == 1 and not atoms.pbc.any():
        dipole = np.asarray(atoms.info["ref_dipole"], dtype=float)
        return (
            charges + dipole_correction(charges, atoms.positions, atoms.get_masses(), dipole),
            0,
            0,
        )
    corrected, labelled, failed = charges.copy(), 0, 0
    for index in range(n_molecules):
        members = np.flatnonzero(molecule == index)
        if len(members) < 2:
            continue
        alone = isolated_molecule(atoms, members)
        labelled += 1
        try:
            q_alone, dipole = label(alone, int(round(charges[members].sum())))
        except CalculationFailed:
            failed += 1
            continue
        corrected[members] += dipole_correction(
            q_alone, alone.positions, alone.get_masses(), dipole
        )
    return corrected, labelled, failed


def gfn2_labeller(method: str = "GFN2-xTB", threads: int | None = 1) -> Labeller:
    """A :data:`Labeller` by GFN2-xTB single points (a fresh calculator per molecule; doublet
    for an odd electron count, else singlet)."""
    from phicalc.data.xtb.dimer_scan import label_single_point

    def label(molecule: Atoms, charge: int) -> tuple[np.ndarray, np.ndarray]:
        multiplicity = 2 if (int(molecule.numbers.sum()) - charge) % 2 else 1
        record = label_single_point(
            molecule, charge, multiplicity, {}, method=method, threads=threads
        )
        return np.asarray(record.arrays["ref_charges"]), np.asarray(record.info["ref_dipole"])

    return label
