"""phicalc: neural interatomic potentials with Φ-Module electrostatics for ASE.

Importing the package does no torch work; the public names load on first use::

    from phicalc import PhiCalculator, build_model, load_model
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "PhiCalculator": "phicalc.calculator",
    "build_model": "phicalc.build",
    "Potential": "phicalc.potential",
    "load_model": "phicalc.serialization",
    "save_model": "phicalc.serialization",
    "list_models": "phicalc.serialization",
    "keep_freed_memory": "phicalc.allocator",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'phicalc' has no attribute {name!r}")
