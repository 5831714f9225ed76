"""Charge equilibration per molecule, with smooth charge transfer between neighbours.

One electronegativity level λ per structure (:func:`~phicalc.nn.electrostatics.equilibration.
equilibrate`) lets a fraction of an ion's charge leak onto a neutral molecule however far away,
and a leak δq changes each fragment's energy by about λ·δq, with λ of the order of an ionisation
energy per electron (reports/charge_state_energy_pilot.md). ``equilibration_scope="molecule"``
instead

1. splits the structure into *molecules*, the connected components of covalent bonds
   (r_ij < :data:`BOND_FACTOR` · (R_i + R_j), covalent radii R; alkali metals bond to nothing;
   a hydrogen bonds only to its nearest candidate relative to the radii, so Cl⁻···H–O at
   1.7 Å stays two molecules), a partition that changes only when bonds form or break;
2. gives each molecule an integer (formal) charge: a lone alkali or alkaline-earth atom its
   cation's (+1, +2), a lone halogen atom −1, any other molecule the nearest integer to its
   charge in the structure-wide equilibrium; then, while they do not sum to Q, the molecule
   whose formal charge lies furthest below (above) its equilibrium charge gains (loses) one
   unit (the monatomic rule: solvated ions carry far less than their formal charge);
3. equilibrates each molecule at its own charge (one λ_m per molecule, closed form);
4. lets charge flow between neighbouring atoms along the graph in proportion to the edge weight
   and the difference of the atoms' chemical potentials μ_i = χ_i + J_i q_i:
   q = q_m − s L_w μ, with L_w the smooth-cutoff graph Laplacian and s > 0 learned. Within a
   molecule μ is constant, so only charge transfer between molecules closer than the cutoff
   remains; it fades smoothly to zero at the cutoff, and L_w moves charge without changing any
   connected component's total. A molecule far from the rest has the charges it has alone.

The energy of this charge distribution, E_Q = Σ_i (χ_i + μ₀) q_i + ½ J_i q_i² + ½ s μᵀ L_w μ
(the last term the cost of the transfer, as in split-charge equilibration), is what
``charge_state_energy`` adds. For a structure made of one molecule nothing differs from the
structure-wide equilibration. The formal charges are a piecewise-constant choice: they change,
and the energy jumps, only where a bond forms or breaks or a molecule's equilibrium charge
crosses a half-integer; everywhere else the energy is smooth.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from ase.data import covalent_radii
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from phicalc.graph.batch import AtomGraph
from phicalc.nn.electrostatics.equilibration import equilibrate
from phicalc.nn.phi.laplacian import GraphLaplacian
from phicalc.nn.scatter import scatter_sum

#: A pair is covalently bonded when r_ij < BOND_FACTOR · (R_i + R_j).
BOND_FACTOR = 1.3
#: Atomic numbers that never bond covalently here (alkali and alkaline-earth metals: ions).
IONIC_NUMBERS = frozenset({3, 4, 11, 12, 19, 20, 37, 38, 55, 56})
#: Formal charge (e) of a molecule that is one atom of these elements (atomic number: charge).
MONATOMIC_CHARGES = {
    **dict.fromkeys((3, 11, 19, 37, 55), 1.0),
    **dict.fromkeys((4, 12, 20, 38, 56), 2.0),
    **dict.fromkeys((9, 17, 35, 53), -1.0),
}
#: |Q − round(Q)| below which a structure's total charge counts as an integer (e).
INTEGER_TOLERANCE = 1e-6

_RADII = np.asarray(covalent_radii, dtype=np.float64)
_IONIC = np.zeros(len(covalent_radii), dtype=bool)
_IONIC[list(IONIC_NUMBERS)] = True
#: Formal charge of a lone atom by atomic number; NaN where the element has none.
_MONATOMIC_TABLE = np.full(len(covalent_radii), np.nan)
_MONATOMIC_TABLE[list(MONATOMIC_CHARGES)] = list(MONATOMIC_CHARGES.values())


def candidate_bonds(
    numbers: torch.Tensor, edge_index: torch.Tensor, lengths: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """The distance test alone, before :func:`bonded_pairs` keeps one bond per hydrogen:
    (mask [n_edges] of r_ij < :data:`BOND_FACTOR` · (R_i + R_j) with neither atom in
    :data:`IONIC_NUMBERS`, r_ij/(R_i + R_j) [n_edges]), NumPy."""
    z = numbers.detach().cpu().numpy()
    i, j = edge_index.detach().cpu().numpy()
    zi, zj = z[i], z[j]
    ratio = lengths.detach().cpu().numpy() / (_RADII[zi] + _RADII[zj])
    return (ratio < BOND_FACTOR) & ~(_IONIC[zi] | _IONIC[zj]), ratio


def bonded_pairs(
    numbers: torch.Tensor, edge_index: torch.Tensor, lengths: torch.Tensor
) -> np.ndarray:
    """Covalently bonded pairs among a graph's edges, [2, n_bonds] int64 NumPy (rows i, j).

    Args:
        numbers: [n_atoms] atomic numbers; edge_index: [2, n_edges] atom pairs (any image);
        lengths: [n_edges] pair distances in Å.

    The pairs of :func:`candidate_bonds`, except that a hydrogen bonds to one partner: of its
    candidates only those with the smallest r_ij/(R_i + R_j) (so a short hydrogen bond
    X–H···Y⁻ does not merge two molecules; the partition changes where the proton is nearer Y
    than X relative to the radii, i.e. where it has moved); pairs keep the edges' order.
    """
    candidates, ratio = candidate_bonds(numbers, edge_index, lengths)
    z = numbers.detach().cpu().numpy()
    kept = np.flatnonzero(candidates)  # the hydrogen rule looks at the few candidates only
    i, j = edge_index.detach().cpu().numpy()[:, kept]
    ratio = ratio[kept]
    hydrogen_i, hydrogen_j = z[i] == 1, z[j] == 1
    closest = np.full(z.shape[0], np.inf)
    np.minimum.at(closest, i[hydrogen_i], ratio[hydrogen_i])
    np.minimum.at(closest, j[hydrogen_j], ratio[hydrogen_j])
    bonded = (~hydrogen_i | (ratio <= closest[i])) & (~hydrogen_j | (ratio <= closest[j]))
    return np.stack([i[bonded], j[bonded]]).astype(np.int64, copy=False)


#: Up to this many bonds :func:`molecules_of_bonds` joins them in Python (a union-find); beyond,
#: SciPy's connected components, whose fixed cost (~0.1 ms) dominates small molecules
#: (benchmarks/electrostatics_operators.py).
UNION_FIND_MAX_BONDS = 512


def molecules_of_bonds(bonds: np.ndarray, n_atoms: int) -> np.ndarray:
    """Molecule index [n_atoms] (int64 NumPy) of each atom: the connected components of
    ``bonds`` [2, n_bonds], numbered in order of their first atom."""
    if bonds.shape[1] <= UNION_FIND_MAX_BONDS:
        return _components_by_union_find(bonds, n_atoms)
    adjacency = coo_matrix(
        (np.ones(bonds.shape[1], dtype=np.int8), (bonds[0], bonds[1])), shape=(n_atoms,) * 2
    )
    # scipy labels components in order of their first atom (it starts from atoms in order)
    _, labels = connected_components(adjacency, directed=False)
    return labels.astype(np.int64)


def _components_by_union_find(bonds: np.ndarray, n_atoms: int) -> np.ndarray:
    """:func:`molecules_of_bonds` by union-find with path halving, each component's root its
    lowest atom, so ordering the roots orders the components by their first atom."""
    root = list(range(n_atoms))

    def find(atom: int) -> int:
        while root[atom] != atom:
            root[atom] = root[root[atom]]
            atom = root[atom]
        return atom

    for a, b in zip(bonds[0].tolist(), bonds[1].tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            root[max(ra, rb)] = min(ra, rb)
    roots = np.fromiter((find(atom) for atom in range(n_atoms)), np.int64, n_atoms)
    numbered = np.cumsum(roots == np.arange(n_atoms)) - 1  # a root's rank among the roots
    return numbered[roots]


def covalent_molecules(
    numbers: torch.Tensor, edge_index: torch.Tensor, lengths: torch.Tensor, batch: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Molecules of a batch: connected components of its covalent bonds.

    Args:
        numbers: [n_atoms] atomic numbers; edge_index: [2, n_edges] atom pairs (any image);
        lengths: [n_edges] pair distances in Å; batch: [n_atoms] structure index.

    Returns:
        ``molecule`` [n_atoms] molecule index (numbered in order of first atom) and ``owner``
        [n_molecules] the structure of each molecule, int64 on ``batch``'s device.
    """
    labels = molecules_of_bonds(bonded_pairs(numbers, edge_index, lengths), batch.shape[0])
    molecule = torch.as_tensor(labels, dtype=torch.int64, device=batch.device)
    n_molecules = int(labels.max()) + 1 if len(labels) else 0
    owner = torch.zeros(n_molecules, dtype=torch.int64, device=batch.device)
    owner[molecule] = batch
    return molecule, owner


