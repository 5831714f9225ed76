from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.geometry import get_distances

from phicalc.data.structures import StructureSpecError, structure_from_string, water_box
from phicalc.errors import PhicalcError


@pytest.mark.parametrize(
    "spec, formula",
    [("H2O", "H2O"), ("CH4", "CH4"), ("benzene", "C6H6"), ("CO", "CO"), ("water", "H2O")],
)
def test_ase_names(spec, formula):
    atoms = structure_from_string(spec)
    assert atoms.get_chemical_formula() == formula
    assert atoms.info["charge"] == 0 and not atoms.pbc.any()


@pytest.mark.parametrize(
    "spec, warned, smiles_formula",
    [("O", True, "H2O"), ("CO", True, "CH4O"), ("C", True, "CH4"), ("H2O", False, ""),
     ("CH4", False, ""), ("water", False, "")],
)  # fmt: skip
def test_a_name_that_is_another_molecules_smiles_warns(spec, warned, smiles_formula, caplog):
    with caplog.at_level("WARNING", logger="phicalc.data.structures"):
        structure_from_string(spec)
    messages = [r.getMessage() for r in caplog.records]
    assert bool(messages) == warned
    if warned:
        assert f"smiles:{spec}" in messages[0] and smiles_formula in messages[0]


@pytest.mark.parametrize("spec", ["ac-ala3", "Ac-Ala3-NHMe", "AC-ALA3"])
def test_ac_ala3(spec):
    atoms = structure_from_string(spec)
    assert len(atoms) == 42 and atoms.get_chemical_formula() == "C12H22N4O4"


def test_smiles_and_seed():
    a = structure_from_string("CCO", seed=1)
    b = structure_from_string("CCO", seed=1)
    assert a.get_chemical_formula() == "C2H6O" and a.info["smiles"] == "CCO"
    np.testing.assert_allclose(a.positions, b.positions)
    assert structure_from_string("smiles:CO").get_chemical_formula() == "CH4O"  # methanol
    assert structure_from_string("aspirin").get_chemical_formula() == "C9H8O4"
    charged = structure_from_string("C[NH3+]")
    assert charged.info["charge"] == 1
    # sensible geometry: all C-H bonds near 1.09 Å
    d = a.get_all_distances()
    c, h = np.where(a.numbers == 6)[0], np.where(a.numbers == 1)[0]
    assert 1.0 < d[np.ix_(c, h)].min() < 1.15


def test_files(tmp_path):
    path = tmp_path / "mol.xyz"
    ase.io.write(path, molecule("NH3"))
    atoms = structure_from_string(str(path))
    assert atoms.get_chemical_formula() == "H3N" and atoms.info["charge"] == 0
    assert structure_from_string(f"file:{path}").get_chemical_formula() == "H3N"
    poscar = tmp_path / "POSCAR"
    ase.io.write(poscar, bulk("Si", cubic=True), format="vasp")
    assert len(structure_from_string(str(poscar))) == 8


def test_pymatgen_fallback(tmp_path):
    pytest.importorskip("pymatgen")
    from pymatgen.core import Lattice, Structure

    cif = tmp_path / "nacl.mycif"  # suffix ASE cannot guess
    Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(tmp_path / "x.cif")
    )
    cif.write_text((tmp_path / "x.cif").read_text())
    atoms = structure_from_string(str(cif))
    assert sorted(atoms.get_chemical_symbols()) == ["Cl", "Na"] and atoms.pbc.all()


def test_water_box():
    box = structure_from_string("water-box:32", seed=3)
    assert box.get_chemical_formula() == "H64O32" and box.pbc.all()
    density = box.get_masses().sum() / box.get_volume() * 1.66053906660
    assert density == pytest.approx(1.0, rel=1e-6)
    oxygens = box.positions[box.numbers == 8]
    _, d = get_distances(oxygens, cell=box.cell, pbc=True)
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 2.5
    np.testing.assert_allclose(box.positions, water_box(32, seed=3).positions)
    assert not np.allclose(box.positions, water_box(32, seed=4).positions)
    # intact molecules: each O has its two H at ~0.97 Å
    oh = np.linalg.norm(box.positions[1::3] - box.positions[0::3], axis=1)
    np.testing.assert_allclose(oh, oh[0])


@pytest.mark.parametrize(("spec", "charge"), [("water-box:24+Na+Cl", 0), ("water-box:16+Na", 1)])
def test_water_box_with_ions(spec, charge):
    box = structure_from_string(spec, seed=1)
    n_waters = int(spec.split(":")[1].split("+")[0])
    ions = spec.split("+")[1:]
    assert box.get_chemical_symbols()[3 * n_waters :] == ions and box.info["charge"] == charge
    density = box.get_masses().sum() / box.get_volume() * 1.66053906660
    assert density == pytest.approx(1.0, rel=1e-6)
    ion_pos = box.positions[3 * n_waters :]
    _, d = get_distances(ion_pos, box.positions[: 3 * n_waters], cell=box.cell, pbc=True)
    assert d[:, 0::3].min() >= 2.2 and min(d[:, 1::3].min(), d[:, 2::3].min()) >= 1.6
    if len(ions) == 2:
        assert box.get_distance(-1, -2, mic=True) >= 4.0
    with pytest.raises(StructureSpecError, match="unknown ion"):
        water_box(8, ions=["Xx"])


def test_unknown_specs():
    with pytest.raises(StructureSpecError) as info:
        structure_from_string("not-a-molecule")
    assert isinstance(info.value, ValueError) and isinstance(info.value, PhicalcError)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="invalid SMILES"):
        structure_from_string("smiles:C1CC")
    with pytest.raises(ValueError, match="unknown structure name"):
        structure_from_string("name:unobtainium")
    with pytest.raises(FileNotFoundError):
        structure_from_string("missing/mol.xyz")
    with pytest.raises(ValueError):
        structure_from_string("   ")
    with pytest.raises(ValueError, match="water-box"):
        structure_from_string("water-box:0")


def test_water_cluster_is_the_box_packing_without_cell():
    box = structure_from_string("water-box:16+Na+Cl", seed=2)
    cluster = structure_from_string("water-cluster:16+Na+Cl", seed=2)
    assert not cluster.pbc.any() and cluster.cell.rank == 0
    assert cluster.get_chemical_symbols() == box.get_chemical_symbols()
    assert cluster.info["charge"] == 0
    # the same packing, shifted: every direct distance equal to the box's direct distance
    np.testing.assert_allclose(cluster.get_all_distances(), box.get_all_distances(mic=False))
    np.testing.assert_allclose(cluster.get_center_of_mass(), 0.0, atol=1e-10)
    # no clash: direct distances bound the minimum-image ones from below
    pairs = ~np.eye(len(box), dtype=bool)
    assert (
        cluster.get_all_distances()[pairs] >= box.get_all_distances(mic=True)[pairs] - 1e-9
    ).all()
