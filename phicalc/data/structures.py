"""Structures from a short string: a file, a SMILES string or a name.

:func:`structure_from_string` is what ``phicalc md --structure`` and ``phicalc label --structure``
accept. It tries, in order:

1. an explicit prefix: ``file:PATH``, ``smiles:SMILES``, ``name:NAME``;
2. an existing file: anything :func:`ase.io.read` reads (the last frame), else a CIF / POSCAR read
   with pymatgen and converted by ``pymatgen.io.ase.AseAtomsAdaptor``;
3. a name: our own (:data:`NAMED_SMILES`, e.g. ``"aspirin"``, ``"Ac-Ala3-NHMe"``/``"ac-ala3"``;
   aliases such as ``"benzene"``, ``"water"``), ``"water-box:N"`` (optionally with monatomic
   ions, ``"water-box:64+Na+Cl"``; ``"water-cluster:24+Na"`` is the same packing without the
   periodic cell), or an
   :func:`ase.build.molecule` name (``"H2O"``, ``"CH4"``, ``"C6H6"``, ...);
4. a SMILES string, embedded with RDKit (explicit hydrogens, ETKDGv3 with a seed, MMFF94
   optimisation; UFF where MMFF has no parameters).

Names win over SMILES: ``"CO"`` is carbon monoxide (ASE), ``"smiles:CO"`` is methanol.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from phicalc.errors import PhicalcError

logger = logging.getLogger(__name__)


class StructureSpecError(PhicalcError, ValueError):
    """A structure string is neither a readable file, a known name nor a valid SMILES."""


#: Molecules known by name, built from SMILES (names are matched case-insensitively).
NAMED_SMILES: dict[str, str] = {
    "ac-ala3-nhme": "CC(=O)NC(C)C(=O)NC(C)C(=O)NC(C)C(=O)NC",
    "ac-ala3": "CC(=O)NC(C)C(=O)NC(C)C(=O)NC(C)C(=O)NC",
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "uracil": "O=c1cc[nH]c(=O)[nH]1",
    "malonaldehyde": "O=CCC=O",
    "salicylic-acid": "O=C(O)c1ccccc1O",
    "toluene": "Cc1ccccc1",
    "naphthalene": "c1ccc2ccccc2c1",
    "azobenzene": "c1ccc(cc1)/N=N/c1ccccc1",
    "alanine-dipeptide": "CC(=O)NC(C)C(=O)NC",
    "glycine": "NCC(=O)O",
}
#: Common names mapped to :func:`ase.build.molecule` names.
ASE_ALIASES: dict[str, str] = {
    "water": "H2O",
    "methane": "CH4",
    "ammonia": "NH3",
    "benzene": "C6H6",
    "ethanol": "CH3CH2OH",
    "methanol": "CH3OH",
    "ethane": "C2H6",
    "ethylene": "C2H4",
    "acetylene": "C2H2",
    "formaldehyde": "H2CO",
    "carbon-dioxide": "CO2",
}

_FILE_SUFFIXES = (
    ".xyz", ".extxyz", ".traj", ".cif", ".pdb", ".db", ".json", ".vasp", ".poscar",
    ".gro", ".mol", ".sdf", ".in", ".res", ".cfg", ".lammps", ".data",
)  # fmt: skip
_WATER_BOX = re.compile(r"^water-?(box|cluster):(\d+)((?:\+[A-Z][a-z]?)*)$", re.IGNORECASE)
#: Formal charges (e) of the monatomic ions a water box can hold.
ION_CHARGES = {"Li": 1, "Na": 1, "K": 1, "Mg": 2, "Ca": 2, "F": -1, "Cl": -1, "Br": -1, "I": -1}
_MAX_EMBED_ATTEMPTS = 5


def structure_from_string(spec: str, *, seed: int = 0) -> Atoms:
    """Build a structure from a file path, a name or a SMILES string (see the module docstring).

    Args:
        spec: the string.
        seed: seed of the RDKit embedding and of random water-box orientations.

    Returns:
        The structure, in Å. Molecules are non-periodic with ``info["charge"]`` (total formal
        charge, e) and, when built from SMILES, ``info["smiles"]``; a water box is periodic.

    Raises:
        FileNotFoundError: ``spec`` is ``file:...`` or looks like a file path, but no such file.
        StructureSpecError: (a ``ValueError``) ``spec`` is not a usable file, name or SMILES;
            the message is one line and says what was tried.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise StructureSpecError(f"empty structure string {spec!r}")
    spec = spec.strip()
    prefix, _, rest = spec.partition(":")
    if prefix.lower() == "file" and rest:
        return read_structure_file(rest)
    if prefix.lower() == "smiles" and rest:
        return structure_from_smiles(rest, seed=seed)
    if prefix.lower() == "name" and rest:
        atoms = structure_from_name(rest, seed=seed)
        if atoms is None:
            raise StructureSpecError(f"unknown structure name {rest!r}")
        return atoms
    if os.path.isfile(spec):
        return read_structure_file(spec)
    atoms = structure_from_name(spec, seed=seed)
    if atoms is not None:
        _warn_if_smiles_differs(spec, atoms)
        return atoms
    mol = _parse_smiles(spec)
    if mol is not None:
        return structure_from_smiles(spec, seed=seed)
    if spec.lower().endswith(_FILE_SUFFIXES) or os.sep in spec:
        raise FileNotFoundError(f"no such structure file: {spec}")
    raise StructureSpecError(
        f"{spec!r} is not an existing file, a known name (e.g. H2O, benzene, aspirin, ac-ala3, "
        "water-box:64) or a valid SMILES"
    )


