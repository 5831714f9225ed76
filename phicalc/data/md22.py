"""MD22 (Chmiela et al., Sci. Adv. 9, eadf0873 (2023)): sGDML trajectories of seven large molecules.

One ``md22_<molecule>.npz`` per molecule with keys ``z`` [n_atoms] atomic numbers, ``R``
[n_frames, n_atoms, 3] Å, ``E`` [n_frames, 1] kcal/mol, ``F`` [n_frames, n_atoms, 3] kcal/mol/Å
(forces, not gradients), and metadata ``name``, ``theory``, ``type``, ``md5``. Energies and forces
are converted to eV and eV/Å with :data:`phicalc.units.KCAL_PER_MOL` (``units.kcal / units.mol``).

Standard split (:func:`phicalc.data.splits.md22_split`): a per-molecule training budget
(:data:`phicalc.data.splits.MD22_BUDGETS`, e.g. 6,000 frames for Ac-Ala3-NHMe) drawn by a seeded
permutation and divided 95 % train / 5 % validation; every other frame is test.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
from ase import Atoms

from phicalc.data.datasets import make_record
from phicalc.data.splits import MD22_BUDGETS, check_split, md22_split
from phicalc.errors import DatasetError
from phicalc.units import KCAL_PER_MOL

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("z", "R", "E", "F")


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_CANONICAL = {_squash(name): name for name in MD22_BUDGETS}


def canonical_md22_name(name: str) -> str | None:
    """Canonical MD22 molecule name (a key of ``MD22_BUDGETS``) for a name or file stem.

    Case, punctuation, a ``md22_`` prefix and a ``.npz`` suffix are ignored, so
    ``"md22_Ac-Ala3-NHMe.npz"``, ``"ac_ala3_nhme"`` and ``"Ac-Ala3-NHMe"`` all give
    ``"Ac-Ala3-NHMe"``. Returns ``None`` for an unknown molecule.
    """
    stem = re.sub(r"\.npz$", "", name.strip(), flags=re.IGNORECASE)
    stem = re.sub(r"^md22[_-]?", "", stem, flags=re.IGNORECASE)
    return _CANONICAL.get(_squash(stem))


def _text(value: np.ndarray | None) -> str | None:
    if value is None:
        return None
    value = np.asarray(value)
    item = value.item() if value.size == 1 else value.reshape(-1)[0]
    return item.decode() if isinstance(item, bytes) else str(item)


def read_md22_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load and check an MD22 ``.npz``; energies and forces still in kcal/mol(/Å).

    Returns:
        ``{"z": [n_atoms] int64, "R": [n_frames, n_atoms, 3], "E": [n_frames],
        "F": [n_frames, n_atoms, 3]}`` plus whichever of ``name``, ``theory``, ``type``, ``md5``
        exist (as 0-d arrays).

    Raises:
        DatasetError: missing file or key, wrong shapes, NaN/inf values; names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as error:
        raise DatasetError(f"{path}: not a readable .npz file ({error})") from error
    with npz:
        missing = [k for k in REQUIRED_KEYS if k not in npz.files]
        if missing:
            raise DatasetError(f"{path}: missing MD22 key(s) {missing}; found {sorted(npz.files)}")
        data: dict[str, np.ndarray] = {}
        for key in npz.files:
            try:
                data[key] = npz[key]
            except ValueError:  # an object array; metadata only, never pickled
                logger.debug("%s: skipping object array %r", path, key)
    z = np.asarray(data["z"]).reshape(-1)
    positions = np.asarray(data["R"], dtype=float)
    energies = np.asarray(data["E"], dtype=float)
    forces = np.asarray(data["F"], dtype=float)
    if z.size == 0 or not np.issubdtype(z.dtype, np.integer) or (z < 1).any() or (z > 118).any():
        raise DatasetError(f"{path}: 'z' must hold atomic numbers 1-118, got {z[:8].tolist()}")
    n_atoms = z.size
    if positions.ndim != 3 or positions.shape[1:] != (n_atoms, 3) or positions.shape[0] == 0:
        raise DatasetError(
            f"{path}: 'R' has shape {positions.shape}, expected (n_frames, {n_atoms}, 3)"
        )
    n_frames = positions.shape[0]
    if energies.shape not in ((n_frames,), (n_frames, 1)):
        raise DatasetError(f"{path}: 'E' has shape {energies.shape}, expected ({n_frames}, 1)")
    if forces.shape != positions.shape:
        raise DatasetError(f"{path}: 'F' has shape {forces.shape}, expected {positions.shape}")
    for key, array in (("R", positions), ("E", energies), ("F", forces)):
        if not np.isfinite(array).all():
            frame = int(np.argwhere(~np.isfinite(array))[0][0])
            raise DatasetError(
                f"{path}: '{key}' has NaN or infinite values (first in frame {frame})"
            )
    data.update(z=z.astype(np.int64), R=positions, E=energies.reshape(n_frames), F=forces)
    return data


def load_md22(
    path: str | os.PathLike,
    split: str | None = None,
    *,
    seed: int = 0,
    budget: int | None = None,
) -> list[Atoms]:
    """Load an MD22 trajectory as records (energies in eV, forces in eV/Å).

    Args:
        path: ``md22_<molecule>.npz``.
        split: ``None`` for every frame, or ``"train"``/``"val"``/``"test"``.
        seed: seed of the split permutation.
        budget: train + validation frames; default: the standard budget of the molecule, found
            from the ``name`` key, else the file name. Required for files of unknown molecules
            and for files with fewer frames than the standard budget.

    Returns:
        Records in frame order, with ``info`` keys ``dataset="md22"``, ``molecule``, ``frame``
        (index in the file), ``split``, ``theory`` (if present), ``charge=0``.

    Raises:
        DatasetError: malformed file, unknown molecule without ``budget``, or a budget larger
            than the trajectory.
    """
    check_split(split)
    path = Path(path)
    data = read_md22_arrays(path)
    n_frames = data["R"].shape[0]
    raw_name = _text(data.get("name"))
    molecule = canonical_md22_name(raw_name or "") or canonical_md22_name(path.name)
    if budget is None:
        if molecule is None:
            raise DatasetError(
                f"{path}: unknown MD22 molecule (name {raw_name!r}); pass budget= "
                f"(known: {sorted(MD22_BUDGETS)})"
            )
        budget = MD22_BUDGETS[molecule]
    if not 0 < budget <= n_frames:
        raise DatasetError(f"{path}: budget {budget} must be between 1 and the {n_frames} frames")
    parts = md22_split(n_frames, budget, seed=seed)
    split_of = np.empty(n_frames, dtype=object)
    for name, frames in parts.items():
        split_of[frames] = name
    frames = np.arange(n_frames) if split is None else parts[split]

    theory = _text(data.get("theory"))
    label = molecule or raw_name or path.stem
    numbers = data["z"]
    records = []
    for frame in frames:
        frame = int(frame)
        info: dict[str, object] = {
            "dataset": "md22",
            "molecule": label,
            "frame": frame,
            "split": split_of[frame],
        }
        if theory is not None:
            info["theory"] = theory
        records.append(
            make_record(
                Atoms(numbers=numbers, positions=data["R"][frame]),
                energy=data["E"][frame] * KCAL_PER_MOL,
                forces=data["F"][frame] * KCAL_PER_MOL,
                total_charge=0,
                info=info,
                copy=False,
            )
        )
    logger.info(
        "loaded %d of %d MD22 %s frames (split=%s, budget=%d, seed=%d)",
        len(records),
        n_frames,
        label,
        split,
        budget,
        seed,
    )
    return records
