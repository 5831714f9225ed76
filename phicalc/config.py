"""Frozen config dataclasses: building from dicts that reject unknown keys by name, and the
small checks their ``__post_init__`` methods share.

Every check raises :class:`ConfigError` naming the option, the bad value and what is allowed.
Booleans are never accepted as numbers (YAML ``yes`` is not 1).
"""

from __future__ import annotations

import dataclasses
import math
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


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_int_at_least(name: str, value: Any, minimum: int, *, allow_none: bool = False) -> None:
    """``value`` must be an int ≥ ``minimum`` (or None when ``allow_none``)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        wanted = {1: "a positive integer", 0: "a non-negative integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        _fail(name, value, wanted, allow_none)


def check_positive(name: str, value: Any, *, allow_none: bool = False) -> None:
    """``value`` must be a finite number > 0 (or None when ``allow_none``)."""
    check_in_interval(name, value, 0.0, math.inf, closed="()", allow_none=allow_none)


def check_in_interval(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    closed: str = "[]",
    allow_none: bool = False,
) -> None:
    """``value`` must be a finite number in the interval from ``low`` to ``high``.

    Args:
        closed: the interval's brackets, e.g. "[)" for low ≤ value < high; an infinite bound is
            never reached.
    """
    if value is None and allow_none:
        return
    left, right = closed
    ok = (
        is_number(value)
        and (value >= low if left == "[" else value > low)
        and (value <= high if right == "]" else value < high)
    )
    if not ok:
        if high == math.inf:
            wanted = f"a number {'>=' if left == '[' else '>'} {low:g}"
            wanted = "a positive number" if wanted == "a number > 0" else wanted
        else:
            wanted = f"a number in {left}{low:g}, {high:g}{right}"
        _fail(name, value, wanted, allow_none)


def _fail(name: str, value: Any, wanted: str, allow_none: bool) -> None:
    raise ConfigError(f"{name} must be {wanted}{' or null' if allow_none else ''}, got {value!r}")


def merge_dicts(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in recursively (mappings merge, other values replace)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    keys = sorted(set(old) | set(new))
    out: list[str] = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(config_differences(a, b, prefix=f"{name}."))
        elif a != b:
            out.append(name)
    return out


def optional_options(
    name: str, value: bool | dict[str, Any] | None, config_name: str
) -> dict | None:
    """Options of an optional model part (``name``, configured by ``config_name``): True → {}
    (its defaults), False/None → None (off), a dict → its copy; anything else is refused."""
    if value is True:
        return {}
    if value is False or value is None:
        return None
    if isinstance(value, dict):
        return dict(value)
    raise ConfigError(
        f"{name} must be True, False or a dict of {config_name} options, got {value!r}"
    )


def check_edge_chunk(edge_chunk: object) -> None:
    """Refuse an ``edge_chunk`` option other than "auto", None or a number of edges ≥ 1
    (:class:`ConfigError`), the values ``PhiCalculator(edge_chunk=)`` and ``phicalc md
    --edge-chunk`` take (:mod:`phicalc.nn.edge_chunks`)."""
    whole = isinstance(edge_chunk, int) and not isinstance(edge_chunk, bool)
    if not (edge_chunk is None or edge_chunk == "auto" or (whole and edge_chunk >= 1)):
        raise ConfigError(
            f'edge_chunk must be "auto", None or a number of edges >= 1, got {edge_chunk!r}'
        )


def parse_edge_chunk(text: str) -> int | str | None:
    """A command line's ``--edge-chunk``: "auto", "none" (None) or a number of edges."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    try:
        value = int(text)
    except ValueError:
        message = f'--edge-chunk takes "auto", "none" or a number of edges, got {text!r}'
        raise ConfigError(message) from None
    check_edge_chunk(value)
    return value
