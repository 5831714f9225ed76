"""OE62 (Stuke et al., Sci. Data 7, 58 (2020)): 61,489 organic molecules with PBE0 energies.

Reads the release table ``df_62k.json`` exactly as published (``pandas.read_json(path,
orient="split")``). Columns used:

* ``xyz_pbe_relaxed``: XYZ text of the PBE-relaxed geometry, Å;
* ``total_energy_pbe0_vac_tier2``: PBE0 total energy in vacuum (FHI-aims tier 2), eV;
* ``hirshfeld_pbe0_vac_tier2``: per-atom Hirshfeld charges, e;
* ``refcode_csd`` and ``canonical_smiles`` when present, as provenance.

Standard split (EwaldMP, Φ-Module): ``df.sample(frac=1, random_state=42)``, then the first 50,000
molecules train, the next 6,000 validation, the remaining 5,489 test. A table of another size uses
the same fractions (:func:`phicalc.data.splits.oe62_split_sizes`).

Per-element linear reference: E ≈ Σ_Z n_Z e_Z, fitted by least squares on the **training split
only** (the public reference code fits on all molecules, test included) and subtracted from every
energy when ``linear_reference=True``. OE62 has no forces: records are energy-only
(``info["has_forces"] = False``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from phicalc.data.datasets import make_record
from phicalc.data.splits import check_split, oe62_split_sizes, split_ordered
from phicalc.errors import DatasetError

logger = logging.getLogger(__name__)

GEOMETRY_COLUMN = "xyz_pbe_relaxed"
ENERGY_COLUMN = "total_energy_pbe0_vac_tier2"
CHARGES_COLUMN = "hirshfeld_pbe0_vac_tier2"
REQUIRED_COLUMNS = (GEOMETRY_COLUMN, ENERGY_COLUMN, CHARGES_COLUMN)
#: Seed of the standard shuffle ``df.sample(frac=1, random_state=42)``.
SPLIT_SEED = 42


def read_oe62_table(path: str | os.PathLike):
    """Read ``df_62k.json`` (or a table in the same format) into a pandas DataFrame.

    Raises:
        DatasetError: missing file, not a split-oriented JSON table, or missing columns.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        df = pd.read_json(path, orient="split")
    except Exception as error:  # pandas raises ValueError/KeyError/... for foreign JSON
        raise DatasetError(
            f"{path}: not an OE62 table (pandas.read_json(orient='split') failed: {error})"
        ) from error
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing OE62 column(s) {missing}; found {list(df.columns)[:12]}"
        )
    if len(df) == 0:
        raise DatasetError(f"{path}: the OE62 table has no rows")
    return df


def oe62_split_indices(df) -> dict[str, np.ndarray]:
    """Row positions of the standard split of a table: seed-42 pandas shuffle, then 50k/6k/rest.

    Args:
        df: the OE62 DataFrame (its index labels are not used, only its length).

    Returns:
        ``{"train": pos, "val": pos, "test": pos}``, int64 row positions in shuffled order.
    """
    import pandas as pd

    positions = pd.DataFrame(index=np.arange(len(df)))
    order = positions.sample(frac=1, random_state=SPLIT_SEED).index.to_numpy()
    return split_ordered(order, oe62_split_sizes(len(df)))


