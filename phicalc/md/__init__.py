"""Molecular dynamics with phicalc potentials: restartable runs over ASE drivers and analysis.

>>> from phicalc.md import MDConfig, run, analyze  # doctest: +SKIP
>>> run("aspirin", "phi-painn-organic", "md_runs/aspirin", config=MDConfig(steps=2000))
>>> analyze("md_runs/aspirin")

``run`` here is the function :func:`phicalc.md.run.run`; the module stays importable as
``phicalc.md.run`` through ``sys.modules``. Inputs (structure, calculator) live in
:mod:`phicalc.md.inputs`, continuation in :mod:`phicalc.md.resume`.
Settings live in :mod:`phicalc.md.config`, drivers in :mod:`phicalc.md.drivers`, records in
:mod:`phicalc.md.recorder`.
"""

from __future__ import annotations

from phicalc.md.analysis import analyze
from phicalc.md.checkpoint import CheckpointError, load_checkpoint
from phicalc.md.config import ENSEMBLES, MDConfig
from phicalc.md.run import run

__all__ = ["ENSEMBLES", "CheckpointError", "MDConfig", "analyze", "load_checkpoint", "run"]
