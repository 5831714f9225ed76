"""What an MD run starts from: the structure, the calculator around a model, and checks that
the two fit (elements) and which weights a run used (fingerprint)."""

from __future__ import annotations

import hashlib
import math
import os
from typing import TYPE_CHECKING, Any

from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from phicalc.errors import ConfigError, PhicalcError, UnknownElementError

if TYPE_CHECKING:
    from phicalc.potential import Potential


def load_structure(structure: Atoms | str | os.PathLike) -> Atoms:
    """Return a copy of ``structure`` or build one from a file path, SMILES or name.

    Strings go through :func:`phicalc.data.structures.structure_from_string`.

    Raises:
        FileNotFoundError: A path that does not exist (from the structure reader).
        ConfigError: Any other failure to read or build the structure.
    """
    if isinstance(structure, Atoms):
        return structure.copy()
    spec = os.fspath(structure)
    from phicalc.data.structures import structure_from_string

    try:
        atoms = structure_from_string(spec)
    except (PhicalcError, FileNotFoundError, IsADirectoryError):
        raise
    except Exception as error:  # ASE, RDKit and pymatgen raise many types on bad input
        raise ConfigError(f"cannot read structure {spec!r}: {error}") from error
    if len(atoms) == 0:
        raise ConfigError(f"structure {spec!r} has no atoms")
    return atoms


def make_calculator(
    model: str | os.PathLike | Potential | BaseCalculator,
    *,
    device: str = "auto",
    dtype: str = "float64",
    charge: float | None = None,
    partition_skin: float | None = math.inf,
    neighbor_skin: float | None = 0.5,
    compile: bool = False,
    edge_chunk: int | str | None = "auto",
) -> BaseCalculator:
    """Wrap a model name, model file or :class:`~phicalc.potential.Potential` in a
    :class:`~phicalc.calculator.PhiCalculator` that keeps any spatial partition of the model
    for ``partition_skin`` Å (``inf``, the default: for good, as MD needs; ``None``: a fresh
    one every call) and reuses a Verlet neighbour list with ``neighbor_skin`` Å (``None``: a
    fresh list every call), compiled with ``torch.compile`` when ``compile``, summing messages in
    runs as ``edge_chunk`` says (:class:`~phicalc.calculator.PhiCalculator`); an ASE calculator
    is returned unchanged."""
    if isinstance(model, BaseCalculator):
        return model
    from phicalc import PhiCalculator

    options: dict[str, Any] = {
        "device": device,
        "dtype": dtype,
        "partition_skin": partition_skin,
        "neighbor_skin": neighbor_skin,
        "compile": compile,
        "edge_chunk": edge_chunk,
    }
    if charge is not None:
        options["charge"] = float(charge)
    return PhiCalculator(model, **options)


def check_elements(atoms: Atoms, calc: BaseCalculator) -> None:
    """Raise :class:`~phicalc.errors.UnknownElementError` if the model lacks an element of
    ``atoms``; calculators without ``calc.model.elements`` are not checked."""
    elements = getattr(getattr(calc, "model", None), "elements", None)
    if elements is None:
        return
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise UnknownElementError(
            f"{atoms.get_chemical_formula()} contains {', '.join(unknown)}, which the model "
            f"does not support (it knows {', '.join(elements)})"
        )


def weights_fingerprint(calc: BaseCalculator) -> str | None:
    """16 hex digits of SHA-256 over the parameters and buffers of ``calc.model`` (names and
    values as float64, so the calculator's dtype does not change it); None for calculators
    without a torch model."""

    import torch

    model = getattr(calc, "model", None)
    if not isinstance(model, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float64).numpy().tobytes())
    return digest.hexdigest()[:16]


def describe_model(model: Any) -> str:
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    return type(model).__name__


# --------------------------------------------------------------------------- run
