"""TorchSim adapter: a phicalc Potential as a ``torch_sim`` ``ModelInterface``.

TorchSim (``pip install torch-sim-atomistic``; extra ``phicalc[torchsim]``) integrates many
systems at once on one device: its :class:`~torch_sim.state.SimState` holds every atom of every
system, with ``system_idx`` [n_atoms] saying which system an atom belongs to. This adapter turns a
state into one phicalc :class:`~phicalc.graph.batch.AtomGraph` (one neighbour list per system,
collated) and evaluates the Potential once for the whole batch.

Conventions (TorchSim's, which this adapter converts):

* ``state.cell`` [n_systems, 3, 3] holds lattice vectors as **columns**; phicalc (like ASE)
  stores them as rows, so the graph gets ``state.cell.mT``.
* ``state.pbc`` is one flag for all systems (all three directions). With ``pbc=False`` the cell
  is ignored (molecules).
* Units: Å, eV, amu; outputs ``energy`` [n_systems] (eV), ``forces`` [n_atoms, 3] (eV/Å),
  ``stress`` [n_systems, 3, 3] (eV/Å³, σ = (1/V) ∂E/∂ε, ASE's sign), and when the model has
  charges also ``charges`` [n_atoms] (e), ``dipole`` [n_systems, 3] (e·Å) and ``potentials``
  [n_atoms] (V).
* Total charge Q and spin multiplicity 2S+1 per system: ``state.charge`` / ``state.spin``
  ([n_systems]) when the state carries them, else the adapter's ``charge`` / ``spin`` defaults
  (a scalar or one value per system).

When torch-sim is not installed, importing this module still works; constructing
:class:`PhiTorchSimModel` raises the stored ``ImportError``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from phicalc.graph.batch import AtomGraph, collate
from phicalc.graph.neighbors import build_neighbor_list
from phicalc.nn.electrostatics.periodic import PeriodicSums
from phicalc.potential import Potential

try:
    from torch_sim.models.interface import ModelInterface

    _IMPORT_ERROR: ImportError | None = None
except ImportError as error:  # torch-sim is optional
    _IMPORT_ERROR = error

    class ModelInterface(torch.nn.Module):  # type: ignore[no-redef]
        """Placeholder base while torch-sim is missing (see the module docstring)."""


def _per_system(
    value: float | Sequence[float] | torch.Tensor, n: int, like: torch.Tensor
) -> torch.Tensor:
    """A scalar or per-system value as a [n] tensor on ``like``'s device/dtype."""
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return tensor.expand(n).clone() if tensor.ndim == 0 else tensor.reshape(n)