def read_structure_file(path: str | os.PathLike) -> Atoms:
    """The last frame of a structure file: ASE first, pymatgen (CIF, POSCAR, ...) as fallback.

    Raises:
        FileNotFoundError: no such file.
        StructureSpecError: neither ASE nor pymatgen can read it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such structure file: {path}")
    import ase.io

    try:
        atoms = ase.io.read(path, index=-1)
    except Exception as ase_error:
        try:
            atoms = _read_with_pymatgen(path)
        except Exception as pmg_error:
            raise StructureSpecError(
                f"{path}: neither ASE ({type(ase_error).__name__}: {ase_error}) nor pymatgen "
                f"({type(pmg_error).__name__}) can read it"
            ) from ase_error
    if len(atoms) == 0:
        raise StructureSpecError(f"{path}: the structure has no atoms")
    atoms.calc = None
    atoms.info.setdefault("charge", 0)
    atoms.info.setdefault("source", str(path))
    return atoms


def _read_with_pymatgen(path: Path) -> Atoms:
    """pymatgen by file name, then the text as CIF, then as POSCAR (any file name)."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        structure = Structure.from_file(str(path))
    except Exception:
        text = path.read_text()
        try:
            structure = Structure.from_str(text, fmt="cif")
        except Exception:
            structure = Structure.from_str(text, fmt="poscar")
    return AseAtomsAdaptor.get_atoms(structure)


def structure_from_name(name: str, *, seed: int = 0) -> Atoms | None:
    """A named structure, or ``None`` if ``name`` is not a known name.

    Known: :data:`NAMED_SMILES` keys, :data:`ASE_ALIASES` keys, ``water-box:N[+ION...]``,
    ``water-cluster:N[+ION...]`` (the same packing as an open cluster) and every
    :func:`ase.build.molecule` name. Matching is case-insensitive except for ASE formulas
    (``"CO"`` and ``"Co"`` differ).
    """
    key = name.strip()
    low = key.lower()
    match = _WATER_BOX.match(key)
    if match:
        ions = [ion for ion in match.group(3).split("+") if ion]
        box = water_box(int(match.group(2)), seed=seed, ions=ions)
        return box if match.group(1).lower() == "box" else water_cluster(box)
    if low in NAMED_SMILES:
        atoms = structure_from_smiles(NAMED_SMILES[low], seed=seed)
        atoms.info["name"] = low
        return atoms
    from ase.build import molecule
    from ase.collections import g2

    ase_name = ASE_ALIASES.get(low, key)
    extra = {"Be2", "C7NH5", "BDA", "biphenyl", "C60"}
    if ase_name in g2.names or ase_name in extra:
        atoms = molecule(ase_name)
        atoms.info.update(charge=0, name=ase_name)
        return atoms
    return None


def _warn_if_smiles_differs(spec: str, atoms: Atoms) -> None:
    """Warn when a name is also the SMILES of another molecule ("O": an O atom, or water)."""
    try:
        mol = _parse_smiles(spec)
    except ImportError:
        return
    if mol is None:
        return
    from rdkit import Chem
    from rdkit.Chem.rdMolDescriptors import CalcMolFormula

    smiles_formula = re.sub(r"[+-]\d*$", "", CalcMolFormula(Chem.AddHs(mol)))
    if Atoms(smiles_formula).get_chemical_formula() != atoms.get_chemical_formula():
        logger.warning(
            "%r is read as a name, the structure %s; as SMILES it is %s (write 'smiles:%s' "
            "for that)",
            spec,
            atoms.get_chemical_formula(),
            smiles_formula,
            spec,
        )


