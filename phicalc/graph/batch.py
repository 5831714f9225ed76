"""AtomGraph: one or several structures with their neighbour list, ready for a Potential.

Every consumer (calculator, trainer, MD, benchmarks, tests) builds graphs with
:func:`atoms_to_graph` and batches them with :func:`collate`, so there is one graph builder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from ase import Atoms

from phicalc.errors import BadGeometryError
from phicalc.graph.neighbors import build_neighbor_list, edge_vectors
from phicalc.graph.verlet import NeighborCache, cached_neighbor_list


@dataclass
class AtomGraph:
    """A batch of structures.

    Conventions (every model, loader and test relies on them):

    * The cell is stored as ASE rows: ``cell[g, a]`` is lattice vector *a* of structure *g*, Å.
    * ``edge_index[0]`` is atom *i* (the sender), ``edge_index[1]`` is atom *j* (the receiver);
      messages are summed at the receiver.
    * The edge vector is ``positions[j] - positions[i] + unit_shifts @ cell[batch[i]]`` (Å); it
      is always recomputed from positions and cell so that forces and stress flow through them.
    * The neighbour list is full (both i→j and j→i) and never truncated; an atom's own periodic
      images are edges, its zero-shift self pair is not.

    The output names and units of a model are listed in :meth:`phicalc.potential.Potential.forward`.

    Attributes:
        positions: [n_atoms, 3] Å.
        numbers: [n_atoms] atomic numbers, int64.
        cell: [n_graphs, 3, 3] lattice rows, Å (zeros for open structures).
        pbc: [n_graphs, 3] bool.
        batch: [n_atoms] structure index of each atom, int64.
        edge_index: [2, n_edges] (i, j), int64, indices into the batched atoms.
        unit_shifts: [n_edges, 3] int64 lattice shifts.
        total_charge: [n_graphs] total charge Q in e.
        n_graphs: number of structures.
        multiplicity: [n_graphs] spin multiplicity 2S+1 (1 = singlet; default all ones), the
            value of ``atoms.info["spin"]``.
        targets: optional reference data for training (``energy`` [n_graphs], ``forces``
            [n_atoms, 3], ``charges`` [n_atoms], ``dipole`` [n_graphs, 3], ``stress``
            [n_graphs, 3, 3]); a missing reference is absent from the dict.
        host_layout: per structure (atom count, periodic flags), kept on the host so that
            per-structure choices (which Coulomb method) never read device memory; filled from
            ``batch`` and ``pbc`` when the graph is made on the CPU, carried along by :meth:`to`.
        molecules: optional [n_atoms] molecule index and ``molecule_charges`` [n_groups] their
            formal charges (e), given by a caller that needs fixed shapes (graph replay) to a
            model that equilibrates charges per molecule; ``None``: the model finds them.
        coulomb_pairs: optional [2, n_pairs] every pair (i < j) of atoms within a structure,
            all structures open, for a caller that compiles a batch
            (:func:`~phicalc.nn.electrostatics.coulomb.intra_structure_pairs`): the direct
            Coulomb sum then takes the whole batch at once instead of a loop over its
            structures; ``None``: the loop.
    """

    positions: torch.Tensor
    numbers: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    batch: torch.Tensor
    edge_index: torch.Tensor
    unit_shifts: torch.Tensor
    total_charge: torch.Tensor
    n_graphs: int
    targets: dict[str, torch.Tensor] | None = None
    multiplicity: torch.Tensor | None = None
    host_layout: tuple[tuple[int, tuple[bool, bool, bool]], ...] | None = None
    molecules: torch.Tensor | None = None
    molecule_charges: torch.Tensor | None = None
    coulomb_pairs: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.multiplicity is None:
            self.multiplicity = torch.ones_like(self.total_charge)
        if self.host_layout is None and self.batch.device.type == "cpu":
            counts = torch.bincount(self.batch, minlength=self.n_graphs).tolist()
            flags = self.pbc.tolist()
            self.host_layout = tuple(
                (int(n), (bool(p[0]), bool(p[1]), bool(p[2]))) for n, p in zip(counts, flags)
            )

    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])

    @property
    def n_atoms_per_graph(self) -> torch.Tensor:
        """[n_graphs] number of atoms in each structure (int64, on the batch's device; a
        scatter, not ``bincount``, which reads its maximum back to the host on CUDA)."""
        ones = torch.ones_like(self.batch)
        return ones.new_zeros(self.n_graphs).index_add(0, self.batch, ones)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> AtomGraph:
        """Copy to a device; floating tensors (positions, cell, charge, targets) cast to ``dtype``."""

        def move(t: torch.Tensor) -> torch.Tensor:
            if dtype is not None and t.is_floating_point():
                return t.to(device=device, dtype=dtype)
            return t.to(device=device)

        moved = {
            f.name: move(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("n_graphs", "targets", "host_layout")
            and getattr(self, f.name) is not None
        }
        targets = None if self.targets is None else {k: move(v) for k, v in self.targets.items()}
        return replace(self, **moved, targets=targets)


#: Largest span of the positions along x, y or z (Å). Beyond it the neighbour list's cell grid
#: overflows (vesin dies of SIGFPE near 1e6 Å); no structure a potential is meant for is that big.
MAX_EXTENT = 1.0e5


def check_geometry(atoms: Atoms) -> None:
    """Raise :class:`BadGeometryError` for NaN/inf positions, positions spanning more than
    :data:`MAX_EXTENT` Å, or a singular periodic cell."""
    positions = atoms.get_positions()
    if not np.all(np.isfinite(positions)):
        bad = np.where(~np.isfinite(positions).all(axis=1))[0]
        raise BadGeometryError(f"positions of atoms {bad[:10].tolist()} are NaN or infinite")
    if len(positions):
        span = positions.max(axis=0) - positions.min(axis=0)
        if float(span.max()) > MAX_EXTENT:
            raise BadGeometryError(
                f"the positions span {float(span.max()):.3g} Å, more than {MAX_EXTENT:g} Å: "
                "atoms have flown apart or coordinates are not in Å"
            )
    pbc = atoms.get_pbc()
    if pbc.any():
        cell = atoms.cell.array
        if not np.all(np.isfinite(cell)):
            raise BadGeometryError("the cell contains NaN or infinite values")
        if atoms.cell.rank < int(pbc.sum()) or (pbc.all() and abs(np.linalg.det(cell)) < 1e-6):
            raise BadGeometryError(
                f"periodic along {pbc.tolist()} but the cell {cell.tolist()} is singular"
            )


def check_min_distance(
    graph: AtomGraph, limit: float | None, *, first_structure: int = 0
) -> torch.Tensor | None:
    """Edge lengths [n_edges] (Å, detached) of ``graph``, after checking them against ``limit``.

    Raises:
        BadGeometryError: two atoms closer than ``limit`` Å, naming the structure (numbered
            from ``first_structure``), the atoms within it and their elements. ``None`` skips
            the check.
    """
    if graph.edge_index.shape[1] == 0:
        return None
    if graph.host_layout is not None and not any(any(flags) for _, flags in graph.host_layout):
        i, j = graph.edge_index  # open structures: the shift term would add exact zeros
        vectors = graph.positions[j] - graph.positions[i]
    else:
        vectors = edge_vectors(
            graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
        )
    lengths = torch.linalg.norm(vectors, dim=-1).detach()
    if limit is None:
        return lengths
    shortest = int(torch.argmin(lengths))
    if float(lengths[shortest]) < limit:
        from ase.data import chemical_symbols

        i, j = (int(x) for x in graph.edge_index[:, shortest])
        g = int(graph.batch[i])
        first = int(torch.nonzero(graph.batch == g)[0])
        symbols = [chemical_symbols[int(graph.numbers[k])] for k in (i, j)]
        where = (
            f"structure {first_structure + g}: " if graph.n_graphs > 1 or first_structure else ""
        )
        raise BadGeometryError(
            f"{where}atoms {i - first} ({symbols[0]}) and {j - first} ({symbols[1]}) are "
            f"{float(lengths[shortest]):.3f} Å apart, closer than min_distance={limit} Å "
            "(pass min_distance=None to skip this check)"
        )
    return lengths


def atoms_to_graph(
    atoms: Atoms,
    cutoff: float,
    *,
    total_charge: float | None = None,
    multiplicity: float | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    with_targets: bool = False,
    neighbor_cache: NeighborCache | None = None,
) -> AtomGraph:
    """Build the graph of one ASE structure.

    Args:
        atoms: the structure.
        cutoff: neighbour-list radius in Å (the model's cutoff).
        total_charge: total charge Q in e; default ``atoms.info.get("charge", 0)``.
        multiplicity: spin multiplicity 2S+1; default ``atoms.info.get("spin", 1)``.
        dtype: floating dtype of positions and cell.
        device: where the tensors live.
        with_targets: attach the reference energy/forces/charges/dipole/stress found on
            ``atoms.calc`` (a SinglePointCalculator, as read from extxyz) to ``targets``.
        neighbor_cache: the caller's Verlet list (:mod:`phicalc.graph.verlet`): the same edge
            set as a fresh list, in a canonical order, from a list kept while atoms move less
            than half its skin; ``None`` (default): a fresh list.
    """
    check_geometry(atoms)
    positions = torch.as_tensor(atoms.get_positions(), dtype=dtype)
    cell = torch.as_tensor(atoms.cell.array, dtype=dtype)
    pbc = torch.as_tensor(atoms.get_pbc(), dtype=torch.bool)
    numbers = torch.as_tensor(atoms.get_atomic_numbers(), dtype=torch.int64)
    if neighbor_cache is None:
        edge_index, unit_shifts = build_neighbor_list(positions, cell, pbc, cutoff)
    else:
        edge_index, unit_shifts = cached_neighbor_list(
            neighbor_cache, positions, cell, pbc, cutoff, numbers
        )
    total_charge, multiplicity = charge_and_multiplicity(
        atoms, charge=total_charge, multiplicity=multiplicity
    )
    n = len(atoms)
    graph = AtomGraph(
        positions=positions,
        numbers=numbers,
        cell=cell.unsqueeze(0),
        pbc=pbc.unsqueeze(0),
        batch=torch.zeros(n, dtype=torch.int64),
        edge_index=edge_index,
        unit_shifts=unit_shifts,
        total_charge=torch.tensor([total_charge], dtype=dtype),
        n_graphs=1,
        targets=reference_targets(atoms, dtype) if with_targets else None,
        multiplicity=torch.tensor([multiplicity], dtype=dtype),
    )
    return graph.to(device=device)


def charge_and_multiplicity(
    atoms: Atoms, *, charge: float | None = None, multiplicity: float | None = None
) -> tuple[float, float]:
    """Total charge Q (e) and spin multiplicity 2S+1 of a structure, validated.

    Given values win; otherwise ``atoms.info["charge"]`` (default 0) and ``atoms.info["spin"]``
    (default 1, a singlet).

    Raises:
        BadGeometryError: Q is not a finite number, or the multiplicity is not an integer ≥ 1.
    """
    raw_charge = atoms.info.get("charge", 0.0) if charge is None else charge
    raw_spin = atoms.info.get("spin", 1) if multiplicity is None else multiplicity
    try:
        value = float(raw_charge)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value):
        raise BadGeometryError(
            f'atoms.info["charge"] (total charge in e) must be a finite number, got {raw_charge!r}'
        )
    try:
        spin = float(raw_spin)
    except (TypeError, ValueError):
        spin = float("nan")
    if not (np.isfinite(spin) and spin >= 1 and spin == round(spin)):
        raise BadGeometryError(
            'atoms.info["spin"] is the spin multiplicity 2S+1, an integer >= 1 '
            f"(1 singlet, 2 doublet, ...), got {raw_spin!r}"
        )
    return value, spin


def reference_targets(atoms: Atoms, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Reference labels stored with a structure (energy, forces, charges, dipole, stress).

    A periodic structure gets no dipole target: the dipole of a cell depends on how its atoms
    are wrapped (it changes by Q·R and q_i·R for lattice vectors R), so it is neither a label to
    fit nor a number to score.
    """
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    targets: dict[str, torch.Tensor] = {}
    if "energy" in results:
        targets["energy"] = torch.tensor([float(results["energy"])], dtype=dtype)
    if "forces" in results:
        targets["forces"] = torch.as_tensor(np.asarray(results["forces"]), dtype=dtype)
    charges = results.get("charges", atoms.arrays.get("ref_charges"))
    if charges is not None:
        targets["charges"] = torch.as_tensor(np.asarray(charges, dtype=float), dtype=dtype)
    if "dipole" in results and not atoms.pbc.any():
        targets["dipole"] = torch.as_tensor(np.asarray(results["dipole"]), dtype=dtype).reshape(
            1, 3
        )
    if "stress" in results:
        from ase.stress import voigt_6_to_full_3x3_stress

        stress = np.asarray(results["stress"])
        full = voigt_6_to_full_3x3_stress(stress) if stress.shape == (6,) else stress
        targets["stress"] = torch.as_tensor(full, dtype=dtype).reshape(1, 3, 3)
    return targets


#: Per-structure targets that a batch may hold for some of its structures only (NaN rows for
#: the others), with their width: periodic structures have no dipole reference.
PARTIAL_TARGETS = {"dipole": 3}


def collate(graphs: Sequence[AtomGraph]) -> AtomGraph:
    """Concatenate graphs into one batch; atom indices are offset, structure indices renumbered.

    A target is kept only if every graph has it, except those of :data:`PARTIAL_TARGETS` (the
    dipole, which periodic structures lack): kept if any graph has it, NaN for those without,
    which losses and metrics skip.
    """
    if len(graphs) == 0:
        raise ValueError("collate needs at least one graph")
    offsets = np.cumsum([0] + [g.n_atoms for g in graphs[:-1]])
    graph_offsets = np.cumsum([0] + [g.n_graphs for g in graphs[:-1]])
    targets = None
    if all(g.targets is not None for g in graphs):
        common = set.intersection(*(set(g.targets) for g in graphs))
        targets = {k: torch.cat([g.targets[k] for g in graphs]) for k in sorted(common)}
        for key, width in PARTIAL_TARGETS.items():
            holders = [g.targets[key] for g in graphs if key in g.targets]
            if key in common or not holders:
                continue
            like = holders[0]
            targets[key] = torch.cat(
                [
                    g.targets.get(key, like.new_full((g.n_graphs, width), float("nan")))
                    for g in graphs
                ]
            )
    return AtomGraph(
        positions=torch.cat([g.positions for g in graphs]),
        numbers=torch.cat([g.numbers for g in graphs]),
        cell=torch.cat([g.cell for g in graphs]),
        pbc=torch.cat([g.pbc for g in graphs]),
        batch=torch.cat([g.batch + int(o) for g, o in zip(graphs, graph_offsets)]),
        edge_index=torch.cat([g.edge_index + int(o) for g, o in zip(graphs, offsets)], dim=1),
        unit_shifts=torch.cat([g.unit_shifts for g in graphs]),
        total_charge=torch.cat([g.total_charge for g in graphs]),
        multiplicity=torch.cat([g.multiplicity for g in graphs]),
        n_graphs=sum(g.n_graphs for g in graphs),
        targets=targets,
    )


def atoms_list_to_graph(
    structures: Sequence[Atoms], cutoff: float, *, dtype: torch.dtype = torch.float64, **kwargs
) -> AtomGraph:
    """Build and collate the graphs of several structures."""
    return collate([atoms_to_graph(a, cutoff, dtype=dtype, **kwargs) for a in structures])
