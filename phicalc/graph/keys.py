"""Names, shapes and conventions of the graph tensors (one place, used everywhere).

Conventions
-----------
* The cell is stored as ASE rows: ``cell[g, a]`` is lattice vector *a* of structure *g*, in Å.
* ``edge_index[0]`` is atom *i* (the first index of the neighbour list, the sender), ``edge_index[1]``
  is atom *j* (the receiver). Messages are summed at the receiver.
* The edge vector is ``positions[j] - positions[i] + unit_shifts @ cell[batch[i]]`` (Å); it is always
  recomputed from positions and cell so that forces and stress flow through them.
* The neighbour list is full (both i→j and j→i) and never truncated; an atom's own periodic images
  are edges, its zero-shift self pair is not.
"""

from __future__ import annotations

from typing import Final

POSITIONS: Final[str] = "positions"  # [n_atoms, 3] Cartesian positions, Å
NUMBERS: Final[str] = "numbers"  # [n_atoms] atomic numbers Z (int64)
CELL: Final[str] = "cell"  # [n_graphs, 3, 3] rows are lattice vectors, Å (zeros if open)
PBC: Final[str] = "pbc"  # [n_graphs, 3] periodic along each lattice vector (bool)
BATCH: Final[str] = "batch"  # [n_atoms] index of the structure each atom belongs to
EDGE_INDEX: Final[str] = "edge_index"  # [2, n_edges] (i, j): sender i, receiver j
UNIT_SHIFTS: Final[str] = "unit_shifts"  # [n_edges, 3] integer lattice shifts of j
TOTAL_CHARGE: Final[str] = "total_charge"  # [n_graphs] total charge Q, e

ENERGY: Final[str] = "energy"  # [n_graphs] eV
ENERGIES: Final[str] = "energies"  # [n_atoms] per-atom energies, eV (sum = energy)
FORCES: Final[str] = "forces"  # [n_atoms, 3] eV/Å
STRESS: Final[str] = "stress"  # [n_graphs, 3, 3] eV/Å³, σ = (1/V) ∂E/∂ε
CHARGES: Final[str] = "charges"  # [n_atoms] learned partial charges ρ, e
POTENTIALS: Final[str] = "potentials"  # [n_atoms] electrostatic potential φ, V
ELECTROSTATIC_ENERGY: Final[str] = "electrostatic_energy"  # [n_graphs] E_ES, eV
DIPOLE: Final[str] = "dipole"  # [n_graphs, 3] Σ q (r − r_com), e·Å
