"""Analysis of a finished :func:`phicalc.md.run` directory with MDAnalysis.

:func:`analyze` reads ``trajectory.traj`` (positions, cells, energies), ``thermo.npz`` and
``electrostatics.npz`` and reports:

* molecules (no periodic direction): RMSD to the first frame after optimal superposition (all atoms
  and heavy atoms, Å) and per-atom RMSF after aligning every frame to the first (Å);
* periodic systems: radial distribution functions of the most common element pairs
  (:class:`MDAnalysis.analysis.rdf.InterRDF`, up to half the shortest cell height);
* energy drift (meV/atom/ps, linear fit of the conserved energy against time), temperature
  mean/std and its normalised autocorrelation with the integrated correlation time (fs);
* per-element charge (e) and potential (V) statistics and the per-element mean charge over time.

Results go to ``analysis.json`` and figures (``rmsd.png``, ``rmsf.png``, ``rdf.png``,
``temperature_acf.png``, ``charges_time.png``) in the run directory. MDAnalysis is imported inside
the functions that need it; the small numeric helpers here are also used by :mod:`phicalc.md.run`.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_MAX_RDF_PAIRS = 6


# --------------------------------------------------------------------------- numeric helpers


def linear_drift(time_fs: np.ndarray, energy_eV: np.ndarray, n_atoms: int) -> float | None:
    """Slope of a least-squares line through energy against time, in meV/atom/ps.

    Args:
        time_fs: [n_samples] times in fs.
        energy_eV: [n_samples] energies in eV; non-finite samples are ignored.
        n_atoms: Number of atoms to normalise by.

    Returns:
        The drift, or ``None`` with fewer than two finite samples.
    """
    time_fs = np.asarray(time_fs, dtype=np.float64)
    energy_eV = np.asarray(energy_eV, dtype=np.float64)
    finite = np.isfinite(energy_eV)
    if finite.sum() < 2 or np.ptp(time_fs[finite]) == 0:
        return None
    slope_eV_per_fs = np.polyfit(time_fs[finite], energy_eV[finite], 1)[0]
    return float(slope_eV_per_fs * 1.0e6 / n_atoms)  # eV/fs -> meV/ps


def autocorrelation(series: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """Normalised autocorrelation of the fluctuations of ``series`` (FFT, biased estimator).

    Args:
        series: [n_samples] equally spaced samples.
        max_lag: Largest lag returned, in samples. (default: ``n_samples // 2``)

    Returns:
        [max_lag + 1] values, 1 at lag 0; all zeros for a constant series.
    """
    x = np.asarray(series, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    max_lag = n // 2 if max_lag is None else min(max_lag, n - 1)
    if n == 0:
        return np.zeros(0)
    spectrum = np.fft.rfft(x, n=2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    if acf[0] <= 0:
        return np.zeros(max_lag + 1)
    return acf[: max_lag + 1] / acf[0]


def integrated_correlation_time(acf: np.ndarray, dt: float) -> float:
    """Integrated correlation time ``dt·(1/2 + Σ_k acf[k])``, summed up to the first
    non-positive value, in the units of ``dt``."""
    if len(acf) == 0:
        return 0.0
    tail = acf[1:]
    stop = np.argmax(tail <= 0) if np.any(tail <= 0) else len(tail)
    return float(dt * (0.5 + tail[:stop].sum()))


# --------------------------------------------------------------------------- reading


@dataclass
class RunData:
    """Arrays of one run directory.

    Attributes:
        symbols: [n_atoms] chemical symbols.
        masses: [n_atoms] masses in amu.
        positions: [n_frames, n_atoms, 3] positions in Å.
        cells: [n_frames, 3, 3] cells in Å (rows are the cell vectors).
        pbc: [3] periodic directions.
        time_ps: [n_frames] frame times in ps (from ``electrostatics.npz``/``thermo.npz`` when
            present, else frame indices times the trajectory interval).
        thermo: Arrays of ``thermo.npz`` (empty if absent).
        electrostatics: Arrays of ``electrostatics.npz`` (empty if absent).
        summary: Contents of ``summary.json`` (empty if absent).
    """

    symbols: list[str]
    masses: np.ndarray
    positions: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    time_ps: np.ndarray
    thermo: dict[str, np.ndarray]
    electrostatics: dict[str, np.ndarray]
    summary: dict[str, Any]


def read_run(run_dir: str | os.PathLike) -> RunData:
    """Read a run directory written by :func:`phicalc.md.run`.

    Raises:
        FileNotFoundError: If ``run_dir`` or its ``trajectory.traj`` does not exist.
        DatasetError: If ``trajectory.traj``, ``thermo.npz`` or ``electrostatics.npz`` is
            damaged (truncated, not of its format); the message names the file.
    """
    from ase.io.trajectory import Trajectory

    from phicalc.errors import DatasetError

    run_dir = Path(run_dir)
    path = run_dir / "trajectory.traj"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a phicalc md output directory?")
    try:
        with Trajectory(path) as trajectory:
            frames = list(trajectory)
    except Exception as error:  # ASE's ULM reader fails in many ways on a damaged file
        from phicalc.md.checkpoint import readable_frames

        raise DatasetError(
            f"{path} is damaged: {readable_frames(path)} frames are readable "
            f"({type(error).__name__}: {error}); continuing the run with the same command cuts "
            "it back"
        ) from error
    if not frames:
        raise FileNotFoundError(f"{path} holds no frames")
    first = frames[0]
    thermo = _load_npz(run_dir / "thermo.npz")
    electrostatics = _load_npz(run_dir / "electrostatics.npz")
    summary = _load_json(run_dir / "summary.json")
    n_frames = len(frames)
    if "time_fs" in electrostatics and len(electrostatics["time_fs"]) >= n_frames:
        time_ps = electrostatics["time_fs"][:n_frames] / 1000.0
    else:
        config = summary.get("config", {})
        every = config.get("traj_every", 1) * config.get("timestep_fs", 1.0)
        time_ps = np.arange(n_frames) * every / 1000.0
    return RunData(
        symbols=first.get_chemical_symbols(),
        masses=first.get_masses(),
        positions=np.stack([atoms.positions for atoms in frames]),
        cells=np.stack([atoms.cell.array for atoms in frames]),
        pbc=first.pbc.copy(),
        time_ps=time_ps,
        thermo=thermo,
        electrostatics=electrostatics,
        summary=summary,
    )


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except Exception as error:  # zipfile, numpy and OS errors of a damaged file
        from phicalc.errors import DatasetError

        raise DatasetError(f"{path} is unreadable ({type(error).__name__}: {error})") from error


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def make_universe(data: RunData) -> Any:
    """An in-memory MDAnalysis ``Universe`` (one residue) holding the run's frames.

    Names, types and elements are the chemical symbols; periodic runs carry their box.
    """
    import MDAnalysis as mda
    from ase.geometry import cell_to_cellpar
    from MDAnalysis.coordinates.memory import MemoryReader

    n_atoms = len(data.symbols)
    universe = mda.Universe.empty(
        n_atoms, n_residues=1, atom_resindex=np.zeros(n_atoms, dtype=int), trajectory=False
    )
    universe.add_TopologyAttr("names", data.symbols)
    universe.add_TopologyAttr("types", data.symbols)
    universe.add_TopologyAttr("elements", data.symbols)
    universe.add_TopologyAttr("masses", data.masses)
    dimensions = None
    if data.pbc.all():
        dimensions = np.stack([cell_to_cellpar(cell) for cell in data.cells]).astype(np.float32)
    dt_ps = float(data.time_ps[1] - data.time_ps[0]) if len(data.time_ps) > 1 else 1.0
    universe.load_new(
        data.positions.astype(np.float32), format=MemoryReader, dimensions=dimensions, dt=dt_ps
    )
    return universe


# --------------------------------------------------------------------------- analyses


def rmsd_rmsf(data: RunData) -> tuple[dict[str, Any], dict[str, Any]]:
    """RMSD to frame 0 (all and heavy atoms) and per-atom RMSF, both in Å (MDAnalysis)."""
    from MDAnalysis.analysis import align, rms

    universe = make_universe(data)
    selections = {"all": "all"}
    if any(symbol != "H" for symbol in data.symbols) and "H" in data.symbols:
        selections["heavy"] = "not element H"
    rmsd: dict[str, Any] = {"time_ps": data.time_ps.tolist()}
    for label, selection in selections.items():
        values = rms.RMSD(universe, universe, select=selection, ref_frame=0).run()
        series = values.results.rmsd[:, 2]
        rmsd[f"{label}_A"] = series.tolist()
        rmsd[f"{label}_mean_A"] = float(series.mean())
        rmsd[f"{label}_final_A"] = float(series[-1])
    universe.trajectory[0]
    align.AlignTraj(universe, universe, select="all", in_memory=True).run()
    per_atom = rms.RMSF(universe.atoms).run().results.rmsf
    symbols = np.array(data.symbols)
    rmsf = {
        "per_atom_A": per_atom.tolist(),
        "per_element_mean_A": {
            element: float(per_atom[symbols == element].mean()) for element in _elements(data)
        },
    }
    return rmsd, rmsf


def radial_distribution(
    data: RunData,
    *,
    nbins: int = 100,
    r_max: float | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """RDFs g(r) of element pairs for a 3D-periodic run.

    Args:
        data: The run.
        nbins: Number of histogram bins.
        r_max: Largest distance in Å. (default: half the shortest cell height of frame 0)
        pairs: Element pairs, e.g. ``[("Na", "O"), ("Cl", "H")]``. (default: up to six pairs,
            most common elements first)

    Raises:
        ConfigError: (a ``ValueError``) a pair names an element the run does not have.

    Returns:
        ``{"O-H": {"r_A": [...], "g": [...]}, ...}``.
    """
    from MDAnalysis.analysis.rdf import InterRDF

    cell = data.cells[0]
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1
    )
    limit = 0.5 * float(heights.min())
    r_max = limit if r_max is None else min(r_max, limit)
    universe = make_universe(data)
    counts = Counter(data.symbols)
    elements = [element for element, _ in counts.most_common()]
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(elements) for b in elements[i:]][:_MAX_RDF_PAIRS]
    missing = sorted({e for pair in pairs for e in pair} - set(elements))
    if missing:
        from phicalc.errors import ConfigError

        raise ConfigError(f"RDF pair element(s) {missing} not in this run (it has {elements})")
    results: dict[str, dict[str, Any]] = {}
    for first, second in pairs:
        group1 = universe.select_atoms(f"element {first}")
        group2 = universe.select_atoms(f"element {second}")
        if first == second and group1.n_atoms < 2:
            continue
        rdf = InterRDF(
            group1,
            group2,
            nbins=nbins,
            range=(0.0, r_max),
            exclusion_block=(1, 1) if first == second else None,
        ).run()
        results[f"{first}-{second}"] = {
            "r_A": rdf.results.bins.tolist(),
            "g": rdf.results.rdf.tolist(),
        }
    return results


def charge_statistics(data: RunData) -> dict[str, Any]:
    """Per-element charge (e) and potential (V) statistics over all frames and atoms, the
    per-element mean charge per frame and its linear trend (e/ps)."""
    charges = data.electrostatics.get("charges")
    if charges is None:
        return {}
    n_frames = min(len(charges), len(data.time_ps))
    charges = charges[:n_frames]
    time_ps = data.time_ps[:n_frames]
    potentials = data.electrostatics.get("potentials")
    symbols = np.array(data.symbols)
    per_element: dict[str, Any] = {}
    over_time: dict[str, list[float]] = {}
    for element in _elements(data):
        mask = symbols == element
        values = charges[:, mask]
        mean_per_frame = values.mean(axis=1)
        over_time[element] = mean_per_frame.tolist()
        stats = {
            "n_atoms": int(mask.sum()),
            "mean_e": float(values.mean()),
            "std_e": float(values.std()),
            "min_e": float(values.min()),
            "max_e": float(values.max()),
            "trend_e_per_ps": (
                float(np.polyfit(time_ps, mean_per_frame, 1)[0]) if n_frames > 1 else None
            ),
        }
        if potentials is not None:
            stats["potential_mean_V"] = float(potentials[:n_frames, mask].mean())
            stats["potential_std_V"] = float(potentials[:n_frames, mask].std())
        per_element[element] = stats
    result: dict[str, Any] = {
        "per_element": per_element,
        "total_charge_mean_e": float(charges.sum(axis=1).mean()),
        "time_ps": time_ps.tolist(),
        "mean_by_element_over_time": over_time,
    }
    energies = data.electrostatics.get("electrostatic_energy")
    if energies is not None:
        result["electrostatic_energy_mean_eV"] = float(energies.mean())
        result["electrostatic_energy_std_eV"] = float(energies.std())
    return result


def thermo_statistics(data: RunData) -> dict[str, Any]:
    """Energy drift and temperature statistics/autocorrelation from ``thermo.npz``."""
    thermo = data.thermo
    if "temperature_K" not in thermo or len(thermo["temperature_K"]) == 0:
        return {}
    n_atoms = len(data.symbols)
    time_fs = thermo["time_fs"]
    conserved = thermo["conserved"]
    if np.isfinite(conserved).sum() >= 2:
        drift = linear_drift(time_fs, conserved, n_atoms)
        drift_of = data.summary.get("energy_drift_of") or "conserved energy"
    else:
        drift, drift_of = None, None
    temperature = thermo["temperature_K"]
    dt_fs = float(time_fs[1] - time_fs[0]) if len(time_fs) > 1 else 0.0
    acf = autocorrelation(temperature)
    return {
        "energy": {
            "drift_meV_per_atom_per_ps": drift,
            "drift_of": drift_of,
            "etot_std_meV_per_atom": float(np.std(thermo["etot"]) * 1000 / n_atoms),
        },
        "temperature": {
            "mean_K": float(temperature.mean()),
            "std_K": float(temperature.std()),
            "lag_fs": (np.arange(len(acf)) * dt_fs).tolist(),
            "autocorrelation": acf.tolist(),
            "correlation_time_fs": integrated_correlation_time(acf, dt_fs),
        },
    }


def analyze(
    run_dir: str | os.PathLike,
    *,
    rdf_bins: int = 100,
    rdf_r_max: float | None = None,
    rdf_pairs: Sequence[tuple[str, str]] | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Analyse a run directory and write ``analysis.json`` (and figures) into it.

    Args:
        run_dir: Output directory of :func:`phicalc.md.run`.
        rdf_bins: Number of RDF bins (periodic systems).
        rdf_r_max: Largest RDF distance in Å. (default: half the shortest cell height)
        rdf_pairs: Element pairs of the RDFs. (default: up to six, most common elements first)
        plots: Write the figures. (default: ``True``)

    Returns:
        The contents of ``analysis.json``.

    Raises:
        FileNotFoundError: If the directory or its trajectory is missing.
    """
    run_dir = Path(run_dir)
    data = read_run(run_dir)
    periodic = bool(data.pbc.all())
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "n_frames": int(len(data.positions)),
        "n_atoms": len(data.symbols),
        "elements": _elements(data),
        "periodic": periodic,
    }
    result.update(thermo_statistics(data))
    if periodic:
        result["rdf"] = radial_distribution(data, nbins=rdf_bins, r_max=rdf_r_max, pairs=rdf_pairs)
    elif data.pbc.any():
        logger.info("partly periodic system: no RMSD/RMSF (atoms may cross the cell) and no RDF")
    elif len(data.positions) > 1:
        result["rmsd"], result["rmsf"] = rmsd_rmsf(data)
    result["charges"] = charge_statistics(data)
    if plots:
        from phicalc.md.plots import plot_analysis

        result["figures"] = plot_analysis(run_dir, result, data.symbols)
    text = json.dumps(json_safe(result), indent=1, allow_nan=False) + "\n"
    (run_dir / "analysis.json").write_text(text)
    return result


def _elements(data: RunData) -> list[str]:
    return list(dict.fromkeys(data.symbols))


def json_safe(value: Any) -> Any:
    """Copy of ``value`` with numpy scalars as Python numbers and NaN/inf as ``None``."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
