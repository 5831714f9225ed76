"""phicalc.md.analysis: numeric helpers and the analysis of molecular and periodic runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phicalc.md import MDConfig, analyze, run
from phicalc.md.analysis import autocorrelation, integrated_correlation_time, linear_drift


def test_linear_drift_recovers_a_known_slope():
    time_fs = np.linspace(0, 2000, 50)  # 2 ps
    energy = -10.0 + 0.004 * time_fs / 1000  # +4 meV/ps for the whole system
    assert linear_drift(time_fs, energy, n_atoms=4) == pytest.approx(1.0)
    assert linear_drift(time_fs[:1], energy[:1], n_atoms=4) is None
    assert linear_drift(time_fs, np.full(50, np.nan), n_atoms=4) is None


def test_autocorrelation_and_correlation_time():
    rng = np.random.default_rng(0)
    white = rng.normal(size=4000)
    acf = autocorrelation(white, max_lag=10)
    assert acf[0] == pytest.approx(1.0) and np.all(np.abs(acf[1:]) < 0.1)
    assert integrated_correlation_time(acf, dt=2.0) == pytest.approx(1.0, abs=0.3)
    assert np.all(autocorrelation(np.ones(10)) == 0)
    smooth = np.convolve(white, np.ones(20) / 20, mode="valid")  # correlated over ~20 samples
    assert integrated_correlation_time(autocorrelation(smooth), dt=1.0) > 5


def _md(atoms, model, out, **settings):
    from phicalc import PhiCalculator

    calc = PhiCalculator(model, device="cpu", dtype="float64")
    run(atoms, calc, out, config=MDConfig(**settings), plots=False)


def test_analyze_molecule(ethanol, tiny_model, tmp_path):
    _md(ethanol, tiny_model, tmp_path, ensemble="nve", steps=6, traj_every=2, log_every=1)
    result = analyze(tmp_path)
    assert result == json.loads((tmp_path / "analysis.json").read_text())
    assert result["n_frames"] == 4 and not result["periodic"] and "rdf" not in result
    assert result["rmsd"]["all_A"][0] == pytest.approx(0, abs=1e-3)
    assert len(result["rmsd"]["all_A"]) == 4 and "heavy_A" in result["rmsd"]
    assert len(result["rmsf"]["per_atom_A"]) == len(ethanol)
    assert result["energy"]["drift_of"] == "total energy"
    assert np.isfinite(result["energy"]["drift_meV_per_atom_per_ps"])
    assert result["temperature"]["autocorrelation"][0] == pytest.approx(1.0)
    per_element = result["charges"]["per_element"]
    assert set(per_element) == {"C", "H", "O"}
    assert per_element["O"]["n_atoms"] == 1 and "potential_mean_V" in per_element["O"]
    assert result["charges"]["total_charge_mean_e"] == pytest.approx(0, abs=1e-8)
    assert len(result["charges"]["mean_by_element_over_time"]["C"]) == 4
    for name in ("rmsd.png", "rmsf.png", "temperature_acf.png", "charges_time.png"):
        assert name in result["figures"] and (tmp_path / name).stat().st_size > 0


def test_analyze_periodic_water_gives_rdfs(water_box, tiny_model, tmp_path):
    _md(water_box, tiny_model, tmp_path, ensemble="langevin", steps=2, traj_every=1)
    result = analyze(tmp_path, rdf_bins=30, plots=False)
    assert result["periodic"] and "rmsd" not in result
    assert set(result["rdf"]) == {"H-H", "H-O", "O-O"}
    oh = result["rdf"]["H-O"]
    assert len(oh["r_A"]) == 30 and max(oh["r_A"]) <= 3.2
    assert oh["g"][int(np.argmin(np.abs(np.array(oh["r_A"]) - 0.97)))] > 1  # O-H bond peak
    assert result["energy"]["drift_meV_per_atom_per_ps"] is None  # Langevin conserves nothing
    chosen = analyze(tmp_path, rdf_bins=30, rdf_pairs=[("O", "H")], plots=False)["rdf"]
    assert list(chosen) == ["O-H"]
    np.testing.assert_allclose(chosen["O-H"]["r_A"], oh["r_A"])
    with pytest.raises(ValueError, match="Na"):
        analyze(tmp_path, rdf_pairs=[("Na", "O")], plots=False)


def test_analyze_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="trajectory.traj"):
        analyze(tmp_path / "nothing")
