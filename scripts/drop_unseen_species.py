"""Drop from a training file every frame of a species that a held-out file holds.

    python scripts/drop_unseen_species.py data/organic_train_fit.extxyz \\
        --heldout data/charged_v2_val.extxyz data/charged_v2_test.extxyz \\
        --out data/organic_train_fit_v2.extxyz

The organic set and the charged set are split apart (each by its own salted hash), so a molecule
held out by one can be trained on through the other: pyridine, a validation species of the charged
set, has neutral frames in the organic training file. A frame is dropped when any molecule of its
``info["smiles"]`` (canonical SMILES) is a species of a ``--heldout`` file. Writes ``--out`` (the
kept frames, in order) and ``OUT_dropped.json`` (frames read, kept, and dropped per species).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from ase.io import read, write

from phicalc.data.xtb.charged_species import species_of_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", help="extxyz file to filter")
    parser.add_argument(
        "--heldout", nargs="+", required=True, help="files whose species stay unseen"
    )
    parser.add_argument("--out", required=True, help="filtered extxyz file")
    args = parser.parse_args()
    unseen = species_of_frames(atoms for path in args.heldout for atoms in read(path, ":"))
    kept, dropped = [], Counter()
    for atoms in read(args.train, ":"):
        seen = species_of_frames([atoms]) & unseen
        if seen:
            dropped[".".join(sorted(seen))] += 1
        else:
            kept.append(atoms)
    write(args.out, kept, format="extxyz")
    report = {
        "input": args.train,
        "heldout": args.heldout,
        "frames_read": len(kept) + sum(dropped.values()),
        "frames_kept": len(kept),
        "dropped_by_species": dict(sorted(dropped.items())),
    }
    out = Path(args.out)
    out.with_name(out.stem + "_dropped.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
