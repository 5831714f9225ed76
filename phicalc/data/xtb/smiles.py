"""The curated organic SMILES set (``phicalc/data/organic_smiles.txt``) and SMILES list files."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

from phicalc.data.splits import split_by_hash
from phicalc.errors import DatasetError

#: Salt and fraction of the held-out split of the curated organic SMILES list.
HELDOUT_SALT = "phicalc-organic-heldout-v1"
HELDOUT_FRACTION = 0.1


def load_organic_smiles(
    subset: Literal["all", "train", "heldout"] = "all",
    *,
    path: str | os.PathLike | None = None,
    heldout_fraction: float = HELDOUT_FRACTION,
) -> list[str]:
    """The curated organic SMILES list (H, C, N, O; ≤ 30 heavy atoms), or one of its subsets.

    The held-out subset (about ``heldout_fraction`` of the list) is chosen by a salted hash of
    each SMILES string as written in the file (:func:`phicalc.data.splits.split_by_hash`), so a
    molecule never changes subset when others are added; train models on ``"train"`` and
    evaluate transfer on ``"heldout"``.

    Args:
        subset: ``"all"``, ``"train"`` or ``"heldout"``.
        path: another file in the same format (one SMILES per line, optional name after
            whitespace, lines starting with ``#`` are comments); default:
            ``phicalc/data/organic_smiles.txt``.
        heldout_fraction: share of molecules held out.
    """
    if subset not in ("all", "train", "heldout"):
        raise ValueError(f"subset must be 'all', 'train' or 'heldout', got {subset!r}")
    if path is None:
        text = resources.files("phicalc.data").joinpath("organic_smiles.txt").read_text()
        smiles = parse_smiles_list(text)
    else:
        smiles = read_smiles_file(path)
    if subset == "all":
        return smiles
    train, heldout = split_by_hash(smiles, heldout_fraction=heldout_fraction, salt=HELDOUT_SALT)
    return train if subset == "train" else heldout


def parse_smiles_list(text: str) -> list[str]:
    """SMILES from text: the first word of each line; blank lines and ``#`` lines skipped."""
    smiles = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):  # '#' inside a SMILES is a triple bond
            smiles.append(line.split()[0])
    return smiles


def read_smiles_file(path: str | os.PathLike) -> list[str]:
    """SMILES from a file (one per line, optional name after whitespace, ``#`` comment lines).

    Raises:
        FileNotFoundError: no such file.
        DatasetError: the file lists no SMILES.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such SMILES file: {path}")
    smiles = parse_smiles_list(path.read_text())
    if not smiles:
        raise DatasetError(f"{path}: no SMILES found")
    return smiles
