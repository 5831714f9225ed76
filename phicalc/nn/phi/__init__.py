"""Φ-Module: graph Laplacian, spectral filters and the plug-in module."""

from phicalc.nn.phi.module import PHI_GAUGES, PHI_METHODS, PhiConfig, PhiModule, PhiOutput

__all__ = ["PHI_GAUGES", "PHI_METHODS", "PhiConfig", "PhiModule", "PhiOutput"]
