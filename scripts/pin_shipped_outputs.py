"""Record every shipped model's outputs on fixed structures, for the bit-for-bit pin test.

    python scripts/pin_shipped_outputs.py   # writes tests/pinned/shipped_outputs.npz
    python scripts/pin_shipped_outputs.py --structures water_pbc   # re-pin these, keep the rest

Run it only when a model file is meant to change (a retrained model), when a change of
summation order is meant (then compare first and state the largest difference, which must be
round-off), or when a numerical method changes within its stated accuracy (then state the
largest difference and the errors of old and new against a converged result, as the commit that
moved the periodic Coulomb sum to reciprocal space did: ≤ 1e-5 eV/V, tested against a converged
Ewald sum in ``tests/nn/electrostatics/test_periodic.py``): the test
``tests/test_shipped_pinned.py`` then guards that refactors leave every number as it was.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from phicalc.serialization import list_models
from phicalc.testing import pinned_structures, shipped_outputs

OUT = Path(__file__).resolve().parents[1] / "tests" / "pinned" / "shipped_outputs.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--structures",
        nargs="+",
        choices=sorted(pinned_structures()),
        help="re-pin only these structures (every model); the other pins stay as they are",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    arrays: dict[str, np.ndarray] = {}
    if args.structures:
        with np.load(OUT) as kept:
            arrays = {
                key: kept[key] for key in kept.files if key.split("/")[1] not in args.structures
            }
    for name in list_models():
        for label, atoms in pinned_structures().items():
            if args.structures and label not in args.structures:
                continue
            for key, value in shipped_outputs(name, atoms).items():
                arrays[f"{name}/{label}/{key}"] = value
    np.savez_compressed(OUT, **arrays)
    print(f"{len(arrays)} arrays from {len(list_models())} models → {OUT}")


if __name__ == "__main__":
    main()