class PhiTorchSimModel(ModelInterface):
    """A phicalc model for TorchSim.

    Args:
        model: a :class:`Potential`, a model file or a shipped model name.
        device: where to evaluate (default: the Potential's device, CPU for loaded files).
        dtype: float32 or float64 (the Potential is cast; a given Potential is copied, not changed).
        compute_forces: return ``forces`` (TorchSim's integrators need them).
        compute_stress: return ``stress`` (NPT, cell relaxation); zeros for non-periodic states.
        charge: default total charge(s) Q in e.
        spin: default spin multiplicity(ies) 2S+1.
        edge_chunk: messages in runs of receivers, as ``PhiCalculator(edge_chunk=)`` ("auto":
            batches above :data:`~phicalc.calculator.AUTO_CHUNK_EDGES` edges).
    """

    def __init__(
        self,
        model: Potential | str | os.PathLike[str],
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
        compute_forces: bool = True,
        compute_stress: bool = False,
        charge: float | Sequence[float] = 0.0,
        spin: int | Sequence[int] = 1,
        edge_chunk: int | str | None = "auto",
    ) -> None:
        if _IMPORT_ERROR is not None:
            raise ImportError(
                "PhiTorchSimModel needs torch-sim: pip install 'phicalc[torchsim]'"
            ) from _IMPORT_ERROR
        super().__init__()
        from phicalc.calculator import _inference_model, edge_chunking_for

        if device is None:
            device = model.device if isinstance(model, Potential) else torch.device("cpu")
        self._device = torch.device(device)
        self._dtype = dtype
        self._compute_forces = compute_forces
        self._compute_stress = compute_stress
        self._memory_scales_with = "n_atoms_x_density"
        self.potential = _inference_model(model, self._device, dtype)
        self.charge, self.spin = charge, spin
        self._chunking = edge_chunking_for(self.potential, edge_chunk, compile=False)
        # PME filters kept between steps at a fixed cell, as the calculator keeps them
        self._periodic_sums = PeriodicSums.kept()

    # compute_forces / compute_stress may be switched on (validate_model_outputs does)
    @property
    def compute_forces(self) -> bool:
        return self._compute_forces

    @compute_forces.setter
    def compute_forces(self, value: bool) -> None:
        self._compute_forces = bool(value)

    @property
    def compute_stress(self) -> bool:
        return self._compute_stress

    @compute_stress.setter
    def compute_stress(self, value: bool) -> None:
        self._compute_stress = bool(value)

    def state_to_graph(self, state: Any) -> AtomGraph:
        """The batched graph of a SimState (or a dict with the same fields); inputs unchanged."""
        get = state.get if isinstance(state, dict) else lambda k, d=None: getattr(state, k, d)
        positions = get("positions").to(self._device, self._dtype)
        numbers = get("atomic_numbers").to(self._device, torch.int64)
        system_idx = get("system_idx")
        if system_idx is None:
            system_idx = torch.zeros(len(numbers), dtype=torch.int64)
        system_idx = system_idx.to(self._device, torch.int64)
        n_systems = int(system_idx.max()) + 1 if len(system_idx) else 0
        cells = get("cell").to(self._device, self._dtype).reshape(-1, 3, 3).mT  # columns → rows
        periodic = bool(torch.as_tensor(get("pbc")).all())
        pbc = torch.full((3,), periodic, dtype=torch.bool)
        like = positions.new_zeros(())
        charge = get("charge", None)
        spin = get("spin", None)
        charges = _per_system(self.charge if charge is None else charge, n_systems, like)
        spins = _per_system(self.spin if spin is None else spin, n_systems, like)
        graphs = []
        for s in range(n_systems):
            mask = system_idx == s
            pos = positions[mask]
            cell = cells[s] if periodic else torch.zeros_like(cells[s])
            edge_index, shifts = build_neighbor_list(pos, cell, pbc, self.potential.cutoff)
            graphs.append(
                AtomGraph(
                    positions=pos,
                    numbers=numbers[mask],
                    cell=cell.unsqueeze(0),
                    pbc=pbc.unsqueeze(0).to(self._device),
                    batch=torch.zeros(len(pos), dtype=torch.int64, device=self._device),
                    edge_index=edge_index.to(self._device),
                    unit_shifts=shifts.to(self._device),
                    total_charge=charges[s : s + 1],
                    multiplicity=spins[s : s + 1],
                    n_graphs=1,
                )
            )
        return collate(graphs)

    def forward(self, state: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Energy [n_systems], forces [n_atoms, 3], stress [n_systems, 3, 3] and charges of a
        batched state (atoms must be grouped by system, as SimState keeps them)."""
        graph = self.state_to_graph(state)
        out = self.potential(
            graph,
            compute_forces=self._compute_forces,
            compute_stress=self._compute_stress,
            training=False,
            edge_chunking=self._chunking(graph.edge_index.shape[1]),
            periodic_sums=self._periodic_sums,
        )
        result = {"energy": out["energy"].to(self._dtype)}
        if self._compute_forces:
            result["forces"] = out["forces"]
        if self._compute_stress:
            result["stress"] = out["stress"]
        for name in ("charges", "dipole", "potentials"):
            if name in out:
                result[name] = out[name].to(self._dtype)
        return result
