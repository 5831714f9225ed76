"""What a training run checks and computes before its first step: resumability, elements,
graphs, targets, and the model's per-element energies E0 and energy scale σ."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from tqdm.auto import tqdm

from phicalc.config import config_differences
from phicalc.data import GraphDataset
from phicalc.errors import ConfigError
from phicalc.graph.batch import PARTIAL_TARGETS, AtomGraph
from phicalc.train.config import RESUMABLE_CHANGES, TrainConfig
from phicalc.train.model_section import ModelSection
from phicalc.train.statistics import energy_scale, fit_atomic_energies, fit_charge_potential

logger = logging.getLogger(__name__)

#: What to do when a loss term lacks references, by target.
_TARGET_HINTS = {
    "forces": "set loss.forces_weight: 0 for energy-only data such as OE62",
    "charges": "set loss.charges_weight: 0 or use data with reference charges",
    "dipole": "set loss.dipole_weight: 0 or use data with reference dipoles",
    "energy": "set loss.energy_weight: 0 or use labelled data",
}


def check_resumable(
    checkpoint: dict[str, Any], config: TrainConfig, out: Path, world_size: int
) -> None:
    """Refuse a resume whose config differs beyond :data:`RESUMABLE_CHANGES`; warn on a changed
    epoch count or world size."""
    differences = [
        key
        for key in config_differences(checkpoint["config"], config.to_dict())
        if key not in RESUMABLE_CHANGES and key.split(".")[0] not in RESUMABLE_CHANGES
    ]
    if differences:
        raise ConfigError(
            f"cannot resume {out}: the config differs from the checkpoint's in {differences}"
        )
    if checkpoint["config"]["epochs"] != config.epochs:
        logger.warning(
            "resuming with epochs=%d instead of %d: the learning-rate schedule changes",
            config.epochs,
            checkpoint["config"]["epochs"],
        )
    if checkpoint.get("world_size", 1) != world_size:
        logger.warning(
            "resuming with %d process(es) instead of %d: batches differ from the original run",
            world_size,
            checkpoint.get("world_size", 1),
        )


def check_test_elements(
    records: Sequence[Atoms] | None, elements: Sequence[str], source: str
) -> None:
    """Raise :class:`ConfigError` naming ``source`` (the test files) and the elements if the
    test ``records`` hold an element outside ``elements``; checked before the first epoch, so
    a run never trains for hours to fail at its test evaluation."""
    if not records:
        return
    symbols = {symbol for atoms in records for symbol in atoms.get_chemical_symbols()}
    missing = sorted(symbols - set(elements), key=lambda s: atomic_numbers.get(s, 0))
    if missing:
        raise ConfigError(
            f"the test data {source} contain {', '.join(missing)}, which the model's elements "
            f"{list(elements)} (from the training data or model.elements) lack; add them to "
            "model.elements or remove those structures"
        )


def choose_elements(
    configured: tuple[str, ...] | None, records: Sequence[Atoms]
) -> tuple[str, ...]:
    """``configured`` (checked to cover ``records``), or the elements of ``records`` by Z."""
    present = sorted({int(z) for atoms in records for z in atoms.numbers})
    symbols = [chemical_symbols[z] for z in present]
    if configured is None:
        return tuple(symbols)
    elements = tuple(configured)
    missing = [s for s in symbols if s not in elements]
    if missing:
        raise ConfigError(
            f"the training/validation data contain {missing}, which model.elements "
            f"{list(elements)} lacks"
        )
    unknown = [s for s in elements if s not in atomic_numbers]
    if unknown:
        raise ConfigError(f"model.elements has unknown symbols {unknown}")
    return elements


def build_graphs(
    records: Sequence[Atoms],
    cutoff: float,
    device: torch.device,
    *,
    name: str,
    progress: bool,
) -> list[AtomGraph]:
    """Neighbour lists of every structure, built once, kept on the training device."""
    dataset = GraphDataset(records, cutoff, cache=False)
    indices = tqdm(
        range(len(dataset)),
        desc=f"graphs ({name})",
        unit="structure",
        leave=False,
        disable=not progress,
    )
    return [dataset[i].to(device) for i in indices]


def check_targets(
    weights: dict[str, float],
    *,
    has_charges: bool,
    train_graphs: Sequence[AtomGraph],
    val_graphs: Sequence[AtomGraph],
) -> None:
    """Every weighted loss term has references in every training and validation structure, the
    dipole in at least one of each split (periodic cells have none; the loss skips them), and
    charge and dipole terms a model with charges."""
    for name in weights:
        if name in ("charges", "dipole") and not has_charges:
            raise ConfigError(
                f"loss.{name}_weight > 0 needs a model with charges "
                "(model.phi or model.charge_equilibration)"
            )
        for split, graphs in (("training", train_graphs), ("validation", val_graphs)):
            lacking = sum(1 for g in graphs if name not in (g.targets or {}))
            if name in PARTIAL_TARGETS and lacking < len(graphs):
                continue  # the structures without one (periodic cells) are skipped by the loss
            if lacking:
                raise ConfigError(
                    f"loss.{name}_weight > 0 but {lacking} of {len(graphs)} {split} "
                    f"structures have no reference {name}; {_TARGET_HINTS[name]}"
                )


def set_statistics(
    model: torch.nn.Module,
    section: ModelSection,
    elements: tuple[str, ...],
    train_graphs: Sequence[AtomGraph],
    *,
    forces_available: bool,
) -> None:
    """Set the model's E0 (``model.atomic_energies``), σ (``model.energy_scale``) and, where it
    has a charge-state energy, μ (:func:`set_charge_potential`).

    Args:
        forces_available: the force loss is on and every training structure has forces
            (``energy_scale: auto`` then means ``force_rms``).
    """
    if isinstance(section.atomic_energies, dict):
        missing = [s for s in elements if s not in section.atomic_energies]
        if missing:
            raise ConfigError(f"model.atomic_energies lacks {missing}")
        energies = {s: float(section.atomic_energies[s]) for s in elements}
    elif section.atomic_energies == "zero":
        energies = dict.fromkeys(elements, 0.0)
    else:
        energies = fit_atomic_energies(train_graphs, elements)
    model.set_atomic_energies(energies)
    if isinstance(section.energy_scale, (int, float)):
        scale = float(section.energy_scale)
    else:
        kind = section.energy_scale
        if kind == "auto":
            kind = "force_rms" if forces_available else "residual_std"
        scale = energy_scale(train_graphs, energies, kind)
    model.set_energy_scale(scale)
    if model.config.charge_state_energy:
        set_charge_potential(model, train_graphs)


def set_charge_potential(model: torch.nn.Module, train_graphs: Sequence[AtomGraph]) -> None:
    """μ of the charge-state energy from the training energies and the model's E0."""
    energies = dict(zip(model.elements, model.atomic_energies.tolist(), strict=True))
    mu = fit_charge_potential(train_graphs, energies)
    with torch.no_grad():
        model.charge_potential.fill_(mu)
    logger.info("charge-state energy: μ = %.4f V from the training energies", mu)


