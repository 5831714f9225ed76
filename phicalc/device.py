"""The one device resolver: what "auto", "cpu", "cuda" and "cuda:N" mean everywhere."""

from __future__ import annotations

import torch

from phicalc.errors import ConfigError


def resolve_device(name: str | torch.device, *, local_rank: int = 0) -> torch.device:
    """The torch device for a user's ``device`` setting.

    Args:
        name: "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N", or a device.
        local_rank: the GPU index "cuda" means (a distributed worker's local rank).

    Raises:
        ConfigError: CUDA asked for on a machine without it, or an unknown device string.
    """
    text = str(name)
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError as error:
        raise ConfigError(
            f"device={text!r} is not a torch device ('auto', 'cpu', 'cuda', 'cuda:N')"
        ) from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={text!r} but CUDA is not available on this machine")
        if device.index is None:
            return torch.device("cuda", local_rank)
    return device
