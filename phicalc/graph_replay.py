"""CUDA-graph replay of a Potential's energy and forces for one open structure at a time.

On a GPU a small molecule costs far more in kernel launches than in arithmetic: the forward and
backward pass of a 3-block PaiNN with Φ and Coulomb is about a thousand small kernels, each
launched by Python. A CUDA graph records those launches once and replays them with one call.
Replay needs fixed shapes and no reads of device memory by the host, so:

* the structure (atomic numbers, total charge, multiplicity) is fixed per recording; another
  structure records again;
* the edge list, which changes from step to step, is padded to a fixed capacity with inert
  edges (:func:`pad_open_graph`) and copied into the recorded buffers before each replay; a list
  that outgrows the capacity records again with more room;
* the model runs with ``validate=False`` (the caller has checked this structure), and every
  per-structure choice comes from the graph's host layout;
* a model that equilibrates charges per molecule gets the molecules (found on the host, a slot
  per atom) and a guess of their formal charges as buffers: the last call's, which hold until a
  molecule's equilibrium charge crosses a half-integer or a bond breaks. The model returns each
  molecule's equilibrium charge; where the rule gives other formal charges, the call runs again
  with them, so the numbers are always those of a plain call.

Inert padding edges: an open structure has no lattice, so the padded graph carries a cell of
:data:`PAD_LENGTH` · I that only padding edges use (atom 0 to itself, unit shift (1, 0, 0)).
Their length, PAD_LENGTH Å, is far beyond any cutoff, where every radial function of the
backbone and the Φ weights is exactly zero (:class:`~phicalc.nn.radial.PolynomialEnvelope`), so
they add exact zeros to every sum and to the forces. Real edges of an open structure have zero
shifts and never see the cell.

The fixed shapes also make ``torch.compile`` worthwhile (``compile=True``): one compiled graph of
the forward pass and its force derivative per recording (fused kernels, on the CPU too), where a
list whose length changed every step would compile again every step. Compiling takes about a
minute, so it pays off for runs of thousands of steps. It is refused on CUDA: there the compiled
charge equilibration returned NaN and the model's charges were off by 0.09 e on an H200 with
torch 2.11 (``reports/device/compile_diagnostic*.txt``), while the CPU's compiled code equals
plain calls (tested).

A :class:`GraphReplay` belongs to its caller (a calculator), like a neighbour list; the model
keeps no per-call state. Without CUDA the same buffers are evaluated without a graph, which is
what the tests check on a CPU.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch

from phicalc.errors import ConfigError
from phicalc.graph.batch import AtomGraph
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn.electrostatics.fragments import (
    bonded_pairs,
    formal_charges,
    molecules_of_bonds,
    slots_of,
)
from phicalc.potential import MOLECULE_EQUILIBRIUM_CHARGES, Potential

#: Length (Å) of the inert padding edges; far beyond any model cutoff.
PAD_LENGTH = 1000.0
#: The unit shift of a padding edge: atom 0 to its own image one padding cell away along x.
_PAD_SHIFT = torch.tensor([1, 0, 0], dtype=torch.int64)
#: Backbones whose every edge term carries the smooth cutoff envelope (exact zeros beyond it)
#: and whose forward pass reads nothing back from the device.
REPLAYABLE_BACKBONES = ("painn", "schnet")
#: Warm-up passes on a side stream before recording (lazy initialisation must not be recorded).
WARMUP_PASSES = 2


def _compile_errors() -> tuple[type[BaseException], ...]:
    """The exceptions by which torch.compile reports that it could not compile."""
    import torch._dynamo.exc

    errors: list[type[BaseException]] = [torch._dynamo.exc.BackendCompilerFailed]
    try:
        from torch._inductor.exc import InductorError

        errors.append(InductorError)
    except ImportError:  # older torch: inductor errors arrive as BackendCompilerFailed
        pass
    return tuple(errors)


def pad_open_graph(graph: AtomGraph, capacity: int) -> AtomGraph:
    """The graph of one open structure with its edges padded to ``capacity`` by inert edges.

    Args:
        graph: one open structure (``n_graphs == 1``, no periodic direction).
        capacity: number of edges of the result, ≥ the graph's edge count.

    Returns:
        A graph with ``edge_index`` [2, capacity], ``unit_shifts`` [capacity, 3] and the padding
        cell :data:`PAD_LENGTH` · I; atoms, charge and everything else unchanged.
    """
    if graph.n_graphs != 1 or bool(graph.pbc.any()):
        raise ValueError("pad_open_graph takes one open structure (n_graphs=1, pbc all False)")
    n_edges = graph.edge_index.shape[1]
    if capacity < n_edges:
        raise ValueError(f"capacity {capacity} is below the graph's {n_edges} edges")
    n_pad = capacity - n_edges
    index = graph.edge_index
    pad_index = torch.zeros((2, n_pad), dtype=index.dtype, device=index.device)
    pad_shifts = _PAD_SHIFT.to(graph.unit_shifts).expand(n_pad, 3)
    cell = PAD_LENGTH * torch.eye(3, dtype=graph.cell.dtype, device=graph.cell.device)
    return replace(
        graph,
        edge_index=torch.cat([index, pad_index], dim=1),
        unit_shifts=torch.cat([graph.unit_shifts, pad_shifts]),
        cell=cell.unsqueeze(0),
    )


def replay_blocker(model: Potential, graph: AtomGraph) -> str | None:
    """Why ``graph`` cannot be evaluated by replay with ``model``; ``None`` when it can."""
    if graph.n_graphs != 1:
        return "a batch of several structures"
    layout = graph.host_layout
    if layout is None:
        return "a graph made on the device (no host layout)"
    n_atoms, flags = layout[0]
    if any(flags):
        return "a periodic structure"
    if n_atoms == 0:
        return "an empty structure"
    if model.config.backbone not in REPLAYABLE_BACKBONES:
        return f"the {model.config.backbone} backbone"
    if model.phi is not None and (model.config.phi or {}).get("method", "spectral") != "spectral":
        return "the eigenbasis Φ path (a dense eigensolver)"
    if model.coulomb is not None and model.coulomb.method_for(n_atoms, flags) != "direct":
        return "a Coulomb method other than the direct sum"
    if model.cutoff >= PAD_LENGTH:
        return f"a cutoff beyond {PAD_LENGTH} Å"
    return None


@contextlib.contextmanager
def _trace_autograd() -> Iterator[None]:
    """Let torch.compile trace ``torch.autograd.grad`` (the forces) into the same graph instead of
    breaking there, where this torch has the switch."""
    import torch._dynamo

    if hasattr(torch._dynamo.config, "trace_autograd_ops"):
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            yield
    else:
        yield


@contextlib.contextmanager
def _cpu_codegen_workaround(device: torch.device) -> Iterator[None]:
    """Compile without SIMD on a multi-threaded CPU: inductor's vectorised atomic scatter-add
    fails an internal assertion there (torch 2.13, "Error in codegen for ... Scatter")."""
    import torch._inductor.config

    if device.type == "cpu" and torch.get_num_threads() > 1:
        with torch._inductor.config.patch({"cpp.simdlen": 1}):
            yield
    else:
        yield


def edge_capacity(n_edges: int, headroom: float) -> int:
    """Edges to make room for: ``headroom`` × ``n_edges``, rounded up to a multiple of 64."""
    return max(64, 64 * math.ceil(headroom * n_edges / 64))


class GraphReplay:
    """Energy, forces and electrostatics of one open structure, replayed from a CUDA graph.

    Args:
        model: a Potential in eval mode on its device and dtype.
        headroom: room for edges in a recording, × the edge count that triggered it.
        capture: record a CUDA graph (default: when the model is on CUDA); ``False`` evaluates
            the same padded buffers without one.
        compile: evaluate through ``torch.compile`` (static shapes; compiled again only for a
            new recording).

    Attributes:
        recordings: how many times a graph was recorded (a counter for tests and benchmarks).
        reruns: how many calls of a model with charge equilibration per molecule ran twice
            because the guessed formal charges were not the rule's (a counter).
    """

    def __init__(
        self,
        model: Potential,
        *,
        headroom: float = 1.25,
        capture: bool | None = None,
        compile: bool = False,
    ):
        if compile and model.device.type == "cuda":
            raise ConfigError(
                "compile=True is refused on CUDA: torch.compile's CUDA code gave wrong charges "
                "for this model (NaN from the charge equilibration; reports/device/"
                "compile_diagnostic_parts.txt); CUDA graphs (the default there) give the same "
                "numbers as plain calls"
            )
        self.model = model
        self.headroom = float(headroom)
        self.capture = model.device.type == "cuda" if capture is None else bool(capture)
        self.compile = bool(compile)
        self._compiled = None  # made at the first compiled call
        self.recordings = 0
        self._key: tuple | None = None
        self._capacity = 0
        self._static: AtomGraph | None = None
        self._cuda_graph: torch.cuda.CUDAGraph | None = None
        self._outputs: dict[str, torch.Tensor] = {}
        self._formal: tuple[torch.Tensor, torch.Tensor] | None = None  # last molecules, charges
        self._bonds: tuple[np.ndarray, torch.Tensor, torch.Tensor] | None = None  # and their bonds
        self.reruns = 0

    @property
    def compiled(self) -> bool:
        """Whether calls have gone through a compiled function (not before the first call, nor
        after a compiler failure fell back to plain calls)."""
        return self._compiled is not None

    @staticmethod
    def _no_recording() -> dict:
        return {
            "_key": None,
            "_capacity": 0,
            "_static": None,
            "_cuda_graph": None,
            "_outputs": {},
            "_formal": None,
            "_bonds": None,
        }

    def __getstate__(self) -> dict:
        """A copy (deep copy, pickle) keeps the settings and records afresh: a CUDA graph and a
        compiled function belong to the object that made them."""
        return {**self.__dict__, **self._no_recording(), "_compiled": None}

    def clear(self) -> None:
        """Drop the recording: the next call records afresh."""
        self.__dict__.update(self._no_recording())

    def __call__(
        self, graph: AtomGraph, lengths: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Outputs of ``model(graph, compute_forces=True)`` for one open structure.

        Args:
            graph: one open structure on the CPU, passing :func:`replay_blocker`.
            lengths: [n_edges] its edge lengths (Å) where the caller has them (the
                calculator's distance check); else computed here when needed (a model that
                equilibrates charges per molecule finds its molecules from them).

        Returns:
            The model's outputs on its device. They live in the recording's buffers and are
            overwritten by the next call: copy what you keep.
        """
        key = (
            graph.numbers.numpy().tobytes(),
            float(graph.total_charge[0]),
            float(graph.multiplicity[0]),
        )
        slots = None
        if self.model.config.equilibration_scope == "molecule":
            graph, slots = self._with_molecules(graph, lengths)
        n_edges = graph.edge_index.shape[1]
        if key != self._key or n_edges > self._capacity:
            self._record(graph, edge_capacity(n_edges, self.headroom), key)
        static = self._static
        assert static is not None
        # this step's edges into the recorded buffers, the rest back to inert padding
        static.positions.copy_(graph.positions)
        static.edge_index[:, :n_edges].copy_(graph.edge_index)
        static.edge_index[:, n_edges:] = 0
        static.unit_shifts[:n_edges].copy_(graph.unit_shifts)
        static.unit_shifts[n_edges:] = 0  # (1, 0, 0) = _PAD_SHIFT, set without a host copy
        static.unit_shifts[n_edges:, 0] = 1
        if slots is None:
            return self._run(static)
        return self._run_checking_formal_charges(static, graph, slots)

    def _run(self, static: AtomGraph) -> dict[str, torch.Tensor]:
        if self._cuda_graph is None:
            return self._forward(static)
        self._cuda_graph.replay()
        return self._outputs

    def _with_molecules(
        self, graph: AtomGraph, lengths: torch.Tensor | None
    ) -> tuple[AtomGraph, torch.Tensor]:
        """``graph`` with its molecules (a slot per atom) and a guess of their formal charges:
        the last call's where the molecules are the same, else the rule applied to zero sums;
        and the slots' owner (0, or −1 where unused)."""
        if lengths is None:
            vectors = edge_vectors(
                graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
            )
            lengths = torch.linalg.norm(vectors, dim=-1)
        n_atoms = graph.numbers.shape[0]
        bonds = bonded_pairs(graph.numbers, graph.edge_index, lengths)
        kept = self._bonds
        if kept is not None and kept[1].shape[0] == n_atoms and np.array_equal(kept[0], bonds):
            molecules, slots = kept[1], kept[2]  # the same bonds: the same molecules
        else:
            labels = molecules_of_bonds(bonds, n_atoms)
            molecules, slots = torch.as_tensor(labels), slots_of(labels)
            self._bonds = (bonds, molecules, slots)
        if self._formal is not None and torch.equal(self._formal[0], molecules):
            guess = self._formal[1]
        else:
            zeros = torch.zeros(molecules.shape[0], dtype=torch.float64)
            guess = formal_charges(zeros, molecules, slots, graph.total_charge, graph.numbers)
        return replace(graph, molecules=molecules, molecule_charges=guess), slots

    def _run_checking_formal_charges(
        self, static: AtomGraph, graph: AtomGraph, slots: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Run with the guessed formal charges; where the rule, applied to this geometry's
        equilibrium charges, gives others, run again with those (the equilibrium charges do
        not depend on the formal charges, so the second run's agree): plain calls' numbers."""
        assert graph.molecules is not None and graph.molecule_charges is not None
        assert static.molecules is not None and static.molecule_charges is not None
        static.molecules.copy_(graph.molecules)
        static.molecule_charges.copy_(graph.molecule_charges)
        out = self._run(static)
        sums = out[MOLECULE_EQUILIBRIUM_CHARGES].detach().cpu()
        formal = formal_charges(sums, graph.molecules, slots, graph.total_charge, graph.numbers)
        if not torch.equal(formal, graph.molecule_charges):
            self.reruns += 1
            static.molecule_charges.copy_(formal)
            out = self._run(static)
        self._formal = (graph.molecules, formal)
        return {k: v for k, v in out.items() if k != MOLECULE_EQUILIBRIUM_CHARGES}

    def _forward_eager(self, static: AtomGraph) -> dict[str, torch.Tensor]:
        return self.model(static, compute_forces=True, training=False, validate=False)

    def _forward(self, static: AtomGraph) -> dict[str, torch.Tensor]:
        if not self.compile:
            return self._forward_eager(static)
        if self._compiled is None:
            # a C++ wrapper calls the kernels: no Python between them (about 1 ms per call)
            self._compiled = torch.compile(
                self._forward_eager, dynamic=False, options={"cpp_wrapper": True}
            )
        try:
            with _trace_autograd(), _cpu_codegen_workaround(self.model.device):
                return self._compiled(static)
        except Exception as error:
            if not isinstance(error, _compile_errors()):
                raise
            # a compiler failure must not stop the run
            warnings.warn(
                f"torch.compile failed ({type(error).__name__}); evaluating without it",
                RuntimeWarning,
                stacklevel=3,
            )
            self.compile, self._compiled = False, None
            return self._forward_eager(static)

    def _record(self, graph: AtomGraph, capacity: int, key: tuple) -> None:
        self.clear()
        model = self.model
        static = pad_open_graph(graph, capacity).to(device=model.device, dtype=model.dtype)
        self._static, self._capacity, self._key = static, capacity, key
        self.recordings += 1
        if not self.capture:
            return
        side = torch.cuda.Stream(model.device)
        side.wait_stream(torch.cuda.current_stream(model.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_PASSES):
                self._forward(static)
        torch.cuda.current_stream(model.device).wait_stream(side)
        cuda_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(cuda_graph):
            self._outputs = self._forward(static)
        self._cuda_graph = cuda_graph
