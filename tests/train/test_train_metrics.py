"""Loss terms, metric accumulation and batch planning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phicalc.graph.batch import atoms_to_graph, collate
from phicalc.train.config import LossSection
from phicalc.train.evaluation import evaluate
from phicalc.train.loss import WeightedLoss, penalty
from phicalc.train.metrics import MetricAccumulator, format_metrics_table, mae, pearson_r, rmse


def test_penalties():
    d = torch.tensor([-2.0, -0.005, 0.0, 0.5])
    assert torch.equal(penalty(d, "l1"), d.abs())
    assert torch.equal(penalty(d, "l2"), d * d)
    expected = torch.tensor([0.1 * (2.0 - 0.05), 0.5 * 0.005**2, 0.0, 0.1 * (0.5 - 0.05)])
    assert torch.allclose(penalty(d, "huber", 0.1), expected)


def _batch_and_outputs(labelled_molecules, n=6, seed=0):
    graphs = [atoms_to_graph(a, 3.5, with_targets=True) for a in labelled_molecules(n, seed=seed)]
    batch = collate(graphs)
    g = torch.Generator().manual_seed(1)
    t = batch.targets
    outputs = {
        "energy": t["energy"] + torch.randn(batch.n_graphs, generator=g, dtype=torch.float64),
        "forces": (
            t["forces"] + torch.randn(t["forces"].shape, generator=g, dtype=torch.float64)
        ).float(),
        "charges": t["charges"]
        + 0.1 * torch.randn(batch.n_atoms, generator=g, dtype=torch.float64),
        "dipole": t["dipole"] + 0.1,
    }
    return graphs, batch, outputs


def test_weighted_loss_is_the_weighted_mean_of_penalties(labelled_molecules):
    _, batch, outputs = _batch_and_outputs(labelled_molecules)
    loss = WeightedLoss(LossSection(energy_weight=2.0, forces_weight=0.5, charges_weight=0.1))
    counts = batch.n_atoms_per_graph.double()
    energy = ((outputs["energy"] - batch.targets["energy"]).abs() / counts).mean()
    forces = (outputs["forces"].double() - batch.targets["forces"]).abs().mean()
    charges = (outputs["charges"] - batch.targets["charges"]).abs().mean()
    expected = 2.0 * energy + 0.5 * forces + 0.1 * charges
    assert float(loss(outputs, batch)) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="dipole"):
        WeightedLoss(LossSection(dipole_weight=1.0)).terms({"energy": outputs["energy"]}, batch)


def test_accumulator_matches_direct_metrics_and_is_batch_size_independent(labelled_molecules):
    graphs, batch, outputs = _batch_and_outputs(labelled_molecules, 8)
    whole = MetricAccumulator({"energy": 1.0})
    loss = WeightedLoss(LossSection(forces_weight=0.0))
    whole.update(outputs, batch, loss.terms(outputs, batch))
    m = whole.compute()
    e_pred, e_ref = outputs["energy"], batch.targets["energy"]
    assert m["energy_mae_meV"] == pytest.approx(1000 * mae(e_pred, e_ref))
    assert m["energy_rmse_meV"] == pytest.approx(1000 * rmse(e_pred, e_ref))
    counts = batch.n_atoms_per_graph.double()
    assert m["energy_mae_per_atom_meV"] == pytest.approx(
        1000 * mae(e_pred / counts, e_ref / counts)
    )
    assert m["forces_mae_eV_A"] == pytest.approx(mae(outputs["forces"], batch.targets["forces"]))
    assert m["charges_pearson_r"] == pytest.approx(
        pearson_r(outputs["charges"], batch.targets["charges"])
    )
    assert m["dipole_mae_eA"] == pytest.approx(0.1)
    assert m["loss"] == pytest.approx(m["energy_mae_per_atom_meV"] / 1000)
    # the same numbers from per-structure pieces
    pieces = MetricAccumulator({"energy": 1.0})
    start = 0
    for k, g in enumerate(graphs):
        n = g.n_atoms
        part = {
            "energy": outputs["energy"][k : k + 1],
            "forces": outputs["forces"][start : start + n],
            "charges": outputs["charges"][start : start + n],
            "dipole": outputs["dipole"][k : k + 1],
        }
        pieces.update(part, g, loss.terms(part, g))
        start += n
    for key, value in pieces.compute().items():
        assert value == pytest.approx(m[key], rel=1e-9), key
    assert "energy MAE per atom" in format_metrics_table(m)


def test_pearson_r():
    assert pearson_r([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson_r([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(pearson_r([1, 1, 1], [1, 2, 3]))


def test_evaluate_reports_the_metrics_of_the_targets_present(labelled_molecules):
    from phicalc.build import build_model

    records = labelled_molecules(4, charges=False)
    graphs = [atoms_to_graph(a, 3.5, with_targets=True) for a in records]
    model = build_model(
        "schnet",
        phi=False,
        elements=["H", "C", "N", "O"],
        cutoff=3.5,
        seed=0,
        num_features=8,
        num_filters=8,
        num_blocks=1,
        num_radial=4,
    )
    metrics = evaluate(model, graphs, batch_size=3)
    assert (
        set(metrics) >= {"energy_mae_meV", "forces_mae_eV_A"} and "charges_pearson_r" not in metrics
    )
    assert all(np.isfinite(v) for v in metrics.values())
