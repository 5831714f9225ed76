"""Fixtures shared by several test directories: one torch thread, a tiny PaiNN + Φ model and a
compiler that always fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from phicalc.serialization import save_model
from phicalc.testing import TINY_PAINN


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine two threads per
    process make each step ~10x slower; restored after the module."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model():
    """Untrained PaiNN with a Φ-Module (H, C, N, O; 4 Å cutoff)."""
    from phicalc import build_model

    return build_model(phi=True, **TINY_PAINN)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_model, tmp_path_factory) -> Path:
    """``tiny_model`` saved as a model file."""
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(tiny_model, path)
    return path


@pytest.fixture()
def failing_compiler(monkeypatch):
    """``torch.compile`` whose compiled functions fail as inductor's codegen does (for the
    fallback to plain calls)."""
    import torch
    import torch._dynamo.exc

    def failing_compile(fn, **options):
        def run(*args):
            raise torch._dynamo.exc.BackendCompilerFailed(fn, RuntimeError("codegen failed"), None)

        return run

    monkeypatch.setattr(torch, "compile", failing_compile)
