"""Sum aggregation (differentiable to any order; deterministic on CPU)."""

from __future__ import annotations

import torch


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """out[k] = Σ_{e: index[e] = k} src[e] along the first dimension, shape [dim_size, ...]."""
    out = src.new_zeros((dim_size, *src.shape[1:]))
    return out.index_add(0, index, src)
