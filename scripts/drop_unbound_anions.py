"""Drop unbound vertical anions (E(−1) above the neutral's energy at the same geometry, a
GFN2-xTB minimal-basis artefact: :mod:`phicalc.data.xtb.vertical`) from labelled split files
made before the labelling filtered them.

    python scripts/drop_unbound_anions.py --input data/vertical_v1 --out data/vertical_v2 \\
        --neutrals data/organic_train_fit.extxyz
    python scripts/drop_unbound_anions.py --input data/charged_v1 --out data/charged_v2

Reads ``INPUT_{train,val,test}.extxyz``; each vertical anion is compared with the neutral frame
of its geometry from the same file or a ``--neutrals`` file. Writes ``OUT_{split}.extxyz`` (every
other frame unchanged, in order) and ``OUT_filter.json`` (frames kept and dropped per split, the
dropped species with E(−1) − E(0) in eV).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ase.io import read, write

from phicalc.data.xtb.vertical import (
    UNBOUND_ANION,
    drop_unbound_anions,
    geometry_key,
    neutral_energies,
)

SPLITS = ("train", "val", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="split prefix of the labelled files")
    parser.add_argument("--out", required=True, help="split prefix of the filtered files")
    parser.add_argument("--neutrals", nargs="*", default=[], help="extra files with neutrals")
    args = parser.parse_args()
    extra = [atoms for path in args.neutrals for atoms in read(path, ":")]
    report: dict[str, dict] = {"reason": UNBOUND_ANION}
    for split in SPLITS:
        path = Path(f"{args.input}_{split}.extxyz")
        if not path.exists():
            continue
        frames = read(path, ":")
        kept, dropped = drop_unbound_anions(frames, frames + extra)
        neutral = neutral_energies(frames + extra)
        report[split] = {
            "frames": len(frames),
            "kept": len(kept),
            "dropped": len(dropped),
            "dropped_species": {
                str(a.info.get("species")): round(
                    a.get_potential_energy() - neutral[geometry_key(a)], 3
                )
                for a in dropped
            },
        }
        write(f"{args.out}_{split}.extxyz", kept, format="extxyz")
        print(f"{split}: {len(frames)} frames, {len(dropped)} unbound anions dropped", flush=True)
    Path(f"{args.out}_filter.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