def slots_of(molecule: np.ndarray) -> torch.Tensor:
    """The owner of each slot of one structure's molecules (:func:`molecules_of_bonds`
    labels), one slot per atom for callers that need fixed shapes (graph replay): [n_atoms]
    int64 on the CPU, 0 for a slot holding a molecule, −1 for an unused one."""
    n_atoms = molecule.shape[0]
    n_molecules = int(molecule.max()) + 1 if n_atoms else 0
    slots = torch.full((n_atoms,), -1, dtype=torch.int64)
    slots[:n_molecules] = 0
    return slots


def integer_charges(
    charges: torch.Tensor,
    group: torch.Tensor,
    owner: torch.Tensor,
    total_charge: torch.Tensor,
    numbers: torch.Tensor,
) -> torch.Tensor:
    """Formal (integer) charges [n_groups] (e) of molecules, summing to each structure's Q.

    Args:
        charges: [n_atoms] structure-wide equilibrium charges (e; detached here).
        group: [n_atoms] molecule index; owner: [n_groups] each molecule's structure.
        total_charge: [n_graphs] Q (e); numbers: [n_atoms] atomic numbers.

    :func:`formal_charges` of the molecules' summed equilibrium charges, on ``charges``'
    device and dtype. Piecewise constant in the geometry.
    """
    sums = scatter_sum(charges.detach().double(), group, owner.shape[0])
    formal = formal_charges(sums, group, owner, total_charge, numbers)
    return formal.to(dtype=charges.dtype, device=charges.device)


