"""Reference data from GFN2-xTB (tblite): sampled geometries labelled with E, F, q and μ.

Sampling:

* :func:`sample_trajectory`: Langevin molecular dynamics driven by xTB itself (ASE ``Langevin``,
  ``fixcm=False``, seeded generator). A frame is kept every ``interval`` steps after an
  equilibration; its labels are the xTB results already computed for that MD step, so labelling
  costs nothing beyond the dynamics. Optionally each kept frame is rattled (Gaussian noise,
  ``rattle_A``) and re-labelled by one single point.
* :func:`normal_mode_samples`: harmonic (classical Boltzmann) displacements along the xTB normal
  modes of the relaxed molecule.
* :func:`label_molecules`: many molecules (SMILES, names or files) × temperatures, written to an
  extxyz file job by job, resumable.

Labels, all converted to phicalc units by tblite's ASE calculator: energy (eV), forces (eV/Å),
Mulliken charges (e) as ``arrays["ref_charges"]``, dipole (e·Å, about the coordinate origin; origin
independent for neutral molecules) as ``info["ref_dipole"]``. Provenance in ``atoms.info``:
``method``, ``molecule``, ``smiles`` (when known), ``temperature_K``, ``seed`` (base seed),
``job_seed``, ``frame``, ``md_step``, ``timestep_fs``, ``interval``, ``sampler``,
``bonds_intact`` (covalent connectivity equal to the starting structure's).

Determinism: the same inputs and seed give the same frames up to floating-point reduction order
in tblite's OpenMP code (≈1e-10 eV per step, which MD amplifies over thousands of steps).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms, units

from phicalc.data.datasets import make_record, read_structures, write_structures
from phicalc.data.splits import derive_seed, split_by_hash
from phicalc.errors import DatasetError

logger = logging.getLogger(__name__)

Sampler = Literal["md", "normal-modes"]
#: Salt and fraction of the held-out split of the curated organic SMILES list.
HELDOUT_SALT = "phicalc-organic-heldout-v1"
HELDOUT_FRACTION = 0.1
#: Largest force (eV/Å) accepted in a sampled frame; more means the dynamics blew up.
MAX_FORCE = 50.0


@contextlib.contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Limit OpenMP/BLAS threads (tblite's) inside the block; ``None`` leaves them alone.

    Small molecules gain nothing from threads, and on a busy machine OpenMP spin-waiting makes
    a 42-atom GFN2 step 5-20x slower with 2 threads than with 1. Uses ``threadpoolctl`` (no
    environment variables are touched); without it this is a no-op.
    """
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        logger.debug("threadpoolctl not installed; cannot limit xTB threads")
        yield
        return
    with threadpool_limits(limits=int(threads)):
        yield


def xtb_calculator(
    method: str = "GFN2-xTB",
    *,
    charge: float = 0,
    multiplicity: int | None = None,
    accuracy: float = 1.0,
    electronic_temperature_K: float = 300.0,
    max_iterations: int = 250,
):
    """A silent ``tblite.ase.TBLite`` calculator.

    Args:
        method: ``"GFN2-xTB"``, ``"GFN1-xTB"`` or ``"IPEA1-xTB"``.
        charge: total charge, e.
        multiplicity: spin multiplicity 2S+1 (default: from initial magnetic moments, i.e. 1).
        accuracy: tblite numerical accuracy (smaller is tighter).
        electronic_temperature_K: Fermi smearing temperature, K.
        max_iterations: SCF iteration limit.

    Raises:
        ImportError: tblite is not installed (``pip install 'phicalc[data]'``).
    """
    try:
        from tblite.ase import TBLite
    except ImportError as error:
        raise ImportError("xTB labelling needs tblite: pip install 'phicalc[data]'") from error
    allowed = ("GFN2-xTB", "GFN1-xTB", "IPEA1-xTB")
    if method not in allowed:
        raise ValueError(f"method must be one of {allowed}, got {method!r}")
    return TBLite(
        method=method,
        charge=charge,
        multiplicity=multiplicity,
        accuracy=accuracy,
        electronic_temperature=electronic_temperature_K,
        max_iterations=max_iterations,
        verbosity=0,
    )


