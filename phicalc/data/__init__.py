"""Datasets and reference data: records, OE62, MD22, splits, structures, xTB labelling.

Importing the package loads nothing heavy; the public names load on first use::

    from phicalc.data import read_structures, GraphDataset, plan_batches, load_md22

Record conventions (energy/forces on a SinglePointCalculator, ``arrays["ref_charges"]``,
``info["ref_dipole"]``, ``info["charge"]``) are described in :mod:`phicalc.data.datasets`.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "read_structures": "phicalc.data.datasets",
    "write_structures": "phicalc.data.datasets",
    "make_record": "phicalc.data.datasets",
    "copy_record": "phicalc.data.datasets",
    "validate_record": "phicalc.data.datasets",
    "GraphDataset": "phicalc.data.datasets",
    "plan_batches": "phicalc.data.datasets",
    "load_oe62": "phicalc.data.oe62",
    "fit_linear_reference": "phicalc.data.oe62",
    "load_md22": "phicalc.data.md22",
    "md22_split": "phicalc.data.splits",
    "oe62_split_sizes": "phicalc.data.splits",
    "split_by_hash": "phicalc.data.splits",
    "structure_from_string": "phicalc.data.structures",
    "structure_from_smiles": "phicalc.data.structures",
    "water_box": "phicalc.data.structures",
    "StructureSpecError": "phicalc.data.structures",
    "label_structure": "phicalc.data.xtb.single_point",
    "sample_trajectory": "phicalc.data.xtb.sampling",
    "normal_mode_samples": "phicalc.data.xtb.sampling",
    "label_molecules": "phicalc.data.xtb.jobs",
    "load_organic_smiles": "phicalc.data.xtb.smiles",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'phicalc.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
