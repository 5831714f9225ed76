"""Charge targets that carry each molecule's GFN2-xTB dipole, for labelled files.

    python scripts/dipole_charges.py data/charged_v2_train.extxyz [...] [--suffix _dq]

For every file writes ``<stem><suffix>.extxyz`` beside it: the same records with
``arrays["ref_charges"]`` replaced by :func:`phicalc.data.xtb.dipole_charges.dipole_charges`'
charges and GFN2-xTB's Mulliken charges kept as ``arrays["mulliken_charges"]``. Frames of several
molecules label each molecule alone (GFN2-xTB, one thread); the counts (frames, molecules
labelled alone, SCF failures, the largest change of a charge) are printed per file.
Deterministic.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from phicalc.data import read_structures, write_structures
from phicalc.data.xtb.dipole_charges import dipole_charges, gfn2_labeller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--suffix", default="_dq")
    args = parser.parse_args()
    label = gfn2_labeller()
    for path in args.files:
        frames = read_structures(path)
        labelled = failed = 0
        before, after = [], []
        for atoms in tqdm(frames, desc=path.name, unit="frame"):
            mulliken = np.asarray(atoms.arrays["ref_charges"], dtype=float).copy()
            charges, n_alone, n_failed = dipole_charges(atoms, label)
            labelled, failed = labelled + n_alone, failed + n_failed
            before.append(mulliken)
            after.append(charges)
            atoms.arrays["ref_charges"] = charges
            atoms.arrays["mulliken_charges"] = mulliken
        out = path.with_name(f"{path.stem}{args.suffix}{path.suffix}")
        write_structures(out, frames)
        old, new = np.concatenate(before), np.concatenate(after)
        change = np.abs(new - old)
        print(
            f"{out}: {len(frames)} frames, {labelled} molecules labelled alone, {failed} failed; "
            f"|change| mean {change.mean():.3f} e, largest {change.max():.3f} e; "
            f"r with Mulliken {np.corrcoef(new, old)[0, 1]:.3f}"
        )


if __name__ == "__main__":
    main()