def _parse_smiles(smiles: str):
    """RDKit molecule, or ``None`` for an invalid SMILES (RDKit's error log is silenced)."""
    try:
        from rdkit import Chem, rdBase
    except ImportError as error:
        raise ImportError("SMILES input needs RDKit: pip install 'phicalc[data]'") from error
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles)


def structure_from_smiles(smiles: str, *, seed: int = 0, optimize: bool = True) -> Atoms:
    """3D structure of a molecule from SMILES with RDKit.

    Hydrogens are added, a conformer is embedded with ETKDGv3 (``randomSeed=seed``; random
    coordinates as fallback) and optimised with MMFF94 (UFF when MMFF lacks parameters).

    Args:
        smiles: the SMILES string.
        seed: embedding seed; the same seed gives the same coordinates.
        optimize: run the force-field optimisation.

    Returns:
        Non-periodic molecule centred at the origin, ``info["smiles"]`` and ``info["charge"]``
        (total formal charge, e).

    Raises:
        StructureSpecError: invalid SMILES or the embedding failed.
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = _parse_smiles(smiles)
    if mol is None:
        raise StructureSpecError(f"invalid SMILES {smiles!r}")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed) % 2**31
    status = AllChem.EmbedMolecule(mol, params)
    attempt = 0
    while status != 0 and attempt < _MAX_EMBED_ATTEMPTS:
        attempt += 1
        params.useRandomCoords = True
        params.randomSeed = (int(seed) + attempt) % 2**31
        status = AllChem.EmbedMolecule(mol, params)
    if status != 0:
        raise StructureSpecError(f"RDKit could not embed SMILES {smiles!r} in 3D")
    if optimize:
        if AllChem.MMFFHasAllMoleculeParams(mol):
            AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
        elif AllChem.UFFHasAllMoleculeParams(mol):
            AllChem.UFFOptimizeMolecule(mol, maxIters=2000)
        else:
            logger.warning("no MMFF/UFF parameters for %s; using the unoptimised embedding", smiles)
    positions = mol.GetConformer().GetPositions()
    atoms = Atoms(
        numbers=[a.GetAtomicNum() for a in mol.GetAtoms()],
        positions=positions - positions.mean(axis=0),
    )
    atoms.info["smiles"] = smiles
    atoms.info["charge"] = int(Chem.GetFormalCharge(mol))
    return atoms


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """[3, 3] rotation matrix uniform on SO(3) (normalised Gaussian quaternion)."""
    w, x, y, z = (q := rng.standard_normal(4)) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def water_box(
    n_molecules: int,
    *,
    density_g_cm3: float = 1.0,
    seed: int = 0,
    min_oo_distance: float = 2.5,
    min_intermolecular_distance: float = 1.5,
    max_attempts: int = 10_000,
    ions: Sequence[str] = (),
    min_ion_distance: float = 4.0,
) -> Atoms:
    """A cubic periodic box of ``n_molecules`` rigid waters (and monatomic ions) at a density.

    Molecules are inserted one by one at random positions and orientations (``numpy`` generator
    seeded with ``seed``, so the box is reproducible) and kept only if every O–O minimum-image
    distance is ≥ ``min_oo_distance`` Å and every other intermolecular distance is
    ≥ ``min_intermolecular_distance`` Å. Geometry: ``ase.build.molecule("H2O")``. Atoms are
    ordered O, H, H per molecule; molecules are whole (H may lie outside the cell).

    Ions (:data:`ION_CHARGES`, e.g. ``("Na", "Cl")``) are placed first, at random positions at
    least ``min_ion_distance`` Å apart (minimum image; a solvent-separated start), and come after
    the waters in the atom order; no water atom is within 2.2 Å (O) or 1.6 Å (H) of an ion.
    ``info["charge"]`` is the sum of their formal charges.

    Args:
        n_molecules: number of waters (≥ 1).
        density_g_cm3: mass density, g/cm³ (default 1.0; edge = (N·m_H2O/ρ)^(1/3)).
        seed: random seed.
        min_oo_distance: minimum O–O distance, Å.
        min_intermolecular_distance: minimum distance between atoms of different molecules, Å.
        max_attempts: insertion attempts per molecule before giving up.
        ions: symbols of monatomic ions to add (their mass counts in the density).
        min_ion_distance: minimum distance between ions, Å.

    Returns:
        Periodic :class:`ase.Atoms` with ``info`` ``charge`` (e), ``n_molecules``,
        ``density_g_cm3``.

    Raises:
        StructureSpecError: bad arguments, or the box could not be filled (density too high).
    """
    from ase import units
    from ase.build import molecule

    if n_molecules < 1 or n_molecules > 100_000:
        raise StructureSpecError(f"water-box needs 1 to 100000 molecules, got {n_molecules}")
    if not density_g_cm3 > 0:
        raise StructureSpecError(f"density must be > 0 g/cm³, got {density_g_cm3}")
    unknown = [ion for ion in ions if ion not in ION_CHARGES]
    if unknown:
        raise StructureSpecError(
            f"unknown ion(s) {unknown} for a water box; known: {sorted(ION_CHARGES)}"
        )
    template = molecule("H2O")
    ion_mass = float(Atoms(list(ions)).get_masses().sum()) if ions else 0.0
    mass_g = (n_molecules * template.get_masses().sum() + ion_mass) / units.mol  # amu → g
    edge = (mass_g / density_g_cm3 * 1e24) ** (1.0 / 3.0)  # cm³ → Å³
    local = template.positions - template.positions[0]  # O at the origin
    cell = np.eye(3) * edge
    rng = np.random.default_rng(seed)
    placed = np.empty((0, 3, 3))  # [n_placed, 3 atoms, xyz]

    def min_image(delta: np.ndarray) -> np.ndarray:
        return delta - edge * np.round(delta / edge)

    ion_positions = np.empty((0, 3))
    for ion in ions:
        for _ in range(max_attempts):
            candidate_ion = rng.uniform(0.0, edge, 3)
            far = np.linalg.norm(min_image(ion_positions - candidate_ion), axis=-1)
            if len(far) == 0 or far.min() >= min_ion_distance:
                break
        else:
            raise StructureSpecError(
                f"could not place ion {ion} {min_ion_distance} Å from the others in a "
                f"{edge:.1f} Å box; use more waters or a smaller min_ion_distance"
            )
        ion_positions = np.concatenate([ion_positions, candidate_ion[None]])
    ion_clearance = np.array([2.2, 1.6, 1.6])  # Å, O H H

    for index in range(n_molecules):
        for _ in range(max_attempts):
            candidate = rng.uniform(0.0, edge, 3) + local @ _random_rotation(rng).T  # [3, 3]
            if len(ion_positions):
                to_ions = min_image(ion_positions[:, None, :] - candidate[None, :, :])
                if (np.linalg.norm(to_ions, axis=-1) < ion_clearance).any():
                    continue
            if len(placed) == 0:
                break
            oo = np.linalg.norm(min_image(placed[:, 0] - candidate[0]), axis=-1)
            if oo.min() < min_oo_distance:
                continue
            near = placed[oo < min_oo_distance + 4.0]
            if len(near):
                delta = min_image(near[:, :, None, :] - candidate[None, None, :, :])
                if np.linalg.norm(delta, axis=-1).min() < min_intermolecular_distance:
                    continue
            break
        else:
            raise StructureSpecError(
                f"could not place water {index + 1} of {n_molecules} at {density_g_cm3} g/cm³ "
                f"after {max_attempts} attempts"
            )
        placed = np.concatenate([placed, candidate[None]])
    atoms = Atoms(
        symbols=["O", "H", "H"] * n_molecules + list(ions),
        positions=np.concatenate([placed.reshape(-1, 3), ion_positions]),
        cell=cell,
        pbc=True,
    )
    charge = sum(ION_CHARGES[ion] for ion in ions)
    atoms.info.update(charge=charge, n_molecules=n_molecules, density_g_cm3=float(density_g_cm3))
    logger.debug("water box: %d molecules, edge %.3f Å", n_molecules, edge)
    return atoms


def water_cluster(box: Atoms) -> Atoms:
    """The molecules of a :func:`water_box` as an open cluster (no cell, centred at the origin).

    Molecules are whole in the box and the box's minimum-image clearances bound the direct
    distances from below, so the cluster has no clashes; it is a cube of liquid-density water
    with a free surface (ions keep their positions relative to the waters).
    """
    cluster = Atoms(numbers=box.numbers, positions=box.positions, pbc=False)
    cluster.positions -= cluster.get_center_of_mass()
    cluster.info.update({k: v for k, v in box.info.items() if k != "density_g_cm3"})
    return cluster