def _labels(atoms: Atoms) -> dict[str, np.ndarray | float]:
    """Energy, forces, charges, dipole of ``atoms`` from its (xTB) calculator, cached if current."""
    calc = atoms.calc
    return {
        "energy": float(calc.get_property("energy", atoms)),
        "forces": np.array(calc.get_property("forces", atoms)),
        "charges": np.array(calc.get_property("charges", atoms)),
        "dipole": np.array(calc.get_property("dipole", atoms)),
    }


def _record(atoms: Atoms, info: dict[str, Any]) -> Atoms:
    labels = _labels(atoms)
    max_force = float(np.abs(labels["forces"]).max()) if len(atoms) else 0.0
    if not np.isfinite(max_force) or max_force > MAX_FORCE:
        raise DatasetError(
            f"xTB force {max_force:.1f} eV/Å exceeds {MAX_FORCE} eV/Å in {info.get('molecule')!r} "
            f"(step {info.get('md_step')}): the geometry is unphysical"
        )
    snapshot = Atoms(
        numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc
    )
    snapshot.info.update({k: v for k, v in atoms.info.items() if k in ("smiles", "name")})
    return make_record(
        snapshot,
        energy=labels["energy"],
        forces=labels["forces"],
        charges=labels["charges"],
        dipole=labels["dipole"],
        total_charge=atoms.info.get("charge", 0),
        info=info,
    )


def label_structure(
    atoms: Atoms,
    *,
    method: str = "GFN2-xTB",
    info: dict[str, Any] | None = None,
    calc=None,
    threads: int | None = 1,
) -> Atoms:
    """Single-point xTB labels for one structure.

    Args:
        atoms: the structure (not modified); total charge from ``info["charge"]``.
        method: xTB Hamiltonian.
        info: provenance merged into the record's ``info``.
        calc: a calculator to reuse (default: a new :func:`xtb_calculator`).
        threads: OpenMP threads for xTB (:func:`limit_threads`; ``None`` = library default).

    Returns:
        A record (:func:`phicalc.data.datasets.make_record`) with energy, forces, Mulliken
        ``ref_charges`` and ``ref_dipole``, and ``info["method"]``.
    """
    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.info.update(atoms.info)
    work.calc = (
        calc if calc is not None else xtb_calculator(method, charge=atoms.info.get("charge", 0))
    )
    with limit_threads(threads):
        return _record(work, {"method": method, **(info or {})})


def covalent_bonds(atoms: Atoms, *, scale: float = 1.2) -> set[tuple[int, int]]:
    """Pairs (i < j) closer than ``scale`` × (sum of covalent radii); open structures only."""
    from ase.data import covalent_radii

    radii = covalent_radii[atoms.numbers]
    distances = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    bonded = distances < scale * (radii[:, None] + radii[None])
    i, j = np.nonzero(np.triu(bonded, k=1))
    return set(zip(i.tolist(), j.tolist()))


def thermal_momenta(atoms: Atoms, temperature_K: float, rng: np.random.Generator) -> np.ndarray:
    """[n_atoms, 3] Maxwell–Boltzmann momenta (ASE units) at ``temperature_K``, zero total momentum."""
    masses = atoms.get_masses()[:, None]
    momenta = rng.standard_normal((len(atoms), 3)) * np.sqrt(masses * units.kB * temperature_K)
    if len(atoms) > 1:
        momenta -= masses * momenta.sum(axis=0) / masses.sum()
    return momenta


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
        DatasetError: a frame has forces above :data:`MAX_FORCE` (the dynamics blew up).
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
    work.set_momenta(thermal_momenta(work, temperature_K, rng))
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
                record = _record(work, frame_info)
            frames.append(record)
            if on_frame is not None:
                on_frame(record)
    kinetic = work.get_kinetic_energy() / (1.5 * units.kB * len(work))
    logger.debug("trajectory done: %d frames, final T %.0f K", n_frames, kinetic)
    return frames


