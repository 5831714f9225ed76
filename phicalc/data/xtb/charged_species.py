"""The charged / long-range species list and its split by species.

The list (``phicalc/data/charged_set.txt``) has species lines ``KIND SMILES NAME`` (KIND one of
``neutral``, ``ion``, ``zwitterion``) and dimer lines ``dimer NAME_A NAME_B``. A species' total
charge Q (e) is the sum of the SMILES formal charges; every listed species is closed shell, so
its spin multiplicity 2S+1 is 1 and its electron count Σ Z − Q must be even.

Split rule (:func:`assign_splits`): every species has a key ``"mol:" + canonical SMILES`` (RDKit
canonical form, so two spellings of one molecule share a split) and every dimer pair a key
``"pair:" + the two canonical SMILES sorted and joined by "|"``; clusters use ``"cluster:" +
name``. With u = :func:`phicalc.data.splits.hash_fraction` (key, salt ``"phicalc-charged-v1:"``
+ seed), a key is ``test`` when u < 0.15, ``val`` when u < 0.25 and ``train`` otherwise. A dimer
pair then takes the most held-out split of (its own, monomer A's, monomer B's) in the order
train < val < test, so a held-out molecule or ion never reaches the training file through a
dimer scan either; an ion–water cluster likewise takes the most held-out of its own key's and
its ion's split. Vertical charge states share the split of their neutral molecule. Water
(:data:`ALWAYS_TRAIN`) is always ``train``: it is the solvent of every cluster and the partner
in half of the dimer scans, so holding it out would move those whole categories to the test
file. The rule depends only on the key and the seed, never on the other entries of the list.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from phicalc.data.splits import hash_fraction
from phicalc.errors import DatasetError

KINDS = ("neutral", "ion", "zwitterion")
#: Salt prefix of the split hash; the seed is appended.
SPLIT_SALT = "phicalc-charged-v1:"
#: Fractions of keys held out as test and validation.
TEST_FRACTION = 0.15
VAL_FRACTION = 0.10
#: Keys that are always ``train`` (the solvent).
ALWAYS_TRAIN = frozenset({"mol:O"})
_SPLIT_RANK = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class Species:
    """One molecule or ion of the set.

    Attributes:
        name: short name (unique in the list).
        smiles: SMILES as written in the list.
        kind: ``"neutral"``, ``"ion"`` or ``"zwitterion"``.
        canonical: RDKit canonical SMILES (the split key).
        charge: total charge Q, e (sum of formal charges).
    """

    name: str
    smiles: str
    kind: str
    canonical: str
    charge: int

    @property
    def key(self) -> str:
        """Split key of the species."""
        return f"mol:{self.canonical}"


@dataclass(frozen=True)
class DimerPair:
    """Two species scanned apart; A and B are :class:`Species`."""

    a: Species
    b: Species

    @property
    def name(self) -> str:
        """``"NAME_A+NAME_B"``."""
        return f"{self.a.name}+{self.b.name}"

    @property
    def key(self) -> str:
        """Split key: the two canonical SMILES, sorted, joined by ``|``."""
        return "pair:" + "|".join(sorted((self.a.canonical, self.b.canonical)))


@dataclass
class ChargedSet:
    """The parsed list: species by name (file order) and dimer pairs."""

    species: dict[str, Species]
    dimers: list[DimerPair]


def canonical_smiles(smiles: str) -> tuple[str, int, int]:
    """(RDKit canonical SMILES, total formal charge in e, electron count Σ Z − Q with H added).

    Raises:
        DatasetError: RDKit cannot parse the SMILES.
    """
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise DatasetError(f"invalid SMILES {smiles!r} in the charged set")
    charge = Chem.GetFormalCharge(mol)
    mol_h = Chem.AddHs(mol)
    electrons = sum(atom.GetAtomicNum() for atom in mol_h.GetAtoms()) - charge
    return Chem.MolToSmiles(mol), int(charge), int(electrons)


def parse_charged_set(text: str, *, source: str = "charged set") -> ChargedSet:
    """Parse the list format (see the module docstring).

    Raises:
        DatasetError: unknown kind, duplicate name, open-shell species, a dimer naming an
            unknown species, or a malformed line.
    """
    species: dict[str, Species] = {}
    dimers: list[DimerPair] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        where = f"{source}:{number}"
        if len(words) != 3:
            raise DatasetError(f"{where}: expected 3 words, got {line!r}")
        kind, first, second = words
        if kind == "dimer":
            missing = [n for n in (first, second) if n not in species]
            if missing:
                raise DatasetError(f"{where}: dimer names unknown species {missing}")
            dimers.append(DimerPair(species[first], species[second]))
            continue
        if kind not in KINDS:
            raise DatasetError(f"{where}: kind must be one of {KINDS + ('dimer',)}, got {kind!r}")
        if second in species:
            raise DatasetError(f"{where}: duplicate species name {second!r}")
        canonical, charge, electrons = canonical_smiles(first)
        if electrons % 2:
            raise DatasetError(f"{where}: {first!r} has an odd electron count (not closed shell)")
        if kind == "neutral" and charge != 0:
            raise DatasetError(f"{where}: neutral species {first!r} has charge {charge}")
        species[second] = Species(second, first, kind, canonical, charge)
    if not species:
        raise DatasetError(f"{source}: no species found")
    return ChargedSet(species, dimers)


def species_of_frames(frames: Iterable) -> set[str]:
    """Canonical SMILES of every species in labelled frames (ASE ``Atoms`` whose
    ``info["smiles"]`` names the frame's molecules joined by "."; frames without one add
    nothing): what a split file holds, to keep its species out of another file."""
    out: set[str] = set()
    for atoms in frames:
        smiles = atoms.info.get("smiles")
        if smiles:
            out.update(canonical_smiles(part)[0] for part in str(smiles).split("."))
    return out


def load_charged_set(path: str | os.PathLike | None = None) -> ChargedSet:
    """The shipped list (``phicalc/data/charged_set.txt``) or another file in its format.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DatasetError: the file is malformed (:func:`parse_charged_set`).
    """
    if path is None:
        text = resources.files("phicalc.data").joinpath("charged_set.txt").read_text()
        return parse_charged_set(text, source="charged_set.txt")
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such charged-set file: {file}")
    return parse_charged_set(file.read_text(), source=str(file))


def split_of_key(key: str, seed: int = 0) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for one key (the hash rule of the module docstring)."""
    if key in ALWAYS_TRAIN:
        return "train"
    u = hash_fraction(key, salt=f"{SPLIT_SALT}{int(seed)}")
    if u < TEST_FRACTION:
        return "test"
    if u < TEST_FRACTION + VAL_FRACTION:
        return "val"
    return "train"


def most_heldout(*splits: str) -> str:
    """The most held-out of the given splits (train < val < test)."""
    return max(splits, key=_SPLIT_RANK.__getitem__)


def pair_split(pair: DimerPair, seed: int = 0) -> str:
    """Split of a dimer pair: the most held-out of its own key's and its monomers' splits."""
    return most_heldout(
        split_of_key(pair.key, seed), split_of_key(pair.a.key, seed), split_of_key(pair.b.key, seed)
    )


def assign_splits(charged_set: ChargedSet, seed: int = 0) -> dict[str, str]:
    """Split of every species (by name) and every dimer pair (by ``pair.name``)."""
    splits = {name: split_of_key(s.key, seed) for name, s in charged_set.species.items()}
    splits.update({pair.name: pair_split(pair, seed) for pair in charged_set.dimers})
    return splits
