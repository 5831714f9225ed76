"""Units used inside phicalc: eV, Å, e, V (= eV/e), time in ASE units.

Every constant is derived from :mod:`ase.units` (CODATA version pinned there); none is typed in.
"""

from __future__ import annotations

from ase import units

#: Coulomb constant e²/(4πε₀) in eV·Å/e² (≈ 14.3996).
COULOMB: float = units.Hartree * units.Bohr
#: 1 kcal/mol in eV (MD22 energies).
KCAL_PER_MOL: float = units.kcal / units.mol
HARTREE: float = units.Hartree
BOHR: float = units.Bohr
FS: float = units.fs
KB: float = units.kB

__all__ = ["COULOMB", "KCAL_PER_MOL", "HARTREE", "BOHR", "FS", "KB", "units"]
