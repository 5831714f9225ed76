"""The training loop: data → statistics → AdamW steps with EMA → validation → checkpoints.

Usage::

    from phicalc.train import TrainConfig, train

    config = TrainConfig.from_yaml("recipes/md22_ac_ala3_painn_phi.yaml",
                                   overrides={"epochs": 10, "out": "runs/quick"})
    result = train(config)               # or train(config, resume=True) to continue
    print(result.best_model, result.val_metrics)

One epoch: the training graphs (built once and cached on the device) are shuffled with a seed
derived from ``(seed, epoch)``, cut into batches (under torchrun: disjoint shares of each global
batch), and every batch takes one AdamW step on the weighted loss, followed by gradient
averaging across processes, optional clipping, the EMA update and the learning-rate step. The
EMA weights are then evaluated on the validation set; the best validation value of
``selection_metric`` is saved as ``best_model.pt`` (test data are evaluated only once, after the
last epoch, and never select anything). After every epoch rank 0 writes ``checkpoint.pt``
(atomically) and ``log.csv``, and redraws ``learning_curve.png`` (at most once a minute, and
after the last epoch of the call).

Output folder: ``config.yaml`` (resolved), ``checkpoint.pt``, ``best_model.pt``, ``log.csv``,
``learning_curve.png``, ``metrics.json`` (best validation and test metrics), ``train.log``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from tqdm.auto import tqdm

from phicalc.data import GraphDataset
from phicalc.data.splits import derive_seed
from phicalc.errors import ConfigError
from phicalc.graph.batch import AtomGraph, collate
from phicalc.potential import build_model
from phicalc.serialization import load_model, save_model
from phicalc.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from phicalc.train.config import RESUMABLE_CHANGES, TrainConfig, config_differences
from phicalc.train.data import TrainingData
from phicalc.train.distributed import DistributedContext, init_distributed
from phicalc.train.ema import ExponentialMovingAverage
from phicalc.train.evaluation import collate_batches, evaluate_batches, plan_batches
from phicalc.train.history import plot_learning_curve, write_csv
from phicalc.train.loss import WeightedLoss
from phicalc.train.metrics import MetricAccumulator
from phicalc.train.schedule import LRSchedule
from phicalc.train.statistics import energy_scale, fit_atomic_energies

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
BEST_MODEL_NAME = "best_model.pt"
#: The learning curve is redrawn at most this often (seconds), and at the end of each call.
PLOT_INTERVAL_S = 60.0


@dataclass
class TrainResult:
    """What a call of :func:`train` produced.

    Attributes:
        out: output folder.
        best_model: path of ``best_model.pt``.
        best_epoch: epoch of the best validation ``selection_metric``.
        val_metrics: validation metrics of the best epoch.
        test_metrics: test metrics of the best model (None: no test data or run not finished).
        epochs_done: epochs completed so far (over all resumptions).
        finished: all configured epochs are done.
        history: one row per epoch (as in ``log.csv``).
    """

    out: Path
    best_model: Path
    best_epoch: int
    val_metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    epochs_done: int
    finished: bool
    history: list[dict[str, Any]] = field(default_factory=list)


def resolve_device(name: str, *, local_rank: int = 0) -> torch.device:
    """The torch device of a config's ``device`` ("auto", "cpu", "cuda", "cuda:N")."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} but CUDA is not available")
        if name == "cuda":
            return torch.device("cuda", local_rank)
    return torch.device(name)


