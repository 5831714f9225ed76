"""Record every shipped model's outputs on fixed structures, for the bit-for-bit pin test.

    python scripts/pin_shipped_outputs.py   # writes tests/pinned/shipped_outputs.npz

Run it only when a model file is meant to change (a retrained model), or when a change of
summation order is meant (then compare first and state the largest difference, which must be
round-off): the test ``tests/test_shipped_pinned.py`` then guards that refactors leave every
number as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from phicalc.serialization import list_models
from phicalc.testing import pinned_structures, shipped_outputs

OUT = Path(__file__).resolve().parents[1] / "tests" / "pinned" / "shipped_outputs.npz"


def main() -> None:
    torch.set_num_threads(1)
    arrays: dict[str, np.ndarray] = {}
    for name in list_models():
        for label, atoms in pinned_structures().items():
            for key, value in shipped_outputs(name, atoms).items():
                arrays[f"{name}/{label}/{key}"] = value
    np.savez_compressed(OUT, **arrays)
    print(f"{len(arrays)} arrays from {len(list_models())} models → {OUT}")


if __name__ == "__main__":
    main()
