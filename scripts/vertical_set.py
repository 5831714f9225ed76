"""Vertical charge states of the organic set's molecules: GFN2-xTB at Q = +1 and Q = −1
(multiplicity 2) on neutral geometries already labelled, split as the organic files are.

    python scripts/vertical_set.py --frames 1 --out data/vertical_v1

For each of ``data/organic_train_fit``, ``organic_train_val`` and ``organic_heldout`` (train, val
and test: the organic set's species split, molecules never trained on stay unseen), the first
``--frames`` frames of every molecule are relabelled at Q = ±1. Molecules that are also a
species of the charged set's validation or test split are left out of the train file (they must
stay unseen there). The val and test files also hold each relabelled frame's neutral record,
so :func:`phicalc.train.charged_metrics.charged_metrics` pairs them for the vertical ΔE.
Anions above their neutral are dropped (``unbound_anion``: :mod:`phicalc.data.xtb.vertical`).
Writes ``OUT_{train,val,test}.extxyz`` and ``OUT_summary.json`` (frames written and dropped:
SCF failures, unbound anions). ``scripts/drop_unbound_anions.py`` applies the same filter to
files labelled before it existed (``data/vertical_v1`` → ``data/vertical_v2``).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from ase import Atoms
from ase.calculators.calculator import CalculationFailed
from ase.io import read, write
from tqdm.auto import tqdm

from phicalc.data.xtb.charged_species import canonical_smiles, species_of_frames
from phicalc.data.xtb.dimer_scan import label_single_point
from phicalc.data.xtb.vertical import UNBOUND_ANION, is_bound
from phicalc.errors import DatasetError

SOURCES = {
    "train": "data/organic_train_fit.extxyz",
    "val": "data/organic_train_val.extxyz",
    "test": "data/organic_heldout.extxyz",
}


def unseen_smiles(charged_prefix: str) -> set[str]:
    """Canonical SMILES of the charged set's val and test species (kept out of training)."""
    return species_of_frames(
        atoms
        for split in ("val", "test")
        for atoms in read(f"{charged_prefix}_{split}.extxyz", ":")
    )


def first_frames(records: list[Atoms], frames: int) -> dict[str, list[Atoms]]:
    by_molecule: dict[str, list[Atoms]] = defaultdict(list)
    for atoms in records:
        smiles = str(atoms.info["smiles"])
        if len(by_molecule[smiles]) < frames:
            by_molecule[smiles].append(atoms)
    return by_molecule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1, help="frames per molecule (1)")
    parser.add_argument("--charged", default="data/charged_v1", help="charged set split prefix")
    parser.add_argument("--out", default="data/vertical_v1")
    args = parser.parse_args()
    unseen = unseen_smiles(args.charged)
    summary: dict[str, dict[str, int]] = {}
    for split, source in SOURCES.items():
        molecules = first_frames(read(source, ":"), args.frames)
        counts = {
            "molecules": 0,
            "excluded_unseen": 0,
            "written": 0,
            "scf_failed": 0,
            UNBOUND_ANION: 0,
        }
        records: list[Atoms] = []
        for smiles, frames in tqdm(molecules.items(), desc=f"vertical {split}"):
            if split == "train" and canonical_smiles(smiles)[0] in unseen:
                counts["excluded_unseen"] += 1
                continue
            counts["molecules"] += 1
            for k, frame in enumerate(frames):
                info = {
                    "category": "vertical",
                    "species": smiles,
                    "smiles": smiles,
                    "split": split,
                    "vertical_of_frame": k,
                    "sampler": "vertical",
                }
                labelled = []
                for charge in (+1, -1):
                    try:
                        record = label_single_point(frame, charge, 2, info)
                    except (CalculationFailed, DatasetError):
                        counts["scf_failed"] += 1
                        continue
                    if is_bound(
                        charge, record.get_potential_energy(), frame.get_potential_energy()
                    ):
                        labelled.append(record)
                    else:
                        counts[UNBOUND_ANION] += 1
                if labelled and split != "train":
                    neutral = frame.copy()
                    neutral.calc = frame.calc
                    neutral.info.update(category="neutral", species=smiles, split=split)
                    records.append(neutral)
                records += labelled
                counts["written"] += len(labelled)
        write(f"{args.out}_{split}.extxyz", records, format="extxyz")
        summary[split] = counts
        print(split, counts, flush=True)
    Path(f"{args.out}_summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
