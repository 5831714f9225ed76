"""Dipole references present for some structures of a batch only (periodic cells have none):
collate keeps them, the loss and the metrics use exactly those, and the training check accepts
data that mixes open and periodic structures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from phicalc.errors import ConfigError
from phicalc.graph.batch import atoms_to_graph, collate
from phicalc.train.config import LossSection
from phicalc.train.loss import WeightedLoss
from phicalc.train.metrics import MetricAccumulator
from phicalc.train.preparation import check_targets


def _labelled(name: str, dipole: list[float], periodic: bool = False):
    atoms = molecule(name)
    if periodic:
        atoms.cell = [8.0, 8.0, 8.0]
        atoms.pbc = True
        atoms.center()
    atoms.calc = SinglePointCalculator(
        atoms, energy=-1.0, forces=np.zeros((len(atoms), 3)), dipole=np.array(dipole)
    )
    return atoms_to_graph(atoms, 3.0, with_targets=True)


def _graphs():
    water = _labelled("H2O", [0.1, 0.2, 0.3])
    box = _labelled("H2O", [5.0, 5.0, 5.0], periodic=True)  # a cell's dipole: never a target
    ammonia = _labelled("NH3", [-0.2, 0.0, 0.4])
    return water, box, ammonia


def _outputs(batch) -> dict[str, torch.Tensor]:
    dipole = torch.tensor([[0.0, 0.0, 0.0], [9.0, 9.0, 9.0], [0.0, 0.0, 0.0]])
    return {"energy": torch.full((batch.n_graphs,), -1.0), "dipole": dipole[: batch.n_graphs]}


def test_collate_keeps_dipoles_beside_structures_without_one():
    water, box, ammonia = _graphs()
    assert "dipole" not in box.targets
    batch = collate([water, box, ammonia])
    dipole = batch.targets["dipole"]
    assert dipole.shape == (3, 3)
    torch.testing.assert_close(dipole[0], torch.tensor([0.1, 0.2, 0.3], dtype=dipole.dtype))
    assert torch.isnan(dipole[1]).all()
    assert "dipole" not in collate([box, box]).targets


def test_loss_and_metrics_use_only_the_structures_with_a_dipole():
    water, box, ammonia = _graphs()
    loss = WeightedLoss(LossSection(energy_weight=0.0, forces_weight=0.0, dipole_weight=1.0))
    mixed = collate([water, box, ammonia])
    terms = loss.terms(_outputs(mixed), mixed)
    value, count = terms["dipole"]
    assert count == 6  # two structures, three components: the cell's row is left out
    assert float(value) == pytest.approx(0.1 + 0.2 + 0.3 + 0.2 + 0.0 + 0.4)
    metrics = MetricAccumulator(loss.weights)
    metrics.update(_outputs(mixed), mixed, terms)
    assert metrics.compute()["dipole_mae_eA"] == pytest.approx(1.2 / 6)
    cells = collate([box, box])  # no structure with a reference: an empty term, no error
    value, count = loss.terms(_outputs(cells), cells)["dipole"]
    assert count == 0 and float(value) == 0.0
    assert float(loss(_outputs(cells), cells)) == 0.0


def test_training_check_wants_a_dipole_in_some_structure_of_each_split():
    water, box, ammonia = _graphs()
    check_targets(
        {"dipole": 1.0}, has_charges=True, train_graphs=[water, box], val_graphs=[ammonia]
    )
    with pytest.raises(ConfigError, match="validation structures have no reference dipole"):
        check_targets({"dipole": 1.0}, has_charges=True, train_graphs=[water], val_graphs=[box])
    with pytest.raises(ConfigError, match="have no reference forces"):
        check_targets(
            {"forces": 1.0},
            has_charges=True,
            train_graphs=[water],
            val_graphs=[atoms_to_graph(molecule("H2O"), 3.0, with_targets=True)],
        )
