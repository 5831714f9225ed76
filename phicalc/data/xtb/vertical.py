"""Vertical charge states and the bound-anion filter.

A vertical state is a neutral molecule's geometry labelled at Q = ±1 (multiplicity 2). An anion
whose energy lies above the neutral's at the same geometry, E(−1) > E(0), has a negative
electron affinity: a real molecule would not hold the extra electron. GFN2-xTB's minimal basis
cannot let it leave, so it sits in a valence antibonding orbital and the label measures that
basis artefact (up to +7 eV for saturated molecules and water), not the molecule. Such states
are dropped (reason ``unbound_anion``). Cations are always kept: their vertical ionisation
energies (about 12–17 eV here) are far from zero.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ase import Atoms

#: Summary reason for a dropped vertical anion.
UNBOUND_ANION = "unbound_anion"


def is_bound(charge: int, energy: float, neutral_energy: float) -> bool:
    """Whether a vertical state of total charge ``charge`` (e) with energy ``energy`` (eV) is kept,
    given the neutral's energy at the same geometry (eV): anions only below the neutral."""
    return charge >= 0 or energy < neutral_energy


def geometry_key(atoms: Atoms) -> tuple:
    """Atomic numbers and positions rounded to 1e-5 Å: the same geometry labelled twice."""
    return (tuple(atoms.numbers.tolist()), tuple(np.round(atoms.positions, 5).ravel().tolist()))


def neutral_energies(frames: Iterable[Atoms]) -> dict[tuple, float]:
    """Energy (eV) of each labelled neutral frame (Q = 0, not a vertical state) by
    :func:`geometry_key`."""
    return {
        geometry_key(atoms): atoms.get_potential_energy()
        for atoms in frames
        if int(atoms.info.get("charge", 0)) == 0 and atoms.info.get("category") != "vertical"
    }


def drop_unbound_anions(
    frames: Iterable[Atoms], neutrals: Iterable[Atoms]
) -> tuple[list[Atoms], list[Atoms]]:
    """Split labelled frames into kept and dropped: a vertical anion (``info["category"] ==
    "vertical"``, Q = −1) is dropped when :func:`is_bound` says so against the neutral frame of
    the same geometry among ``neutrals`` (labelled, Q = 0). Every other frame is kept.

    Raises:
        ValueError: a vertical anion has no neutral frame of its geometry.
    """
    neutral_energy = neutral_energies(neutrals)
    kept: list[Atoms] = []
    dropped: list[Atoms] = []
    for atoms in frames:
        charge = int(atoms.info.get("charge", 0))
        if atoms.info.get("category") != "vertical" or charge >= 0:
            kept.append(atoms)
            continue
        key = geometry_key(atoms)
        if key not in neutral_energy:
            raise ValueError(
                f"vertical anion of {atoms.info.get('species', atoms.get_chemical_formula())!r} "
                "has no labelled neutral frame at its geometry among the neutrals given"
            )
        bound = is_bound(charge, atoms.get_potential_energy(), neutral_energy[key])
        (kept if bound else dropped).append(atoms)
    return kept, dropped
