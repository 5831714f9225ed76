"""Error metrics: functions on arrays and a summing accumulator for batched evaluation.

Metric names carry their unit: ``energy_mae_meV`` (per structure), ``energy_mae_per_atom_meV``
(meV/atom), ``forces_mae_eV_A`` (per Cartesian component, eV/Å), ``charges_pearson_r``
(dimensionless), ``charges_mae_e`` (e), ``dipole_mae_eA`` (per component, e·Å). The accumulator
keeps float64 sums only, so metrics over a set are exact whatever the batch size, and sums from
several processes add up (``torch.distributed.all_reduce``) to the metrics of the whole set.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from phicalc.graph.batch import AtomGraph
from phicalc.train.loss import target_differences

#: Units of the metrics, for tables.
METRIC_UNITS = {
    "energy_mae_meV": "meV",
    "energy_rmse_meV": "meV",
    "energy_mae_per_atom_meV": "meV/atom",
    "energy_rmse_per_atom_meV": "meV/atom",
    "forces_mae_eV_A": "eV/Å",
    "forces_rmse_eV_A": "eV/Å",
    "charges_mae_e": "e",
    "charges_pearson_r": "",
    "dipole_mae_eA": "e·Å",
    "loss": "",
}

_LOSS_TERMS = ("energy", "forces", "charges", "dipole")
_SUM_KEYS = (
    "n_graphs",
    "n_atoms",
    "energy_n",
    "energy_abs",
    "energy_sq",
    "energy_pa_abs",
    "energy_pa_sq",
    "forces_n",
    "forces_abs",
    "forces_sq",
    "charges_n",
    "charges_abs",
    "charges_sq",
    "charges_x",
    "charges_y",
    "charges_xx",
    "charges_yy",
    "charges_xy",
    "dipole_n",
    "dipole_abs",
    "dipole_sq",
    *(f"loss_{t}_{s}" for t in _LOSS_TERMS for s in ("sum", "n")),
)


def _array(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=float)


def mae(prediction: Any, reference: Any) -> float:
    """Mean absolute error over all elements."""
    return float(np.mean(np.abs(_array(prediction) - _array(reference))))


def rmse(prediction: Any, reference: Any) -> float:
    """Root-mean-square error over all elements."""
    return float(np.sqrt(np.mean((_array(prediction) - _array(reference)) ** 2)))


def pearson_r(x: Any, y: Any) -> float:
    """Pearson correlation coefficient of two equal-length sequences (NaN if either is constant)."""
    x, y = _array(x).ravel(), _array(y).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(
            f"pearson_r needs two sequences of equal length >= 2, got {x.size}, {y.size}"
        )
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denominator if denominator > 0 else float("nan")


class MetricAccumulator:
    """Running float64 sums over batches; :meth:`compute` turns them into metrics.

    Args:
        loss_weights: weights of the loss terms, to report the weighted ``loss`` of the whole set
            (the exact loss, not an average of batch losses). None: no loss.
    """

    def __init__(self, loss_weights: dict[str, float] | None = None) -> None:
        self.loss_weights = dict(loss_weights or {})
        self.sums = torch.zeros(len(_SUM_KEYS), dtype=torch.float64)
        self._index = {k: i for i, k in enumerate(_SUM_KEYS)}

    def _add(self, key: str, value: torch.Tensor | float) -> None:
        self.sums[self._index[key]] += float(value)

    @torch.no_grad()
    def update(
        self,
        outputs: dict[str, torch.Tensor],
        batch: AtomGraph,
        terms: dict[str, tuple[torch.Tensor, int]] | None = None,
    ) -> None:
        """Add one batch: model ``outputs``, the batch with ``targets``, and the loss ``terms``."""
        self._add("n_graphs", batch.n_graphs)
        self._add("n_atoms", batch.n_atoms)
        absolute = target_differences(outputs, batch, energy_per_atom=False)
        if "energy" in absolute:
            d = absolute["energy"].double()
            per_atom = d / batch.n_atoms_per_graph.to(d)
            self._add("energy_n", d.numel())
            self._add("energy_abs", d.abs().sum())
            self._add("energy_sq", (d * d).sum())
            self._add("energy_pa_abs", per_atom.abs().sum())
            self._add("energy_pa_sq", (per_atom * per_atom).sum())
        for name in ("forces", "dipole"):
            if name in absolute:
                d = absolute[name].double()
                self._add(f"{name}_n", d.numel())
                self._add(f"{name}_abs", d.abs().sum())
                self._add(f"{name}_sq", (d * d).sum())
        if "charges" in absolute:
            x = outputs["charges"].detach().double().reshape(-1)
            y = batch.targets["charges"].to(x).reshape(-1)
            d = x - y
            self._add("charges_n", d.numel())
            self._add("charges_abs", d.abs().sum())
            self._add("charges_sq", (d * d).sum())
            self._add("charges_x", x.sum())
            self._add("charges_y", y.sum())
            self._add("charges_xx", (x * x).sum())
            self._add("charges_yy", (y * y).sum())
            self._add("charges_xy", (x * y).sum())
        for name, (value, count) in (terms or {}).items():
            self._add(f"loss_{name}_sum", value.detach())
            self._add(f"loss_{name}_n", count)

    def merge_(self, sums: torch.Tensor) -> None:
        """Replace the sums (e.g. by their all-reduced total over processes)."""
        self.sums = sums.to(dtype=torch.float64, device="cpu").clone()

    def compute(self) -> dict[str, float]:
        """Metrics of everything added so far (only those with data)."""
        s = {k: float(self.sums[i]) for k, i in self._index.items()}
        out: dict[str, float] = {}
        n = s["energy_n"]
        if n > 0:
            out["energy_mae_meV"] = 1000.0 * s["energy_abs"] / n
            out["energy_rmse_meV"] = 1000.0 * math.sqrt(s["energy_sq"] / n)
            out["energy_mae_per_atom_meV"] = 1000.0 * s["energy_pa_abs"] / n
            out["energy_rmse_per_atom_meV"] = 1000.0 * math.sqrt(s["energy_pa_sq"] / n)
        if s["forces_n"] > 0:
            out["forces_mae_eV_A"] = s["forces_abs"] / s["forces_n"]
            out["forces_rmse_eV_A"] = math.sqrt(s["forces_sq"] / s["forces_n"])
        m = s["charges_n"]
        if m > 0:
            out["charges_mae_e"] = s["charges_abs"] / m
            cov = s["charges_xy"] - s["charges_x"] * s["charges_y"] / m
            var_x = s["charges_xx"] - s["charges_x"] ** 2 / m
            var_y = s["charges_yy"] - s["charges_y"] ** 2 / m
            denominator = math.sqrt(max(var_x, 0.0) * max(var_y, 0.0))
            out["charges_pearson_r"] = cov / denominator if denominator > 0 else float("nan")
        if s["dipole_n"] > 0:
            out["dipole_mae_eA"] = s["dipole_abs"] / s["dipole_n"]
        if self.loss_weights:
            total = 0.0
            for name, weight in self.loss_weights.items():
                count = s.get(f"loss_{name}_n", 0.0)
                if count > 0:
                    term = s[f"loss_{name}_sum"] / count
                    out[f"loss_{name}"] = term
                    total += weight * term
            out["loss"] = total
        return out


def format_metrics_table(metrics: dict[str, float]) -> str:
    """A two-column text table of metrics with units."""
    labels = {
        "energy_mae_meV": "energy MAE",
        "energy_rmse_meV": "energy RMSE",
        "energy_mae_per_atom_meV": "energy MAE per atom",
        "energy_rmse_per_atom_meV": "energy RMSE per atom",
        "forces_mae_eV_A": "force MAE",
        "forces_rmse_eV_A": "force RMSE",
        "charges_mae_e": "charge MAE",
        "charges_pearson_r": "charge Pearson r",
        "dipole_mae_eA": "dipole MAE",
        "loss": "loss",
    }
    rows = [(labels[k], metrics[k], METRIC_UNITS[k]) for k in labels if k in metrics]
    width = max([len(r[0]) for r in rows] + [6])
    lines = [f"{'metric':<{width}}  {'value':>12}  unit"]
    lines += [f"{name:<{width}}  {value:>12.6g}  {unit}" for name, value, unit in rows]
    return "\n".join(lines)