def optimize_structure(
    atoms: Atoms, *, method: str = "GFN2-xTB", fmax: float = 0.01, steps: int = 500
) -> Atoms:
    """Relax a structure with xTB (ASE BFGS, ``fmax`` in eV/Å); returns a relaxed copy."""
    from ase.optimize import BFGS

    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.info.update(atoms.info)
    work.calc = xtb_calculator(method, charge=atoms.info.get("charge", 0))
    converged = BFGS(work, logfile=None).run(fmax=fmax, steps=steps)
    if not converged:
        logger.warning("xTB relaxation stopped after %d steps above fmax=%g eV/Å", steps, fmax)
    work.calc = None
    return work


def hessian(atoms: Atoms, *, method: str = "GFN2-xTB", delta_A: float = 0.005) -> np.ndarray:
    """[3n, 3n] xTB Hessian (eV/Å²) by central differences of the forces, symmetrised."""
    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.calc = xtb_calculator(method, charge=atoms.info.get("charge", 0))
    n = len(work)
    matrix = np.empty((3 * n, 3 * n))
    reference = work.positions.copy()
    for a in range(n):
        for d in range(3):
            forces = []
            for sign in (1.0, -1.0):
                work.positions = reference
                work.positions[a, d] += sign * delta_A
                forces.append(work.get_forces().reshape(-1))
            matrix[:, 3 * a + d] = -(forces[0] - forces[1]) / (2 * delta_A)
    return 0.5 * (matrix + matrix.T)


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


@dataclass
class LabelSummary:
    """What :func:`label_molecules` did.

    Attributes:
        records: the records made in this call (empty when ``keep_records=False``).
        n_frames: frames written or returned in this call.
        skipped_jobs: (molecule, temperature_K) jobs already complete in the output file.
        failed_jobs: (molecule, temperature_K, error message) jobs that failed.
    """

    records: list[Atoms] = field(default_factory=list)
    n_frames: int = 0
    skipped_jobs: list[tuple[str, float]] = field(default_factory=list)
    failed_jobs: list[tuple[str, float, str]] = field(default_factory=list)


def _molecule_id(molecule: str | Atoms, index: int) -> str:
    if isinstance(molecule, str):
        text = molecule.strip()
        prefix, _, rest = text.partition(":")
        return rest if prefix.lower() in ("smiles", "name", "file") and rest else text
    return str(
        molecule.info.get("smiles")
        or molecule.info.get("name")
        or f"{molecule.get_chemical_formula()}#{index}"
    )


def _done_jobs(out_path: Path, seed: int) -> dict[tuple[str, float], int]:
    if not out_path.exists() or out_path.stat().st_size == 0:
        return {}
    counts: dict[tuple[str, float], int] = {}
    for record in read_structures(out_path):
        if int(record.info.get("seed", -1)) != seed:
            continue
        key = (str(record.info.get("molecule")), float(record.info.get("temperature_K", -1)))
        counts[key] = counts.get(key, 0) + 1
    return counts


