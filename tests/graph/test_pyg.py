"""AtomGraph ⇄ PyTorch Geometric: round trips keep everything, PyG batches give phicalc's energies."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

pytest.importorskip("torch_geometric")

from torch_geometric.data import Batch, Data  # noqa: E402

from phicalc.build import build_model  # noqa: E402
from phicalc.graph import atoms_list_to_graph, atoms_to_graph  # noqa: E402
from phicalc.graph.pyg import from_pyg, to_pyg  # noqa: E402
from phicalc.testing import TINY_PAINN, small_periodic_cell  # noqa: E402

CUTOFF = 4.0


def labelled(atoms, seed: int, charge: float = 0.0):
    rng = np.random.default_rng(seed)
    atoms.info["charge"] = charge
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=float(rng.normal()),
        forces=rng.normal(size=(len(atoms), 3)),
        charges=rng.normal(size=len(atoms)),
        dipole=rng.normal(size=3),
        stress=rng.normal(size=6),
    )
    return atoms


def edge_set(graph) -> set[tuple[int, int, tuple[int, ...]]]:
    i, j = graph.edge_index.tolist()
    return {(a, b, tuple(s)) for a, b, s in zip(i, j, graph.unit_shifts.tolist())}


def assert_same_graph(a, b) -> None:
    assert a.n_graphs == b.n_graphs
    for name in ("positions", "numbers", "cell", "pbc", "batch", "total_charge"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert edge_set(a) == edge_set(b)
    assert set(a.targets) == set(b.targets)
    for key in a.targets:  # NaN: a dipole row of a structure without one (a periodic cell)
        torch.testing.assert_close(
            a.targets[key], b.targets[key], rtol=0, atol=0, equal_nan=True, msg=key
        )


def test_round_trip_one_periodic_structure():
    graph = atoms_to_graph(
        labelled(small_periodic_cell(), 0, charge=1.0), CUTOFF, with_targets=True
    )
    data = to_pyg(graph)
    assert isinstance(data, Data) and not isinstance(data, Batch)
    assert data.force.shape == (4, 3) and data.energy.shape == (1,) and data.z.dtype == torch.int64
    assert_same_graph(from_pyg(data, CUTOFF), graph)


def test_round_trip_batch_keeps_structures():
    structures = [
        labelled(molecule("H2O"), 1, charge=-1.0),
        labelled(small_periodic_cell(2), 2),
        labelled(molecule("CH4"), 3),
    ]
    graph = atoms_list_to_graph(structures, CUTOFF, with_targets=True)
    data = to_pyg(graph)
    assert isinstance(data, Batch) and data.num_graphs == 3
    assert edge_set(graph) == {
        (a, b, tuple(s)) for a, b, s in zip(*data.edge_index.tolist(), data.unit_shifts.tolist())
    }
    back = from_pyg(data, CUTOFF)
    assert_same_graph(back, graph)
    assert back.n_atoms_per_graph.tolist() == [3, 4, 5]
    dipole = back.targets["dipole"]  # the periodic cell has none: a NaN row, the others kept
    assert torch.isnan(dipole[1]).all() and not torch.isnan(dipole[[0, 2]]).any()


def test_pyg_batch_gives_the_energies_of_phicalc_collate():
    structures = [molecule(name) for name in ("H2O", "CH4", "HCOOH")]
    batch = Batch.from_data_list(
        [
            Data(
                pos=torch.tensor(a.positions, dtype=torch.float64),
                z=torch.tensor(a.numbers, dtype=torch.int64),
            )
            for a in structures
        ]
    )
    model = build_model(**TINY_PAINN)
    reference = model(atoms_list_to_graph(structures, CUTOFF), compute_forces=False)["energy"]
    energy = model(from_pyg(batch, CUTOFF), compute_forces=False)["energy"]
    assert energy.shape == (3,)
    torch.testing.assert_close(energy, reference, rtol=0, atol=1e-10)


def test_qm9_style_y_and_md17_style_fields():
    atoms = molecule("CH4")
    pos = torch.tensor(atoms.positions, dtype=torch.float32)
    z = torch.tensor(atoms.numbers)
    y = torch.arange(19, dtype=torch.float32).reshape(1, 19)
    qm9 = Batch.from_data_list([Data(pos=pos, z=z, y=y), Data(pos=pos + 1, z=z, y=y + 100)])
    assert "energy" not in (from_pyg(qm9, CUTOFF).targets or {})
    graph = from_pyg(qm9, CUTOFF, y_column=7)
    assert graph.positions.dtype == torch.float32
    assert graph.targets["energy"].tolist() == [7.0, 107.0]
    md17 = Data(pos=pos, z=z, energy=torch.tensor([-1.5]), force=torch.ones(5, 3))
    graph = from_pyg(md17, CUTOFF, dtype=torch.float64)
    assert graph.targets["energy"].tolist() == [-1.5] and graph.targets["forces"].shape == (5, 3)
    with pytest.raises(ValueError, match="force"):
        from_pyg(Data(pos=pos, z=z, force=torch.ones(4, 3)), CUTOFF)


def test_missing_torch_geometric_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_geometric", None)
    graph = atoms_to_graph(molecule("H2O"), CUTOFF)
    with pytest.raises(ImportError, match=r"phicalc\[pyg\]"):
        to_pyg(graph)
