"""Labelled structures ("records") on disk and in memory, and their graphs for training.

A **record** is an :class:`ase.Atoms` labelled the ASE way, the form every loader returns and the
graph builder (:func:`phicalc.graph.batch.reference_targets`) reads:

* ``atoms.calc``: a :class:`~ase.calculators.singlepoint.SinglePointCalculator` holding the
  reference ``energy`` (eV), ``forces`` [n_atoms, 3] (eV/Å) and, if known, ``dipole`` [3] (e·Å),
  so ``atoms.get_potential_energy()`` and ``atoms.get_forces()`` return the labels.
* ``atoms.arrays["ref_charges"]``: [n_atoms] reference partial charges, e (Hirshfeld, Mulliken, ...).
* ``atoms.info["ref_dipole"]``: [3] reference dipole, e·Å (mirrored in the calculator's ``dipole``).
* ``atoms.info["charge"]``: total charge Q, e (0 when absent).
* ``atoms.info["has_forces"]``: ``False`` for energy-only data (OE62); absent or ``True`` otherwise.
* Provenance (``dataset``, ``split``, ``method``, ``temperature_K``, ``seed``, ...) in ``atoms.info``.

Files: extended XYZ (written by :func:`write_structures`), ASE databases (``.db``) and any other
format :func:`ase.io.read` understands. In extxyz the reference dipole is stored once, as
``ref_dipole``; reading restores the calculator's ``dipole``. Reference charges found as a
calculator ``charges`` column are moved to ``ref_charges`` so that one place holds them.

Note that :meth:`ase.Atoms.copy` drops the calculator, hence the labels; use :func:`copy_record`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from phicalc.errors import DatasetError
from phicalc.graph.batch import AtomGraph, atoms_to_graph

logger = logging.getLogger(__name__)

REF_CHARGES = "ref_charges"  # atoms.arrays: [n_atoms] reference partial charges, e
REF_DIPOLE = "ref_dipole"  # atoms.info: [3] reference dipole, e·Å
TOTAL_CHARGE = "charge"  # atoms.info: total charge Q, e
HAS_FORCES = "has_forces"  # atoms.info: False for energy-only records

_DB_SUFFIXES = (".db", ".json.db")


def make_record(
    atoms: Atoms,
    *,
    energy: float | None = None,
    forces: np.ndarray | None = None,
    charges: np.ndarray | None = None,
    dipole: np.ndarray | None = None,
    total_charge: float | None = None,
    info: Mapping[str, Any] | None = None,
    copy: bool = True,
) -> Atoms:
    """A labelled copy of ``atoms`` (geometry, cell, pbc and info kept, old calculator dropped).

    Args:
        atoms: the structure.
        energy: reference energy, eV.
        forces: [n_atoms, 3] reference forces, eV/Å. ``None`` marks the record energy-only
            (``info["has_forces"] = False``) when an energy is given.
        charges: [n_atoms] reference partial charges, e → ``arrays["ref_charges"]``.
        dipole: [3] reference dipole, e·Å → ``info["ref_dipole"]`` and the calculator's ``dipole``.
        total_charge: total charge Q, e → ``info["charge"]`` (default: keep the existing value, or 0).
        info: extra provenance merged into ``atoms.info``.
        copy: label a copy (default); ``False`` labels ``atoms`` itself (loaders use it for
            structures they just made).

    Returns:
        The record.
    """
    record = atoms.copy() if copy else atoms
    record.calc = None
    if info:
        record.info.update(info)
    record.info[TOTAL_CHARGE] = (
        total_charge if total_charge is not None else record.info.get(TOTAL_CHARGE, 0)
    )
    results: dict[str, Any] = {}
    if energy is not None:
        results["energy"] = float(energy)
        record.info[HAS_FORCES] = forces is not None
    if forces is not None:
        results["forces"] = np.array(forces, dtype=float)
    if dipole is not None:
        results["dipole"] = np.array(dipole, dtype=float).reshape(3)
        record.info[REF_DIPOLE] = results["dipole"].copy()
    if charges is not None:
        record.arrays[REF_CHARGES] = np.array(charges, dtype=float).reshape(len(record))
    if results:
        record.calc = SinglePointCalculator(record, **results)
    return record


def copy_record(atoms: Atoms) -> Atoms:
    """A deep copy of a record, labels (the SinglePointCalculator results) included."""
    record = atoms.copy()
    if atoms.calc is not None:
        results = {
            k: np.array(v) if isinstance(v, np.ndarray) else v
            for k, v in atoms.calc.results.items()
        }
        record.calc = SinglePointCalculator(record, **results)
    return record


def _normalize(atoms: Atoms) -> Atoms:
    """Bring a record read from disk to the conventions in the module docstring (in place)."""
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    changed = False
    if REF_CHARGES not in atoms.arrays and "charges" in results:
        atoms.arrays[REF_CHARGES] = np.asarray(results["charges"], dtype=float).copy()
    if "charges" in results:
        del results["charges"]
        changed = True
    if REF_DIPOLE in atoms.info:
        atoms.info[REF_DIPOLE] = np.asarray(atoms.info[REF_DIPOLE], dtype=float).reshape(-1)
        if "dipole" not in results:
            results["dipole"] = atoms.info[REF_DIPOLE].copy()
            changed = True
    elif "dipole" in results:
        atoms.info[REF_DIPOLE] = np.asarray(results["dipole"], dtype=float).copy()
    if HAS_FORCES in atoms.info:
        atoms.info[HAS_FORCES] = bool(atoms.info[HAS_FORCES])
    if changed:
        atoms.calc = SinglePointCalculator(atoms, **results) if results else None
    return atoms


def validate_record(
    atoms: Atoms, *, require_labels: bool = False, where: str = "structure"
) -> None:
    """Check shapes and finiteness of a record's geometry and labels.

    Args:
        atoms: the record.
        require_labels: require an energy, and forces unless ``info["has_forces"]`` is False.
        where: prefix of the error message (file and structure index).

    Raises:
        DatasetError: naming ``where`` and the problem.
    """
    n = len(atoms)
    if n == 0:
        raise DatasetError(f"{where}: has no atoms")
    if not np.all(np.isfinite(atoms.positions)):
        raise DatasetError(f"{where}: positions contain NaN or infinite values")
    results = atoms.calc.results if atoms.calc is not None else {}
    if "energy" in results:
        energy = np.asarray(results["energy"], dtype=float)
        if energy.size != 1 or not np.isfinite(energy).all():
            raise DatasetError(f"{where}: energy {results['energy']!r} is not a finite number")
    elif require_labels:
        raise DatasetError(f"{where}: missing reference energy")
    if "forces" in results:
        forces = np.asarray(results["forces"], dtype=float)
        if forces.shape != (n, 3):
            raise DatasetError(f"{where}: forces have shape {forces.shape}, expected ({n}, 3)")
        if not np.isfinite(forces).all():
            raise DatasetError(f"{where}: forces contain NaN or infinite values")
    elif require_labels and atoms.info.get(HAS_FORCES, True):
        raise DatasetError(
            f"{where}: missing reference forces (mark energy-only data has_forces=False)"
        )
    if REF_CHARGES in atoms.arrays:
        charges = np.asarray(atoms.arrays[REF_CHARGES], dtype=float)
        if charges.shape != (n,):
            raise DatasetError(f"{where}: ref_charges have shape {charges.shape}, expected ({n},)")
        if not np.isfinite(charges).all():
            raise DatasetError(f"{where}: ref_charges contain NaN or infinite values")
    if REF_DIPOLE in atoms.info:
        dipole = np.asarray(atoms.info[REF_DIPOLE], dtype=float)
        if dipole.shape != (3,) or not np.isfinite(dipole).all():
            raise DatasetError(f"{where}: ref_dipole {dipole.tolist()} is not 3 finite numbers")
    charge = atoms.info.get(TOTAL_CHARGE, 0)
    try:
        ok = np.isfinite(float(charge))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DatasetError(f"{where}: total charge {charge!r} is not a finite number")


def _is_db(path: Path) -> bool:
    return path.name.endswith(_DB_SUFFIXES)


def _parse_index(index: int | slice | str) -> int | slice:
    if isinstance(index, (int, slice)):
        return index
    from ase.io.formats import string2index

    parsed = string2index(index)
    if isinstance(parsed, str):
        raise ValueError(f"index {index!r} is not an int or a slice like ':' or '0:10'")
    return parsed


def _read_db(path: Path, index: int | slice) -> list[Atoms]:
    from ase.db import connect

    with connect(path) as db:
        rows = list(db.select())
    chosen = [rows[index]] if isinstance(index, int) else rows[index]
    structures = []
    for row in chosen:
        atoms = row.toatoms()
        atoms.info.update(row.key_value_pairs)
        data = row.data or {}
        atoms.info.update(data.get("info", {}))
        for name, value in data.get("arrays", {}).items():
            atoms.arrays[name] = np.array(value)  # writable copy
        structures.append(copy_record(atoms))
    return structures


def read_structures(
    path: str | os.PathLike,
    index: int | slice | str = ":",
    *,
    format: str | None = None,
    require_labels: bool = False,
) -> list[Atoms]:
    """Read records from an extxyz file, an ASE database (``.db``) or any ASE-readable file.

    Args:
        path: the file.
        index: which structures, ASE style (``":"``, ``"-1"``, ``"0:100:2"``, an int or a slice).
        format: ASE format name; default: guessed from the file.
        require_labels: require a reference energy and forces in every structure (forces not
            required where ``info["has_forces"]`` is False).

    Returns:
        Records (see the module docstring); labels via ``get_potential_energy()`` /
        ``get_forces()``, reference charges in ``arrays["ref_charges"]``, dipole in
        ``info["ref_dipole"]``, total charge in ``info["charge"]``.

    Raises:
        DatasetError: the file is missing, unreadable, empty, or a record is malformed; the
            message names the file, the structure and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory, expected a structure file")
    try:
        parsed = _parse_index(index)
        if _is_db(path) and format in (None, "db"):
            structures = _read_db(path, parsed)
        else:
            import ase.io

            result = ase.io.read(path, index=parsed, format=format)
            structures = [result] if isinstance(result, Atoms) else list(result)
    except DatasetError:
        raise
    except Exception as error:  # ASE raises many types for bad files
        raise DatasetError(
            f"{path}: cannot read structures: {type(error).__name__}: {error}"
        ) from error
    if not structures:
        raise DatasetError(f"{path}: no structures found (index {index!r})")
    selection = "" if index == ":" else f" of selection {index!r}"
    for i, atoms in enumerate(structures):
        _normalize(atoms)
        where = f"{path}: structure {i}{selection}"
        validate_record(atoms, require_labels=require_labels, where=where)
    logger.debug("read %d structures from %s", len(structures), path)
    return structures


