"""Figures of MD runs (:func:`plot_run`) and of their analysis (:func:`plot_analysis`).

matplotlib is imported inside the functions, with the non-interactive Agg backend, so importing
this module is cheap and plotting works without a display.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_MAX_TRACKED_ATOMS = 6


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path.name


def plot_energy(thermo: Mapping[str, np.ndarray], path: str | os.PathLike) -> str:
    """Total (and, if it differs, the driver's conserved) energy (top) and potential and kinetic
    energy (bottom) against time, each relative to its first value, in eV. Returns the file name.
    """
    plt = _pyplot()
    time_ps = thermo["time_fs"] / 1000.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(time_ps, thermo["etot"] - thermo["etot"][0], label="total")
    conserved = thermo["conserved"]
    if np.isfinite(conserved).all() and not np.array_equal(conserved, thermo["etot"]):
        top.plot(time_ps, conserved - conserved[0], "--", label="conserved")
    top.set_ylabel("E − E(0) (eV)")
    top.legend()
    bottom.plot(time_ps, thermo["epot"] - thermo["epot"][0], label="potential")
    bottom.plot(time_ps, thermo["ekin"] - thermo["ekin"][0], label="kinetic")
    bottom.set_xlabel("time (ps)")
    bottom.set_ylabel("E − E(0) (eV)")
    bottom.legend()
    return _save(fig, Path(path))


def plot_temperature(
    thermo: Mapping[str, np.ndarray], path: str | os.PathLike, *, target_K: float | None = None
) -> str:
    """Instantaneous temperature (K) against time, with the thermostat target if given."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(thermo["time_fs"] / 1000.0, thermo["temperature_K"], label="T")
    if target_K is not None:
        ax.axhline(target_K, color="k", ls="--", lw=1, label=f"target {target_K:g} K")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("temperature (K)")
    ax.legend()
    return _save(fig, Path(path))


def tracked_atoms(charges: np.ndarray, symbols: Sequence[str]) -> list[int]:
    """Per element, the atom whose charge fluctuates most (at most six atoms)."""
    symbols_array = np.array(symbols)
    spread = charges.std(axis=0)
    picks = []
    for element in dict.fromkeys(symbols):
        indices = np.flatnonzero(symbols_array == element)
        picks.append(int(indices[np.argmax(spread[indices])]))
    return picks[:_MAX_TRACKED_ATOMS]


def plot_charges(
    charges: np.ndarray,
    time_ps: np.ndarray,
    symbols: Sequence[str],
    path: str | os.PathLike,
    *,
    atoms: Sequence[int] | None = None,
) -> str:
    """Per-element charge distributions over all frames (left) and the charges of selected atoms
    against time (right).

    Args:
        charges: [n_frames, n_atoms] charges in e.
        time_ps: [n_frames] times in ps.
        symbols: [n_atoms] chemical symbols.
        path: Output file.
        atoms: Indices to follow over time. (default: :func:`tracked_atoms`)
    """
    plt = _pyplot()
    symbols_array = np.array(symbols)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for element in dict.fromkeys(symbols):
        values = charges[:, symbols_array == element].ravel()
        left.hist(values, bins=40, alpha=0.6, density=True, label=element)
    left.set_xlabel("charge (e)")
    left.set_ylabel("density")
    left.set_title("charges per element")
    left.legend()
    for index in tracked_atoms(charges, symbols) if atoms is None else atoms:
        right.plot(time_ps, charges[:, index], label=f"{symbols[index]}{index}")
    right.set_xlabel("time (ps)")
    right.set_ylabel("charge (e)")
    right.set_title("selected atoms")
    right.legend()
    return _save(fig, Path(path))


def plot_run(run_dir: str | os.PathLike, *, target_K: float | None = None) -> list[str]:
    """Write ``energy.png``, ``temperature.png`` and (models with Φ) ``charges.png`` from the
    ``thermo.npz``/``electrostatics.npz`` of a run directory. Returns the file names written."""
    run_dir = Path(run_dir)
    written = []
    with np.load(run_dir / "thermo.npz", allow_pickle=False) as data:
        thermo = {key: data[key] for key in data.files}
    if len(thermo["step"]) > 0:
        written.append(plot_energy(thermo, run_dir / "energy.png"))
        written.append(plot_temperature(thermo, run_dir / "temperature.png", target_K=target_K))
    electrostatics_path = run_dir / "electrostatics.npz"
    if electrostatics_path.exists():
        with np.load(electrostatics_path, allow_pickle=False) as data:
            if "charges" in data.files:
                from ase.data import chemical_symbols

                symbols = [chemical_symbols[number] for number in data["numbers"]]
                written.append(
                    plot_charges(
                        data["charges"], data["time_fs"] / 1000.0, symbols, run_dir / "charges.png"
                    )
                )
    return written


def _lines(
    path: Path,
    x: np.ndarray | Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, y in series.items():
        ax.plot(x, y, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return _save(fig, path)


def plot_analysis(
    run_dir: str | os.PathLike, result: Mapping[str, Any], symbols: Sequence[str]
) -> list[str]:
    """Figures of :func:`phicalc.md.analysis.analyze` results; returns the file names written:
    ``rmsd.png``, ``rmsf.png`` (molecules), ``rdf.png`` (periodic), ``temperature_acf.png`` and
    ``charges_time.png`` (models with Φ)."""
    run_dir = Path(run_dir)
    written = []
    if "rmsd" in result:
        rmsd = result["rmsd"]
        series = {key[: -len("_A")]: rmsd[key] for key in ("all_A", "heavy_A") if key in rmsd}
        written.append(
            _lines(
                run_dir / "rmsd.png",
                rmsd["time_ps"],
                series,
                xlabel="time (ps)",
                ylabel="RMSD to frame 0 (Å)",
            )
        )
    if "rmsf" in result:
        plt = _pyplot()
        per_atom = result["rmsf"]["per_atom_A"]
        fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(per_atom)), 3.5))
        ax.bar(range(len(per_atom)), per_atom)
        ax.set_xticks(
            range(len(per_atom)),
            [f"{s}{i}" for i, s in enumerate(symbols)],
            rotation=90,
            fontsize=7,
        )
        ax.set_ylabel("RMSF (Å)")
        written.append(_save(fig, run_dir / "rmsf.png"))
    if result.get("rdf"):
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for pair, values in result["rdf"].items():
            ax.plot(values["r_A"], values["g"], label=pair)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.legend()
        written.append(_save(fig, run_dir / "rdf.png"))
    temperature = result.get("temperature")
    if temperature and len(temperature["autocorrelation"]) > 1:
        written.append(
            _lines(
                run_dir / "temperature_acf.png",
                temperature["lag_fs"],
                {"T": temperature["autocorrelation"]},
                xlabel="lag (fs)",
                ylabel="autocorrelation of T",
                title=f"τ = {temperature['correlation_time_fs']:.1f} fs",
            )
        )
    charges = result.get("charges")
    if charges:
        written.append(
            _lines(
                run_dir / "charges_time.png",
                charges["time_ps"],
                charges["mean_by_element_over_time"],
                xlabel="time (ps)",
                ylabel="mean charge (e)",
                title="mean charge per element",
            )
        )
    return written
