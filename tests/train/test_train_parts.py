"""Schedule, EMA, checkpoint files, RNG capture and dataset statistics."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from phicalc.errors import ConfigError, ModelFileError
from phicalc.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from phicalc.train.config import OptimSection
from phicalc.train.ema import ExponentialMovingAverage
from phicalc.train.schedule import LRSchedule


def _optimizer():
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1.0)


def test_cosine_with_warmup_endpoints():
    config = OptimSection(lr=1e-3, min_lr=1e-7, warmup_epochs=3, warmup_start=0.1)
    optimizer = _optimizer()
    schedule = LRSchedule(optimizer, config, steps_per_epoch=10, epochs=13)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    lrs = []
    for _ in range(130):
        schedule.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[14] == pytest.approx(1e-4 + 0.9e-3 * 15 / 30)
    assert lrs[29] == pytest.approx(1e-3)  # end of warm-up: the peak
    assert lrs[79] == pytest.approx(1e-7 + 0.5 * (1e-3 - 1e-7))  # half-way through the cosine
    assert lrs[-1] == pytest.approx(1e-7)
    assert all(a >= b for a, b in zip(lrs[29:], lrs[30:]))


def test_plateau_decays_after_patience_and_state_round_trips():
    config = OptimSection(lr=1.0, min_lr=0.3, scheduler="plateau", factor=0.5, patience=2)
    optimizer = _optimizer()
    schedule = LRSchedule(optimizer, config, steps_per_epoch=1, epochs=10)
    for metric in (1.0, 1.0, 1.0):
        schedule.step_epoch(metric)
    assert schedule.lr == 1.0
    schedule.step_epoch(1.0)
    assert schedule.lr == 0.5
    for _ in range(6):
        schedule.step_epoch(2.0)
    assert schedule.lr == 0.3  # floor
    copy = LRSchedule(_optimizer(), config, steps_per_epoch=1, epochs=10)
    copy.load_state_dict(schedule.state_dict())
    assert copy.lr == schedule.lr and copy.state_dict() == schedule.state_dict()


def test_ema_follows_weights_with_warmup_decay():
    model = torch.nn.Linear(2, 1)
    ema = ExponentialMovingAverage(model, 0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)  # n = 0: d = min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.model.weight, start + 0.9)
    assert not ema.model.weight.requires_grad
    plain = ExponentialMovingAverage(model, None)
    assert plain.model is model
    restored = ExponentialMovingAverage(torch.nn.Linear(2, 1), 0.9)
    restored.load_state_dict(ema.state_dict())
    assert torch.equal(restored.model.weight, ema.model.weight) and restored.num_updates == 1


def test_checkpoint_is_atomic_plain_and_safe(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"epoch": 3, "model": {"w": torch.ones(2)}, "best": {"metric": math.inf}})
    blob = load_checkpoint(path)
    assert blob["epoch"] == 3 and blob["best"]["metric"] == math.inf
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left behind
    (tmp_path / "foreign.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a phicalc training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_round_trip_through_a_safe_checkpoint(tmp_path):
    np.random.normal()  # leaves a cached gaussian in numpy's legacy state
    random.gauss(0, 1)
    save_checkpoint(tmp_path / "rng.pt", {"rng": capture_rng_state()})
    expected = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


def test_statistics_recover_linear_atomic_energies(labelled_molecules):
    from phicalc.graph.batch import atoms_to_graph
    from phicalc.train.statistics import energy_scale, fit_atomic_energies, per_atom_residuals

    e0 = {"H": -13.6, "C": -1029.0, "N": -1485.0, "O": -2041.0}
    graphs = []
    for k, atoms in enumerate(labelled_molecules(12)):
        graph = atoms_to_graph(atoms, 3.5, with_targets=True)
        energy = sum(e0[s] for s in atoms.get_chemical_symbols()) + 0.01 * (k % 3 - 1)
        graph.targets["energy"] = torch.tensor([energy], dtype=torch.float64)
        graphs.append(graph)
    fitted = fit_atomic_energies(graphs, ["H", "C", "N", "O", "F"])
    for symbol, value in e0.items():
        assert fitted[symbol] == pytest.approx(value, abs=0.02)
    assert fitted["F"] == 0.0  # absent from the data
    residuals = per_atom_residuals(graphs, fitted)
    assert energy_scale(graphs, fitted, "residual_std") == pytest.approx(residuals.std())
    assert energy_scale(graphs, fitted, "residual_rms") == pytest.approx(
        np.sqrt(np.mean(residuals**2))
    )
    forces = torch.cat([g.targets["forces"] for g in graphs])
    assert energy_scale(graphs, fitted, "force_rms") == pytest.approx(
        float(forces.pow(2).mean().sqrt())
    )


def test_charge_potential_is_the_slope_of_the_residual_energy_on_the_total_charge(
    labelled_molecules,
):
    from phicalc.graph.batch import atoms_to_graph
    from phicalc.train.statistics import fit_charge_potential

    e0 = {"H": -13.6, "C": -1029.0, "N": -1485.0, "O": -2041.0}
    graphs = []
    for k, atoms in enumerate(labelled_molecules(9)):
        charge = k % 3 - 1  # −1, 0, +1
        graph = atoms_to_graph(atoms, 3.5, total_charge=charge, with_targets=True)
        energy = sum(e0[s] for s in atoms.get_chemical_symbols()) + 7.5 * charge
        graph.targets["energy"] = torch.tensor([energy], dtype=torch.float64)
        graphs.append(graph)
    assert fit_charge_potential(graphs, e0) == pytest.approx(7.5, abs=1e-9)
    neutral = [g for g in graphs if float(g.total_charge) == 0]
    assert fit_charge_potential(neutral, e0) == 0.0


def test_trainer_loads_the_modules_it_saves_with_at_import():
    """A run must not import phicalc modules mid-training: editing the checkout under a running
    job then mixes old and new code (a lazily imported serialization once crashed two runs at
    their first epoch end)."""
    import subprocess
    import sys

    code = (
        "import sys, phicalc.train.trainer; "
        "print(' '.join(m for m in ('phicalc.serialization', 'phicalc.potential', "
        "'phicalc.data.splits', 'phicalc.data') if m not in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_device_resolver_refuses_cuda_without_cuda(monkeypatch):
    from phicalc.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match=f"device='{name}' but CUDA is not available"):
            resolve_device(name)
    with pytest.raises(ConfigError, match="device='tpu' is not a torch device"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda", 3)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
