"""A Potential's force pass, or its backbone, through ``torch.compile`` (CPU inductor).

Compiled code fuses the many small element-wise products of the message passing into a few
loops over the edges, which on a CPU removes most of an eager pass's memory traffic and Python
dispatch. Each compiled object is owned by its caller (a calculator), never by the model:

* :class:`CompiledForward` evaluates ``model(graph, compute_forces=True, training=False,
  validate=False)`` of open structures, the forces traced into the same graph
  (``torch.autograd.grad``): ``dynamic=False`` for :class:`~phicalc.graph_replay.GraphReplay`'s
  padded buffers of one structure (compiled again only for a new recording), ``dynamic=True``
  for batches of any composition (:func:`phicalc.batch_inference.predict`: one compilation
  serves every chunk). The caller has validated the graph.
* :class:`CompiledBackbone` evaluates the backbone alone, with symbolic sizes, for everything
  else (periodic cells: Ewald/PME and the stress stay plain around it).
* :class:`CompiledReceiverSums` and :class:`CompiledRunGradients` evaluate one run of a message
  block's sums, and its gradients in the backward pass, with symbolic sizes, where the messages
  are summed in runs of receivers (:mod:`phicalc.nn.edge_chunks`: large structures); the loop
  over runs and the rest of the pass stay plain.

A compiler failure warns once and falls back to plain calls for good: a run must never stop
because the compiler could not cope. Refused on CUDA, where compiled code gave wrong charges
(``reports/device/compile_diagnostic*.txt``).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import torch

from phicalc.errors import ConfigError
from phicalc.graph.batch import AtomGraph
from phicalc.nn.backbones.base import BackboneOutput, Geometry
from phicalc.nn.edge_chunks import run_gradients
from phicalc.potential import Potential

#: Why compiling is refused on CUDA.
CUDA_REFUSAL = (
    "compile=True is refused on CUDA: torch.compile's CUDA code gave wrong charges for this model "
    "(NaN from the charge equilibration; reports/device/compile_diagnostic_parts.txt); CUDA "
    "graphs (the default there) give the same numbers as plain calls"
)


def compile_errors() -> tuple[type[BaseException], ...]:
    """The exceptions by which torch.compile reports that it could not compile."""
    import torch._dynamo.exc

    errors: list[type[BaseException]] = [torch._dynamo.exc.BackendCompilerFailed]
    try:
        from torch._inductor.exc import InductorError

        errors.append(InductorError)
    except ImportError:  # older torch: inductor errors arrive as BackendCompilerFailed
        pass
    return tuple(errors)


@contextlib.contextmanager
def config_values(config: Any, values: dict[str, Any]) -> Iterator[None]:
    """``config.patch(values)`` for a torch config module, without its per-entry bookkeeping (a
    class and a context variable made at each entry, ~0.1 ms, paid by every compiled call):
    the same writes, and the values found restored on exit."""
    before = {name: getattr(config, name) for name in values}
    for name, value in values.items():
        setattr(config, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(config, name, value)


def trace_autograd() -> contextlib.AbstractContextManager:
    """Let torch.compile trace ``torch.autograd.grad`` (the forces) into the same graph instead of
    breaking there, where this torch has the switch."""
    import torch._dynamo

    if hasattr(torch._dynamo.config, "trace_autograd_ops"):
        return config_values(torch._dynamo.config, {"trace_autograd_ops": True})
    return contextlib.nullcontext()


#: Whether this torch's ``torch.compiler.set_stance`` can skip guard evaluation.
_CAN_SKIP_GUARDS = (
    "skip_guard_eval_unsafe" in inspect.signature(torch.compiler.set_stance).parameters
)


#: Held around every compiled call of this module's objects: dynamo's stance (guard skipping) and
#: the settings entered around a call (:func:`config_values`) are process-wide, so no other
#: thread's compiled call may start while one runs with them.
COMPILED_CALLS = threading.RLock()


def guards_skipped(skip: bool) -> contextlib.AbstractContextManager:
    """Run compiled code without evaluating the guards that chose it
    (``torch.compiler.set_stance(skip_guard_eval_unsafe=True)``: only the guards that tell its
    compiled entries apart run), where ``skip`` and this torch has the switch. Only for a caller
    that passes the very tensors (the same objects, shapes, dtypes and devices) of an earlier
    call whose guards passed: evaluating them costs 0.1-0.3 ms a call on a small molecule."""
    if skip and _CAN_SKIP_GUARDS:
        return torch.compiler.set_stance(skip_guard_eval_unsafe=True)
    return contextlib.nullcontext()


def _refused_to_skip_guards(error: Exception) -> bool:
    """Whether ``error`` is torch's refusal to run a call without guards (no compiled entry
    for its inputs: it would have to compile or run eagerly)."""
    return isinstance(error, RuntimeError) and "skip_guard_eval_unsafe" in str(error)


def cpu_codegen_workaround(device: torch.device) -> contextlib.AbstractContextManager:
    """Compile without SIMD on a multi-threaded CPU: inductor's vectorised atomic scatter-add
    fails an internal assertion there (torch 2.13, "Error in codegen for ... Scatter")."""
    import torch._inductor.config

    if device.type == "cpu" and torch.get_num_threads() > 1:
        return config_values(torch._inductor.config, {"cpp.simdlen": 1})
    return contextlib.nullcontext()


#: Backbones whose force pass compiles and has been checked against plain calls (tests).
COMPILABLE_BACKBONES = ("painn", "schnet")


def compile_blocker(model: Potential, graph: AtomGraph) -> str | None:
    """Why ``graph`` (one structure or a batch, with its host layout) cannot go through a
    compiled pass of ``model`` (:class:`CompiledForward`); ``None`` when it can. Open structures
    only: periodic cells take Ewald/PME and the stress, which stay plain (around a
    :class:`CompiledBackbone`)."""
    layout = graph.host_layout
    if layout is None:
        return "a graph made on the device (no host layout)"
    if any(any(flags) for _, flags in layout):
        return "a periodic structure"
    backbone = backbone_compile_blocker(model)
    if backbone is not None:
        return backbone
    if model.phi is not None and (model.config.phi or {}).get("method", "spectral") != "spectral":
        return "the eigenbasis Φ path (a dense eigensolver)"
    coulomb = model.coulomb
    if coulomb is not None and any(coulomb.method_for(n, f) != "direct" for n, f in layout):
        return "a Coulomb method other than the direct sum"
    return None


class LazyCompiled(ABC):
    """A call compiled by ``torch.compile`` at its first use, with a fallback: a compiler
    failure warns once and turns compiling off for good (plain calls from then on), so a run
    never stops because the compiler could not cope. Subclasses define :meth:`eager`.

    Attributes:
        enabled: False once a compiler failure has turned compiling off (calls are plain then).
        skip_guards: whether calls with ``same_inputs`` run without guard evaluation; False
            once torch refused (no compiled code for those inputs to run, e.g. past dynamo's
            recompile limit, where it evaluates them eagerly): guards are evaluated from then on.
    """

    def __init__(self, model: Potential, *, dynamic: bool) -> None:
        if model.device.type == "cuda":
            raise ConfigError(CUDA_REFUSAL)
        self.model = model
        self.dynamic = bool(dynamic)
        self.enabled = True
        self.skip_guards = True
        self._compiled = None  # made at the first call

    @property
    def compiled(self) -> bool:
        """Whether calls have gone through a compiled function (not before the first call, nor
        after a compiler failure fell back to plain calls)."""
        return self._compiled is not None

    def __getstate__(self) -> dict:
        """A copy (deep copy, pickle) compiles afresh: a compiled function belongs to the
        object that made it."""
        return {**self.__dict__, "_compiled": None}

    @abstractmethod
    def eager(self, *args: Any) -> Any:
        """The plain call this object compiles."""

    def tracing(self) -> contextlib.AbstractContextManager:
        """Settings for tracing (compiling) :meth:`eager`; none by default."""
        return contextlib.nullcontext()

    def __call__(self, *args: Any, same_inputs: bool = False) -> Any:
        """:meth:`eager`'s result, through the compiled function.

        ``same_inputs``: the caller passes the very tensors of an earlier call of this object
        that went through the compiled function (buffers it refills in place, as graph replay
        does): the guards that chose the compiled code are not evaluated again
        (:func:`guards_skipped`)."""
        if not self.enabled:
            return self.eager(*args)
        if self._compiled is None:
            # a C++ wrapper calls the kernels: no Python between them (about 1 ms per call)
            self._compiled = torch.compile(
                self.eager, dynamic=self.dynamic, options={"cpp_wrapper": True}
            )
        try:
            with (
                COMPILED_CALLS,
                trace_autograd(),
                cpu_codegen_workaround(self.model.device),
                self.tracing(),
                guards_skipped(same_inputs and self.skip_guards),
            ):
                return self._compiled(*args)
        except Exception as error:
            if same_inputs and self.skip_guards and _refused_to_skip_guards(error):
                self.skip_guards = False
                return self(*args)
            if not isinstance(error, compile_errors()):
                raise
            warnings.warn(
                f"torch.compile failed ({type(error).__name__}); evaluating without it",
                RuntimeWarning,
                stacklevel=2,
            )
            self.enabled, self._compiled = False, None
            return self.eager(*args)


class CompiledForward(LazyCompiled):
    """``model``'s energy, forces and electrostatics through ``torch.compile``: one graph with
    the forces traced in, for open structures (:func:`compile_blocker`).

    Args:
        model: a Potential in eval mode, on the CPU.
        dynamic: symbolic shapes (batches of any size) rather than the first call's.
    """

    def eager(self, graph: AtomGraph) -> dict[str, torch.Tensor]:
        """The plain call this object compiles: ``model(graph, compute_forces=True)`` of a
        validated graph."""
        return self.model(graph, compute_forces=True, training=False, validate=False)


def backbone_compile_blocker(model: Potential) -> str | None:
    """Why ``model``'s backbone cannot go through :class:`CompiledBackbone`; ``None`` when it
    can."""
    if model.config.backbone not in COMPILABLE_BACKBONES:
        return f"the {model.config.backbone} backbone"
    return None


class CompiledBackbone(LazyCompiled):
    """``model.backbone`` through ``torch.compile`` with symbolic atom and edge counts, for the
    structures a whole compiled pass cannot take (periodic cells with Ewald/PME and the stress,
    Coulomb by damped shifted force): ``model(graph, backbone_call=compiled_backbone)``.

    The message passing, where nearly all of a large structure's time goes, runs as fused loops
    over the edges, forward and backward (the forces and the stress pass through its compiled
    backward); the rest of the pass stays plain. Inference only: a compiled backward cannot be
    differentiated again, so :meth:`Potential.forward` refuses it with ``training=True``.

    Args:
        model: a Potential in eval mode, on the CPU, with a backbone of
            :data:`COMPILABLE_BACKBONES`.
    """

    def __init__(self, model: Potential) -> None:
        blocker = backbone_compile_blocker(model)
        if blocker is not None:
            raise ConfigError(f"cannot compile {blocker} (only {list(COMPILABLE_BACKBONES)})")
        super().__init__(model, dynamic=True)

    def eager(self, geometry: Geometry) -> BackboneOutput:
        """The plain call this object compiles: ``model.backbone(geometry)``."""
        return self.model.backbone(geometry)


def _without_duck_shapes(recompile_limit: int | None = None) -> contextlib.ExitStack:
    """Tracing settings: no duck shaping (two sizes equal at the first call, an atom count and
    a feature width or a k-vector count, would otherwise be tied, and every other size would
    compile again), and where given a raised recompile limit."""
    import torch._dynamo
    import torch.fx.experimental._config

    stack = contextlib.ExitStack()
    stack.enter_context(config_values(torch.fx.experimental._config, {"use_duck_shape": False}))
    if recompile_limit is not None:
        stack.enter_context(
            config_values(torch._dynamo.config, {"recompile_limit": recompile_limit})
        )
    return stack


#: Graphs :class:`CompiledReceiverSums` may compile before dynamo falls back to plain calls.
RECEIVER_SUMS_GRAPHS = 16


class CompiledRuns(LazyCompiled):
    """Base of the compiled pieces of a pass that sums messages in runs of receivers
    (:mod:`phicalc.nn.edge_chunks`), with symbolic sizes. The blocks' weights are inputs, so a
    few graphs serve every block, run and structure (for PaiNN: the first block, without
    vectors, or another; runs of more or fewer than 4,097 edges, where inductor's CPU code
    changes how it accumulates), within a raised recompile limit. Inference only, like edge
    chunking.

    Args:
        model: a Potential in eval mode, on the CPU, whose backbone has
            ``supports_edge_chunks`` and is one of :data:`COMPILABLE_BACKBONES`.
    """

    def __init__(self, model: Potential) -> None:
        blocker = backbone_compile_blocker(model)
        if blocker is not None or not model.backbone.supports_edge_chunks:
            raise ConfigError(
                f"cannot compile the message sums of the {model.config.backbone} backbone"
            )
        super().__init__(model, dynamic=True)

    def tracing(self) -> contextlib.AbstractContextManager:
        """Without duck shaping (a structure whose atom count equals a feature width, 64 waters:
        192 atoms, 3F = 192, would otherwise tie the atom count to that width, and every other
        size would compile again), and with room for twice dynamo's default 8 graphs."""
        return _without_duck_shapes(RECEIVER_SUMS_GRAPHS)


class CompiledReceiverSums(CompiledRuns):
    """A message block's ``receiver_sums`` over one run, through ``torch.compile``
    (:attr:`~phicalc.nn.edge_chunks.EdgeChunking.sums`): the forward pass's runs."""

    def eager(self, module: torch.nn.Module, *args: Any) -> tuple[torch.Tensor, ...]:
        """The plain call this object compiles: ``module.receiver_sums(*args)``."""
        return module.receiver_sums(*args)


class CompiledRunGradients(CompiledRuns):
    """:func:`~phicalc.nn.edge_chunks.run_gradients` through ``torch.compile``
    (:attr:`~phicalc.nn.edge_chunks.EdgeChunking.gradients`): a run's gather, recomputation and
    gradients in one compiled graph, with ``torch.autograd.grad`` traced in."""

    def eager(self, *args: Any) -> list:
        """The plain call this object compiles: ``run_gradients(*args)``."""
        return run_gradients(*args)