def _extxyz_ready(atoms: Atoms) -> Atoms:
    """A copy for extxyz: the dipole kept once (``ref_dipole``), arrays made numeric, backslashes
    in strings escaped."""
    record = copy_record(atoms)
    if record.calc is not None and REF_DIPOLE in record.info and "dipole" in record.calc.results:
        results = dict(record.calc.results)
        del results["dipole"]
        record.calc = SinglePointCalculator(record, **results) if results else None
    for key, value in list(record.info.items()):
        if isinstance(value, (bool, np.bool_)):
            record.info[key] = bool(value)
        elif isinstance(value, str) and "\\" in value:  # ASE's reader unescapes, its writer not
            record.info[key] = value.replace("\\", "\\\\")  # (a cis SMILES keeps its \)
    return record


def _write_db(path: Path, structures: Sequence[Atoms], append: bool) -> None:
    from ase.db import connect
    from ase.db.core import reserved_keys

    if not append and path.exists():
        path.unlink()
    with connect(path, append=True) as db:
        for atoms in structures:
            key_value_pairs, info = {}, {}
            for key, value in atoms.info.items():
                simple = isinstance(
                    value, (str, bool, int, float, np.integer, np.floating, np.bool_)
                )
                if simple and key.isidentifier() and key not in reserved_keys:
                    key_value_pairs[key] = value.item() if isinstance(value, np.generic) else value
                else:
                    info[key] = value
            arrays = {k: v for k, v in atoms.arrays.items() if k not in ("numbers", "positions")}
            arrays.pop("momenta", None)
            db.write(atoms, key_value_pairs=key_value_pairs, data={"info": info, "arrays": arrays})


