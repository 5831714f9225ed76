"""Model files: config + state_dict + metadata in one ``torch.save`` dict, read with weights_only=True.

A model file holds only plain containers and tensors::

    {"format": "phicalc.potential", "format_version": 2, "config": {...},
     "state_dict": {...}, "metadata": {"elements": [...], "cutoff": ..., "units": {...}, ...}}

Format 3 adds ``"checksum"``: :func:`state_checksum` of the state_dict, verified on load (a
flipped bit in a tensor raises :class:`ModelFileError` instead of computing other numbers);
files of formats 1 and 2 have none and load as before.

Format 4 makes the Φ-Module's gauge an option (``PhiConfig.gauge``, default "fragment"): files
of formats 1–3 load with ``gauge="structure"``, what they computed.

Format 2 (phicalc 0.1, CliffordNet's smooth invariant norms) reads format-1 files too: their
configs are upgraded (:func:`upgrade_model_config`) so the model computes what was saved. This
module owns the model-file format and its upgrades; training checkpoints reuse the upgrades for
their model section. Loading never unpickles arbitrary objects: ``torch.load(..., weights_only=True)``
refuses them, and every failure is re-raised as :class:`ModelFileError` naming the file.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from phicalc import __version__
from phicalc.errors import ModelFileError, PhicalcError
from phicalc.io import atomic_open
from phicalc.potential import Potential, PotentialConfig

logger = logging.getLogger(__name__)

FORMAT = "phicalc.potential"
FORMAT_VERSION = 4
#: Format versions this phicalc reads (older ones are upgraded on load).
READABLE_VERSIONS = (1, 2, 3, 4)
MODEL_FILENAME = "model.pt"

#: Backbone options whose default changed, and the value that files of an older format (model
#: files and training checkpoints share the numbering) meant by leaving them out:
#: {format version: {backbone: {option: value}}}.
LEGACY_BACKBONE_DEFAULTS: dict[int, dict[str, dict[str, Any]]] = {
    1: {"clifford": {"norm_smoothing": 1e-4}},  # format 2: smooth invariant norms (δ = 0.01)
}
#: Φ-Module options whose default changed: {format version: {option: value}}, as above.
LEGACY_PHI_DEFAULTS: dict[int, dict[str, Any]] = {
    3: {"gauge": "structure"},  # format 4: the filter's own, size-consistent gauge
}


def upgrade_model_config(config: dict[str, Any], format_version: int) -> dict[str, Any]:
    """A stored model config (``PotentialConfig.to_dict`` layout, or a recipe's ``model``
    section) as this phicalc must read it: options an older format left at their old default
    are written out with that value, so the rebuilt model computes what was saved."""
    legacy: dict[str, Any] = {}
    for version in sorted(LEGACY_BACKBONE_DEFAULTS):
        if format_version <= version:
            for key, value in (
                LEGACY_BACKBONE_DEFAULTS[version].get(config.get("backbone"), {}).items()
            ):
                legacy.setdefault(key, value)
    if legacy:
        config = {**config, "backbone_config": {**legacy, **(config.get("backbone_config") or {})}}
    phi = config.get("phi")
    if phi is True:  # a recipe's "phi: true": the defaults of its format
        phi = {}
    if isinstance(phi, dict):
        legacy_phi = {
            key: value
            for version, options in sorted(LEGACY_PHI_DEFAULTS.items(), reverse=True)
            if format_version <= version
            for key, value in options.items()
        }
        if legacy_phi:
            config = {**config, "phi": {**legacy_phi, **phi}}
    return config


def models_directories() -> list[Path]:
    """Where shipped model names are looked up, first match wins: $PHICALC_MODELS, then the
    installed package's ``phicalc/models/`` (a wheel ships the repository's ``models/`` there,
    see setup.py), then the source checkout's ``models/`` (editable installs, PYTHONPATH)."""
    dirs = []
    if os.environ.get("PHICALC_MODELS"):
        dirs.append(Path(os.environ["PHICALC_MODELS"]))
    package = Path(__file__).resolve().parent
    dirs.append(package / "models")
    dirs.append(package.parent / "models")
    return dirs


def list_models() -> list[str]:
    """Names of the shipped models found in :func:`models_directories`."""
    names = set()
    for directory in models_directories():
        if directory.is_dir():
            names.update(p.parent.name for p in directory.glob(f"*/{MODEL_FILENAME}"))
    return sorted(names)


