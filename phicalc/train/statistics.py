"""Dataset statistics that set a model's energy offset and scale before training.

* E0 per element by least squares on the training energies, E_s ≈ Σ_Z n_{s,Z} E0_Z
  (:func:`phicalc.data.fit_linear_reference`); elements absent from the training data get 0.
* σ, the scale of the learned per-atom energy: the standard deviation or RMS of the per-atom
  residual r_s = (E_s − Σ_i E0_{Z_i}) / n_s (eV/atom), or the RMS force component (eV/Å, used
  as eV because a force is an energy change over ~1 Å).
* μ, the offset of the charge-state energy (V): the least-squares slope of the residual
  E_s − Σ_i E0_{Z_i} on the total charge Q_s, through the origin (each charged structure's energy
  starts from μ·Q_s).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from ase.data import atomic_numbers

from phicalc.graph.batch import AtomGraph

logger = logging.getLogger(__name__)


def fit_atomic_energies(graphs: Sequence[AtomGraph], elements: Sequence[str]) -> dict[str, float]:
    """Least-squares E0 (eV) per element of ``elements`` from the graphs' reference energies."""
    from phicalc.data import fit_linear_reference

    numbers = [g.numbers.cpu().numpy() for g in graphs]
    energies = np.array([float(g.targets["energy"].sum()) for g in graphs])
    fitted = fit_linear_reference(numbers, energies)
    return {s: float(fitted.get(atomic_numbers[s], 0.0)) for s in elements}


def fit_charge_potential(graphs: Sequence[AtomGraph], atomic_energies: dict[str, float]) -> float:
    """μ (V) = Σ_s Q_s r_s / Σ_s Q_s², r_s = E_s − Σ_i E0_{Z_i} (eV); 0 with no charged structure."""
    charges = np.array([float(g.total_charge.sum()) for g in graphs])
    if not np.any(charges):
        return 0.0
    residuals = per_atom_residuals(graphs, atomic_energies) * np.array([g.n_atoms for g in graphs])
    return float(charges @ residuals / (charges @ charges))


def per_atom_residuals(
    graphs: Sequence[AtomGraph], atomic_energies: dict[str, float]
) -> np.ndarray:
    """[n_structures] (E_s − Σ_i E0_{Z_i}) / n_s in eV/atom."""
    from ase.data import chemical_symbols

    out = np.empty(len(graphs))
    for k, g in enumerate(graphs):
        numbers = g.numbers.cpu().numpy()
        offset = sum(atomic_energies[chemical_symbols[int(z)]] for z in numbers)
        out[k] = (float(g.targets["energy"].sum()) - offset) / len(numbers)
    return out


def force_rms(graphs: Sequence[AtomGraph]) -> float:
    """RMS reference force component over all atoms, eV/Å."""
    squares = sum(float((g.targets["forces"].double() ** 2).sum()) for g in graphs)
    count = sum(g.targets["forces"].numel() for g in graphs)
    return math.sqrt(squares / count) if count else float("nan")


def energy_scale(
    graphs: Sequence[AtomGraph], atomic_energies: dict[str, float], kind: str
) -> float:
    """σ (eV) of kind "residual_std", "residual_rms" or "force_rms"; 1.0 if degenerate."""
    if kind == "force_rms":
        scale = force_rms(graphs)
    else:
        residuals = per_atom_residuals(graphs, atomic_energies)
        scale = (
            float(residuals.std())
            if kind == "residual_std"
            else float(np.sqrt(np.mean(residuals**2)))
        )
    if not math.isfinite(scale) or scale < 1e-6:
        logger.warning("energy scale %s = %r is degenerate; using 1.0 eV", kind, scale)
        return 1.0
    return scale
