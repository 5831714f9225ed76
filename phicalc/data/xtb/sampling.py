"""Sampling geometries with GFN2-xTB: Langevin MD and harmonic normal-mode displacements.

* :func:`sample_trajectory`: Langevin molecular dynamics driven by xTB itself (ASE ``Langevin``,
  ``fixcm=False``, seeded generator). A frame is kept every ``interval`` steps after an
  equilibration; its labels are the xTB results already computed for that MD step, so labelling
  costs nothing beyond the dynamics. Optionally each kept frame is rattled (Gaussian noise,
  ``rattle_A``) and re-labelled by one single point.
* :func:`normal_mode_samples`: harmonic (classical Boltzmann) displacements along the xTB normal
  modes of the relaxed molecule.

Provenance in ``atoms.info`` (besides what the caller passes): ``method``, ``sampler``,
``temperature_K``, ``job_seed``, ``frame``; MD frames also ``md_step``, ``timestep_fs``,
``interval``, ``bonds_intact`` (covalent connectivity equal to the starting structure's) and
``rattle_A`` when rattled.

Determinism: the same inputs and seed give the same frames up to floating-point reduction order
in tblite's OpenMP code (≈1e-10 eV per step, which MD amplifies over thousands of steps).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from ase import Atoms, units

from phicalc.data.splits import derive_seed
from phicalc.data.xtb.single_point import (
    hessian,
    label_structure,
    limit_threads,
    optimize_structure,
    xtb_calculator,
    xtb_record,
)
from phicalc.md.drivers import draw_thermal_momenta

logger = logging.getLogger(__name__)


def covalent_bonds(atoms: Atoms, *, scale: float = 1.2) -> set[tuple[int, int]]:
    """Pairs (i < j) closer than ``scale`` × (sum of covalent radii); open structures only."""
    from ase.data import covalent_radii

    radii = covalent_radii[atoms.numbers]
    distances = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    bonded = distances < scale * (radii[:, None] + radii[None])
    i, j = np.nonzero(np.triu(bonded, k=1))
    return set(zip(i.tolist(), j.tolist()))


def sample_trajectory(
    atoms: Atoms,
    temperature_K: float,
    n_frames: int,
    *,
    interval: int = 10,
    timestep_fs: float = 0.5,
    seed: int = 0,
    equilibration_steps: int = 200,
    friction_per_fs: float = 0.01,
    rattle_A: float = 0.0,
    method: str = "GFN2-xTB",
    threads: int | None = 1,
    info: dict[str, Any] | None = None,
    on_frame: Callable[[Atoms], None] | None = None,
) -> list[Atoms]:
    """Sample ``n_frames`` labelled frames from Langevin MD driven by xTB.

    The trajectory starts from ``atoms`` with Maxwell–Boltzmann momenta (zero total momentum),
    runs ``equilibration_steps`` steps, then keeps the frame after every further ``interval``
    steps. Frame k (0-based) is MD step ``equilibration_steps + (k + 1) * interval``.

    Args:
        atoms: starting structure (not modified); total charge from ``info["charge"]``.
        temperature_K: thermostat (and initial velocity) temperature, K.
        n_frames: frames to keep.
        interval: MD steps between kept frames (decorrelation).
        timestep_fs: time step, fs (0.5 fs suits X–H vibrations).
        seed: seeds the momenta, the Langevin noise and the rattle noise.
        equilibration_steps: MD steps before the first kept frame.
        friction_per_fs: Langevin friction, 1/fs.
        rattle_A: if > 0, each kept frame is displaced by Gaussian noise of this standard
            deviation (Å) and labelled by a single point; the dynamics continues unrattled.
        method: xTB Hamiltonian.
        threads: OpenMP threads for xTB (:func:`limit_threads`; ``None`` = library default).
        info: provenance added to every record.
        on_frame: called with each record as soon as it is made (progress, streaming).

    Returns:
        ``n_frames`` records with labels and provenance (see the module docstring).

    Raises:
        ase.calculators.calculator.CalculationFailed: the SCF did not converge.
        DatasetError: a frame has forces above
            :data:`~phicalc.data.xtb.single_point.MAX_FORCE` (the dynamics blew up).
    """
    from ase.md.langevin import Langevin

    if n_frames < 1 or interval < 1 or equilibration_steps < 0:
        raise ValueError(
            f"need n_frames >= 1, interval >= 1, equilibration_steps >= 0; got {n_frames}, "
            f"{interval}, {equilibration_steps}"
        )
    if not temperature_K > 0 or not timestep_fs > 0 or friction_per_fs < 0 or rattle_A < 0:
        raise ValueError(
            f"need temperature_K > 0, timestep_fs > 0, friction_per_fs >= 0, rattle_A >= 0; got "
            f"{temperature_K}, {timestep_fs}, {friction_per_fs}, {rattle_A}"
        )
    rng = np.random.default_rng(seed)
    rattle_rng = np.random.default_rng(derive_seed(seed, "rattle"))
    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.info.update({k: v for k, v in atoms.info.items() if k in ("smiles", "name", "charge")})
    charge = atoms.info.get("charge", 0)
    work.calc = xtb_calculator(method, charge=charge)
    draw_thermal_momenta(work, temperature_K, rng, preserve_temperature=False)
    reference_bonds = None if work.pbc.any() else covalent_bonds(work)
    dynamics = Langevin(
        work,
        timestep=timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )
    sampler = "md+rattle" if rattle_A > 0 else "md"
    rattle_calc = xtb_calculator(method, charge=charge) if rattle_A > 0 else None
    base_info = {
        "method": method,
        "sampler": sampler,
        "temperature_K": float(temperature_K),
        "timestep_fs": float(timestep_fs),
        "interval": int(interval),
        "job_seed": int(seed),
        **(info or {}),
    }
    with limit_threads(threads):
        if equilibration_steps:
            dynamics.run(equilibration_steps)
        frames = []
        for k in range(n_frames):
            dynamics.run(interval)
            frame_info = {
                **base_info,
                "frame": k,
                "md_step": equilibration_steps + (k + 1) * interval,
            }
            if reference_bonds is not None:
                frame_info["bonds_intact"] = covalent_bonds(work) == reference_bonds
            if rattle_A > 0:
                rattled = work.copy()
                rattled.positions += rattle_rng.normal(0.0, rattle_A, rattled.positions.shape)
                frame_info["rattle_A"] = float(rattle_A)
                record = label_structure(rattled, method=method, info=frame_info, calc=rattle_calc)
            else:
                record = xtb_record(work, frame_info)
            frames.append(record)
            if on_frame is not None:
                on_frame(record)
    kinetic = work.get_kinetic_energy() / (1.5 * units.kB * len(work))
    logger.debug("trajectory done: %d frames, final T %.0f K", n_frames, kinetic)
    return frames


def normal_mode_samples(
    atoms: Atoms,
    temperature_K: float,
    n_samples: int,
    *,
    seed: int = 0,
    method: str = "GFN2-xTB",
    relax: bool = True,
    threads: int | None = 1,
    info: dict[str, Any] | None = None,
    on_frame: Callable[[Atoms], None] | None = None,
) -> list[Atoms]:
    """Labelled harmonic samples around the xTB minimum (classical normal-mode sampling).

    With mass-weighted Hessian eigenpairs (ω_k², v_k), a sample is
    x = x₀ + M^{-1/2} Σ_k c_k v_k with c_k ~ N(0, k_B T / ω_k²), over the vibrational modes
    (the 6 lowest, 5 for linear molecules, and any with ω_k² ≤ 0 are left out).

    Args:
        atoms: the molecule (not modified).
        temperature_K: sampling temperature, K.
        n_samples: number of samples.
        seed: seed of the displacements.
        method: xTB Hamiltonian.
        relax: relax with xTB first (the harmonic model assumes a minimum).
        threads: OpenMP threads for xTB (:func:`limit_threads`).
        info: provenance for every record.
        on_frame: called with each record.

    Returns:
        ``n_samples`` records (``info["sampler"] = "normal-modes"``).
    """
    if n_samples < 1 or not temperature_K > 0:
        raise ValueError(
            f"need n_samples >= 1 and temperature_K > 0, got {n_samples}, {temperature_K}"
        )
    with limit_threads(threads):
        return _normal_mode_samples(
            atoms, temperature_K, n_samples, seed, method, relax, info, on_frame
        )


def _normal_mode_samples(
    atoms: Atoms,
    temperature_K: float,
    n_samples: int,
    seed: int,
    method: str,
    relax: bool,
    info: dict[str, Any] | None,
    on_frame: Callable[[Atoms], None] | None,
) -> list[Atoms]:
    minimum = optimize_structure(atoms, method=method) if relax else atoms
    masses = np.repeat(minimum.get_masses(), 3)
    weighted = hessian(minimum, method=method) / np.sqrt(np.outer(masses, masses))
    eigenvalues, eigenvectors = np.linalg.eigh(weighted)  # eV/(Å² amu)
    positions = minimum.positions
    linear = len(minimum) > 2 and np.linalg.matrix_rank(positions - positions.mean(0), tol=1e-3) < 2
    n_rigid = min(3 * len(minimum), 5 if linear or len(minimum) == 2 else 6)
    keep = np.arange(3 * len(minimum)) >= n_rigid
    keep &= eigenvalues > 1e-6
    rng = np.random.default_rng(seed)
    calc = xtb_calculator(method, charge=atoms.info.get("charge", 0))
    base_info = {"sampler": "normal-modes", "temperature_K": float(temperature_K), "job_seed": seed}
    records = []
    for k in range(n_samples):
        coefficients = rng.standard_normal(int(keep.sum())) * np.sqrt(
            units.kB * temperature_K / eigenvalues[keep]
        )
        displacement = (eigenvectors[:, keep] @ coefficients) / np.sqrt(masses)
        sample = minimum.copy()
        sample.positions = positions + displacement.reshape(-1, 3)
        record = label_structure(
            sample, method=method, calc=calc, info={**base_info, "frame": k, **(info or {})}
        )
        records.append(record)
        if on_frame is not None:
            on_frame(record)
    return records
