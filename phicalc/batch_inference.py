"""Batched inference: many structures through one forward pass of a :class:`Potential`.

:func:`predict` builds each structure's graph with :func:`~phicalc.graph.batch.atoms_to_graph`,
collates consecutive structures into chunks of at most ``max_atoms`` atoms
(:func:`~phicalc.graph.batch.collate`), evaluates each chunk once and splits the outputs back per
structure. Nothing couples structures inside a batch (edges never cross structures; energies,
charges and the Φ/Coulomb terms are per structure), so each structure gets what a single call
gives, up to floating-point summation order.

Per-structure results use :class:`~phicalc.calculator.PhiCalculator`'s names and units:
``energy``/``free_energy`` (eV), ``energies`` [n_atoms] (eV), ``forces`` [n_atoms, 3] (eV/Å),
``stress`` (Voigt 6, eV/Å³, only for 3D-periodic structures), and when the model has them
``charges`` [n_atoms] (e), ``dipole`` [3] (e·Å), ``potentials`` [n_atoms] (V),
``electrostatic_energy``, ``phi_energy``, ``coulomb_energy``, ``charge_state_energy`` (eV).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress

from phicalc.compiled import CompiledBackbone, CompiledForward, compile_blocker
from phicalc.graph.batch import (
    AtomGraph,
    atoms_to_graph,
    charge_and_multiplicity,
    check_min_distance,
    collate,
)
from phicalc.molecule_charges import run_at_formal_charges, with_molecules
from phicalc.nn.electrostatics.coulomb import intra_structure_pairs
from phicalc.nn.electrostatics.periodic import PeriodicSums
from phicalc.potential import Potential

#: Default atom budget of one chunk on a CPU. Measured (benchmarks/batch_inference.py, PaiNN+Φ,
#: F = 64, 42-atom molecules, 1 thread): per-structure cost is lowest at 150-350 atoms per pass
#: (1.4-1.5x over one-by-one) and rises beyond, once the edge tensors ([n_edges, 3F] floats)
#: outgrow the caches (1,000 atoms: 1.0x; 2,700 atoms: 0.7x). Compiled chunks have the same
#: sweet spot (168-336 atoms: 3.8-4.6x over plain one-by-one calls; 2,700 atoms: 2.3-2.8x).
DEFAULT_MAX_ATOMS = 256
#: Default atom budget on a GPU, where a pass's cost is dominated by kernel launches, not size.
DEFAULT_MAX_ATOMS_GPU = 16384


def default_max_atoms(device: torch.device) -> int:
    """The default atom budget of one pass on ``device``."""
    return DEFAULT_MAX_ATOMS if torch.device(device).type == "cpu" else DEFAULT_MAX_ATOMS_GPU


def chunk_indices(sizes: Sequence[int], max_atoms: int) -> list[list[int]]:
    """Split structures (their atom counts ``sizes``) into consecutive chunks of at most
    ``max_atoms`` atoms; a structure larger than the budget gets a chunk of its own."""
    if max_atoms < 1:
        raise ValueError(f"max_atoms must be >= 1, got {max_atoms}")
    chunks: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and used + size > max_atoms:
            chunks.append(current)
            current, used = [], 0
        current.append(index)
        used += size
    if current:
        chunks.append(current)
    return chunks


def is_3d_periodic(atoms: Atoms) -> bool:
    """Whether stress is defined: periodic with a full-rank cell (the calculator's rule)."""
    return bool(atoms.cell.rank == 3 and atoms.pbc.any())


def predict(
    model: Potential,
    structures: Sequence[Atoms],
    *,
    charge: float = 0.0,
    spin: int = 1,
    max_atoms: int | None = None,
    min_distance: float | None = 0.5,
    compiled: CompiledForward | None = None,
    compiled_backbone: CompiledBackbone | None = None,
    periodic_sums: PeriodicSums | None = None,
) -> list[dict[str, Any]]:
    """Energy, forces, stress and electrostatics of many structures, batched.

    Args:
        model: the Potential, evaluated on its own device and dtype (put it in eval mode).
        structures: ASE structures, molecules and periodic cells mixed; not modified.
        charge: total charge Q (e) of structures whose ``info`` has no ``"charge"``.
        spin: spin multiplicity 2S+1 of structures whose ``info`` has no ``"spin"``.
        max_atoms: atom budget of one forward pass; consecutive structures are packed until it
            would be exceeded (default: :func:`default_max_atoms` of the model's device).
        min_distance: smallest allowed interatomic distance in Å, as in ``PhiCalculator``.
        compiled: a compiled force pass of ``model`` (``dynamic=True``) for the chunks it can
            take (:func:`~phicalc.compiled.compile_blocker`: open structures); the others, and
            every chunk without it, are plain calls.
        compiled_backbone: a compiled backbone of ``model`` for those plain calls
            (:class:`~phicalc.compiled.CompiledBackbone`), or ``None``.
        periodic_sums: what the caller keeps between the periodic Coulomb sums of those plain
            calls (:class:`~phicalc.nn.electrostatics.periodic.PeriodicSums`), or ``None``.

    Returns:
        One dict per structure, in order (see the module docstring for keys and units); ``[]``
        for no structures.
    """
    structures = list(structures)
    results: list[dict[str, Any]] = []
    device, dtype = model.device, model.dtype
    budget = default_max_atoms(device) if max_atoms is None else max_atoms
    for chunk in chunk_indices([len(a) for a in structures], budget):
        graphs = []
        for index in chunk:
            atoms = structures[index]
            q, m = charge_and_multiplicity(
                atoms,
                charge=atoms.info.get("charge", charge),
                multiplicity=atoms.info.get("spin", spin),
            )
            graphs.append(
                atoms_to_graph(
                    atoms, model.cutoff, total_charge=q, multiplicity=m, dtype=dtype, device=device
                )
            )
        graph = collate(graphs)
        lengths = check_min_distance(graph, min_distance, first_structure=chunk[0])
        periodic = [is_3d_periodic(structures[i]) for i in chunk]
        if compiled is not None and compile_blocker(model, graph) is None:
            out = compiled_pass(compiled, graph, lengths)
        else:
            out = model(
                graph,
                compute_forces=True,
                compute_stress=any(periodic),
                training=False,
                backbone_call=compiled_backbone,
                periodic_sums=periodic_sums,
            )
        results.extend(split_results(model, outputs_to_host(out), graph, periodic))
    return results


def compiled_pass(
    compiled: CompiledForward, graph: AtomGraph, lengths: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """Outputs of a compiled pass over a batch of open structures (on the CPU), with the
    molecules and their formal charges found here for a model that equilibrates per molecule
    (:mod:`phicalc.molecule_charges`): a plain call's numbers."""
    model = compiled.model
    model.check_charge_state(graph)  # the checks a plain call makes, before the compiled pass
    model.species(graph.numbers)
    if model.coulomb is not None and graph.host_layout is not None:
        # one direct sum over the whole batch: no loop over structures to unroll and guard
        counts = [n for n, _ in graph.host_layout]
        graph = replace(graph, coulomb_pairs=intra_structure_pairs(counts))
    if model.config.equilibration_scope != "molecule":
        return compiled(graph)
    graph, rule = with_molecules(graph, lengths)
    out, _, _ = run_at_formal_charges(compiled, graph, rule)
    return out


def outputs_to_host(out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Every output of a forward pass as a float64 NumPy array of the same shape.

    The outputs are packed into one tensor on their device and copied to the host at once:
    on a GPU that is one transfer and one wait instead of one per output."""
    if not out:
        return {}
    values = [v.detach() for v in out.values()]
    packed = torch.cat([v.reshape(-1).to(torch.float64) for v in values]).cpu().numpy()
    arrays, start = {}, 0
    for name, value in zip(out, values):
        arrays[name] = packed[start : start + value.numel()].reshape(tuple(value.shape))
        start += value.numel()
    return arrays


def split_results(
    model: Potential, arrays: dict[str, np.ndarray], graph: AtomGraph, periodic: list[bool]
) -> list[dict[str, Any]]:
    """Cut a forward pass's outputs, on the host (:func:`outputs_to_host`; per-atom rows,
    per-structure entries), into one dict per structure with the calculator's keys and units
    (``stress`` where ``periodic[g]``)."""
    if graph.host_layout is not None:
        counts = np.array([n for n, _ in graph.host_layout], dtype=np.int64)
    else:
        counts = graph.n_atoms_per_graph.cpu().numpy()
    bounds = np.concatenate([[0], np.cumsum(counts)])
    scalars = ["phi_energy", "coulomb_energy", "charge_state_energy"]
    if model.has_charges:
        scalars.insert(0, "electrostatic_energy")
    split = []
    for g in range(graph.n_graphs):
        atoms_slice = slice(int(bounds[g]), int(bounds[g + 1]))
        energy = float(arrays["energy"][g])
        result: dict[str, Any] = {
            "energy": energy,
            "free_energy": energy,
            "energies": arrays["energies"][atoms_slice].copy(),
            "forces": arrays["forces"][atoms_slice].copy(),
        }
        if periodic[g]:
            result["stress"] = full_3x3_to_voigt_6_stress(arrays["stress"][g])
        if "charges" in arrays:
            result["charges"] = arrays["charges"][atoms_slice].copy()
            result["dipole"] = arrays["dipole"][g].copy()
        if "potentials" in arrays:
            result["potentials"] = arrays["potentials"][atoms_slice].copy()
        for name in scalars:
            if name in arrays:
                result[name] = float(arrays[name][g])
        split.append(result)
    return split