def write_structures(
    path: str | os.PathLike,
    structures: Atoms | Sequence[Atoms],
    *,
    append: bool = False,
) -> None:
    """Write records as extended XYZ (or an ASE database when ``path`` ends in ``.db``).

    Labels, ``ref_charges``, ``ref_dipole``, total charge and provenance are kept, so
    ``read_structures(path)`` returns equal records. Parent folders are created.

    Args:
        path: output file; ``.db`` → ASE database, anything else → extxyz.
        structures: one record or several.
        append: add to an existing file instead of replacing it.
    """
    path = Path(path)
    if isinstance(structures, Atoms):
        structures = [structures]
    for i, atoms in enumerate(structures):
        validate_record(atoms, where=f"writing {path}: structure {i}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if _is_db(path):
        _write_db(path, structures, append)
        return
    import ase.io

    ase.io.write(path, [_extxyz_ready(a) for a in structures], format="extxyz", append=append)


class GraphDataset(Sequence[AtomGraph]):
    """Graphs of a list of records, built on first access with ``atoms_to_graph`` and cached.

    Each item is a one-structure :class:`~phicalc.graph.batch.AtomGraph` with ``targets``
    (``energy`` [1] eV, ``forces`` [n_atoms, 3] eV/Å, ``charges`` [n_atoms] e, ``dipole`` [1, 3]
    e·Å, whichever the record holds). Batch them with :func:`plan_batches` and
    :func:`phicalc.graph.collate`.

    Args:
        structures: records (see the module docstring); not copied, not modified.
        cutoff: neighbour-list radius, Å (the model's cutoff).
        dtype: floating dtype of positions, cell and targets (default float64).
        with_targets: attach the reference labels.
        cache: keep built graphs in memory (default True).
    """

    def __init__(
        self,
        structures: Sequence[Atoms],
        cutoff: float,
        *,
        dtype: torch.dtype = torch.float64,
        with_targets: bool = True,
        cache: bool = True,
    ) -> None:
        if not cutoff > 0:
            raise ValueError(f"cutoff must be > 0 Å, got {cutoff}")
        self.structures = list(structures)
        self.cutoff = float(cutoff)
        self.dtype = dtype
        self.with_targets = with_targets
        self.cache = cache
        self._graphs: dict[int, AtomGraph] = {}

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        cutoff: float,
        *,
        index: int | slice | str = ":",
        require_labels: bool = True,
        **kwargs: Any,
    ) -> GraphDataset:
        """Read records with :func:`read_structures` and wrap them (``kwargs`` go to ``__init__``)."""
        return cls(read_structures(path, index, require_labels=require_labels), cutoff, **kwargs)

    def __len__(self) -> int:
        return len(self.structures)

    def __getitem__(self, index: int) -> AtomGraph:  # type: ignore[override]
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"GraphDataset index must be an int, got {type(index).__name__}")
        n = len(self.structures)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} structures")
        index = int(index) % n
        graph = self._graphs.get(index)
        if graph is None:
            graph = atoms_to_graph(
                self.structures[index],
                self.cutoff,
                dtype=self.dtype,
                with_targets=self.with_targets,
            )
            if self.cache:
                self._graphs[index] = graph
        return graph

    def __repr__(self) -> str:
        return (
            f"GraphDataset(n_structures={len(self)}, cutoff={self.cutoff}, dtype={self.dtype}, "
            f"with_targets={self.with_targets}, cache={self.cache})"
        )


