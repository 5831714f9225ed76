"""Fixtures for the training tests: tiny labelled files and small configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.emt import EMT

MOLECULES = ("H2O", "NH3", "CH4", "CH3OH")


def labelled_molecules(n: int, *, seed: int = 0, charges: bool = True) -> list:
    """``n`` rattled small molecules with EMT energies and forces (+ fake charges and dipoles)."""
    from phicalc.data import make_record

    rng = np.random.default_rng(seed)
    records = []
    for k in range(n):
        atoms = molecule(MOLECULES[k % len(MOLECULES)])
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        q = None
        dipole = None
        if charges:
            q = rng.normal(scale=0.2, size=len(atoms))
            q -= q.mean()
            dipole = q @ atoms.positions
        records.append(
            make_record(
                atoms,
                energy=energy,
                forces=forces,
                charges=q,
                dipole=dipole,
                info={"molecule": atoms.get_chemical_formula(), "frame": k},
            )
        )
    return records


@pytest.fixture(name="labelled_molecules", scope="session")
def labelled_molecules_fixture():
    """The :func:`labelled_molecules` builder."""
    return labelled_molecules


@pytest.fixture(name="tiny_config", scope="session")
def tiny_config_fixture():
    """The :func:`tiny_config` builder."""
    return tiny_config


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train (16) / val (4) / test (4) extxyz files of labelled small molecules."""
    from phicalc.data import write_structures

    folder = tmp_path_factory.mktemp("tiny")
    records = labelled_molecules(24)
    paths = {name: folder / f"{name}.extxyz" for name in ("train", "val", "test")}
    write_structures(paths["train"], records[:16])
    write_structures(paths["val"], records[16:20])
    write_structures(paths["test"], records[20:])
    return paths


def tiny_config(files: dict[str, Path], out: Path, **overrides: Any) -> dict[str, Any]:
    """A fast config dict (PaiNN F=8, 1 thread, no progress bars) for ``files``."""
    from phicalc.config import merge_dicts

    base = {
        "seed": 0,
        "epochs": 2,
        "out": str(out),
        "num_threads": 1,
        "progress": False,
        "model": {
            "backbone": "painn",
            "phi": False,
            "cutoff": 3.5,
            "readout_hidden": 8,
            "backbone_config": {"num_features": 8, "num_blocks": 1, "num_radial": 4},
        },
        "data": {"format": "extxyz", **{k: str(v) for k, v in files.items()}},
        "loss": {"energy_weight": 1.0, "forces_weight": 1.0},
        "optim": {"batch_size": 4, "lr": 2e-3, "ema_decay": 0.9, "warmup_epochs": 0.5},
    }
    return merge_dicts(base, overrides)
