"""Continuing an MD run: which checkpoint may continue which run (a run directory owns its
identity), and the state a checkpoint carries beyond atoms and thermostat (the kept partition)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from phicalc.data.datasets import records_fingerprint
from phicalc.md import checkpoint as ckpt
from phicalc.md.config import RESUMABLE_CHANGES, MDConfig

logger = logging.getLogger(__name__)

#: Precision of a new run's model. Float32 conserves energy as well as float64 in NVE at 0.5 fs
#: (Ac-Ala3-NHMe, Na⁺Cl⁻ in water: reports/md_step_speed_cpu.txt) at about half the cost per
#: step; a continued run keeps the precision it was started in.
DEFAULT_DTYPE = "float32"


def run_dtype(checkpoint: Path, dtype: str | None, *, force_new: bool = False) -> str:
    """The precision of a run whose checkpoint is (or will be) ``checkpoint``: ``dtype`` where
    given; else the precision of the run it holds (a continuation keeps its own, unless
    ``force_new`` starts over); else :data:`DEFAULT_DTYPE`."""
    if dtype is not None:
        return dtype
    if not force_new and checkpoint.exists():
        try:
            saved = ckpt.load_checkpoint(checkpoint).extra.get("dtype")
        except ckpt.CheckpointError:
            saved = None  # claiming the directory reports what is wrong with it
        if saved in ("float32", "float64"):
            return saved
    return DEFAULT_DTYPE


def load_resumable(
    path: Path,
    config: MDConfig,
    atoms: Atoms,
    *,
    model: str,
    dtype: str,
    weights: str | None,
) -> ckpt.Checkpoint | None:
    """The checkpoint in ``path`` if there is one and ``config``/``atoms`` can continue it.

    A run directory owns its identity: the model's weights (fingerprint), the dtype, the
    system and every physics setting. Another model name with the same weights (a path instead
    of a shipped name) continues; other weights, another dtype or other settings are refused.

    Raises:
        CheckpointError: The checkpoint is unreadable or belongs to another run identity.
    """
    if not path.exists():
        return None
    checkpoint = ckpt.load_checkpoint(path)
    saved_model = checkpoint.extra.get("model")
    saved_weights = checkpoint.extra.get("weights")
    if saved_weights is not None and weights is not None and saved_weights != weights:
        raise ckpt.CheckpointError(
            f"{path.parent} holds a run of model {saved_model} (weights {saved_weights}), "
            f"not of model {model} (weights {weights}); use another --out, or --force-new to "
            "delete that run and start over"
        )
    if (saved_weights is None or weights is None) and saved_model not in (None, model):
        raise ckpt.CheckpointError(
            f"{path.parent} holds a run of model {saved_model}, not of model {model}; use "
            "another --out, or --force-new to delete that run and start over"
        )
    saved_dtype = checkpoint.extra.get("dtype")
    if saved_dtype is not None and saved_dtype != dtype:
        raise ckpt.CheckpointError(
            f"{path.parent} holds a run in {saved_dtype}, not {dtype}; use --dtype "
            f"{saved_dtype} to continue it, or another --out"
        )
    saved = dict(checkpoint.config)
    if saved.get("partition_skin") is None and config.partition_skin == math.inf:
        saved["partition_skin"] = math.inf  # older runs wrote None for "one tree per run"
    changed = ckpt.config_mismatch(saved, config.to_dict(), ignore=RESUMABLE_CHANGES)
    if changed:
        raise ckpt.CheckpointError(
            f"{path.parent} holds a run with other settings ({'; '.join(changed)}); "
            "use the same settings to continue it or another --out directory"
        )
    if checkpoint.step > config.steps:
        raise ckpt.CheckpointError(
            f"{path.parent} is already at step {checkpoint.step}, past --steps {config.steps}"
        )
    checkpoint.check_system(atoms)
    return checkpoint


def partition_positions(calc: BaseCalculator) -> list | None:
    """The positions (Å) the calculator's kept spatial partition was built from, JSON-able."""
    cache = getattr(calc, "partition_cache", None)
    built_from = None if cache is None else cache.built_from
    return None if built_from is None else built_from.double().cpu().tolist()


def restore_partition(calc: BaseCalculator, atoms: Atoms, positions: list | None) -> None:
    """Rebuild the kept partition a run had at its checkpoint (Erwin's ball tree) from the
    positions it was built from, so a continuation computes what the run would have."""
    if positions is None or getattr(calc, "partition_cache", None) is None:
        return
    primer = atoms.copy()
    primer.set_constraint()
    primer.set_positions(np.asarray(positions, dtype=float))
    calc.get_potential_energy(primer)


def start_of_run(checkpoint: ckpt.Checkpoint | None, atoms: Atoms, out: Path) -> str | None:
    """The fingerprint of the start coordinates of a run (kept in its checkpoints).

    A continued run keeps its own start; when the structure given now is another one (same
    system, other coordinates) the checkpoint still decides the state, and a warning says so.
    Checkpoints written before this was recorded give ``None`` and no warning.
    """
    given = records_fingerprint([Atoms(numbers=atoms.numbers, positions=atoms.positions)])
    if checkpoint is None:
        return given
    saved = checkpoint.extra.get("start_structure")
    if saved is not None and saved != given:
        logger.warning(
            "%s holds a run that started from another structure than the one given now; it "
            "continues that run from step %d (its checkpoint), not from the given structure: "
            "use --force-new to start over from it, or another --out",
            out,
            checkpoint.step,
        )
    return saved