def plan_batches(
    n: int,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> list[np.ndarray]:
    """Indices of this process's share of every global batch of one pass over ``n`` structures.

    The order is ``numpy.random.default_rng(seed).permutation(n)`` when ``shuffle`` (a function
    of ``seed`` only; pass e.g. one derived from the epoch for a new order every epoch), else
    ``arange(n)``. It is cut into global batches of ``batch_size × world_size`` structures, and
    each global batch into ``world_size`` contiguous parts (``numpy.array_split``); process
    ``rank`` gets part ``rank``. Every process gets the same number of entries (possibly empty
    ones at the end), so collective calls stay matched. Collate a batch with
    ``collate([dataset[int(i)] for i in indices])``.

    Args:
        n: number of structures.
        batch_size: structures per batch and process.
        shuffle: permute the order.
        seed: permutation seed (e.g. ``seed + epoch``).
        rank: this process.
        world_size: number of processes.

    Returns:
        One int64 index array per optimisation step.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    step = batch_size * world_size
    return [
        np.array_split(order[start : start + step], world_size)[rank].astype(np.int64)
        for start in range(0, n, step)
    ]


def records_fingerprint(records: Sequence[Atoms]) -> str:
    """SHA-256 (first 16 hex digits) of numbers, positions and energies: detects changed data
    (a training run's data, an MD run's start structure)."""
    digest = hashlib.sha256()
    for atoms in records:
        digest.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
        energy = atoms.calc.results.get("energy") if atoms.calc is not None else None
        digest.update(np.float64(np.nan if energy is None else energy).tobytes())
    return digest.hexdigest()[:16]
