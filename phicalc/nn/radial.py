"""Radial bases and smooth cutoff envelopes (shared by all backbones and the Φ-Module)."""

from __future__ import annotations

import math

import torch
from torch import nn


class PolynomialEnvelope(nn.Module):
    """Smooth cutoff u(r) = 1 − (p+1)(p+2)/2·x^p + p(p+2)·x^(p+1) − p(p+1)/2·x^(p+2), x = r/r_c.

    u(0) = 1 and u, u', u'' vanish at r_c, so energies and forces are continuous when a pair
    crosses the cutoff (Klicpera et al., DimeNet). u = 0 for r ≥ r_c.

    Args:
        cutoff: r_c in Å.
        exponent: p (default: 6).
    """

    def __init__(self, cutoff: float, exponent: int = 6) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.exponent = int(exponent)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        p = self.exponent
        x = r / self.cutoff
        u = (
            1.0
            - 0.5 * (p + 1) * (p + 2) * x.pow(p)
            + p * (p + 2) * x.pow(p + 1)
            - 0.5 * p * (p + 1) * x.pow(p + 2)
        )
        return torch.where(x < 1.0, u, torch.zeros_like(u))

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, exponent={self.exponent}"


class BesselBasis(nn.Module):
    """Radial basis e_n(r) = sqrt(2/r_c) · sin(nπ r / r_c) / r, n = 1..num_basis, shape [n_edges, num_basis].

    Multiply by a :class:`PolynomialEnvelope` for smoothness at the cutoff. Frequencies are fixed
    buffers (moved by ``.to()``, saved in the state_dict).
    """

    def __init__(self, cutoff: float, num_basis: int = 8) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.num_basis = int(num_basis)
        self.register_buffer(
            "frequencies", math.pi * torch.arange(1, num_basis + 1, dtype=torch.float32) / cutoff
        )

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        return math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies * r) / r

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, num_basis={self.num_basis}"


class RadialEmbedding(nn.Module):
    """Bessel basis times the smooth envelope: [n_edges] distances → [n_edges, num_basis]."""

    def __init__(self, cutoff: float, num_basis: int = 8, envelope_exponent: int = 6) -> None:
        super().__init__()
        self.basis = BesselBasis(cutoff, num_basis)
        self.envelope = PolynomialEnvelope(cutoff, envelope_exponent)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.basis(r) * self.envelope(r).unsqueeze(-1)


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """ssp(x) = softplus(x) − ln 2 (SchNet's activation; ssp(0) = 0)."""
    return nn.functional.softplus(x) - math.log(2.0)


class ShiftedSoftplus(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_softplus(x)
