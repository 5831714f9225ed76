"""Charged and long-range GFN2-xTB reference data: ions, charge states, dimer scans, clusters.

:func:`label_charged_set` makes, from :mod:`phicalc.data.xtb.charged_species`'s list:

* ``species``: every neutral molecule, ion and zwitterion sampled by xTB Langevin MD
  (:func:`~phicalc.data.xtb.sampling.sample_trajectory`) at each temperature; frames whose
  covalent bonds differ from the SMILES structure's (a proton transfer, e.g. a gas-phase glycine
  zwitterion collapsing to the neutral form) are dropped (reason ``bonds_changed``).
* ``vertical``: the first ``vertical_frames`` frames of every neutral molecule relabelled at
  Q = +1 and Q = −1 with multiplicity 2 (vertical ionisation / attachment, same geometry); an
  anion above its neutral is dropped (``unbound_anion``, :mod:`~phicalc.data.xtb.vertical`).
* ``dimer``: each pair scanned from contact (closest pair at ``contact_scales`` × the sum of
  contact radii) out to the ``dimer_distances`` (closest-atom distance, Å; the last ≥ 15 Å) along
  ``dimer_orientations`` seeded orientations of xTB-relaxed monomers. Each geometry is labelled
  three times: ``fragment="complex"`` (Q_A + Q_B) and ``"A"``/``"B"`` (the monomers at the same
  geometry), sharing ``dimer_id``; the complex also carries ``interaction_energy`` = E_AB − E_A −
  E_B (eV) and ``fragment_charge_A`` = Σ_A q (e). A triple is dropped whole when any of its SCFs
  fails (``scf_failed``) or, at closest-atom distance ≥ ``transfer_check_from`` Å, when a
  fragment's Mulliken charge is off its formal charge by more than ``transfer_tolerance`` e
  (``fragment_charge``, :func:`~phicalc.data.xtb.fragments.passes_fragment_filter`).
* ``cluster``: Na⁺(H2O)n and Cl⁻(H2O)n, n = 1..``max_waters``, sampled by MD like the species;
  frames with a broken water are dropped (``bonds_changed``).

Every frame: energy (eV), forces (eV/Å), Mulliken ``ref_charges`` (e), ``ref_dipole`` (e·Å),
``info["charge"]`` (Q, e), ``info["spin"]`` (2S+1; tblite gets uhf = 2S), ``info["category"]``,
``info["species"]``, ``info["split"]``. Splits by species:
:func:`~phicalc.data.xtb.charged_species.assign_splits`. Output: ``{stem}_{train,val,test}.extxyz``
and ``{stem}_summary.json`` (counts, dropped frames by reason, cost).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from phicalc.data.datasets import write_structures
from phicalc.data.splits import derive_seed
from phicalc.data.xtb.charged_species import (
    ChargedSet,
    assign_splits,
    most_heldout,
    split_of_key,
)
from phicalc.data.xtb.dimer_scan import dimer_stage, label_single_point
from phicalc.data.xtb.fragments import (
    ion_water_cluster,
)
from phicalc.data.xtb.sampling import covalent_bonds, sample_trajectory
from phicalc.data.xtb.vertical import UNBOUND_ANION, is_bound
from phicalc.errors import DatasetError

logger = logging.getLogger(__name__)

STAGES = ("species", "vertical", "dimers", "clusters")


@dataclass
class ChargedSettings:
    """Sizes and thresholds of a charged-set run (defaults: the pilot)."""

    temperatures_K: Sequence[float] = (300.0, 600.0)
    frames: int = 3
    interval_steps: int = 10
    timestep_fs: float = 1.0
    equilibration_steps: int = 50
    vertical_frames: int = 1
    dimer_orientations: int = 2
    contact_scales: Sequence[float] = (0.75, 0.9, 1.1)
    dimer_distances: Sequence[float] = (4.5, 6.0, 8.0, 11.0, 15.0)
    max_waters: int = 6
    transfer_tolerance: float = 0.01
    transfer_check_from: float = 4.0
    stages: Sequence[str] = STAGES
    method: str = "GFN2-xTB"
    threads: int | None = 1


@dataclass
class ChargedSummary:
    """What :func:`label_charged_set` wrote and dropped (``as_dict`` is the summary JSON)."""

    counts: Counter = field(default_factory=Counter)  # (category, split) -> frames
    dropped: Counter = field(default_factory=Counter)  # (category, reason) -> frames
    contact_transfer_kept: int = 0
    dropped_dimers: list[dict[str, Any]] = field(default_factory=list)
    elements: set[str] = field(default_factory=set)
    single_points: int = 0
    wall_s: float = 0.0
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        counts: dict[str, dict[str, int]] = {}
        for (category, split), n in sorted(self.counts.items()):
            counts.setdefault(category, {})[split] = n
        dropped: dict[str, dict[str, int]] = {}
        for (category, reason), n in sorted(self.dropped.items()):
            dropped.setdefault(reason, {})[category] = n
        return {
            "frames": counts,
            "frames_total": int(sum(self.counts.values())),
            "dropped": dropped,
            "dropped_total": int(sum(self.dropped.values())),
            "contact_transfer_kept": self.contact_transfer_kept,
            "dropped_dimer_points": self.dropped_dimers,
            "elements": sorted(self.elements),
            "single_points": self.single_points,
            "wall_s": round(self.wall_s, 1),
            "files": self.files,
        }


class _Writer:
    """Streams records to ``{stem}_{split}.extxyz`` and keeps the counts."""

    def __init__(self, stem: Path, summary: ChargedSummary):
        self.stem = stem
        self.summary = summary
        for split in ("train", "val", "test"):
            path = self.path(split)
            if path.exists():
                path.unlink()
            summary.files[split] = str(path)

    def path(self, split: str) -> Path:
        return self.stem.with_name(f"{self.stem.name}_{split}.extxyz")

    def write(self, records: Sequence[Atoms]) -> None:
        for split in ("train", "val", "test"):
            chunk = [r for r in records if r.info["split"] == split]
            if chunk:
                write_structures(self.path(split), chunk, append=True)
        for record in records:
            self.summary.counts[(record.info["category"], record.info["split"])] += 1
            self.summary.elements.update(record.get_chemical_symbols())


def _sample(
    structure: Atoms,
    info: dict[str, Any],
    settings: ChargedSettings,
    seed: int,
    summary: ChargedSummary,
    *,
    skip_atoms: int = 0,
) -> list[Atoms]:
    """MD frames of one species / cluster at every temperature, with the bond filter."""
    from ase.calculators.calculator import CalculationFailed

    category = info["category"]
    charge = int(structure.info.get("charge", 0))
    if len(structure) == 1:
        summary.single_points += 1
        return [label_single_point(structure, charge, 1, {**info, "sampler": "single-atom"})]
    reference = covalent_bonds(structure[skip_atoms:])
    kept: list[Atoms] = []
    for temperature in settings.temperatures_K:
        job_seed = derive_seed(seed, "charged-md", info["species"], float(temperature))
        try:
            frames = sample_trajectory(
                structure,
                temperature,
                settings.frames,
                interval=settings.interval_steps,
                timestep_fs=settings.timestep_fs,
                seed=job_seed,
                equilibration_steps=settings.equilibration_steps,
                method=settings.method,
                threads=settings.threads,
                info={**info, "spin": 1},
            )
        except (CalculationFailed, DatasetError) as error:
            reason = "scf_failed" if isinstance(error, CalculationFailed) else "max_force"
            logger.warning(
                "%s at %g K dropped (%s): %s", info["species"], temperature, reason, error
            )
            summary.dropped[(category, reason)] += settings.frames
            continue
        summary.single_points += (
            settings.equilibration_steps + settings.frames * settings.interval_steps
        )
        for frame in frames:
            if covalent_bonds(frame[skip_atoms:]) != reference:
                summary.dropped[(category, "bonds_changed")] += 1
            else:
                kept.append(frame)
    return kept


def _species_stage(
    charged_set: ChargedSet, splits: dict[str, str], settings, seed, writer, summary, bar
) -> dict[str, list[Atoms]]:
    from phicalc.data.structures import structure_from_smiles

    sampled: dict[str, list[Atoms]] = {}
    for name, species in charged_set.species.items():
        bar.set_postfix_str(name)
        structure = structure_from_smiles(
            species.smiles, seed=derive_seed(seed, "embed", species.canonical) % 2**31
        )
        info = {
            "category": species.kind,
            "species": name,
            "smiles": species.smiles,
            "split_key": species.key,
            "split": splits[name],
            "seed": int(seed),
        }
        frames = _sample(structure, info, settings, seed, summary)
        writer.write(frames)
        sampled[name] = frames
        bar.update(1)
    return sampled


def _vertical_stage(charged_set, sampled, splits, settings, writer, summary, bar) -> None:
    from ase.calculators.calculator import CalculationFailed

    for name, species in charged_set.species.items():
        if species.kind != "neutral":
            continue
        bar.set_postfix_str(name)
        records = []
        for k, frame in enumerate(sampled.get(name, [])[: settings.vertical_frames]):
            for charge in (+1, -1):
                info = {
                    "category": "vertical",
                    "species": name,
                    "smiles": species.smiles,
                    "split_key": species.key,
                    "split": splits[name],
                    "vertical_of_frame": k,
                    "sampler": "vertical",
                }
                summary.single_points += 1
                try:
                    record = label_single_point(frame, charge, 2, info, method=settings.method)
                except (CalculationFailed, DatasetError):
                    summary.dropped[("vertical", "scf_failed")] += 1
                    continue
                energy = record.get_potential_energy()
                if is_bound(charge, energy, frame.get_potential_energy()):
                    records.append(record)
                else:
                    summary.dropped[("vertical", UNBOUND_ANION)] += 1
        writer.write(records)
        bar.update(1)


def _cluster_stage(settings, seed, writer, summary, bar) -> None:
    for ion, charge in (("Na", 1), ("Cl", -1)):
        for n in range(1, settings.max_waters + 1):
            sign = "+" if charge > 0 else "-"
            name = f"{ion}{sign}(H2O){n}"
            bar.set_postfix_str(name)
            key = f"cluster:{name}"
            rng = np.random.default_rng(derive_seed(seed, "cluster", name))
            structure = ion_water_cluster(ion, n, rng)
            info = {
                "category": "cluster",
                "species": name,
                "split_key": key,
                "split": most_heldout(
                    split_of_key(key, seed), split_of_key(f"mol:[{ion}{sign}]", seed)
                ),
                "seed": int(seed),
            }
            writer.write(_sample(structure, info, settings, seed, summary, skip_atoms=1))
            bar.update(1)


def label_charged_set(
    charged_set: ChargedSet,
    out_stem: str | os.PathLike,
    *,
    settings: ChargedSettings | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ChargedSummary:
    """Make the charged / long-range data set (see the module docstring) and write it.

    Args:
        charged_set: species and dimer pairs
            (:func:`~phicalc.data.xtb.charged_species.load_charged_set`).
        out_stem: output stem; writes ``{stem}_train.extxyz``, ``{stem}_val.extxyz``,
            ``{stem}_test.extxyz`` (replaced if present) and ``{stem}_summary.json``. A trailing
            ``.extxyz`` is stripped.
        settings: sizes and thresholds (default: the pilot, :class:`ChargedSettings`).
        seed: base seed of embeddings, MD, orientations, clusters and the split salt.
        progress: tqdm bars per stage.

    Returns:
        The :class:`ChargedSummary` (also written as JSON).
    """
    from tqdm.auto import tqdm

    settings = settings or ChargedSettings()
    unknown = set(settings.stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
    stem = Path(out_stem)
    if stem.suffix == ".extxyz":
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    summary = ChargedSummary()
    writer = _Writer(stem, summary)
    splits = assign_splits(charged_set, seed)
    start = time.perf_counter()

    def bar(total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="job", disable=not progress)

    sampled: dict[str, list[Atoms]] = {}
    if "species" in settings.stages or "vertical" in settings.stages:
        with bar(len(charged_set.species), "species") as b:
            sampled = _species_stage(charged_set, splits, settings, seed, writer, summary, b)
    if "vertical" in settings.stages:
        neutral = sum(s.kind == "neutral" for s in charged_set.species.values())
        with bar(neutral, "vertical ±1") as b:
            _vertical_stage(charged_set, sampled, splits, settings, writer, summary, b)
    if "dimers" in settings.stages:
        total = len(charged_set.dimers) * settings.dimer_orientations
        with bar(total, "dimer scans") as b:
            dimer_stage(charged_set, splits, settings, seed, writer, summary, b)
    if "clusters" in settings.stages:
        with bar(2 * settings.max_waters, "ion-water clusters") as b:
            _cluster_stage(settings, seed, writer, summary, b)
    summary.wall_s = time.perf_counter() - start
    report = summary.as_dict()
    report["seed"] = int(seed)
    report["splits"] = splits
    report["settings"] = {
        k: list(v) if isinstance(v, tuple | list) else v for k, v in vars(settings).items()
    }
    summary_path = stem.with_name(f"{stem.name}_summary.json")
    summary_path.write_text(json.dumps(report, indent=1))
    logger.info(
        "charged set: %d frames written, %d dropped %s, %d contact frames with transfer kept; "
        "summary %s",
        report["frames_total"],
        report["dropped_total"],
        {reason: sum(v.values()) for reason, v in report["dropped"].items()},
        summary.contact_transfer_kept,
        summary_path,
    )
    return summary
