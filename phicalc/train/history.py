"""Per-epoch training history: the CSV log and the learning-curve figure.

Both are rewritten from the whole history after every epoch (it is small), so a resumed run
continues the same files without duplicated or missing rows.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any

from phicalc.io import atomic_open, atomic_write_text


def write_csv(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` as CSV (columns in first-seen order), atomically."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _format(v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def _format(value: Any) -> Any:
    return f"{value:.8g}" if isinstance(value, float) else value


def plot_learning_curve(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> None:
    """Loss (train and validation), validation errors and learning rate against epoch, as PNG.

    Uses matplotlib's object API with the Agg canvas, so no global backend is set.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in rows]

    def series(key: str) -> list[float] | None:
        values = [row.get(key) for row in rows]
        return values if all(isinstance(v, (int, float)) for v in values) else None

    figure = Figure(figsize=(11, 3.4))
    FigureCanvasAgg(figure)
    ax_loss, ax_err, ax_lr = figure.subplots(1, 3)
    figure.subplots_adjust(left=0.08, right=0.99, bottom=0.14, top=0.91, wspace=0.38)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        values = series(key)
        if values is not None:
            ax_loss.plot(epochs, values, marker=".", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    _log_scale(ax_loss)
    ax_loss.legend()
    errors = (
        ("val_energy_mae_per_atom_meV", "energy MAE (meV/atom)"),
        ("val_forces_mae_eV_A", "force MAE (eV/Å)"),
        ("val_charges_mae_e", "charge MAE (e)"),
    )
    for key, label in errors:
        values = series(key)
        if values is not None:
            ax_err.plot(epochs, values, marker=".", label=label)
    ax_err.set(xlabel="epoch", title="validation errors")
    _log_scale(ax_err)
    if ax_err.lines:
        ax_err.legend()
    lr = series("lr")
    if lr is not None:
        ax_lr.plot(epochs, lr, marker=".")
    ax_lr.set(xlabel="epoch", ylabel="learning rate (end of epoch)", title="learning rate")
    _log_scale(ax_lr)
    with atomic_open(path) as handle:
        figure.savefig(handle, format="png", dpi=110)


def _log_scale(axes: Any) -> None:
    """Log y axis when every plotted value is positive."""
    values = [y for line in axes.lines for y in line.get_ydata()]
    if values and min(values) > 0:
        axes.set_yscale("log")
