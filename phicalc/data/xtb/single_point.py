"""Single-point GFN2-xTB (tblite) labels: the calculator, unit conversion and the record.

Labels, all converted to phicalc units by tblite's ASE calculator: energy (eV), forces (eV/Å),
Mulliken charges (e) as ``arrays["ref_charges"]``, dipole (e·Å, about the centre of mass, the
convention of the model's ``dipole`` output; tblite reports it about the coordinate origin, which
differs by Q·r_com for an ion) as ``info["ref_dipole"]``; ``info["method"]`` names the
Hamiltonian. Records are :func:`phicalc.data.datasets.make_record` records.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from ase import Atoms

from phicalc.data.datasets import make_record
from phicalc.errors import DatasetError

logger = logging.getLogger(__name__)

#: Largest force (eV/Å) accepted in a sampled frame; more means the dynamics blew up.
MAX_FORCE = 50.0


@contextlib.contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Limit OpenMP/BLAS threads (tblite's) inside the block; ``None`` leaves them alone.

    Small molecules gain nothing from threads, and on a busy machine OpenMP spin-waiting makes
    a 42-atom GFN2 step 5-20x slower with 2 threads than with 1. Uses ``threadpoolctl`` (no
    environment variables are touched); without it this is a no-op.
    """
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        logger.debug("threadpoolctl not installed; cannot limit xTB threads")
        yield
        return
    with threadpool_limits(limits=int(threads)):
        yield


def xtb_calculator(
    method: str = "GFN2-xTB",
    *,
    charge: float = 0,
    multiplicity: int | None = None,
    accuracy: float = 1.0,
    electronic_temperature_K: float = 300.0,
    max_iterations: int = 250,
):
    """A silent ``tblite.ase.TBLite`` calculator.

    Args:
        method: ``"GFN2-xTB"``, ``"GFN1-xTB"`` or ``"IPEA1-xTB"``.
        charge: total charge, e.
        multiplicity: spin multiplicity 2S+1 (default: from initial magnetic moments, i.e. 1).
        accuracy: tblite numerical accuracy (smaller is tighter).
        electronic_temperature_K: Fermi smearing temperature, K.
        max_iterations: SCF iteration limit.

    Raises:
        ImportError: tblite is not installed (``pip install 'phicalc[data]'``).
    """
    try:
        from tblite.ase import TBLite
    except ImportError as error:
        raise ImportError("xTB labelling needs tblite: pip install 'phicalc[data]'") from error
    allowed = ("GFN2-xTB", "GFN1-xTB", "IPEA1-xTB")
    if method not in allowed:
        raise ValueError(f"method must be one of {allowed}, got {method!r}")
    return TBLite(
        method=method,
        charge=charge,
        multiplicity=multiplicity,
        accuracy=accuracy,
        electronic_temperature=electronic_temperature_K,
        max_iterations=max_iterations,
        verbosity=0,
    )


def _labels(atoms: Atoms) -> dict[str, np.ndarray | float]:
    """Energy, forces, charges, dipole of ``atoms`` from its (xTB) calculator, cached if current."""
    calc = atoms.calc
    return {
        "energy": float(calc.get_property("energy", atoms)),
        "forces": np.array(calc.get_property("forces", atoms)),
        "charges": np.array(calc.get_property("charges", atoms)),
        "dipole": np.array(calc.get_property("dipole", atoms)),
    }


def xtb_record(atoms: Atoms, info: dict[str, Any]) -> Atoms:
    """A record of ``atoms`` labelled by its (xTB) calculator, with provenance ``info``.

    Raises:
        DatasetError: a force above :data:`MAX_FORCE` (an unphysical geometry).
    """
    labels = _labels(atoms)
    max_force = float(np.abs(labels["forces"]).max()) if len(atoms) else 0.0
    if not np.isfinite(max_force) or max_force > MAX_FORCE:
        raise DatasetError(
            f"xTB force {max_force:.1f} eV/Å exceeds {MAX_FORCE} eV/Å in {info.get('molecule')!r} "
            f"(step {info.get('md_step')}): the geometry is unphysical"
        )
    snapshot = Atoms(
        numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc
    )
    snapshot.info.update({k: v for k, v in atoms.info.items() if k in ("smiles", "name")})
    total_charge = float(atoms.info.get("charge", 0))
    dipole_com = labels["dipole"] - total_charge * snapshot.get_center_of_mass()
    return make_record(
        snapshot,
        energy=labels["energy"],
        forces=labels["forces"],
        charges=labels["charges"],
        dipole=dipole_com,
        total_charge=atoms.info.get("charge", 0),
        info=info,
    )


def label_structure(
    atoms: Atoms,
    *,
    method: str = "GFN2-xTB",
    info: dict[str, Any] | None = None,
    calc=None,
    threads: int | None = 1,
) -> Atoms:
    """Single-point xTB labels for one structure.

    Args:
        atoms: the structure (not modified); total charge from ``info["charge"]``.
        method: xTB Hamiltonian.
        info: provenance merged into the record's ``info``.
        calc: a calculator to reuse (default: a new :func:`xtb_calculator`).
        threads: OpenMP threads for xTB (:func:`limit_threads`; ``None`` = library default).

    Returns:
        A record (:func:`phicalc.data.datasets.make_record`) with energy, forces, Mulliken
        ``ref_charges`` and ``ref_dipole``, and ``info["method"]``.
    """
    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.info.update(atoms.info)
    work.calc = (
        calc if calc is not None else xtb_calculator(method, charge=atoms.info.get("charge", 0))
    )
    with limit_threads(threads):
        return xtb_record(work, {"method": method, **(info or {})})


def optimize_structure(
    atoms: Atoms, *, method: str = "GFN2-xTB", fmax: float = 0.01, steps: int = 500
) -> Atoms:
    """Relax a structure with xTB (ASE BFGS, ``fmax`` in eV/Å); returns a relaxed copy."""
    from ase.optimize import BFGS

    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.info.update(atoms.info)
    work.calc = xtb_calculator(method, charge=atoms.info.get("charge", 0))
    converged = BFGS(work, logfile=None).run(fmax=fmax, steps=steps)
    if not converged:
        logger.warning("xTB relaxation stopped after %d steps above fmax=%g eV/Å", steps, fmax)
    work.calc = None
    return work


def hessian(atoms: Atoms, *, method: str = "GFN2-xTB", delta_A: float = 0.005) -> np.ndarray:
    """[3n, 3n] xTB Hessian (eV/Å²) by central differences of the forces, symmetrised."""
    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.calc = xtb_calculator(method, charge=atoms.info.get("charge", 0))
    n = len(work)
    matrix = np.empty((3 * n, 3 * n))
    reference = work.positions.copy()
    for a in range(n):
        for d in range(3):
            forces = []
            for sign in (1.0, -1.0):
                work.positions = reference
                work.positions[a, d] += sign * delta_A
                forces.append(work.get_forces().reshape(-1))
            matrix[:, 3 * a + d] = -(forces[0] - forces[1]) / (2 * delta_A)
    return 0.5 * (matrix + matrix.T)
