"""Labelling jobs: many molecules × temperatures, sampled and labelled, written to extxyz.

:func:`label_molecules` runs one job per (molecule, temperature) with its own derived seed,
appends each finished job to the output file at once, and can resume a partly written file.
Besides the samplers' provenance (:mod:`phicalc.data.xtb.sampling`), every record carries
``molecule``, ``seed`` (base seed) and ``smiles`` (when known) in ``atoms.info``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ase import Atoms

from phicalc.data.datasets import read_structures, write_structures
from phicalc.data.splits import derive_seed
from phicalc.data.xtb.sampling import normal_mode_samples, sample_trajectory
from phicalc.errors import DatasetError

logger = logging.getLogger(__name__)

Sampler = Literal["md", "normal-modes"]


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


def _done_jobs(out_path: Path, seed: int) -> dict[int, int]:
    """Frames already in ``out_path`` per job, keyed by the job's seed (``info["job_seed"]``,
    derived from the base seed, the molecule and the temperature): a key that survives any
    rewriting of the molecule's name in the file."""
    if not out_path.exists() or out_path.stat().st_size == 0:
        return {}
    counts: dict[int, int] = {}
    for record in read_structures(out_path):
        if int(record.info.get("seed", -1)) != seed or "job_seed" not in record.info:
            continue
        key = int(record.info["job_seed"])
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
        threads: OpenMP threads for xTB
            (:func:`~phicalc.data.xtb.single_point.limit_threads`; run several processes on
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
            job_seed = derive_seed(seed, "md", mol_id, temperature)
            count = done.get(job_seed, 0)
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
