"""PhiCalculator: an ASE calculator over a phicalc Potential.

One pass fills every property (ASE caches them): ``energy``, ``free_energy``, ``energies``,
``forces``, ``stress`` (3D-periodic cells), and with a Φ-Module ``charges`` (e), ``dipole`` (e·Å),
``potentials`` (φ per atom, V) and ``electrostatic_energy`` (eV).
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from phicalc.config import check_choice
from phicalc.device import resolve_device
from phicalc.errors import BadGeometryError
from phicalc.graph.batch import AtomGraph, atoms_to_graph
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn.backbones.partition import PartitionCache
from phicalc.potential import Potential
from phicalc.serialization import load_model

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class PhiCalculator(Calculator):
    """ASE calculator for phicalc potentials.

    Args:
        model: a :class:`Potential`, a model file path, or a shipped model name
            (e.g. ``"phi-painn-organic"``).
        device: "auto" (CUDA if available), "cpu", "cuda" or "cuda:N". The model stays there;
            each call moves positions in and results out.
        dtype: "float32" (fast) or "float64" (MD energy conservation, finite differences).
        charge: total charge Q (e) used when ``atoms.info`` has no ``"charge"``.
        min_distance: smallest allowed interatomic distance in Å (default 0.5). Closer pairs
            raise :class:`BadGeometryError`: such geometries are unphysical (a crashed MD run, a
            duplicated atom) and a neural potential's answer there is meaningless, so failing
            loudly is safer than a warning that scrolls past. ``None`` turns the check off.
        partition_skin: for backbones with a spatial partition (Erwin's ball tree), Å. ``None``
            (default): a fresh partition every call, so results never depend on earlier calls.
            A float ≥ 0: this calculator keeps the partition until an atom has moved more than
            half this distance; ``float("inf")`` keeps it for good, which MD needs for energy
            conservation (``phicalc md`` does this). The partition belongs to the calculator,
            never to the model; other backbones ignore it. :meth:`reset` drops it.

    A given :class:`Potential` is never changed: if it is not already on ``device``/``dtype``
    in eval mode, the calculator works on a copy.

    ``atoms.info["charge"]`` is watched by :meth:`check_state`, so changing it recomputes.
    """

    implemented_properties: ClassVar[list[str]] = [
        "energy",
        "free_energy",
        "energies",
        "forces",
        "stress",
        "charges",
        "dipole",
        "potentials",
        "electrostatic_energy",
    ]

    def __init__(
        self,
        model: Potential | str | os.PathLike[str],
        *,
        device: str | torch.device = "auto",
        dtype: Literal["float32", "float64"] = "float32",
        charge: float = 0.0,
        min_distance: float | None = 0.5,
        partition_skin: float | None = None,
        **kwargs: Any,
    ) -> None:
        check_choice("dtype", dtype, tuple(DTYPES))
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.dtype = DTYPES[dtype]
        self.model: Potential = _inference_model(model, self.device, self.dtype)
        self.partition_cache = None if partition_skin is None else PartitionCache(partition_skin)
        self.parameters.update(
            dtype=dtype,
            charge=float(charge),
            min_distance=min_distance,
            device=str(self.device),
            partition_skin=partition_skin,
        )
        self._last_total_charge: float | None = None

    def reset(self) -> None:
        """Clear the results and any kept partition (the next call starts afresh)."""
        super().reset()
        cache = getattr(self, "partition_cache", None)  # ASE calls reset() before __init__ ends
        if cache is not None:
            cache.clear()

    # ASE's cache does not see atoms.info; the total charge lives there.
    def _total_charge(self, atoms: Atoms) -> float:
        return float(atoms.info.get("charge", self.parameters["charge"]))

    def check_state(self, atoms: Atoms, tol: float = 1e-15) -> list[str]:
        changes = super().check_state(atoms, tol)
        if self.atoms is not None and self._total_charge(atoms) != self._last_total_charge:
            changes = [*changes, "charge"]
        return changes

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        atoms = self.atoms
        total_charge = self._total_charge(atoms)
        graph = atoms_to_graph(
            atoms,
            self.model.cutoff,
            total_charge=total_charge,
            dtype=self.dtype,
            device=self.device,
        )
        self._check_distances(atoms, graph)
        compute_stress = bool(atoms.cell.rank == 3 and atoms.pbc.any())
        out = self.model(
            graph,
            compute_forces=True,
            compute_stress=compute_stress,
            training=False,
            partition_cache=self.partition_cache,
        )
        self._last_total_charge = total_charge

        def numpy(name: str) -> np.ndarray:
            return out[name].detach().to("cpu", torch.float64).numpy()

        energy = float(numpy("energy")[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": numpy("energies"),
            "forces": numpy("forces"),
        }
        if compute_stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(numpy("stress")[0])
        if self.model.has_phi:
            self.results.update(
                charges=numpy("charges"),
                dipole=numpy("dipole")[0],
                potentials=numpy("potentials"),
                electrostatic_energy=float(numpy("electrostatic_energy")[0]),
            )

    def _check_distances(self, atoms: Atoms, graph: AtomGraph) -> None:
        limit = self.parameters["min_distance"]
        if limit is None or graph.edge_index.shape[1] == 0:
            return
        vectors = edge_vectors(
            graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
        )
        lengths = torch.linalg.norm(vectors, dim=-1)
        shortest = int(torch.argmin(lengths))
        if float(lengths[shortest]) < limit:
            i, j = (int(x) for x in graph.edge_index[:, shortest])
            raise BadGeometryError(
                f"atoms {i} ({atoms[i].symbol}) and {j} ({atoms[j].symbol}) are "
                f"{float(lengths[shortest]):.3f} Å apart, closer than min_distance={limit} Å "
                "(pass min_distance=None to skip this check)"
            )

    def get_potentials(self, atoms: Atoms | None = None) -> np.ndarray:
        """Per-atom electrostatic potential φ in V (models with a Φ-Module)."""
        return self.get_property("potentials", atoms)

    def get_electrostatic_energy(self, atoms: Atoms | None = None) -> float:
        """Φ-Module energy E_ES in eV (included in the total energy)."""
        return self.get_property("electrostatic_energy", atoms)


def _inference_model(
    model: Potential | str | os.PathLike[str], device: torch.device, dtype: torch.dtype
) -> Potential:
    """The Potential to evaluate on ``device`` in ``dtype``, in eval mode.

    A caller's Potential is used as is when it is already on ``device``/``dtype`` in eval mode,
    else a copy is cast; its parameters, ``requires_grad`` and training flags are never touched
    (forces come from autograd with respect to the positions, not the parameters). A loaded
    model, or a copy, is ours: cast, in eval mode, without parameter gradients.
    """
    if isinstance(model, Potential):
        if model.device == device and model.dtype == dtype and not model.training:
            return model
        potential = copy.deepcopy(model)
    else:
        potential = load_model(model)
    potential = potential.to(device=device, dtype=dtype).eval()
    potential.requires_grad_(False)
    return potential