def machine_info(device: torch.device) -> dict[str, Any]:
    """Where a model was trained: host, OS, CPU, GPU, library versions, threads."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


class Trainer:
    """One training run (see the module docstring). Build it, then call :meth:`fit`.

    Args:
        config: the run.
        resume: continue from ``<out>/checkpoint.pt`` (bit for bit on the same machine and
            world size); without it an existing checkpoint in ``out`` is an error.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False) -> None:
        self.config = config
        self.resume = resume
        self.out = Path(config.out)
        self.device = resolve_device(
            config.device, local_rank=int(os.environ.get("LOCAL_RANK", "0"))
        )
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self._threads_before = torch.get_num_threads()
        self.ctx: DistributedContext = init_distributed(str(self.device))
        try:
            self._setup()
        except BaseException:
            self._release()
            raise

    # ------------------------------------------------------------------ setup
    def _release(self) -> None:
        """Leave the process group and give back the thread count this run changed."""
        self.ctx.close()
        if torch.get_num_threads() != self._threads_before:
            torch.set_num_threads(self._threads_before)

    def _setup(self) -> None:
        c = self.config
        if c.num_threads is not None:
            torch.set_num_threads(c.num_threads)
        checkpoint_path = self.out / CHECKPOINT_NAME
        if self.resume and not checkpoint_path.is_file():
            raise FileNotFoundError(f"cannot resume: no {CHECKPOINT_NAME} in {self.out}")
        if not self.resume and checkpoint_path.exists():
            raise ConfigError(
                f"{self.out} already holds a run ({CHECKPOINT_NAME}); use --resume to continue "
                "it or choose another --out"
            )
        c.data.check_files()
        checkpoint = load_checkpoint(checkpoint_path) if self.resume else None
        if checkpoint is not None:
            self._check_resumable(checkpoint)

        self.data = TrainingData(c.data)
        train_records, val_records = self.data.split("train"), self.data.split("val")
        self.data_description = self.data.describe()
        if (
            checkpoint is not None
            and checkpoint["data"]["fingerprint"] != self.data_description["fingerprint"]
        ):
            raise ConfigError(
                f"cannot resume: the training/validation data differ from the checkpoint's "
                f"({self.data_description['fingerprint']} != {checkpoint['data']['fingerprint']})"
            )
        if checkpoint is not None:
            self.elements = tuple(checkpoint["elements"])
        else:
            self.elements = self._choose_elements(train_records + val_records)
        self.train_graphs = self._build_graphs(train_records, "train")
        self.val_graphs = self._build_graphs(val_records, "val")
        self.loss = WeightedLoss(c.loss)
        self._check_targets()
        self.train_forces = "forces" in self.loss.weights
        self._forces_for_graph = False
        self.val_forces = all("forces" in g.targets for g in self.val_graphs)
        if c.selection_metric.startswith("forces") and not self.val_forces:
            raise ConfigError(
                f"selection_metric={c.selection_metric!r} but the validation data have no forces"
            )

        model = build_model(**c.model.build_kwargs(self.elements), seed=c.seed)
        self.model = model.to(device=self.device, dtype=self.dtype)
        if checkpoint is None:
            self._set_statistics()
        self.ctx.broadcast_module(self.model)
        o = c.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=o.lr,
            betas=o.betas,
            eps=o.eps,
            weight_decay=o.weight_decay,
        )
        self.steps_per_epoch = len(
            plan_batches(len(self.train_graphs), o.batch_size, world_size=self.ctx.world_size)
        )
        self.schedule = LRSchedule(
            self.optimizer, o, steps_per_epoch=self.steps_per_epoch, epochs=c.epochs
        )
        self.ema = ExponentialMovingAverage(self.model, o.ema_decay)
        self.val_batches = collate_batches(
            self.val_graphs,
            o.val_batch_size or o.batch_size,
            device=self.device,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
        )
        self.epoch = 0
        self.step = 0
        self.best_metric = math.inf
        self.best_epoch = 0
        self.best_val: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.train_time_s = 0.0
        self._last_plot = -math.inf
        self._plotted_epoch = 0  # epochs in the learning curve last drawn
        if checkpoint is not None:
            self._restore(checkpoint)
        self.ctx.barrier()
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            c.write_yaml(self.out / "config.yaml")
            logger.info(
                "model %s%s, %d parameters, elements %s; %d train / %d val structures; "
                "%d steps per epoch on %s (%d process(es)); E0 %s eV, σ = %.4g eV",
                c.model.backbone,
                " + Φ" if self.model.has_phi else "",
                sum(p.numel() for p in self.model.parameters()),
                list(self.elements),
                len(self.train_graphs),
                len(self.val_graphs),
                self.steps_per_epoch,
                self.device,
                self.ctx.world_size,
                {s: round(float(e), 4) for s, e in zip(self.elements, self.model.atomic_energies)},
                float(self.model.energy_scale),
            )

    def _check_resumable(self, checkpoint: dict[str, Any]) -> None:
        differences = [
            key
            for key in config_differences(checkpoint["config"], self.config.to_dict())
            if key not in RESUMABLE_CHANGES and key.split(".")[0] not in RESUMABLE_CHANGES
        ]
        if differences:
            raise ConfigError(
                f"cannot resume {self.out}: the config differs from the checkpoint's in "
                f"{differences}"
            )
        if checkpoint["config"]["epochs"] != self.config.epochs:
            logger.warning(
                "resuming with epochs=%d instead of %d: the learning-rate schedule changes",
                self.config.epochs,
                checkpoint["config"]["epochs"],
            )
        if checkpoint.get("world_size", 1) != self.ctx.world_size:
            logger.warning(
                "resuming with %d process(es) instead of %d: batches differ from the original run",
                self.ctx.world_size,
                checkpoint.get("world_size", 1),
            )

    def _choose_elements(self, records: Sequence[Atoms]) -> tuple[str, ...]:
        present = sorted({int(z) for atoms in records for z in atoms.numbers})
        symbols = [chemical_symbols[z] for z in present]
        if self.config.model.elements is None:
            return tuple(symbols)
        elements = tuple(self.config.model.elements)
        missing = [s for s in symbols if s not in elements]
        if missing:
            raise ConfigError(
                f"the training/validation data contain {missing}, which model.elements "
                f"{list(elements)} lacks"
            )
        unknown = [s for s in elements if s not in atomic_numbers]
        if unknown:
            raise ConfigError(f"model.elements has unknown symbols {unknown}")
        return elements

    def _build_graphs(self, records: Sequence[Atoms], name: str) -> list[AtomGraph]:
        """Neighbour lists of every structure, built once, kept on the training device."""
        dataset = GraphDataset(records, self.config.model.cutoff, cache=False)
        indices = tqdm(
            range(len(dataset)),
            desc=f"graphs ({name})",
            unit="structure",
            leave=False,
            disable=not (self.config.progress and self.ctx.is_main),
        )
        return [dataset[i].to(self.device) for i in indices]

    def _check_targets(self) -> None:
        has_phi = self.config.model.phi is not False
        hints = {
            "forces": "set loss.forces_weight: 0 for energy-only data such as OE62",
            "charges": "set loss.charges_weight: 0 or use data with reference charges",
            "dipole": "set loss.dipole_weight: 0 or use data with reference dipoles",
            "energy": "set loss.energy_weight: 0 or use labelled data",
        }
        for name in self.loss.weights:
            if name in ("charges", "dipole") and not has_phi:
                raise ConfigError(f"loss.{name}_weight > 0 needs a Φ-Module (model.phi)")
            for split, graphs in (("training", self.train_graphs), ("validation", self.val_graphs)):
                lacking = sum(1 for g in graphs if name not in (g.targets or {}))
                if lacking:
                    raise ConfigError(
                        f"loss.{name}_weight > 0 but {lacking} of {len(graphs)} {split} "
                        f"structures have no reference {name}; {hints[name]}"
                    )

    def _set_statistics(self) -> None:
        m = self.config.model
        if isinstance(m.atomic_energies, dict):
            missing = [s for s in self.elements if s not in m.atomic_energies]
            if missing:
                raise ConfigError(f"model.atomic_energies lacks {missing}")
            energies = {s: float(m.atomic_energies[s]) for s in self.elements}
        elif m.atomic_energies == "zero":
            energies = dict.fromkeys(self.elements, 0.0)
        else:
            energies = fit_atomic_energies(self.train_graphs, self.elements)
        self.model.set_atomic_energies(energies)
        if isinstance(m.energy_scale, (int, float)):
            scale = float(m.energy_scale)
        else:
            kind = m.energy_scale
            if kind == "auto":
                kind = "force_rms" if self.train_forces_available() else "residual_std"
            scale = energy_scale(self.train_graphs, energies, kind)
        self.model.set_energy_scale(scale)

    def train_forces_available(self) -> bool:
        return "forces" in self.loss.weights and all(
            "forces" in g.targets for g in self.train_graphs
        )

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.ema.load_state_dict(checkpoint["ema"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.schedule.load_state_dict(checkpoint["schedule"])
        restore_rng_state(checkpoint["rng"])
        self.epoch = int(checkpoint["epoch"])
        self.step = int(checkpoint["step"])
        best = checkpoint["best"]
        self.best_metric = float(best["metric"])
        self.best_epoch = int(best["epoch"])
        self.best_val = dict(best["val_metrics"])
        self.history = [dict(row) for row in checkpoint["history"]]
        self.train_time_s = float(checkpoint.get("train_time_s", 0.0))
        logger.info("resumed %s after epoch %d (step %d)", self.out, self.epoch, self.step)

    # ------------------------------------------------------------------ loop
    def fit(
        self, *, stop_after: int | None = None, time_limit_s: float | None = None
    ) -> TrainResult:
        """Train until ``config.epochs`` (or for at most ``stop_after`` more epochs).

        Args:
            stop_after: run at most this many epochs in this call; the schedule still spans
                ``config.epochs``, so a later ``resume`` continues it.
            time_limit_s: wall-clock seconds this call may spend on epochs. After every epoch
                the run's total epochs are cut to what still fits (:meth:`_fit_to_time`),
                so a cosine schedule still anneals to ``min_lr`` before the limit;
                ``config.epochs`` is the upper bound.

        Returns:
            A :class:`TrainResult`; the test split is evaluated only once all epochs are done.
        """
        handler = self._attach_log_file()
        try:
            call_start, first = time.monotonic(), self.epoch
            while self.epoch < self.config.epochs and (
                stop_after is None or self.epoch - first < stop_after
            ):
                self._run_epoch(self.epoch + 1)
                if time_limit_s is not None and not self._fit_to_time(
                    call_start, call_start + time_limit_s, self.epoch - first
                ):
                    break
            if self.ctx.is_main and self._plotted_epoch != self.epoch:
                self._plot_learning_curve()
            c = self.config
            finished = self.epoch >= c.epochs
            test_metrics = None
            if finished and c.data.evaluate_test:
                test_metrics = self._evaluate_test()
            if self.ctx.is_main:
                summary = {
                    "epochs_done": self.epoch,
                    "finished": finished,
                    "best_epoch": self.best_epoch,
                    "selection_metric": c.selection_metric,
                    "val": self.best_val,
                    "test": test_metrics,
                }
                (self.out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
            return TrainResult(
                out=self.out,
                best_model=self.out / BEST_MODEL_NAME,
                best_epoch=self.best_epoch,
                val_metrics=dict(self.best_val),
                test_metrics=test_metrics,
                epochs_done=self.epoch,
                finished=finished,
                history=list(self.history),
            )
        finally:
            if handler is not None:
                logging.getLogger("phicalc").removeHandler(handler)
                handler.close()
            self._release()

    def _fit_to_time(self, call_start: float, deadline: float, epochs_this_call: int) -> bool:
        """Cut the run's total epochs to what still fits before ``deadline`` (time.monotonic).

        Fitting epochs = ⌊time left / epoch time⌋, the epoch time being the larger of this
        call's mean and its last epoch (epochs slow down when a shared machine fills up).
        Times are averaged over processes, so every rank takes the same decision. The schedule
        is re-stretched at the current step exactly as a ``resume`` with fewer ``epochs``
        would, and the new total is what ``checkpoint.pt`` and ``config.yaml`` record. Never
        lengthens the run. When no further epoch fits, the total stays (an un-annealed run is
        not called finished) and the call stops, as ``stop_after`` would: a later ``resume``
        continues the schedule.

        Returns:
            Whether this call may run another epoch.
        """
        now = time.monotonic()
        timings = torch.tensor(
            [now - call_start, float(self.history[-1]["time_s"]), deadline - now],
            dtype=torch.float64,
        )
        spent, last, left = (
            self.ctx.all_reduce_sum(timings.to(self.device)) / self.ctx.world_size
        ).tolist()
        per_epoch = max(spent / epochs_this_call, last)
        fitting = max(0, math.floor(left / per_epoch))
        total = min(self.config.epochs, self.epoch + fitting)
        if total == self.config.epochs:
            return True
        if fitting == 0:
            logger.warning(
                "time limit: %.0f s left, %.0f s per epoch; stopping after epoch %d of %d "
                "(resume to continue)",
                left,
                per_epoch,
                self.epoch,
                self.config.epochs,
            )
            return False
        logger.warning(
            "time limit: %.0f s left, %.0f s per epoch; the run now ends after epoch %d "
            "instead of %d",
            left,
            per_epoch,
            total,
            self.config.epochs,
        )
        self.config = dataclasses.replace(self.config, epochs=total)
        self.schedule.set_epochs(total)
        if self.ctx.is_main:
            self.config.write_yaml(self.out / "config.yaml")
            save_checkpoint(self.out / CHECKPOINT_NAME, self._checkpoint_state())
        return True

    def _plot_learning_curve(self) -> None:
        plot_learning_curve(self.out / "learning_curve.png", self.history)
        self._last_plot, self._plotted_epoch = time.monotonic(), self.epoch

    def _attach_log_file(self) -> logging.Handler | None:
        if not self.ctx.is_main:
            return None
        handler = logging.FileHandler(self.out / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        logging.getLogger("phicalc").addHandler(handler)
        return handler

    def _run_epoch(self, epoch: int) -> None:
        c = self.config
        started = time.perf_counter()
        train_metrics = self._train_epoch(epoch)
        val_metrics = self._validate()
        self.schedule.step_epoch(val_metrics.get("loss", math.nan))
        elapsed = time.perf_counter() - started
        self.train_time_s += elapsed
        self.epoch = epoch
        row: dict[str, Any] = {"epoch": epoch, "step": self.step, "lr": self.schedule.lr}
        row["time_s"] = elapsed
        row.update({f"train_{k}": v for k, v in train_metrics.items()})
        row.update({f"val_{k}": v for k, v in val_metrics.items()})
        self.history.append(row)
        metric = val_metrics[c.selection_metric]
        improved = self.best_epoch == 0 or metric < self.best_metric
        if improved:
            self.best_metric, self.best_epoch, self.best_val = metric, epoch, dict(val_metrics)
        spread = self.ctx.max_parameter_spread(self.model)
        if spread > 0:
            raise RuntimeError(
                f"weights differ between processes by {spread:.3g} after epoch {epoch}"
            )
        if self.ctx.is_main:
            if improved:
                save_model(
                    self.ema.model,
                    self.out / BEST_MODEL_NAME,
                    metadata=self._metadata(train_metrics),
                )
            save_checkpoint(self.out / CHECKPOINT_NAME, self._checkpoint_state())
            write_csv(self.out / "log.csv", self.history)
            if time.monotonic() - self._last_plot >= PLOT_INTERVAL_S:
                self._plot_learning_curve()
            selected = (
                "" if c.selection_metric == "loss" else f", val {c.selection_metric} {metric:.4g}"
            )
            logger.info(
                "epoch %d/%d: train loss %.4g, val loss %.4g%s%s (%.1f s, %.2f structures/s)",
                epoch,
                c.epochs,
                train_metrics.get("loss", math.nan),
                val_metrics.get("loss", math.nan),
                selected,
                " (best)" if improved else "",
                elapsed,
                len(self.train_graphs) / elapsed,
            )

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        c = self.config
        model = self.model
        model.train()
        plan = plan_batches(
            len(self.train_graphs),
            c.optim.batch_size,
            shuffle=True,
            seed=derive_seed(c.seed, "epoch", epoch),
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
        )
        accumulator = MetricAccumulator(self.loss.weights)
        params = [p for p in model.parameters() if p.requires_grad]
        bar = tqdm(
            total=len(plan),
            desc=f"epoch {epoch}/{c.epochs}",
            unit="batch",
            leave=False,
            disable=not (c.progress and self.ctx.is_main),
        )
        for indices in plan:
            self.optimizer.zero_grad(set_to_none=True)
            loss_value = math.nan
            if len(indices):
                batch = collate([self.train_graphs[int(i)] for i in indices])
                outputs, terms, loss = self._forward_loss(batch)
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"training loss is {loss_value} at epoch {epoch}, step {self.step + 1}"
                    )
                loss.backward()
                accumulator.update(outputs, batch, terms)
            self.ctx.average_gradients(params, len(indices))
            if c.optim.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, c.optim.grad_clip)
            self.optimizer.step()
            self.ema.update(model)
            self.schedule.step()
            self.step += 1
            bar.set_postfix(loss=f"{loss_value:.4g}", lr=f"{self.schedule.lr:.2e}", refresh=False)
            bar.update()
        bar.close()
        accumulator.merge_(self.ctx.all_reduce_sum(accumulator.sums.to(self.device)))
        return accumulator.compute()

    def _forward_loss(
        self, batch: AtomGraph
    ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, int]], torch.Tensor]:
        """Model outputs, loss terms and loss of a training batch (the loss has a graph)."""
        compute_forces = self.train_forces or self._forces_for_graph
        outputs = self.model(batch, compute_forces=compute_forces, training=True)
        terms = self.loss.terms(outputs, batch)
        loss = self.loss.combine(terms)
        if not loss.requires_grad and not compute_forces:
            # Potential.forward runs under no_grad when it computes no derivatives, even with
            # training=True, so an energy-only loss has no graph. Asking for forces keeps one
            # (about 1.5x the cost) until the model builds the graph itself.
            logger.warning(
                "the model returns energies without a graph when forces are off; computing "
                "forces during energy-only training as a workaround"
            )
            self._forces_for_graph = True
            return self._forward_loss(batch)
        return outputs, terms, loss

    def _validate(self) -> dict[str, float]:
        accumulator = evaluate_batches(
            self.ema.model, self.val_batches, compute_forces=self.val_forces, loss=self.loss
        )
        accumulator.merge_(self.ctx.all_reduce_sum(accumulator.sums.to(self.device)))
        return accumulator.compute()

    def _evaluate_test(self) -> dict[str, float] | None:
        records = self.data.split("test")
        if not records:
            return None
        self.ctx.barrier()  # rank 0 has written best_model.pt
        path = self.out / BEST_MODEL_NAME
        best = load_model(path, device=self.device)
        graphs = self._build_graphs(records, "test")
        forces = all("forces" in g.targets for g in graphs)
        batches = collate_batches(
            graphs,
            self.config.optim.val_batch_size or self.config.optim.batch_size,
            device=self.device,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
        )
        accumulator = evaluate_batches(best, batches, compute_forces=forces)
        accumulator.merge_(self.ctx.all_reduce_sum(accumulator.sums.to(self.device)))
        metrics = accumulator.compute()
        if self.ctx.is_main:
            metadata = dict(best.metadata)
            metadata["metrics"] = {**metadata.get("metrics", {}), "test": metrics}
            metadata["metrics"]["n_test"] = len(graphs)
            save_model(best, path, metadata=metadata)
            logger.info("test metrics of the best model (epoch %d): %s", self.best_epoch, metrics)
        return metrics

    # ------------------------------------------------------------------ files
    def _metadata(self, train_metrics: dict[str, float]) -> dict[str, Any]:
        return {
            "training_data": self.data_description,
            "metrics": {
                "epoch": self.best_epoch,
                "selection_metric": self.config.selection_metric,
                "val": dict(self.best_val),
                "train": dict(train_metrics),
            },
            "hyperparameters": self.config.to_dict(),
            "training_time": {
                "epochs": self.epoch,
                "steps": self.step,
                "wall_time_s": self.train_time_s,
                "world_size": self.ctx.world_size,
            },
            "machine": machine_info(self.device),
        }

    def _checkpoint_state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "best": {
                "metric": self.best_metric,
                "epoch": self.best_epoch,
                "val_metrics": dict(self.best_val),
            },
            "history": list(self.history),
            "rng": capture_rng_state(),
            "data": self.data_description,
            "elements": list(self.elements),
            "train_time_s": self.train_time_s,
            "world_size": self.ctx.world_size,
        }


def train(
    config: TrainConfig | str | os.PathLike[str],
    *,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    stop_after: int | None = None,
    time_limit_s: float | None = None,
) -> TrainResult:
    """Run (or continue) a training run.

    Args:
        config: a :class:`TrainConfig` or the path of a YAML file.
        resume: continue from the checkpoint in ``config.out``.
        overrides: nested dict deep-merged over the config (e.g. ``{"epochs": 1,
            "data": {"train": "small.extxyz"}}``).
        stop_after: run at most this many epochs in this call (the schedule still spans
            ``config.epochs``), e.g. to split a run into jobs and resume later.
        time_limit_s: wall-clock seconds for this call, data loading included (the final
            test evaluation is not): the run's epochs are cut, at most to ``config.epochs``,
            so that its schedule still completes in time (:meth:`Trainer.fit`).

    Returns:
        The :class:`TrainResult`.
    """
    started = time.monotonic()
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_yaml(config, overrides=overrides)
    elif overrides:
        config = config.with_overrides(overrides)
    trainer = Trainer(config, resume=resume)
    if time_limit_s is not None:
        time_limit_s -= time.monotonic() - started
    return trainer.fit(stop_after=stop_after, time_limit_s=time_limit_s)