def parse_xyz_text(text: str, *, where: str = "XYZ") -> Atoms:
    """Parse XYZ text (``N``, comment line, ``N`` lines ``symbol x y z``; header optional).

    Raises:
        DatasetError: naming ``where`` and the bad line.
    """
    if not isinstance(text, str):
        raise DatasetError(f"{where}: geometry is {type(text).__name__}, expected XYZ text")
    lines = [line for line in text.strip().splitlines()]
    if not lines:
        raise DatasetError(f"{where}: empty XYZ text")
    n_declared = None
    if len(lines[0].split()) == 1:
        try:
            n_declared = int(lines[0])
        except ValueError as error:
            raise DatasetError(f"{where}: bad XYZ atom count {lines[0]!r}") from error
        lines = lines[2:]
    lines = [line for line in lines if line.strip()]
    symbols, positions = [], []
    for line in lines:
        parts = line.split()
        try:
            symbol = parts[0].capitalize()
            xyz = [float(v) for v in parts[1:4]]
            if symbol not in atomic_numbers or len(xyz) != 3:
                raise ValueError
        except (ValueError, IndexError) as error:
            raise DatasetError(f"{where}: bad XYZ line {line!r}") from error
        symbols.append(symbol)
        positions.append(xyz)
    if n_declared is not None and n_declared != len(symbols):
        raise DatasetError(f"{where}: XYZ declares {n_declared} atoms but lists {len(symbols)}")
    if not symbols:
        raise DatasetError(f"{where}: XYZ text has no atoms")
    positions = np.array(positions, dtype=float)
    if not np.isfinite(positions).all():
        raise DatasetError(f"{where}: XYZ coordinates contain NaN or infinite values")
    return Atoms(symbols=symbols, positions=positions)


def composition_matrix(numbers: Sequence[np.ndarray], elements: Sequence[int]) -> np.ndarray:
    """[n_structures, n_elements] count of each element (in ``elements`` order) per structure."""
    column = {int(z): k for k, z in enumerate(elements)}
    counts = np.zeros((len(numbers), len(elements)))
    for i, zs in enumerate(numbers):
        for z, c in zip(*np.unique(zs, return_counts=True)):
            counts[i, column[int(z)]] = c
    return counts


def fit_linear_reference(numbers: Sequence[np.ndarray], energies: np.ndarray) -> dict[int, float]:
    """Least-squares per-element energies e_Z with E ≈ Σ_Z n_Z e_Z (no intercept).

    Args:
        numbers: atomic numbers of each structure.
        energies: [n_structures] energies, eV.

    Returns:
        ``{Z: e_Z}`` in eV for every element present in ``numbers``.
    """
    energies = np.asarray(energies, dtype=float)
    if len(numbers) != len(energies) or len(energies) == 0:
        raise ValueError(
            f"need as many energies ({len(energies)}) as structures ({len(numbers)}), ≥ 1"
        )
    elements = sorted({int(z) for zs in numbers for z in zs})
    counts = composition_matrix(numbers, elements)
    coefficients, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return {z: float(c) for z, c in zip(elements, coefficients)}


def linear_reference_energy(numbers: np.ndarray, reference: dict[int, float]) -> float:
    """Σ_i e_{Z_i} over the atoms, eV; an element missing from ``reference`` counts 0."""
    return float(sum(reference.get(int(z), 0.0) for z in numbers))