def label_molecules(
    molecules: Sequence[str | Atoms],
    temperatures_K: Sequence[float],
    frames_per_temperature: int,
    *,
    interval_steps: int = 10,
    timestep_fs: float = 0.5,
    seed: int = 0,
    out_path: str | os.PathLike | None = None,
    sampler: Sampler = "md",
    equilibration_steps: int = 200,
    friction_per_fs: float = 0.01,
    rattle_A: float = 0.0,
    method: str = "GFN2-xTB",
    resume: bool = False,
    keep_records: bool = True,
    threads: int | None = 1,
    progress: bool = False,
) -> LabelSummary:
    """Sample and label every molecule at every temperature.

    Each (molecule, temperature) is one job with its own seed, ``derive_seed(seed, "md",
    molecule, T)``; the starting geometry of a molecule is embedded with
    ``derive_seed(seed, "embed", molecule)``. So a job's frames do not depend on the other jobs,
    and adding molecules or temperatures leaves existing jobs unchanged.

    Args:
        molecules: SMILES strings, names or files (anything :func:`structure_from_string`
            takes), or :class:`ase.Atoms`.
        temperatures_K: temperatures, K; every molecule is sampled at each.
        frames_per_temperature: frames kept per (molecule, temperature).
        interval_steps: MD steps between kept frames.
        timestep_fs: MD time step, fs.
        seed: base seed.
        out_path: extxyz file; each finished job is appended at once.
        sampler: ``"md"`` (Langevin, :func:`sample_trajectory`) or ``"normal-modes"``
            (:func:`normal_mode_samples`).
        equilibration_steps: MD steps before the first kept frame.
        friction_per_fs: Langevin friction, 1/fs.
        rattle_A: Gaussian rattle of each kept MD frame, Å (0 = none).
        method: xTB Hamiltonian.
        resume: skip jobs whose frames are already in ``out_path`` (same base seed); without
            it an existing ``out_path`` is replaced.
        keep_records: also return the records (turn off for very large runs).
        threads: OpenMP threads for xTB (:func:`limit_threads`; run several processes on
            different molecule lists to use more cores).
        progress: show a tqdm bar over frames.

    Returns:
        A :class:`LabelSummary`. A job whose SCF fails or whose dynamics blows up is logged and
        listed in ``failed_jobs``; the other jobs go on.

    Raises:
        StructureSpecError: a molecule string is not a valid SMILES, name or file (checked for
            all molecules before any work starts).
        FileNotFoundError: a molecule names a missing file.
    """
    from ase.calculators.calculator import CalculationFailed

    from phicalc.data.structures import structure_from_string

    if frames_per_temperature < 1:
        raise ValueError(f"frames_per_temperature must be >= 1, got {frames_per_temperature}")
    if sampler not in ("md", "normal-modes"):
        raise ValueError(f"sampler must be 'md' or 'normal-modes', got {sampler!r}")
    temperatures = [float(t) for t in temperatures_K]
    if not temperatures or any(not t > 0 for t in temperatures):
        raise ValueError(
            f"temperatures_K must be positive and non-empty, got {list(temperatures_K)}"
        )

    ids = [_molecule_id(m, i) for i, m in enumerate(molecules)]
    structures: list[Atoms] = []
    for molecule, mol_id in zip(molecules, ids):
        if isinstance(molecule, Atoms):
            structures.append(molecule)
        else:
            structures.append(
                structure_from_string(molecule, seed=derive_seed(seed, "embed", mol_id) % 2**31)
            )

    out = Path(out_path) if out_path is not None else None
    done = _done_jobs(out, seed) if (out is not None and resume) else {}
    if out is not None and not resume and out.exists():
        out.unlink()
    summary = LabelSummary()
    jobs = [(s, m, t) for s, m in zip(structures, ids) for t in temperatures]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs) * frames_per_temperature, unit="frame", desc="xTB labels")
    try:
        for structure, mol_id, temperature in jobs:
            count = done.get((mol_id, temperature), 0)
            if count >= frames_per_temperature:
                summary.skipped_jobs.append((mol_id, temperature))
                if bar is not None:
                    bar.update(frames_per_temperature)
                continue
            if count:
                raise DatasetError(
                    f"{out}: job ({mol_id!r}, {temperature} K) has {count} of "
                    f"{frames_per_temperature} frames; remove them or the file to resume"
                )
            job_seed = derive_seed(seed, "md", mol_id, temperature)
            info = {"molecule": mol_id, "seed": int(seed)}
            if "smiles" in structure.info:
                info["smiles"] = str(structure.info["smiles"])
            if bar is not None:
                bar.set_postfix_str(f"{mol_id[:30]} {temperature:.0f} K")
            on_frame = (lambda _record: bar.update(1)) if bar is not None else None
            try:
                if sampler == "md":
                    records = sample_trajectory(
                        structure,
                        temperature,
                        frames_per_temperature,
                        interval=interval_steps,
                        timestep_fs=timestep_fs,
                        seed=job_seed,
                        equilibration_steps=equilibration_steps,
                        friction_per_fs=friction_per_fs,
                        rattle_A=rattle_A,
                        method=method,
                        threads=threads,
                        info=info,
                        on_frame=on_frame,
                    )
                else:
                    records = normal_mode_samples(
                        structure,
                        temperature,
                        frames_per_temperature,
                        seed=job_seed,
                        method=method,
                        threads=threads,
                        info={**info, "method": method},
                        on_frame=on_frame,
                    )
            except (CalculationFailed, DatasetError) as error:
                logger.error("job (%s, %g K) failed: %s", mol_id, temperature, error)
                summary.failed_jobs.append((mol_id, temperature, str(error)))
                continue
            if out is not None:
                write_structures(out, records, append=True)
            summary.n_frames += len(records)
            if keep_records:
                summary.records.extend(records)
    finally:
        if bar is not None:
            bar.close()
    logger.info(
        "labelled %d frames (%d jobs skipped, %d failed)%s",
        summary.n_frames,
        len(summary.skipped_jobs),
        len(summary.failed_jobs),
        f" → {out}" if out is not None else "",
    )
    return summary


