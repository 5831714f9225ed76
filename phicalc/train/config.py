"""Training configuration: one frozen dataclass per YAML section, unknown keys rejected by name.

A training YAML file has four sections and a few top-level keys::

    seed: 0                 # model initialisation, data order, validation split
    epochs: 300
    dtype: float32          # float32 | float64 (weights and forces; energies are float64)
    device: auto            # auto | cpu | cuda | cuda:N (torchrun: one GPU per local rank)
    out: runs/oe62_painn    # output folder (checkpoint, best model, CSV log, learning curve)
    model: {...}            # ModelSection: the arguments of phicalc.build.build_model
    data: {...}             # DataSection: files or a benchmark loader and its split
    loss: {...}             # LossSection: L1 / L2 / Huber, weights per target
    optim: {...}            # OptimSection: AdamW, batch size, schedule, EMA, clipping

Relative paths are taken relative to the working directory. :meth:`TrainConfig.from_yaml`
accepts ``overrides`` (a nested dict deep-merged over the file) for tests and sweeps.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phicalc.config import (
    check_choice,
    check_in_interval,
    check_int_at_least,
    check_positive,
    config_from_dict,
    merge_dicts,
)
from phicalc.errors import ConfigError
from phicalc.train.model_section import ModelSection

DATA_FORMATS = ("extxyz", "oe62", "md22")
LOSS_KINDS = ("l1", "l2", "huber")
SCHEDULERS = ("cosine", "plateau", "constant")
DTYPES = ("float32", "float64")
#: Validation metrics a run may select its best model on (lower is better for all).
SELECTION_METRICS = (
    "loss",
    "energy_mae_meV",
    "energy_mae_per_atom_meV",
    "forces_mae_eV_A",
    "forces_rmse_eV_A",
)


@dataclass(frozen=True)
class DataSection:
    """Where the training, validation and test structures come from.

    Args:
        format: "extxyz" (any file :func:`phicalc.data.read_structures` reads), "oe62"
            (``df_62k.json``, standard 50,000 / 6,000 / rest split) or "md22"
            (``md22_<molecule>.npz``, budget split 95 / 5, rest test).
        path: the OE62 table or MD22 archive (formats "oe62" and "md22").
        train: training file or list of files, read in order (format "extxyz").
        val: validation file(s) (format "extxyz"); without, ``val_fraction`` of the training
            structures is held out with ``seed``.
        test: test file(s) (format "extxyz"); evaluated once after training, never used to
            select anything.
        val_fraction: share of ``train`` held out for validation when there is no ``val`` file.
        val_group: ``atoms.info`` key (e.g. "molecule") to hold out whole groups instead of
            single frames (salted hash of the group value, so correlated frames stay together).
        seed: seed of the MD22 split and of the extxyz validation hold-out.
        budget: MD22 train + validation frames (default: the molecule's standard budget).
        linear_reference: OE62: subtract the per-element reference fitted on the train split.
        max_train: use at most this many training structures (the first ones), for quick runs.
        max_val: likewise for validation.
        max_test: likewise for the final test evaluation.
        evaluate_test: evaluate the best model on the test split after training.
    """

    format: str = "extxyz"
    path: str | None = None
    train: str | tuple[str, ...] | None = None
    val: str | tuple[str, ...] | None = None
    test: str | tuple[str, ...] | None = None
    val_fraction: float = 0.05
    val_group: str | None = None
    seed: int = 0
    budget: int | None = None
    linear_reference: bool = True
    max_train: int | None = None
    max_val: int | None = None
    max_test: int | None = None
    evaluate_test: bool = True

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                if not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"data.{name} must be a file name or a list of them")
                object.__setattr__(self, name, tuple(value) if value else None)
            elif value is not None and not isinstance(value, str):
                raise ConfigError(
                    f"data.{name} must be a file name or a list of them, got {value!r}"
                )
        check_choice("data.format", self.format, DATA_FORMATS)
        if self.format == "extxyz":
            if not self.train:
                raise ConfigError("data.train (a structure file) is required for format extxyz")
            if self.path:
                raise ConfigError("data.path is for formats oe62 / md22; use data.train for extxyz")
            if not self.val:
                check_in_interval("data.val_fraction", self.val_fraction, 0, 1, closed="()")
        else:
            if not self.path:
                raise ConfigError(f"data.path is required for format {self.format}")
            given = [k for k in ("train", "val", "test") if getattr(self, k)]
            if given:
                raise ConfigError(
                    f"data.{given[0]} is for format extxyz; format {self.format} splits data.path"
                )
        for name in ("max_train", "max_val", "max_test", "budget"):
            check_int_at_least(f"data.{name}", getattr(self, name), 1, allow_none=True)

    def split_files(self, name: str) -> list[str]:
        """The files of split ``name`` ("train", "val", "test") of an extxyz section."""
        value = getattr(self, name)
        if value is None:
            return []
        return [value] if isinstance(value, str) else list(value)

    def files(self) -> list[str]:
        """Every input file named by this section."""
        if self.format != "extxyz":
            return [str(self.path)]
        return [f for name in ("train", "val", "test") for f in self.split_files(name)]

    def check_files(self) -> None:
        """Raise FileNotFoundError naming the first input file that does not exist."""
        for name in self.files():
            if not Path(name).is_file():
                raise FileNotFoundError(f"data file not found: {name}")


@dataclass(frozen=True)
class LossSection:
    """Loss = Σ_k w_k · mean penalty(prediction − reference) over target k.

    Energy errors are per atom (eV/atom) unless ``energy_per_atom`` is false; forces are per
    Cartesian component (eV/Å), charges per atom (e), dipoles per component (e·Å). Charge and
    dipole terms need a Φ-Module and reference values in the data.

    Args:
        kind: penalty: "l1" (|d|), "l2" (d²) or "huber" (½d² for |d| < δ, else δ(|d| − ½δ)).
        huber_delta: δ of the Huber penalty, in the target's unit.
        energy_weight: weight of the energy term.
        forces_weight: weight of the force term (0 skips force computation in training).
        charges_weight: weight of the partial-charge term.
        dipole_weight: weight of the dipole term.
        energy_per_atom: divide energy errors by the number of atoms.
    """

    kind: str = "l1"
    huber_delta: float = 0.01
    energy_weight: float = 1.0
    forces_weight: float = 1.0
    charges_weight: float = 0.0
    dipole_weight: float = 0.0
    energy_per_atom: bool = True

    def __post_init__(self) -> None:
        check_choice("loss.kind", self.kind, LOSS_KINDS)
        for name in ("energy_weight", "forces_weight", "charges_weight", "dipole_weight"):
            check_in_interval(f"loss.{name}", getattr(self, name), 0, math.inf, closed="[)")
        check_positive("loss.huber_delta", self.huber_delta)
        if self.weights() == {}:
            raise ConfigError("all loss weights are 0; nothing to train")

    def weights(self) -> dict[str, float]:
        """The non-zero weights, keyed by target name (energy, forces, charges, dipole)."""
        weights = {
            "energy": self.energy_weight,
            "forces": self.forces_weight,
            "charges": self.charges_weight,
            "dipole": self.dipole_weight,
        }
        return {k: float(w) for k, w in weights.items() if w > 0}


@dataclass(frozen=True)
class OptimSection:
    """AdamW, learning-rate schedule, EMA and clipping.

    Args:
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        betas: AdamW (β1, β2).
        eps: AdamW ε.
        batch_size: structures per optimisation step and process (the global batch under
            torchrun is ``batch_size × world_size``).
        val_batch_size: structures per validation batch (default: ``batch_size``).
        scheduler: "cosine" (per step, to ``min_lr`` at the last epoch), "plateau" (× ``factor``
            after ``patience`` epochs without a relative improvement of the validation loss
            by ``threshold``; floor ``min_lr``) or "constant".
        warmup_epochs: linear warm-up from ``lr × warmup_start`` to ``lr`` (any scheduler).
        warmup_start: learning-rate factor at step 0 of the warm-up.
        min_lr: final (cosine) or smallest (plateau) learning rate.
        factor: plateau decay factor.
        patience: plateau patience in epochs.
        threshold: plateau relative improvement threshold.
        ema_decay: decay of the exponential moving average of the weights (None: no EMA);
            validation, model selection and saved models use the averaged weights.
        grad_clip: clip the global gradient norm to this value (None: no clipping).
    """

    lr: float = 5e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    batch_size: int = 32
    val_batch_size: int | None = None
    scheduler: str = "cosine"
    warmup_epochs: float = 0.0
    warmup_start: float = 0.01
    min_lr: float = 1e-7
    factor: float = 0.8
    patience: int = 10
    threshold: float = 1e-4
    ema_decay: float | None = 0.999
    grad_clip: float | None = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2:
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            check_in_interval(f"optim.betas[{i}]", beta, 0, 1, closed="[)")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        check_choice("optim.scheduler", self.scheduler, SCHEDULERS)
        check_positive("optim.lr", self.lr)
        check_in_interval("optim.min_lr", self.min_lr, 0, self.lr)
        check_positive("optim.eps", self.eps)
        for name in ("weight_decay", "warmup_epochs", "threshold"):
            check_in_interval(f"optim.{name}", getattr(self, name), 0, math.inf, closed="[)")
        check_int_at_least("optim.batch_size", self.batch_size, 1)
        check_int_at_least("optim.val_batch_size", self.val_batch_size, 1, allow_none=True)
        check_int_at_least("optim.patience", self.patience, 1)
        check_in_interval("optim.warmup_start", self.warmup_start, 0, 1, closed="(]")
        check_in_interval("optim.factor", self.factor, 0, 1, closed="()")
        check_in_interval("optim.ema_decay", self.ema_decay, 0, 1, closed="()", allow_none=True)
        check_positive("optim.grad_clip", self.grad_clip, allow_none=True)


#: Keys (a top-level key covers its section) that may change between a run and its ``--resume``
#: without breaking it. The test data never touch training or model selection.
RESUMABLE_CHANGES = (
    "out",
    "device",
    "num_threads",
    "progress",
    "epochs",
    "data.test",
    "data.evaluate_test",
)


@dataclass(frozen=True)
class TrainConfig:
    """A complete training run (see the module docstring for the YAML layout).

    Args:
        model: the model section.
        data: the data section.
        loss: the loss section.
        optim: the optimisation section.
        epochs: passes over the training data.
        seed: initial weights, data order and validation hold-out.
        dtype: "float32" (default) or "float64" weights.
        device: "auto" (CUDA if available), "cpu", "cuda" or "cuda:N".
        num_threads: ``torch.set_num_threads`` during this run, restored afterwards (None: leave
            torch's default). On a busy machine 1 thread per process is often much faster.
        out: output folder.
        selection_metric: validation metric that picks ``best_model.pt`` (never a test metric).
        progress: show tqdm progress bars.
        init_from: a model name or file whose weights, E0 and σ start the run (fine-tuning);
            its architecture and elements must equal the model section's. None: fresh weights.
    """

    model: ModelSection
    data: DataSection
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    epochs: int = 100
    seed: int = 0
    dtype: str = "float32"
    device: str = "auto"
    num_threads: int | None = None
    out: str = "runs/train"
    selection_metric: str = "loss"
    progress: bool = True
    init_from: str | None = None

    def __post_init__(self) -> None:
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("selection_metric", self.selection_metric, SELECTION_METRICS)
        check_int_at_least("epochs", self.epochs, 1)
        check_int_at_least("num_threads", self.num_threads, 1, allow_none=True)
        if not (self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:")):
            raise ConfigError(f"device={self.device!r} is not one of auto, cpu, cuda, cuda:N")
        if self.selection_metric.startswith("forces") and "forces" not in self.loss.weights():
            raise ConfigError(
                f"selection_metric={self.selection_metric!r} needs forces, but loss.forces_weight is 0"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from nested dicts (as read from YAML); unknown keys raise :class:`ConfigError`."""
        if not isinstance(values, dict):
            raise ConfigError(f"a training config must be a mapping, got {type(values).__name__}")
        values = dict(values)
        sections = {
            "model": ModelSection,
            "data": DataSection,
            "loss": LossSection,
            "optim": OptimSection,
        }
        for name, section_cls in sections.items():
            if name not in values:
                if name in ("model", "data"):
                    raise ConfigError(f"the training config has no '{name}' section")
                continue
            section = {} if values[name] is None else values[name]
            if not isinstance(section, dict):
                raise ConfigError(f"'{name}' must be a mapping, got {section!r}")
            try:
                values[name] = config_from_dict(section_cls, section)
            except TypeError as error:  # a value of the wrong type reached a comparison
                raise ConfigError(f"bad value in '{name}': {error}") from error
        try:
            return config_from_dict(cls, values)
        except TypeError as error:
            raise ConfigError(f"bad value in the training config: {error}") from error

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """Read a YAML file, deep-merge ``overrides`` (nested dict) over it, and validate.

        Raises:
            FileNotFoundError: no such file.
            ConfigError: unparsable YAML, unknown keys or bad values.
        """
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            first = str(error).strip().splitlines()[0]
            raise ConfigError(f"{path}: not valid YAML ({first})") from error
        if values is None:
            raise ConfigError(f"{path}: the file is empty")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a training config must be a mapping")
        try:
            return cls.from_dict(merge_dicts(values, overrides or {}))
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML- and ``torch.load(weights_only=True)``-safe)."""
        values = dataclasses.asdict(self)
        model = values["model"]
        if model["elements"] is not None:
            model["elements"] = list(model["elements"])
        values["optim"]["betas"] = list(values["optim"]["betas"])
        for name in ("train", "val", "test"):
            if isinstance(values["data"][name], tuple):
                values["data"][name] = list(values["data"][name])
        return values

    def with_overrides(self, overrides: dict[str, Any]) -> TrainConfig:
        """A copy with ``overrides`` (nested dict) deep-merged in and re-validated."""
        return TrainConfig.from_dict(merge_dicts(self.to_dict(), overrides))

    def write_yaml(self, path: str | Path) -> None:
        """Write the resolved configuration as YAML."""
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
