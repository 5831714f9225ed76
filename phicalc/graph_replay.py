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
list whose length changed every step would compile again every step. The buffers are the same
tensors at every call of a recording, so once a call's guards have passed, the compiled code they
chose runs without evaluating them again (0.1-0.3 ms a call on a small molecule). Compiling takes
about a minute, so it pays off for runs of thousands of steps. It is refused on CUDA: there the
compiled charge equilibration returned NaN and the model's charges were off by 0.09 e on an H200
with torch 2.11 (``reports/device/compile_diagnostic*.txt``), while the CPU's compiled code
equals plain calls (tested).

A :class:`GraphReplay` belongs to its caller (a calculator), like a neighbour list; the model
keeps no per-call state. Without CUDA the same buffers are evaluated without a graph, which is
what the tests check on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from phicalc.compiled import CompiledForward, compile_blocker
from phicalc.graph.batch import AtomGraph
from phicalc.molecule_charges import edge_lengths, run_at_formal_charges
from phicalc.nn.electrostatics.fragments import (
    FormalChargeRule,
    bonded_pairs,
    molecules_of_bonds,
    slots_of,
)
from phicalc.potential import Potential

#: Length (Å) of the inert padding edges; far beyond any model cutoff.
PAD_LENGTH = 1000.0
#: The unit shift of a padding edge: atom 0 to its own image one padding cell away along x.
_PAD_SHIFT = torch.tensor([1, 0, 0], dtype=torch.int64)
#: Backbones whose every edge term carries the smooth cutoff envelope (exact zeros beyond it)
#: and whose forward pass reads nothing back from the device.
REPLAYABLE_BACKBONES = ("painn", "schnet")
#: Warm-up passes on a side stream before recording (lazy initialisation must not be recorded).
WARMUP_PASSES = 2


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
    blocker = compile_blocker(model, graph)
    if blocker is not None:
        return blocker
    assert graph.host_layout is not None
    if graph.host_layout[0][0] == 0:
        return "an empty structure"
    if model.config.backbone not in REPLAYABLE_BACKBONES:
        return f"the {model.config.backbone} backbone"
    if model.cutoff >= PAD_LENGTH:
        return f"a cutoff beyond {PAD_LENGTH} Å"
    return None


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
        self._compiled = CompiledForward(model, dynamic=False) if compile else None
        self.model = model
        self.headroom = float(headroom)
        self.capture = model.device.type == "cuda" if capture is None else bool(capture)
        self.recordings = 0
        self._key: tuple | None = None
        self._capacity = 0
        self._static: AtomGraph | None = None
        self._cuda_graph: torch.cuda.CUDAGraph | None = None
        self._outputs: dict[str, torch.Tensor] = {}
        self._formal: tuple[torch.Tensor, torch.Tensor] | None = None  # last molecules, charges
        self._bonds: tuple | None = None  # (key, bonds, molecules, their formal-charge rule)
        self._guarded = False  # a compiled call on this recording's buffers passed its guards
        self.reruns = 0

    @property
    def compile(self) -> bool:
        """Whether calls go through torch.compile (False after a compiler failure)."""
        return self._compiled is not None and self._compiled.enabled

    @property
    def compiled(self) -> bool:
        """Whether calls have gone through a compiled function (not before the first call, nor
        after a compiler failure fell back to plain calls)."""
        return self._compiled is not None and self._compiled.compiled

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
            "_guarded": False,
        }

    def __getstate__(self) -> dict:
        """A copy (deep copy, pickle) keeps the settings and records afresh: a CUDA graph and a
        compiled function belong to the object that made them."""
        return {**self.__dict__, **self._no_recording()}

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
        rule = None
        if self.model.config.equilibration_scope == "molecule":
            graph, rule = self._with_molecules(graph, lengths, key)
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
        if rule is None:
            return self._run(static)
        return self._run_checking_formal_charges(static, graph, rule)

    def _run(self, static: AtomGraph) -> dict[str, torch.Tensor]:
        if self._cuda_graph is None:
            return self._forward(static)
        self._cuda_graph.replay()
        return self._outputs

    def _with_molecules(
        self, graph: AtomGraph, lengths: torch.Tensor | None, key: tuple
    ) -> tuple[AtomGraph, FormalChargeRule]:
        """``graph`` with its molecules (a slot per atom: unused slots are owned by −1) and a
        guess of their formal charges: the last call's where the molecules are the same, else
        the rule applied to zero sums; and the formal-charge rule of those molecules (kept with
        them while the bonds and the structure's ``key`` stay the same)."""
        if lengths is None:
            lengths = edge_lengths(graph)
        n_atoms = graph.numbers.shape[0]
        bonds = bonded_pairs(graph.numbers, graph.edge_index, lengths)
        kept = self._bonds
        if kept is not None and kept[0] == key and np.array_equal(kept[1], bonds):
            molecules, rule = kept[2], kept[3]  # the same bonds: the same molecules
        else:
            labels = molecules_of_bonds(bonds, n_atoms)
            molecules = torch.as_tensor(labels)
            rule = FormalChargeRule(molecules, slots_of(labels), graph.total_charge, graph.numbers)
            self._bonds = (key, bonds, molecules, rule)
        if self._formal is not None and torch.equal(self._formal[0], molecules):
            guess = self._formal[1]
        else:
            guess = rule(torch.zeros(n_atoms, dtype=torch.float64))
        return replace(graph, molecules=molecules, molecule_charges=guess), rule

    def _run_checking_formal_charges(
        self, static: AtomGraph, graph: AtomGraph, rule: FormalChargeRule
    ) -> dict[str, torch.Tensor]:
        """Run with the guessed formal charges, again with the rule's where they differ
        (:func:`~phicalc.molecule_charges.run_at_formal_charges`): plain calls' numbers."""
        assert static.molecules is not None and static.molecule_charges is not None
        assert graph.molecules is not None
        static.molecules.copy_(graph.molecules)

        def run(given: AtomGraph) -> dict[str, torch.Tensor]:
            assert static.molecule_charges is not None and given.molecule_charges is not None
            static.molecule_charges.copy_(given.molecule_charges)
            return self._run(static)

        out, formal, reran = run_at_formal_charges(run, graph, rule)
        self.reruns += int(reran)
        self._formal = (graph.molecules, formal)
        return out

    def _forward(self, static: AtomGraph) -> dict[str, torch.Tensor]:
        if self._compiled is None:
            return self.model(static, compute_forces=True, training=False, validate=False)
        # the same buffers at every call of a recording: once their guards have passed, the
        # compiled code they chose is run without evaluating them again
        out = self._compiled(static, same_inputs=self._guarded)
        self._guarded = self._compiled.enabled
        return out

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