#: Model settings a fine-tuning run may change: how the weights are used (``charge_input``, the
#: Φ-Module's gauge, the Coulomb term's short-range switch, which has no parameters), or a term
#: whose parameters a source without it lacks (:data:`ADDED_PARAMETERS`).
WEIGHT_COMPATIBLE_KEYS = (
    "charge_input",
    "phi.gauge",
    "coulomb.switch_radius",
    "equilibration_scope",
    "charge_state_energy",
    "pair_repulsion",
)
#: Parameters of such a term, set from the training data when the source lacks them.
ADDED_PARAMETERS = ("charge_potential", "raw_transfer_strength")


def initialise_from(model: torch.nn.Module, source: str) -> list[str]:
    """Copy the weights, E0 and σ of the model ``source`` (name or file) into ``model``.

    Returns:
        The names in :data:`ADDED_PARAMETERS` that ``model`` has and ``source`` lacks (the
        caller sets them from the data).

    Raises:
        ConfigError: ``source`` has another architecture or other elements than ``model``.
    """
    from phicalc.serialization import load_model

    initial = load_model(source)
    differences = [
        key
        for key in config_differences(initial.config.to_dict(), model.config.to_dict())
        if key not in WEIGHT_COMPATIBLE_KEYS
    ]
    if differences:
        raise ConfigError(
            f"init_from={source!r}: its model differs from the config's model section in "
            f"{differences}; fine-tuning needs the same architecture and elements"
        )
    target = model.state_dict()
    state = {
        key: value.to(dtype=target[key].dtype) if key in target else value
        for key, value in initial.state_dict().items()
    }
    added = [key for key in ADDED_PARAMETERS if key in target and key not in state]
    state.update({key: target[key] for key in added})
    model.load_state_dict(state, strict=True)
    logger.info("weights, E0 and σ from %s", source)
    return added
