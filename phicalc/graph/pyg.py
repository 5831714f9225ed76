"""Conversion between :class:`~phicalc.graph.batch.AtomGraph` and PyTorch Geometric data.

PyG field names follow its QM9/MD17 datasets; per structure a ``Data`` holds

* ``pos`` [n_atoms, 3] Å, ``z`` [n_atoms] atomic numbers (int64);
* ``cell`` [1, 3, 3] lattice rows, Å, and ``pbc`` [1, 3] bool (optional; absent = open);
* ``charge`` [1] total charge, e (optional; absent = 0);
* targets (optional): ``energy`` [1] eV (or QM9's ``y``), ``force`` [n_atoms, 3] eV/Å (or
  ``forces``), ``charges`` [n_atoms] e, ``dipole`` [1, 3] e·Å (NaN for a structure without
  one, a periodic cell batched with molecules), ``stress`` [1, 3, 3] eV/Å³;
* ``edge_index`` [2, n_edges] and ``unit_shifts`` [n_edges, 3]: written by :func:`to_pyg`,
  ignored by :func:`from_pyg`.

A PyG ``Batch`` concatenates these along the first dimension, so it maps onto one AtomGraph.
:func:`from_pyg` always rebuilds the neighbour list with phicalc's own builder
(:func:`~phicalc.graph.batch.atoms_to_graph`), whatever graph the PyG data carries, so models see
the same edges as from ASE structures. Units are not converted: PyG's MD17 stores kcal/mol and
kcal/mol/Å, which must be scaled to eV (``ase.units.kcal / ase.units.mol``) first.

torch-geometric is optional: ``pip install 'phicalc[pyg]'``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from ase import Atoms

from phicalc.graph.batch import AtomGraph, atoms_to_graph, collate

if TYPE_CHECKING:
    from torch_geometric.data import Batch, Data

#: AtomGraph target name → PyG field name.
_TARGET_FIELDS = {
    "energy": "energy",
    "forces": "force",
    "charges": "charges",
    "dipole": "dipole",
    "stress": "stress",
}
_PER_ATOM = ("forces", "charges")


def _torch_geometric_data():
    try:
        from torch_geometric import data
    except ImportError as error:
        raise ImportError(
            "PyG conversion needs torch-geometric: pip install 'phicalc[pyg]'"
        ) from error
    return data


def to_pyg(graph: AtomGraph) -> Data | Batch:
    """PyG data of a batch: a ``Data`` for one structure, a ``Batch`` of them for several.

    Args:
        graph: the batch (any device and dtype; tensors are kept as they are).

    Returns:
        ``torch_geometric.data.Data`` (``graph.n_graphs == 1``) or ``torch_geometric.data.Batch``
        with the fields of the module docstring, including the graph's edges.

    Raises:
        ImportError: torch-geometric is not installed.
    """
    pyg = _torch_geometric_data()
    atom_offsets = torch.cumsum(graph.n_atoms_per_graph, 0) - graph.n_atoms_per_graph
    edge_graph = graph.batch[graph.edge_index[0]]
    targets = graph.targets or {}
    data_list = []
    for g in range(graph.n_graphs):
        atoms = graph.batch == g
        edges = edge_graph == g
        fields = {
            "pos": graph.positions[atoms],
            "z": graph.numbers[atoms],
            "cell": graph.cell[g : g + 1],
            "pbc": graph.pbc[g : g + 1],
            "charge": graph.total_charge[g : g + 1],
            "edge_index": graph.edge_index[:, edges] - atom_offsets[g],
            "unit_shifts": graph.unit_shifts[edges],
        }
        for key, value in targets.items():
            if key in _TARGET_FIELDS:
                fields[_TARGET_FIELDS[key]] = value[atoms] if key in _PER_ATOM else value[g : g + 1]
        data_list.append(pyg.Data(**fields))
    if graph.n_graphs == 1:
        return data_list[0]
    return pyg.Batch.from_data_list(data_list)


def from_pyg(
    data: Data | Batch,
    cutoff: float,
    *,
    dtype: torch.dtype | None = None,
    y_column: int | None = None,
) -> AtomGraph:
    """One AtomGraph from a PyG ``Data`` (one structure) or ``Batch`` (several).

    Args:
        data: PyG data with ``pos`` and ``z``, optionally ``cell``, ``pbc``, ``charge`` and the
            targets of the module docstring; a ``Batch``'s ``batch`` vector gives the structures
            (atoms of one structure must be contiguous, as PyG batches them).
        cutoff: neighbour-list radius in Å (the model's cutoff).
        dtype: floating dtype of the graph (default: that of ``data.pos``).
        y_column: which column of a 2-D ``y`` (QM9: [n_graphs, 19]) is the energy in eV; a
            ``y`` with one value per structure is used as the energy without it. ``energy``, when
            present, wins over ``y``.

    Returns:
        An AtomGraph on ``data.pos``'s device, with ``targets`` when the data carries any.

    Raises:
        ImportError: torch-geometric is not installed.
        ValueError: atoms of a structure are not contiguous, or a target has the wrong size.
    """
    _torch_geometric_data()
    positions = data.pos
    dtype = positions.dtype if dtype is None else dtype
    n_atoms = int(positions.shape[0])
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = torch.zeros(n_atoms, dtype=torch.int64, device=positions.device)
        n_graphs = 1
    else:
        n_graphs = int(getattr(data, "num_graphs", None) or int(batch.max()) + 1)
    if n_atoms and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("the atoms of each structure must be contiguous in data.batch")
    counts = torch.bincount(batch, minlength=n_graphs).tolist()
    cell = _field(data, "cell")
    cell = torch.zeros(n_graphs, 3, 3) if cell is None else cell.reshape(n_graphs, 3, 3)
    pbc = _field(data, "pbc")
    pbc = torch.zeros(n_graphs, 3, dtype=torch.bool) if pbc is None else pbc.reshape(n_graphs, 3)
    charge = _field(data, "charge")
    charge = torch.zeros(n_graphs) if charge is None else charge.reshape(n_graphs)
    targets = _targets(data, n_graphs, n_atoms, y_column)
    graphs = []
    start = 0
    for g, count in enumerate(counts):
        atoms = Atoms(
            numbers=data.z[start : start + count].cpu().numpy(),
            positions=positions[start : start + count].detach().cpu().double().numpy(),
            cell=cell[g].detach().cpu().double().numpy(),
            pbc=pbc[g].cpu().numpy().astype(bool),
        )
        graph = atoms_to_graph(
            atoms, cutoff, total_charge=float(charge[g]), dtype=dtype, device=positions.device
        )
        if targets:
            graph.targets = {
                key: (value[start : start + count] if key in _PER_ATOM else value[g : g + 1]).to(
                    device=positions.device, dtype=dtype
                )
                for key, value in targets.items()
            }
        graphs.append(graph)
        start += count
    return collate(graphs)


def _field(data: Any, name: str) -> torch.Tensor | None:
    value = getattr(data, name, None)
    return None if value is None else torch.as_tensor(value)


def _targets(
    data: Any, n_graphs: int, n_atoms: int, y_column: int | None
) -> dict[str, torch.Tensor]:
    """Reference targets of PyG data as AtomGraph ``targets`` (batched shapes)."""
    found: dict[str, torch.Tensor] = {}
    for key, name in _TARGET_FIELDS.items():
        value = _field(data, name)
        if value is None and key == "forces":
            value = _field(data, "forces")
        if value is None and key == "energy":
            value = _field(data, "y")
            if value is not None and y_column is not None:
                value = value.reshape(n_graphs, -1)[:, y_column]
            elif value is not None and value.numel() != n_graphs:
                value = None  # a multi-target y (QM9) without y_column: no energy
        if value is None:
            continue
        rows = n_atoms if key in _PER_ATOM else n_graphs
        shape = {"forces": (3,), "dipole": (3,), "stress": (3, 3)}.get(key, ())
        if value.numel() != rows * math.prod(shape):
            raise ValueError(f"data.{name} has {value.numel()} values, expected {rows} × {shape}")
        found[key] = value.reshape(rows, *shape)
    return found
