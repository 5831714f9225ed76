"""Every recipe trains end to end for one epoch on tiny files in the exact input formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.emt import EMT

from phicalc.serialization import load_model
from phicalc.train import TrainConfig, train

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
OE62_MOLECULES = ("H2O", "CH4", "NH3", "C2H6", "C2H4", "CH3OH", "HCOOH", "CH3CHO", "H2CO",
                  "HCN", "CH3CN", "C2H2", "CH3NO2", "CO2", "N2H4", "CH3OCH3", "C3H8", "CH3COOH",
                  "HCOOCH3", "CH3CH2OH", "C4H4O", "C5H5N", "C6H6", "H3CNH2")  # fmt: skip


def write_oe62(path: Path) -> Path:
    """A df_62k.json look-alike: the release's columns, orient="split", XYZ text geometries."""
    import pandas as pd

    rng = np.random.default_rng(0)
    element_energy = {1: -13.6, 6: -1029.0, 7: -1485.0, 8: -2041.0}
    rows = []
    for i, name in enumerate(OE62_MOLECULES):
        atoms = molecule(name)
        xyz = "\n".join(
            [str(len(atoms)), ""]
            + [
                f"{s} {x:.8f} {y:.8f} {z:.8f}"
                for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions)
            ]
        )
        energy = sum(element_energy[int(z)] for z in atoms.numbers) + rng.normal(0, 0.3)
        charges = rng.normal(0, 0.2, len(atoms))
        rows.append({
            "refcode_csd": f"REF{i:03d}",
            "canonical_smiles": name,
            "number_of_atoms": len(atoms),
            "xyz_pbe_relaxed": xyz + "\n",
            "total_energy_pbe0_vac_tier2": energy,
            "hirshfeld_pbe0_vac_tier2": (charges - charges.mean()).tolist(),
        })  # fmt: skip
    pd.DataFrame(rows).to_json(path, orient="split")
    return path


def write_md22(path: Path, n_frames: int = 20) -> Path:
    """An sGDML-style archive (z, R in Å, E and F in kcal/mol) of rattled ethanol."""
    from ase import units

    rng = np.random.default_rng(0)
    base = molecule("CH3CH2OH")
    positions, energies, forces = [], [], []
    for _ in range(n_frames):
        atoms = base.copy()
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        atoms.calc = EMT()
        positions.append(atoms.positions)
        energies.append([atoms.get_potential_energy() / (units.kcal / units.mol)])
        forces.append(atoms.get_forces() / (units.kcal / units.mol))
    np.savez(
        path,
        z=base.numbers.astype(np.uint8),
        R=np.array(positions),
        E=np.array(energies),
        F=np.array(forces),
        name=np.array("Ac-Ala3-NHMe"),
        theory=np.array("PBE+MBD"),
        type=np.array("d"),
        md5=np.array("0" * 32),
    )
    return path


@pytest.fixture(scope="module")
def data_files(tmp_path_factory, labelled_molecules):
    from phicalc.data import write_structures

    folder = tmp_path_factory.mktemp("recipes")
    organic = labelled_molecules(60, seed=1)
    for k, atoms in enumerate(organic):
        atoms.info["molecule"] = f"mol{k % 30}"  # 30 "molecules", two frames each
    write_structures(folder / "organic_train.extxyz", organic[:48])
    write_structures(folder / "organic_heldout.extxyz", organic[48:])
    write_structures(folder / "ala_a.extxyz", organic[:12])
    write_structures(folder / "ala_b.extxyz", organic[12:24])
    write_structures(folder / "ala_test.extxyz", organic[24:30])
    return {
        "oe62": {"path": str(write_oe62(folder / "df_62k.json"))},
        "md22": {"path": str(write_md22(folder / "md22_Ac-Ala3-NHMe.npz")), "budget": 12},
        "organic": {
            "train": str(folder / "organic_train.extxyz"),
            "test": str(folder / "organic_heldout.extxyz"),
        },
        "ac_ala3": {
            "train": [str(folder / "ala_a.extxyz"), str(folder / "ala_b.extxyz")],
            "test": str(folder / "ala_test.extxyz"),
        },
    }


RECIPE_NAMES = sorted(p.stem for p in RECIPES.glob("*.yaml"))


def test_the_recipe_set_is_complete():
    expected = {
        f"{base}{phi}"
        for base in (
            "oe62_schnet",
            "oe62_painn",
            "md22_ac_ala3_painn",
            "organic_painn",
            "ac_ala3_painn",
        )
        for phi in ("", "_phi")
    }
    assert expected <= set(RECIPE_NAMES)


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_recipe_trains_one_epoch(name, data_files, tmp_path):
    kind = next(k for k in ("oe62", "md22", "organic", "ac_ala3") if name.startswith(k))
    overrides = {
        "epochs": 1,
        "out": str(tmp_path / name),
        "num_threads": 1,
        "progress": False,
        "device": "cpu",
        "data": data_files[kind],
    }
    config = TrainConfig.from_yaml(RECIPES / f"{name}.yaml", overrides=overrides)
    assert config.model.phi is not False if name.endswith("_phi") else config.model.phi is False
    result = train(config)
    assert result.finished and result.test_metrics is not None
    model = load_model(result.best_model)
    assert model.has_phi == name.endswith("_phi")
    if kind == "oe62":
        assert "forces_mae_eV_A" not in result.val_metrics  # energy-only benchmark
    else:
        assert "forces_mae_eV_A" in result.test_metrics


SHIPPED = sorted((RECIPES / "shipped").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_recipes_build_the_model_their_name_says(path):
    """The recipes of the shipped models are valid, and name their backbone and Φ truthfully."""
    from phicalc.build import build_model

    config = TrainConfig.from_yaml(path)
    backbone = path.stem.split("_")[-2] if path.stem.endswith("_phi") else path.stem.split("_")[-1]
    assert config.model.backbone == backbone
    model = build_model(**config.model.build_kwargs(tuple(config.model.elements)))
    assert model.has_phi == path.stem.endswith("_phi")
    assert config.out == f"runs/shipped/{path.stem}"