class FormalChargeRule:
    """The rule that gives molecules their formal (integer) charges (e) from their summed
    structure-wide equilibrium charges, for one set of molecules: what depends on the molecules
    alone (sizes, lone ions, owners, each structure's Q) is found once, so a caller that keeps
    its molecules across calls (graph replay) applies the rule for the price of a rounding.

    Args:
        group: [n_atoms] molecule index; owner: [n_groups] each molecule's structure (−1: an
            unused slot, which keeps its sum).
        total_charge: [n_graphs] Q (e); numbers: [n_atoms] atomic numbers.

    A lone atom of :data:`MONATOMIC_CHARGES` gets its ion's charge, any other molecule the
    nearest integer to its sum; then units are moved one at a time, to (from) the molecule whose
    formal charge lies furthest below (above) its sum, until the structure's molecules sum to Q.
    A structure with a non-integer Q keeps the fractional sums.
    """

    def __init__(
        self,
        group: torch.Tensor,
        owner: torch.Tensor,
        total_charge: torch.Tensor,
        numbers: torch.Tensor,
    ) -> None:
        group_np = group.cpu().numpy()
        self.n_groups = owner.shape[0]
        sizes = np.bincount(group_np, minlength=self.n_groups)
        lone = np.zeros(self.n_groups, dtype=np.int64)
        lone[group_np] = numbers.cpu().numpy()
        monatomic = _MONATOMIC_TABLE[lone]
        self.lone_ion = (sizes == 1) & ~np.isnan(monatomic)
        self.ion_charges = monatomic[self.lone_ion]
        structure = owner.cpu().numpy()
        #: (members, Q) of each structure with molecules and an integer Q
        self.structures: list[tuple[np.ndarray, float]] = []
        for g, q_total in enumerate(total_charge.detach().double().cpu().numpy().tolist()):
            members = np.flatnonzero(structure == g)
            if len(members) and abs(q_total - round(q_total)) <= INTEGER_TOLERANCE:
                self.structures.append((members, q_total))

    def __call__(self, sums: torch.Tensor) -> torch.Tensor:
        """Formal charges [n_groups] (e, float64, CPU) for the molecules' summed equilibrium
        charges ``sums`` [n_groups] (e)."""
        sums = sums.detach().double().cpu().numpy()
        formal = np.rint(sums)
        formal[self.lone_ion] = self.ion_charges
        out = sums.copy()
        for members, q_total in self.structures:
            chosen = formal[members]
            for _ in range(int(round(abs(q_total - chosen.sum())))):
                step = 1.0 if q_total > chosen.sum() else -1.0
                gap = (sums[members] - chosen) * step  # how far each lies short in that direction
                chosen[int(np.argmax(gap))] += step
            out[members] = chosen
        return torch.as_tensor(out, dtype=torch.float64)


