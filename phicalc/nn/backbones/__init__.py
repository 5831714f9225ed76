"""Backbone registry: name → (config dataclass, module class), imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from phicalc.errors import ConfigError
from phicalc.nn.backbones.base import Backbone, BackboneOutput, Geometry

#: name → (module, config class, backbone class). Each module is imported only when used.
BACKBONES: dict[str, tuple[str, str, str]] = {
    "schnet": ("phicalc.nn.backbones.schnet", "SchNetConfig", "SchNet"),
    "painn": ("phicalc.nn.backbones.painn", "PaiNNConfig", "PaiNN"),
    "erwin": ("phicalc.nn.backbones.erwin", "ErwinConfig", "Erwin"),
    "clifford": ("phicalc.nn.backbones.clifford", "CliffordConfig", "CliffordNet"),
}


def backbone_classes(name: str) -> tuple[type[Any], type[Backbone]]:
    """(config class, backbone class) registered under ``name``."""
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; available: {sorted(BACKBONES)}")
    module_name, config_name, class_name = BACKBONES[name]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, class_name)


__all__ = ["BACKBONES", "Backbone", "BackboneOutput", "Geometry", "backbone_classes"]
