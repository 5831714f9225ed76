"""OpenMM adapter: phicalc models as an openmm-ml potential.

With ``openmm`` and ``openmm-ml`` installed (extra ``phicalc[openmm]``), installing phicalc
registers the potential ``"phicalc"`` in openmm-ml's entry-point group ``openmmml.potentials``::

    from openmmml import MLPotential
    potential = MLPotential("phicalc", model="phi-painn-organic")
    system = potential.createSystem(topology, charge=0, multiplicity=1)

The force is an :class:`openmm.PythonForce` (no openmm-torch needed): each evaluation hands the
positions (nm) to a Python callback, which evaluates the Potential in Å/eV and returns

* energy: eV → kJ/mol (× 96.485 332 12, ASE's ``units.mol / units.kJ``),
* forces: eV/Å → kJ/mol/nm (the energy factor × 10 Å/nm).

Keyword arguments of ``createSystem`` / ``createMixedSystem`` read here: ``model`` (a shipped
name, a model file or a :class:`~phicalc.potential.Potential`; given to the constructor or
here), ``charge`` (total charge Q, e; default 0), ``multiplicity`` (2S+1; ``spin`` is accepted
too; default 1), ``device`` (default "cpu") and ``dtype`` ("float32" or "float64", default
"float64", matching OpenMM's double-precision Reference/CPU reductions) and ``edge_chunk``
(``PhiCalculator``'s option, default "auto": large systems sum messages in runs, see
:mod:`phicalc.nn.edge_chunks`). Periodic topologies (with box vectors) are evaluated
periodically, with the box read from each State.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from ase import Atoms, units

from phicalc.graph.batch import atoms_to_graph
from phicalc.nn.electrostatics.periodic import PeriodicSums
from phicalc.potential import Potential

#: eV → kJ/mol.
EV_TO_KJ_PER_MOL = float(units.mol / units.kJ)
#: eV/Å → kJ/mol/nm.
EV_PER_A_TO_KJ_PER_MOL_NM = EV_TO_KJ_PER_MOL * 10.0

try:
    from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

    _IMPORT_ERROR: ImportError | None = None
except ImportError as error:  # openmm-ml is optional
    _IMPORT_ERROR = error
    MLPotentialImpl = MLPotentialImplFactory = object  # type: ignore[assignment,misc]


class PhicalcEvaluator:
    """The PythonForce callback: positions (and box) of an OpenMM State → (kJ/mol, kJ/mol/nm).

    Args:
        model: the Potential (already on its device and dtype, in eval mode).
        numbers: [n_atoms] atomic numbers of the evaluated particles, in order.
        periodic: whether to use the State's periodic box.
        charge: total charge Q (e); multiplicity: 2S+1.
        edge_chunk: messages in runs of receivers, as ``PhiCalculator(edge_chunk=)``.
    """

    def __init__(
        self,
        model: Potential,
        numbers: Iterable[int],
        *,
        periodic: bool,
        charge: float = 0.0,
        multiplicity: int = 1,
        edge_chunk: int | str | None = "auto",
    ) -> None:
        from phicalc.calculator import edge_chunking_for

        self.model = model
        self.chunking = edge_chunking_for(model, edge_chunk, compile=False)
        # PME filters kept between steps at a fixed box, as the calculator keeps them
        self.periodic_sums = PeriodicSums.kept()
        self.atoms = Atoms(numbers=list(numbers), pbc=periodic)
        self.atoms.info.update(charge=float(charge), spin=int(multiplicity))
        self.periodic = periodic

    def energy_forces(
        self, positions_angstrom: np.ndarray, box_angstrom: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """(energy in eV, forces [n_atoms, 3] in eV/Å) at positions in Å (box rows in Å)."""
        self.atoms.positions = positions_angstrom
        if self.periodic and box_angstrom is not None:
            self.atoms.cell = box_angstrom
        graph = atoms_to_graph(
            self.atoms, self.model.cutoff, dtype=self.model.dtype, device=self.model.device
        )
        chunking = self.chunking(graph.edge_index.shape[1])
        out = self.model(
            graph,
            compute_forces=True,
            training=False,
            edge_chunking=chunking,
            periodic_sums=self.periodic_sums,
        )
        forces = out["forces"].detach().to("cpu", torch.float64).numpy()
        return float(out["energy"][0]), forces

    def __call__(self, state: Any) -> tuple[float, np.ndarray]:
        from openmm import unit

        positions = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        box = None
        if self.periodic:
            box = np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.angstrom))
        energy, forces = self.energy_forces(np.asarray(positions), box)
        return energy * EV_TO_KJ_PER_MOL, forces * EV_PER_A_TO_KJ_PER_MOL_NM


class PhicalcPotentialImpl(MLPotentialImpl):
    """openmm-ml implementation of the ``"phicalc"`` potential (see the module docstring)."""

    def __init__(self, name: str, model: Potential | str | os.PathLike[str] | None = None) -> None:
        self.name = name
        self.model = model

    def addForces(  # noqa: N802 (openmm-ml's method name)
        self,
        topology: Any,
        system: Any,
        atoms: Iterable[int] | None,
        forceGroup: int,  # noqa: N803
        **args: Any,
    ) -> None:
        import openmm

        from phicalc.calculator import DTYPES, _inference_model
        from phicalc.device import resolve_device

        model = args.get("model", self.model)
        if model is None:
            raise ValueError("MLPotential('phicalc') needs model=<shipped name, file or Potential>")
        device = resolve_device(args.get("device", "cpu"))
        potential = _inference_model(model, device, DTYPES[args.get("dtype", "float64")])
        every = list(topology.atoms())
        selected = every if atoms is None else [every[i] for i in atoms]
        if any(atom.element is None for atom in selected):
            raise ValueError("every atom of the Topology needs an element")
        periodic = topology.getPeriodicBoxVectors() is not None
        evaluator = PhicalcEvaluator(
            potential,
            [atom.element.atomic_number for atom in selected],
            periodic=periodic,
            charge=args.get("charge", 0.0),
            multiplicity=args.get("multiplicity", args.get("spin", 1)),
            edge_chunk=args.get("edge_chunk", "auto"),
        )
        force = openmm.PythonForce(evaluator)
        force.setForceGroup(forceGroup)
        force.setUsesPeriodicBoundaryConditions(periodic)
        if atoms is not None:
            force.setParticles(list(atoms))
        system.addForce(force)


class PhicalcPotentialImplFactory(MLPotentialImplFactory):
    """Entry point ``phicalc`` of the group ``openmmml.potentials``."""

    def createImpl(  # noqa: N802 (openmm-ml's method name)
        self, name: str, model: Potential | str | os.PathLike[str] | None = None, **args: Any
    ) -> PhicalcPotentialImpl:
        if _IMPORT_ERROR is not None:
            raise ImportError("needs openmm-ml: pip install 'phicalc[openmm]'") from _IMPORT_ERROR
        return PhicalcPotentialImpl(name, model)