def load_oe62(
    path: str | os.PathLike,
    split: str | None = None,
    *,
    linear_reference: bool = True,
) -> list[Atoms]:
    """Load OE62 molecules as energy-only records.

    Args:
        path: ``df_62k.json`` (or a table with the same columns, ``orient="split"``).
        split: ``None`` for all molecules in file order, or ``"train"``/``"val"``/``"test"`` for
            that part of the standard split, in shuffled order.
        linear_reference: subtract the per-element reference fitted on the training split.

    Returns:
        Records: energy (eV; referenced if ``linear_reference``) via ``get_potential_energy()``,
        Hirshfeld charges in ``arrays["ref_charges"]`` (e), no forces (``info["has_forces"]`` is
        False), total charge 0. ``info`` also holds ``dataset="oe62"``, ``split``, ``row`` (row
        position in the file), ``energy_raw`` (the PBE0 total energy, eV), and, with
        ``linear_reference``, ``energy_reference`` (the subtracted Σ e_Z, eV) and the fitted table
        as ``linear_reference_Z`` / ``linear_reference_eV``; ``refcode_csd`` and ``smiles`` when
        the table has them.

    Raises:
        DatasetError: missing file or column, bad XYZ text, non-finite energy, or a Hirshfeld
            charge count that does not match the atom count; the message names file and row.
    """
    check_split(split)
    path = Path(path)
    df = read_oe62_table(path)
    parts = oe62_split_indices(df)
    split_of = np.empty(len(df), dtype=object)
    for name, rows in parts.items():
        split_of[rows] = name
    wanted = np.arange(len(df)) if split is None else parts[split]
    # The reference needs the training molecules even when another split is asked for.
    needed = np.union1d(wanted, parts["train"]) if linear_reference else wanted

    refcodes = df["refcode_csd"].astype(str).to_numpy() if "refcode_csd" in df.columns else None
    smiles = (
        df["canonical_smiles"].astype(str).to_numpy() if "canonical_smiles" in df.columns else None
    )
    geometries = df[GEOMETRY_COLUMN].to_numpy()
    energies = df[ENERGY_COLUMN].to_numpy()
    charges_column = df[CHARGES_COLUMN].to_numpy()
    atoms_of: dict[int, Atoms] = {}
    energy_of: dict[int, float] = {}
    for row in needed:
        row = int(row)
        name = f" ({refcodes[row]})" if refcodes is not None else ""
        where = f"{path}: row {row}{name}"
        atoms = parse_xyz_text(geometries[row], where=where)
        try:
            energy = float(energies[row])
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{where}: energy {energies[row]!r} is not a number") from error
        if not np.isfinite(energy):
            raise DatasetError(f"{where}: energy {ENERGY_COLUMN} is {energy}")
        atoms_of[row] = atoms
        energy_of[row] = energy

    reference: dict[int, float] = {}
    if linear_reference:
        train = [int(r) for r in parts["train"]]
        if not train:
            raise DatasetError(
                f"{path}: the training split is empty; cannot fit a linear reference"
            )
        reference = fit_linear_reference(
            [atoms_of[r].numbers for r in train], np.array([energy_of[r] for r in train])
        )
        unseen = sorted({int(z) for r in wanted for z in atoms_of[int(r)].numbers} - set(reference))
        if unseen:
            logger.warning(
                "%s: elements %s are absent from the training split; their reference energy is 0",
                path,
                [chemical_symbols[z] for z in unseen],
            )
        logger.info(
            "OE62 linear reference (train split, %d molecules): %s",
            len(train),
            {chemical_symbols[z]: round(e, 4) for z, e in reference.items()},
        )
    table_z = np.array(sorted(reference), dtype=np.int64)
    table_e = np.array([reference[int(z)] for z in table_z], dtype=float)

    records = []
    for row in wanted:
        row = int(row)
        atoms = atoms_of[row]
        where = f"{path}: row {row}"
        charges = charges_column[row]
        try:
            charges = np.asarray(charges, dtype=float).reshape(-1)
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{where}: {CHARGES_COLUMN} is not a list of numbers") from error
        if charges.shape != (len(atoms),):
            raise DatasetError(
                f"{where}: {CHARGES_COLUMN} has {charges.size} charges for {len(atoms)} atoms"
            )
        if not np.isfinite(charges).all():
            raise DatasetError(f"{where}: {CHARGES_COLUMN} contains NaN or infinite values")
        info: dict[str, object] = {"dataset": "oe62", "split": split_of[row], "row": row}
        if refcodes is not None:
            info["refcode_csd"] = refcodes[row]
        if smiles is not None:
            info["smiles"] = smiles[row]
        energy = energy_of[row]
        info["energy_raw"] = energy
        if linear_reference:
            offset = linear_reference_energy(atoms.numbers, reference)
            info["energy_reference"] = offset
            info["linear_reference_Z"] = table_z
            info["linear_reference_eV"] = table_e
            energy -= offset
        records.append(
            make_record(
                atoms, energy=energy, charges=charges, total_charge=0, info=info, copy=False
            )
        )
    logger.info("loaded %d OE62 molecules (split=%s) from %s", len(records), split, path)
    return records
