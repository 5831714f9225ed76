"""Charge equilibration (Qeq) with learned electronegativities and hardnesses.

Per atom, χ_i (V) and J_i > 0 (V/e) come from small MLP heads on atom features.  The charges
minimise Σ_i (χ_i q_i + ½ J_i q_i²) subject to Σ_{i∈g} q_i = Q_g for every structure g; the
Lagrange condition χ_i + J_i q_i = λ_g gives the closed form

    q_i = (λ_g − χ_i)/J_i,   λ_g = (Q_g + Σ_{i∈g} χ_i/J_i) / Σ_{i∈g} 1/J_i,

which is O(N), per structure and differentiable.  (No inter-atomic Coulomb coupling: that is the
role of :class:`~phicalc.nn.electrostatics.coulomb.Coulomb` on the resulting charges.)
"""

from __future__ import annotations

import torch
from torch import nn

from phicalc.nn.scatter import scatter_sum

HARDNESS_FLOOR = 0.1  # V/e: keeps 1/J bounded


def _head(feature_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(feature_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))


def equilibrate(
    chi: torch.Tensor,
    hardness: torch.Tensor,
    total_charge: torch.Tensor,
    batch: torch.Tensor,
    n_graphs: int,
) -> torch.Tensor:
    """Closed-form constrained minimum of Σ (χ q + ½ J q²) with Σ_{i∈g} q_i = Q_g.

    Args:
        chi: [n_atoms] electronegativities in V.
        hardness: [n_atoms] hardnesses in V/e, > 0.
        total_charge: [n_graphs] total charges Q_g in e.
        batch: [n_atoms] structure index; n_graphs: number of structures (one without atoms
            is allowed: it gets no charge).

    Returns:
        [n_atoms] charges in e; their per-structure sums equal Q_g to round-off.
    """
    inv_j = 1.0 / hardness
    weighted = total_charge.to(chi.dtype) + scatter_sum(chi * inv_j, batch, n_graphs)
    softness = scatter_sum(inv_j, batch, n_graphs)
    lam = weighted / torch.where(softness > 0, softness, torch.ones_like(softness))  # empty: 1
    q = (lam[batch] - chi) * inv_j
    # Remove the round-off residual of Σq − Q evenly, so the constraint holds to ~1 ulp.
    residual = total_charge.to(q.dtype) - scatter_sum(q, batch, n_graphs)
    counts = scatter_sum(torch.ones_like(q), batch, n_graphs).clamp(min=1)
    return q + (residual / counts)[batch]


class ChargeEquilibration(nn.Module):
    """Charges from atom features by charge equilibration.

    Args:
        feature_dim: F, width of the atom features.
        hidden: width of the hidden layer of each MLP head.
    """

    def __init__(self, feature_dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.electronegativity = _head(feature_dim, hidden)
        self.hardness = _head(feature_dim, hidden)

    def chi_and_hardness(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """χ [n_atoms] in V and J = softplus(·) + floor [n_atoms] in V/e."""
        chi = self.electronegativity(features).squeeze(-1)
        hardness = nn.functional.softplus(self.hardness(features).squeeze(-1)) + HARDNESS_FLOOR
        return chi, hardness

    def forward(
        self,
        features: torch.Tensor,
        total_charge: torch.Tensor,
        batch: torch.Tensor,
        n_graphs: int,
    ) -> torch.Tensor:
        """Charges [n_atoms] in e from features [n_atoms, F] and total charges [n_graphs] in e."""
        chi, hardness = self.chi_and_hardness(features)
        return equilibrate(chi, hardness, total_charge, batch, n_graphs)
