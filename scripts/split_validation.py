"""Split a labelled file into a fitting part and a validation part, whole groups at a time.

The same rule as a training recipe's ``data.val_fraction`` / ``data.val_group`` (a salted hash of
``info[group]``, :func:`phicalc.train.data.hold_out`), written out as files so that one recipe
can combine several sources, each with its own validation part:

    python scripts/split_validation.py data/organic_train.extxyz --fraction 0.1 --group molecule
    # -> data/organic_train_fit.extxyz, data/organic_train_val.extxyz
"""

from __future__ import annotations

import argparse
from pathlib import Path

from phicalc.data import read_structures, write_structures
from phicalc.train.data import hold_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--group", default="molecule", help="info key held out as a whole")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    records = read_structures(args.path)
    fit, val = hold_out(records, args.fraction, seed=args.seed, group=args.group)
    for part, frames in (("fit", fit), ("val", val)):
        out = args.path.with_name(f"{args.path.stem}_{part}{args.path.suffix}")
        write_structures(out, frames)
        groups = len({str(a.info[args.group]) for a in frames})
        print(f"{out}: {len(frames)} frames, {groups} groups")


if __name__ == "__main__":
    main()