def load_organic_smiles(
    subset: Literal["all", "train", "heldout"] = "all",
    *,
    path: str | os.PathLike | None = None,
    heldout_fraction: float = HELDOUT_FRACTION,
) -> list[str]:
    """The curated organic SMILES list (H, C, N, O; ≤ 30 heavy atoms), or one of its subsets.

    The held-out subset (about ``heldout_fraction`` of the list) is chosen by a salted hash of
    each SMILES string as written in the file (:func:`phicalc.data.splits.split_by_hash`), so a
    molecule never changes subset when others are added; train models on ``"train"`` and
    evaluate transfer on ``"heldout"``.

    Args:
        subset: ``"all"``, ``"train"`` or ``"heldout"``.
        path: another file in the same format (one SMILES per line, optional name after
            whitespace, lines starting with ``#`` are comments); default:
            ``phicalc/data/organic_smiles.txt``.
        heldout_fraction: share of molecules held out.
    """
    if subset not in ("all", "train", "heldout"):
        raise ValueError(f"subset must be 'all', 'train' or 'heldout', got {subset!r}")
    if path is None:
        text = resources.files("phicalc.data").joinpath("organic_smiles.txt").read_text()
        smiles = parse_smiles_list(text)
    else:
        smiles = read_smiles_file(path)
    if subset == "all":
        return smiles
    train, heldout = split_by_hash(smiles, heldout_fraction=heldout_fraction, salt=HELDOUT_SALT)
    return train if subset == "train" else heldout


def parse_smiles_list(text: str) -> list[str]:
    """SMILES from text: the first word of each line; blank lines and ``#`` lines skipped."""
    smiles = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):  # '#' inside a SMILES is a triple bond
            smiles.append(line.split()[0])
    return smiles


def read_smiles_file(path: str | os.PathLike) -> list[str]:
    """SMILES from a file (one per line, optional name after whitespace, ``#`` comment lines).

    Raises:
        FileNotFoundError: no such file.
        DatasetError: the file lists no SMILES.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such SMILES file: {path}")
    smiles = parse_smiles_list(path.read_text())
    if not smiles:
        raise DatasetError(f"{path}: no SMILES found")
    return smiles