def formal_charges(
    sums: torch.Tensor,
    group: torch.Tensor,
    owner: torch.Tensor,
    total_charge: torch.Tensor,
    numbers: torch.Tensor,
) -> torch.Tensor:
    """Formal (integer) charges [n_groups] (e, float64, CPU) of molecules from their summed
    structure-wide equilibrium charges ``sums`` [n_groups] (e): :class:`FormalChargeRule` of
    the molecules (``group``, ``owner``, ``total_charge``, ``numbers``: its arguments)."""
    return FormalChargeRule(group, owner, total_charge, numbers)(sums)


class PerMolecule(NamedTuple):
    """:func:`equilibrate_per_molecule`'s results."""

    charges: torch.Tensor  # [n_atoms] equilibrated per molecule (e)
    sums: torch.Tensor | None  # [n_groups] given molecules' summed structure-wide charges (e)
    whole_structures: bool  # every structure is one molecule (then no charge can flow)


def equilibrate_per_molecule(
    chi: torch.Tensor,
    hardness: torch.Tensor,
    charges: torch.Tensor,
    graph: AtomGraph,
    lengths: torch.Tensor,
) -> PerMolecule:
    """Charges [n_atoms] (e) equilibrated per molecule at the molecules' formal charges.

    Args:
        chi, hardness: [n_atoms] χ (V) and J (V/e); charges: [n_atoms] the structure-wide
            equilibrium (e); lengths: [n_edges] pair distances (Å) of ``graph``'s edges.

    The molecules and formal charges are the graph's own where it brings them
    (``graph.molecules``, graph replay), and then each molecule's summed structure-wide charge
    [n_groups] comes back too, for the caller to check them; else they are found here
    (:func:`covalent_molecules`, :func:`integer_charges`) and ``sums`` is None. A batch whose
    every structure is one molecule keeps ``charges`` (``whole_structures``): there μ = χ + J q
    is one constant per structure, so :func:`transfer_charges` would move nothing (L_w μ = 0,
    and its derivatives vanish with it) and the caller may skip it.
    """
    if graph.molecules is not None and graph.molecule_charges is not None:
        n_groups = graph.molecule_charges.shape[0]
        sums = scatter_sum(charges.detach(), graph.molecules, n_groups)
        totals = graph.molecule_charges.to(charges.dtype)
        return PerMolecule(
            equilibrate(chi, hardness, totals, graph.molecules, n_groups), sums, False
        )
    molecule, owner = covalent_molecules(graph.numbers, graph.edge_index, lengths, graph.batch)
    if owner.shape[0] == graph.n_graphs:
        return PerMolecule(charges, None, True)
    total = graph.total_charge.to(charges.dtype)
    totals = integer_charges(charges, molecule, owner, total, graph.numbers)
    return PerMolecule(equilibrate(chi, hardness, totals, molecule, owner.shape[0]), None, False)


def transfer_charges(
    charges: torch.Tensor,
    chi: torch.Tensor,
    hardness: torch.Tensor,
    laplacian: GraphLaplacian,
    strength: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of charge flow down the chemical-potential gradient on the graph.

    Args:
        charges: [n_atoms] q_m (e); chi: [n_atoms] χ (V); hardness: [n_atoms] J (V/e).
        laplacian: L_w of the batch (edge weights in 1/Å, zero at the cutoff).
        strength: s (e/V·Å), scalar > 0.

    Returns:
        q = q_m − s L_w μ [n_atoms] (e; every connected component keeps its total) and each
        atom's share ½ s μ_i (L_w μ)_i of the transfer energy [n_atoms] (eV), μ = χ + J q_m.
    """
    potential = chi + hardness * charges
    flow = laplacian.matvec(potential)
    return charges - strength * flow, 0.5 * strength * potential * flow
