"""Tiny data files in the exact release formats (OE62 df_62k.json, sGDML MD22 .npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.build import molecule

# Synthetic per-element energies (eV) used to make OE62-like totals.
OE62_ELEMENT_ENERGIES = {1: -13.6, 6: -1029.0, 7: -1485.0, 8: -2041.0, 9: -2713.0}
OE62_MOLECULES = [
    "H2O", "CH4", "NH3", "C2H6", "C2H4", "C2H2", "CH3OH", "CH3CH2OH", "HCOOH", "CH3CHO",
    "H2CO", "HCN", "CH3CN", "H3CNH2", "C6H6", "C5H5N", "C4H4O", "C4H4NH", "CH3COOH", "CH3CONH2",
    "CH3OCH3", "C3H8", "isobutane", "CO2", "N2H4", "CH2NHCH2", "H2CCO", "CH3NO2", "HF", "CH3COF",
    "CF4", "H2CCHF", "trans-butane", "C3H9N", "butadiene", "cyclobutane", "CH3COCH3", "HCOOCH3",
    "CH3CH2NH2", "C3H4_C2v",
]  # fmt: skip


def xyz_text(atoms) -> str:
    lines = [str(len(atoms)), ""]
    lines += [
        f"{s} {x:.8f} {y:.8f} {z:.8f}"
        for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions)
    ]
    return "\n".join(lines) + "\n"


def make_oe62_frame(seed: int = 0):
    """A small DataFrame with the real df_62k.json column names and value types."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for i, name in enumerate(OE62_MOLECULES):
        atoms = molecule(name)
        energy = sum(OE62_ELEMENT_ENERGIES[int(z)] for z in atoms.numbers) + rng.normal(0, 0.5)
        charges = rng.normal(0, 0.2, len(atoms))
        charges -= charges.mean()
        rows.append(
            {
                "refcode_csd": f"REF{i:03d}",
                "canonical_smiles": f"SMILES{i}",
                "inchi": f"InChI=1S/{atoms.get_chemical_formula()}",
                "number_of_atoms": len(atoms),
                "xyz_pbe_relaxed": xyz_text(atoms),
                "total_energy_pbe": energy + 3.0,
                "total_energy_pbe0_vac_tier2": energy,
                "total_energy_pbe0_water": energy - 0.2,
                "hirshfeld_pbe0_vac_tier2": charges.tolist(),
                "hirshfeld_pbe": (charges * 0.9).tolist(),
            }
        )
    return pd.DataFrame(rows, index=np.arange(1000, 1000 + len(rows)))


def write_oe62(df, path: Path) -> Path:
    df.to_json(path, orient="split")
    return path


def make_md22_arrays(n_frames: int = 50, seed: int = 0, name: str = "Ac-Ala3-NHMe") -> dict:
    """Arrays with the real sGDML MD22 keys, dtypes and shapes (kcal/mol, kcal/mol/Å)."""
    rng = np.random.default_rng(seed)
    base = molecule("CH3CH2OH")
    z = base.numbers.astype(np.uint8)
    positions = base.positions[None] + rng.normal(0, 0.05, (n_frames, len(base), 3))
    return {
        "z": z,
        "R": positions,
        "E": rng.normal(-97000.0, 2.0, (n_frames, 1)),
        "F": rng.normal(0.0, 20.0, (n_frames, len(base), 3)),
        "name": np.array(name),
        "theory": np.array("PBE+MBD"),
        "type": np.array("d"),
        "md5": np.array("0123456789abcdef"),
    }
