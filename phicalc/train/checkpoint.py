"""Training checkpoints: everything needed to continue a run bit for bit, in plain containers.

A checkpoint is one ``torch.save`` dict::

    {"format": "phicalc.checkpoint", "format_version": 2, "config": {...},
     "epoch": completed epochs, "step": optimisation steps, "model": state_dict,
     "ema": {...}, "optimizer": state_dict, "schedule": {...}, "best": {...},
     "history": [per-epoch rows], "rng": {"torch": ByteTensor, "numpy": {...}, "python": {...}},
     "data": {...}, "elements": [...]}

It holds only tensors, numbers, strings, lists and dicts (no numpy objects), so it is read with
``torch.load(weights_only=True)``. Writes go through :func:`phicalc.io.atomic_open` (a temporary
file in the same folder renamed over the old checkpoint), so an interrupted write never leaves a
broken checkpoint. Format-1 checkpoints are read with their model config upgraded as for model
files (:func:`phicalc.serialization.upgrade_model_config`), so a resume rebuilds the model they
trained. Format 3 stores ``"checksum"``, :func:`phicalc.serialization.state_checksum` of the
``"model"`` state_dict, verified on load when present.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phicalc.errors import ModelFileError
from phicalc.io import atomic_open
from phicalc.serialization import _reason, state_checksum, upgrade_model_config, verify_checksum

FORMAT = "phicalc.checkpoint"
FORMAT_VERSION = 4
#: Versions this phicalc reads (format 1: Clifford models before smooth invariant norms;
#: format 3 adds the checksum of the model tensors; format 4: the Φ-Module's gauge option,
#: older checkpoints resume with ``gauge="structure"``).
READABLE_VERSIONS = (1, 2, 3, 4)


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (plus format tags) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    if isinstance(state.get("model"), dict):
        blob["checksum"] = state_checksum(state["model"])
    with atomic_open(path) as handle:
        torch.save(blob, handle)


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: unreadable, foreign, of another format version, or its model tensors do
            not match its stored checksum.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        raise ModelFileError(f"{path} is not a readable checkpoint ({_reason(error)})") from error
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a phicalc training checkpoint")
    version = blob.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{path} has checkpoint version {version}; this phicalc reads {READABLE_VERSIONS}"
        )
    if "checksum" in blob:
        verify_checksum(path, {**blob, "state_dict": blob.get("model")}, what="checkpoint")
    config = blob.get("config")
    if isinstance(config, dict) and isinstance(config.get("model"), dict):
        blob["config"] = {**config, "model": upgrade_model_config(config["model"], version)}
    return blob


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states of torch (CPU and CUDA), numpy and Python as plain containers."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_version),
            "internal": [int(v) for v in py_internal],
            "gauss_next": py_gauss,
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the global RNG states captured by :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            int(np_state["pos"]),
            int(np_state["has_gauss"]),
            float(np_state["cached_gaussian"]),
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
