"""Dimer scans: two fragments pulled apart, each geometry labelled as complex, A and B.

See :mod:`phicalc.data.xtb.charged` for the data layout. For a pair (A, B) of xTB-relaxed
monomers and orientation k (a seeded rotation of B and direction of its displacement), the
geometries are: B at each contact scale (closest pair at scale × the sum of contact radii,
:func:`~phicalc.data.xtb.fragments.place_at_contact`), then at each closest-atom distance (Å)
beyond the farthest contact point. Each geometry gives three records sharing ``dimer_id``:
``fragment="complex"`` at Q_A + Q_B, ``"A"`` at Q_A and ``"B"`` at Q_B (same coordinates), all
singlets, so E_int = E_complex − E_A − E_B (eV) is exact for the reference method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from phicalc.data.splits import derive_seed
from phicalc.data.xtb.charged_species import DimerPair, Species
from phicalc.data.xtb.fragments import (
    closest_distance,
    fragment_charge_deviation,
    passes_fragment_filter,
    place_at_contact,
    place_at_distance,
    random_direction,
    random_rotation,
)
from phicalc.data.xtb.single_point import label_structure, optimize_structure, xtb_calculator
from phicalc.errors import DatasetError

if TYPE_CHECKING:
    from phicalc.data.xtb.charged import ChargedSettings, ChargedSummary


def label_single_point(
    atoms: Atoms,
    charge: int,
    multiplicity: int,
    info: dict[str, Any],
    *,
    method: str = "GFN2-xTB",
    threads: int | None = 1,
) -> Atoms:
    """One xTB single point at total charge ``charge`` (e) and multiplicity ``multiplicity``.

    A fresh calculator (no SCF guess carried over) makes every point independent of the order.
    The record's ``info`` has ``charge`` and ``spin``.

    Raises:
        ase.calculators.calculator.CalculationFailed: the SCF did not converge.
        DatasetError: forces above the sanity limit.
    """
    work = Atoms(numbers=atoms.numbers, positions=atoms.positions)
    work.info["charge"] = int(charge)
    calc = xtb_calculator(method, charge=int(charge), multiplicity=int(multiplicity))
    info = {**info, "charge": int(charge), "spin": int(multiplicity)}
    return label_structure(work, method=method, info=info, calc=calc, threads=threads)


def _relaxed(species: Species, seed: int, cache: dict[str, Atoms], method: str) -> Atoms:
    from phicalc.data.structures import structure_from_smiles

    if species.name not in cache:
        structure = structure_from_smiles(
            species.smiles, seed=derive_seed(seed, "embed", species.canonical) % 2**31
        )
        if len(structure) > 1:
            structure = optimize_structure(structure, method=method, fmax=0.05, steps=200)
        structure.info["charge"] = species.charge
        cache[species.name] = structure
    return cache[species.name]


def _dimer_points(a: Atoms, b: Atoms, settings: ChargedSettings, rng) -> list[tuple[Atoms, str]]:
    rotation, direction = random_rotation(rng), random_direction(rng)
    points = [
        (place_at_contact(a, b, scale, rotation, direction), f"contact{scale:g}")
        for scale in settings.contact_scales
    ]
    nearest = max(closest_distance(c.positions[: len(a)], c.positions[len(a) :]) for c, _ in points)
    for distance in settings.dimer_distances:
        if distance > nearest + 0.25:
            points.append((place_at_distance(a, b, distance, rotation, direction), "distance"))
    return points


def dimer_stage(charged_set, splits, settings, seed, writer, summary, bar) -> None:
    cache: dict[str, Atoms] = {}
    for pair in charged_set.dimers:
        bar.set_postfix_str(pair.name)
        a = _relaxed(pair.a, seed, cache, settings.method)
        b = _relaxed(pair.b, seed, cache, settings.method)
        records: list[Atoms] = []
        for k in range(settings.dimer_orientations):
            rng = np.random.default_rng(derive_seed(seed, "dimer", pair.key, k))
            for j, (complex_, placement) in enumerate(_dimer_points(a, b, settings, rng)):
                triple = _label_dimer_point(
                    pair, complex_, len(a), (k, j, placement), splits, settings, summary
                )
                summary.single_points += 3
                if isinstance(triple, str):
                    summary.dropped[("dimer", triple)] += 3
                    continue
                records.extend(triple)
                if triple[0].info.get("transfer_at_contact"):
                    summary.contact_transfer_kept += 1
            bar.update(1)
        writer.write(records)


def _label_dimer_point(
    pair: DimerPair,
    complex_: Atoms,
    n_a: int,
    where: tuple[int, int, str],
    splits: dict[str, str],
    settings: ChargedSettings,
    summary: ChargedSummary,
) -> list[Atoms] | str:
    """[complex, A, B] records of one geometry, or the reason the triple is dropped."""
    from ase.calculators.calculator import CalculationFailed

    k, j, placement = where

    distance = closest_distance(complex_.positions[:n_a], complex_.positions[n_a:])
    base = {
        "category": "dimer",
        "species": pair.name,
        "split_key": pair.key,
        "split": splits[pair.name],
        "dimer_id": f"{pair.name}/o{k}/p{j}",
        "orientation": k,
        "placement": placement,
        "distance": round(distance, 6),
        "n_atoms_A": n_a,
        "n_atoms_B": len(complex_) - n_a,
        "charge_A": pair.a.charge,
        "charge_B": pair.b.charge,
        "sampler": "dimer-scan",
    }
    parts = [
        ("complex", complex_, pair.a.charge + pair.b.charge),
        ("A", complex_[:n_a], pair.a.charge),
        ("B", complex_[n_a:], pair.b.charge),
    ]
    records = []
    for fragment, atoms, charge in parts:
        try:
            records.append(
                label_single_point(
                    atoms,
                    charge,
                    1,
                    {**base, "fragment": fragment},
                    method=settings.method,
                    threads=settings.threads,
                )
            )
        except (CalculationFailed, DatasetError) as error:
            summary.dropped_dimers.append(
                {"dimer_id": base["dimer_id"], "distance": round(distance, 3),
                 "reason": "scf_failed", "fragment": fragment, "error": str(error)}
            )  # fmt: skip
            return "scf_failed"
    charges = records[0].arrays["ref_charges"]
    q_a = float(charges[:n_a].sum())
    ok = passes_fragment_filter(
        charges, n_a, pair.a.charge, pair.b.charge, tolerance=settings.transfer_tolerance
    )
    if not ok and distance >= settings.transfer_check_from:
        summary.dropped_dimers.append(
            {"dimer_id": base["dimer_id"], "distance": round(distance, 3),
             "reason": "fragment_charge", "fragment_charge_A": round(q_a, 4),
             "charge_A": pair.a.charge}
        )  # fmt: skip
        return "fragment_charge"
    energies = [r.get_potential_energy() for r in records]
    records[0].info["interaction_energy"] = energies[0] - energies[1] - energies[2]
    records[0].info["fragment_charge_A"] = q_a
    records[0].info["transfer_at_contact"] = not ok
    for record in records:
        record.info["fragment_deviation"] = fragment_charge_deviation(charges, n_a, pair.a.charge)
    return records
