"""PhiCalculator: an ASE calculator over a phicalc Potential.

One pass fills every property (ASE caches them): ``energy``, ``free_energy``, ``energies``,
``forces``, ``stress`` (3D-periodic cells, from the first call that asks for it on: before, MD
without a barostat and relaxations at a fixed cell skip its cost and take the cheaper
energy-only Coulomb sums; after, forces and stress come from one pass), and for models with
charges ``charges`` (e),
``dipole`` (e·Å, about the centre of mass), ``potentials`` (per-atom electrostatic potential, V:
the Coulomb potential of the charges when the model has a Coulomb term, else the Φ-Module's φ)
and ``electrostatic_energy`` (eV), with its parts ``phi_energy`` and ``coulomb_energy`` where
the model has them, and ``charge_state_energy`` (eV, the equilibration energy E_Q) for a model
with that term.

A calculator is safe to share between threads: :meth:`PhiCalculator.calculate` and
:meth:`PhiCalculator.get_property` hold one re-entrant lock, so one thread never sees results
half-written by another. Results are always finite (else :class:`NonFiniteResultError`), and a
structure far outside any training set warns (:class:`~phicalc.errors.ExtrapolationWarning`,
also logged): a pair of atoms closer than ``EXTRAPOLATION_DISTANCE_FACTOR`` × the sum of their
covalent radii, or an atom whose energy is more than ``EXTRAPOLATION_ENERGY_PER_ATOM`` eV from
its element's reference energy (the model's ``atomic_energies``).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import warnings
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from phicalc.batch_inference import is_3d_periodic, outputs_to_host, predict, split_results
from phicalc.compiled import (
    CompiledBackbone,
    CompiledForward,
    CompiledReceiverSums,
    CompiledRunGradients,
    backbone_compile_blocker,
)
from phicalc.config import check_choice, check_edge_chunk
from phicalc.device import resolve_device
from phicalc.errors import ConfigError, ExtrapolationWarning, NonFiniteResultError
from phicalc.graph.batch import (
    AtomGraph,
    atoms_to_graph,
    charge_and_multiplicity,
    check_min_distance,
)
from phicalc.graph.verlet import NeighborCache
from phicalc.graph_replay import GraphReplay, replay_blocker
from phicalc.nn.backbones.partition import PartitionCache
from phicalc.nn.edge_chunks import DEFAULT_EDGES_PER_CHUNK, EdgeChunking
from phicalc.nn.electrostatics.periodic import PeriodicSums
from phicalc.potential import Potential
from phicalc.serialization import load_model

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: A pair closer than this × the sum of its covalent radii warns (0.64 Å for C–H, 1.61 Å for
#: Na–Cl: the charge-aware models let Na⁺ and Cl⁻ fall to 1.55 Å, reports/ion_pair_md.md).
#: The closest pair in the shipped models' training data is at 0.61 × (Na–O 1.42 Å, in frames
#: of an ion-pair MD relabelled by GFN2-xTB); every other pair there is above 0.75 ×.
EXTRAPOLATION_DISTANCE_FACTOR = 0.6
#: An atom energy further than this (eV) from its element's reference energy warns.
EXTRAPOLATION_ENERGY_PER_ATOM = 20.0
#: ``edge_chunk="auto"`` sums the messages in runs above this many edges (about 10,000 atoms of
#: water), where an unchunked float32 force call of PaiNN peaks near 11 GB (6 GB compiled).
AUTO_CHUNK_EDGES = 1 << 19


class PhiCalculator(Calculator):
    """ASE calculator for phicalc potentials.

    Args:
        model: a :class:`Potential`, a model file path, or a shipped model name
            (e.g. ``"phi-painn-organic"``).
        device: "auto" (CUDA if available), "cpu", "cuda" or "cuda:N". The model stays there;
            each call moves positions in and results out.
        dtype: "float32" (fast) or "float64" (MD energy conservation, finite differences).
        charge: total charge Q (e) used when ``atoms.info`` has no ``"charge"``.
        spin: spin multiplicity 2S+1 used when ``atoms.info`` has no ``"spin"`` (default 1).
            A model built without charge and spin inputs refuses Q ≠ 0 or 2S+1 ≠ 1
            (:class:`~phicalc.errors.ChargeStateError`).
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
        neighbor_skin: Verlet skin in Å (finite, ≥ 0) or ``None`` (default: a fresh neighbour
            list every call). With a skin the calculator lists pairs to cutoff + skin and reuses
            that list until an atom has moved more than skin/2 Å (or numbers, cell or pbc
            change), keeping on every call the pairs now closer than the cutoff: the same edges
            as a fresh list, in a canonical order, so energies and forces equal a fresh list's
            up to summation order (≲ 1e-12 relative in float64). ``phicalc md`` uses 0.5 Å.
            :meth:`reset` drops the kept list.
        cuda_graphs: evaluate open single structures with PaiNN/SchNet models by replaying a
            recorded CUDA graph (:mod:`phicalc.graph_replay`): the same numbers as a plain call
            (up to summation order), without the per-kernel launch cost that dominates small
            molecules on a GPU. ``None`` (default): on when ``device`` is CUDA. Structures the
            replay cannot take (periodic, other backbones) are evaluated as usual. On a CPU,
            ``True`` evaluates the same padded buffers without a graph (what the tests check).
        compile: evaluate those structures through ``torch.compile`` on the replay's fixed
            shapes, on a CPU (about a minute to compile, then 2.6–2.8× faster per MD step for a
            42-atom molecule: for MD runs, not for a few calls), and :meth:`calculate_batch`'s
            chunks of open structures through a second compilation with symbolic sizes (one
            for every chunk; 1–2 minutes). Everything else (periodic cells: Ewald/PME, stress)
            goes through a compiled backbone with symbolic sizes (half a minute; about 2× faster
            calls for water boxes of 192–1,536 atoms). PaiNN and SchNet models; refused on CUDA
            (:class:`~phicalc.errors.ConfigError`), where it gave wrong charges.
        edge_chunk: sum the messages over runs of receivers of at most this many edges, each
            recomputed in the backward pass (:mod:`phicalc.nn.edge_chunks`), so a force call
            keeps one run's edge tensors instead of all of them: about 0.08 instead of 0.7 MB
            per atom of water (PaiNN, float32), for 1.2–1.5× the time of an unchunked plain
            call (with ``compile``, each run's sums and gradients through compiled functions:
            1.25–1.3× the compiled backbone's time). ``"auto"`` (default):
            runs of :data:`~phicalc.nn.edge_chunks.DEFAULT_EDGES_PER_CHUNK` edges for
            structures with more than :data:`AUTO_CHUNK_EDGES` edges (about 10,000 atoms of
            water), none below; ``None``: never. Backbones without ``supports_edge_chunks``
            ignore "auto" and refuse a number.

    A given :class:`Potential` is never changed: if it is not already on ``device``/``dtype``
    in eval mode, the calculator works on a copy.

    ``atoms.info["charge"]`` and ``atoms.info["spin"]`` are watched by :meth:`check_state`, so
    changing either recomputes.
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
        "phi_energy",
        "coulomb_energy",
        "charge_state_energy",
    ]

    def __init__(
        self,
        model: Potential | str | os.PathLike[str],
        *,
        device: str | torch.device = "auto",
        dtype: Literal["float32", "float64"] = "float32",
        charge: float = 0.0,
        spin: int = 1,
        min_distance: float | None = 0.5,
        partition_skin: float | None = None,
        neighbor_skin: float | None = None,
        cuda_graphs: bool | None = None,
        compile: bool = False,
        edge_chunk: int | Literal["auto"] | None = "auto",
        **kwargs: Any,
    ) -> None:
        check_choice("dtype", dtype, tuple(DTYPES))
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.dtype = DTYPES[dtype]
        self.model: Potential = _inference_model(model, self.device, self.dtype)
        self.partition_cache = None if partition_skin is None else PartitionCache(partition_skin)
        self.neighbor_cache = None if neighbor_skin is None else NeighborCache(neighbor_skin)
        self.stress_asked = False  # computed for 3D cells once asked for (module docstring)
        if cuda_graphs is None:
            cuda_graphs = self.device.type == "cuda"
        use_replay = cuda_graphs or compile
        self.graph_replay = (
            GraphReplay(
                self.model,
                capture=self.device.type == "cuda" and bool(cuda_graphs),
                compile=compile,
            )
            if use_replay
            else None
        )
        self.batch_forward = CompiledForward(self.model, dynamic=True) if compile else None
        self.compiled_backbone = (
            CompiledBackbone(self.model)
            if compile and backbone_compile_blocker(self.model) is None
            else None
        )
        self.periodic_sums = PeriodicSums.kept()
        self.edge_chunking = edge_chunking_for(self.model, edge_chunk, compile=compile)
        self.parameters.update(
            dtype=dtype,
            charge=float(charge),
            spin=int(spin),
            min_distance=min_distance,
            device=str(self.device),
            partition_skin=partition_skin,
            neighbor_skin=neighbor_skin,
            cuda_graphs=bool(cuda_graphs),
            compile=bool(compile),
            edge_chunk=edge_chunk,
        )
        self._last_charge_state: tuple[float, float] | None = None
        self._lock = threading.RLock()
        self._extrapolation: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)  # locks neither pickle nor deep-copy; a copy gets its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def get_property(self, name: str, atoms: Atoms | None = None, allow_calculation: bool = True):
        """As :meth:`ase.calculators.calculator.Calculator.get_property`, under the
        calculator's lock (so threads sharing it never read another call's results)."""
        with self._lock:
            return super().get_property(name, atoms, allow_calculation)

    def reset(self) -> None:
        """Clear the results, any kept partition and neighbour list (the next call starts
        afresh)."""
        super().reset()
        for name in ("partition_cache", "neighbor_cache", "graph_replay", "periodic_sums"):
            cache = getattr(self, name, None)  # ASE calls reset() before __init__ ends
            if cache is not None:
                cache.clear()

    # ASE's cache does not see atoms.info; the total charge and the spin live there.
    def _charge_state(self, atoms: Atoms) -> tuple[float, float]:
        """(Q in e, 2S+1) of ``atoms``: its info, else the calculator's defaults; validated."""
        return charge_and_multiplicity(
            atoms,
            charge=atoms.info.get("charge", self.parameters["charge"]),
            multiplicity=atoms.info.get("spin", self.parameters["spin"]),
        )

    def check_state(self, atoms: Atoms, tol: float = 1e-15) -> list[str]:
        """ASE's check (:func:`changes_since`: the same changes beyond ``tol``), plus the charge
        state in ``atoms.info``."""
        changes = changes_since(self.atoms, atoms, tol, set(self.ignored_changes))
        if self.atoms is not None and self._charge_state(atoms) != self._last_charge_state:
            changes = [*changes, "charge"]
        return changes

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Fill :attr:`results` for ``atoms`` (under the calculator's lock).

        Raises:
            BadGeometryError: NaN/inf positions or cell, atoms closer than ``min_distance``,
                an invalid ``info["charge"]``/``info["spin"]``.
            NonFiniteResultError: The model returned NaN or infinite values.
        """
        with self._lock:
            self._calculate(atoms, properties, system_changes)

    def _calculate(
        self,
        atoms: Atoms | None,
        properties: list[str] | None,
        system_changes: list[str],
    ) -> None:
        self.results = {}
        super().calculate(atoms, properties or ["energy"], system_changes)
        atoms = self.atoms
        charge_state = self._charge_state(atoms)
        graph = atoms_to_graph(
            atoms,
            self.model.cutoff,
            total_charge=charge_state[0],
            multiplicity=charge_state[1],
            dtype=self.dtype,
            neighbor_cache=self.neighbor_cache,
        )  # on the CPU: the replay copies it into its buffers, a plain call moves it
        lengths = check_min_distance(graph, self.parameters["min_distance"])
        self.stress_asked = self.stress_asked or "stress" in (properties or [])
        compute_stress = self.stress_asked and is_3d_periodic(atoms)
        chunking = self.edge_chunking(graph.edge_index.shape[1])
        replay = self.graph_replay is not None and replay_blocker(self.model, graph) is None
        if chunking is None and replay:
            out = self.graph_replay(graph, lengths)
        else:  # in runs, the compiled backbone's place is taken by compiled runs
            out = self.model(
                graph.to(self.device),
                compute_forces=True,
                compute_stress=compute_stress,
                training=False,
                partition_cache=self.partition_cache,
                backbone_call=self.compiled_backbone if chunking is None else None,
                edge_chunking=chunking,
                periodic_sums=self.periodic_sums,
            )
        arrays = outputs_to_host(out)
        bad = [name for name, value in arrays.items() if not np.isfinite(value).all()]
        if bad:
            raise NonFiniteResultError(
                f"the model returned non-finite {', '.join(sorted(bad))} for "
                f"{atoms.get_chemical_formula()}: the structure is far outside its training"
            )
        self._last_charge_state = charge_state
        (results,) = split_results(self.model, arrays, graph, [compute_stress])
        self._check_extrapolation(atoms, graph, lengths, results["energies"])
        self.results = results  # all at once: never a partial set

    def _check_extrapolation(
        self, atoms: Atoms, graph: AtomGraph, lengths: torch.Tensor | None, energies: np.ndarray
    ) -> None:
        """Warn (once per entry into the regime; logged as well) where ``atoms`` is far
        outside any training set: see the module docstring."""
        from ase.data import covalent_radii

        reasons = []
        if lengths is not None and lengths.numel():
            i, j = graph.edge_index.cpu().numpy()
            numbers = atoms.numbers
            ratio = lengths.detach().cpu().double().numpy() / (
                covalent_radii[numbers[i]] + covalent_radii[numbers[j]]
            )
            worst = int(np.argmin(ratio))
            if ratio[worst] < EXTRAPOLATION_DISTANCE_FACTOR:
                a, b = int(i[worst]), int(j[worst])
                reasons.append(
                    f"atoms {a} ({atoms[a].symbol}) and {b} ({atoms[b].symbol}) are "
                    f"{float(lengths[worst]):.3f} Å apart, {ratio[worst]:.2f} × their covalent "
                    "radii"
                )
        if len(energies):  # E0 of each atom's element (the model has checked every element)
            species = self.model.species_of_z.detach().cpu().numpy()[atoms.numbers]
            reference = self.model.atomic_energies.detach().cpu().double().numpy()[species]
            offset = np.abs(energies - reference)
            worst = int(np.argmax(offset))
            if offset[worst] > EXTRAPOLATION_ENERGY_PER_ATOM:
                reasons.append(
                    f"atom {worst} ({atoms[worst].symbol}) has an energy "
                    f"{offset[worst]:.3g} eV from its element's reference"
                )
        reason = "; ".join(reasons) if reasons else None
        if reason is not None and self._extrapolation is None:
            message = (
                f"{atoms.get_chemical_formula()} is far outside what the model was trained on "
                f"({reason}): its energy and forces are not to be trusted"
            )
            warnings.warn(message, ExtrapolationWarning, stacklevel=4)
            logger.warning("%s", message)
        self._extrapolation = reason

    @property
    def extrapolation(self) -> str | None:
        """Why the structure of the last calculation is far outside what the model was trained
        on (close pairs, absurd atom energies: see the module docstring), ``None`` when it is
        not. The MD guard stops a run on it (:class:`phicalc.md.guards.RunGuard`)."""
        return self._extrapolation

    def calculate_batch(
        self, structures: list[Atoms], *, max_atoms: int | None = None
    ) -> list[dict[str, Any]]:
        """Results of many structures from batched forward passes (see
        :func:`phicalc.batch_inference.predict`), one dict per structure with the keys and units
        of :attr:`results`; this calculator's charge, spin and min_distance defaults apply.
        ``max_atoms``: atom budget of one pass (default
        :func:`~phicalc.batch_inference.default_max_atoms`). With ``compile=True`` chunks of open
        structures go through the calculator's compiled pass, the others through its compiled
        backbone. The calculator's cache is untouched."""
        return predict(
            self.model,
            structures,
            charge=self.parameters["charge"],
            spin=self.parameters["spin"],
            max_atoms=max_atoms,
            min_distance=self.parameters["min_distance"],
            compiled=self.batch_forward,
            compiled_backbone=self.compiled_backbone,
            periodic_sums=self.periodic_sums,
        )

    def get_potentials(self, atoms: Atoms | None = None) -> np.ndarray:
        """Per-atom electrostatic potential in V: V_i = k_e Σ_j q_j f(r_ij)/r_ij of the learned
        charges for models with a Coulomb term, else the Φ-Module's graph potential φ."""
        return self.get_property("potentials", atoms)

    def get_electrostatic_energy(self, atoms: Atoms | None = None) -> float:
        """Electrostatic energy in eV (included in the total): Φ graph energy + Coulomb."""
        return self.get_property("electrostatic_energy", atoms)


class ChunkingPolicy:
    """When a calculator sums messages in runs of receivers (``PhiCalculator(edge_chunk=)``):
    ``policy(n_edges)`` is the :class:`EdgeChunking` for a structure of that many edges, or
    None for an unchunked call."""

    def __init__(self, chunking: EdgeChunking | None, above_edges: int) -> None:
        self.chunking = chunking
        self.above_edges = above_edges

    def __call__(self, n_edges: int) -> EdgeChunking | None:
        return self.chunking if n_edges > self.above_edges else None


def edge_chunking_for(
    model: Potential, edge_chunk: int | str | None, *, compile: bool
) -> ChunkingPolicy:
    """The chunking policy of ``PhiCalculator(edge_chunk=...)`` for ``model``: "auto" chunks
    structures above :data:`AUTO_CHUNK_EDGES` edges where the backbone can, a number chunks
    every structure, None none (:class:`ConfigError` for anything else)."""
    check_edge_chunk(edge_chunk)
    supported = model.backbone.supports_edge_chunks
    if edge_chunk is None or (edge_chunk == "auto" and not supported):
        return ChunkingPolicy(None, 0)
    if not supported:
        raise ConfigError(f"the {model.config.backbone} backbone does not sum messages in chunks")
    if edge_chunk == "auto":
        max_edges, above = DEFAULT_EDGES_PER_CHUNK, AUTO_CHUNK_EDGES
    else:
        max_edges, above = int(edge_chunk), 0
    if compile and backbone_compile_blocker(model) is None:
        compiled = EdgeChunking(max_edges, CompiledReceiverSums(model), CompiledRunGradients(model))
        return ChunkingPolicy(compiled, above)
    return ChunkingPolicy(EdgeChunking(max_edges), above)


def changes_since(
    old: Atoms | None, new: Atoms, tol: float = 1e-15, excluded: set[str] | None = None
) -> list[str]:
    """The system changes of ASE's :func:`~ase.calculators.calculator.compare_atoms` (cell,
    pbc and the arrays named in ``all_changes`` that differ by more than ``tol``, or that one of
    the two lacks), with an exact comparison before each tolerant one: an MD step asks two or
    three times about atoms that have not moved since, and ASE's ``allclose`` of every array
    costs ~0.1 ms each time (identical values are within any tolerance)."""
    if old is None:
        return list(all_changes)
    names = [name for name in all_changes if name not in (excluded or ())]
    changes = []
    for name in names:
        if name in ("cell", "pbc"):
            a, b = getattr(old, name), getattr(new, name)
            a, b = (a.array, b.array) if name == "cell" else (a, b)
        elif (name in old.arrays) != (name in new.arrays):
            changes.append(name)
            continue
        elif name not in old.arrays:
            continue
        else:
            a, b = old.arrays[name], new.arrays[name]
        if np.array_equal(a, b):
            continue
        if np.shape(a) != np.shape(b) or not np.allclose(a, b, rtol=0, atol=tol):
            changes.append(name)
    return changes


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