def resolve_model_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A file path, a model directory, or the name of a shipped model → the model file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir() and (path / MODEL_FILENAME).is_file():
        return path / MODEL_FILENAME
    for directory in models_directories():
        candidate = directory / str(name_or_path) / MODEL_FILENAME
        if candidate.is_file():
            return candidate
    raise ModelFileError(
        f"no model file or shipped model named {str(name_or_path)!r}; shipped models: {list_models()}"
    )


def state_checksum(state: dict[str, torch.Tensor]) -> str:
    """``"sha256:"`` + hex SHA-256 over a state_dict: for each key in sorted order, the key, the
    tensor's dtype and shape, and its raw bytes (CPU, contiguous)."""
    import hashlib

    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        digest.update(key.encode())
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def verify_checksum(path: Path, blob: dict[str, Any], *, what: str = "model file") -> None:
    """Raise :class:`ModelFileError` naming ``path`` if ``blob`` carries a ``"checksum"`` that
    its ``"state_dict"`` does not match; a blob without one passes (older files)."""
    expected = blob.get("checksum")
    if expected is None:
        return
    state = blob.get("state_dict")
    if not isinstance(expected, str) or not isinstance(state, dict):
        raise ModelFileError(f"{path}: malformed checksum entry of the {what}")
    try:
        actual = state_checksum(state)
    except Exception as error:  # a non-tensor where a tensor belongs
        raise ModelFileError(f"{path}: cannot checksum the {what}'s tensors ({error})") from error
    if actual != expected:
        raise ModelFileError(
            f"{path} is corrupt: its tensors do not match the checksum stored in the {what} "
            f"({actual[:19]}... != {expected[:19]}...)"
        )


def save_model(
    model: Potential, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> None:
    """Write ``model`` atomically (:func:`phicalc.io.atomic_open`), weights on the CPU in their dtype."""
    meta = {
        "elements": model.elements,
        "cutoff": model.cutoff,
        "units": {"energy": "eV", "length": "Å", "charge": "e", "potential": "V"},
        "phicalc_version": __version__,
        "torch_version": str(torch.__version__),
        "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.update(metadata or {})
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": state,
        "checksum": state_checksum(state),
        "metadata": meta,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as handle:
        torch.save(blob, handle)


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate the dict of a model file, without building the model.

    Raises:
        ModelFileError: The file is unreadable, not a phicalc model file, of an unknown format
            version, incomplete, or its tensors do not match its stored checksum.
    """
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any failure to read (unpickler refusal, corrupt zip, ...) is ours
        raise ModelFileError(
            f"{path} is not a readable phicalc model file ({_reason(error)})"
        ) from error
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a phicalc model file (no '{FORMAT}' format tag)")
    version = blob.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{path} has model format version {version}; this phicalc reads {READABLE_VERSIONS}"
        )
    missing = [k for k in ("config", "state_dict", "metadata") if not isinstance(blob.get(k), dict)]
    if missing:
        raise ModelFileError(f"{path} is missing {missing}")
    verify_checksum(path, blob)
    blob["config"] = upgrade_model_config(blob["config"], version)
    return blob


def _reason(error: Exception) -> str:
    """One line on why torch.load failed (the safe unpickler's verdict when there is one)."""
    text = str(error)
    if "weights_only" in text and "GLOBAL" not in text:  # torch's advice to unpickle anyway
        return "refused by the safe loader: it holds objects other than tensors and containers"
    found = re.search(r"GLOBAL [\w.]+|Unsupported operand \d+", text)
    if found:
        return f"refused by the safe loader: {found.group(0)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else type(error).__name__


def load_model(
    name_or_path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> Potential:
    """Load a model file or shipped model by name; returns the Potential in eval mode."""
    path = resolve_model_path(name_or_path)
    blob = read_model_file(path)
    saved_version = blob["metadata"].get("phicalc_version")
    if saved_version is not None and saved_version != __version__:
        warnings.warn(
            f"{path} was written by phicalc {saved_version}; this is {__version__}", stacklevel=2
        )
    try:
        model = Potential(PotentialConfig.from_dict(blob["config"]))
        state = blob["state_dict"]
        # build in the saved dtype (float32 or float64), then load exactly
        if state.get("readout.0.weight", torch.empty(0)).dtype == torch.float64:
            model = model.double()
        model.load_state_dict(state, strict=True)
    except (PhicalcError, RuntimeError, KeyError, TypeError) as error:
        raise ModelFileError(f"{path}: cannot rebuild the model ({error})") from error
    model.metadata = dict(blob["metadata"])
    return model.to(device).eval()
