"""Frozen config dataclasses: building from dicts that reject unknown keys by name."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from phicalc.errors import ConfigError

T = TypeVar("T")


def config_from_dict(cls: type[T], values: dict[str, Any] | None) -> T:
    """Instantiate the dataclass ``cls`` from ``values``; unknown keys raise :class:`ConfigError`."""
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{cls.__name__} got unknown option(s) {unknown}; allowed: {sorted(known)}"
        )
    return cls(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain-container copy of a config dataclass (safe for ``torch.save`` + weights_only load)."""
    return dataclasses.asdict(config)


def check_choice(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Raise :class:`ConfigError` naming ``value`` and the allowed set unless it is in ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {list(allowed)}")
