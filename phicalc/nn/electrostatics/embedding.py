"""Total charge Q and spin multiplicity M as per-atom input features.

e_i = Q·a[Z_i] + Q²·b[Z_i] + (M − 1)·c[Z_i] + (M − 1)²·d[Z_i], with learned per-element tables
a, b, c, d of shape [num_elements, dim]; Q in e of the atom's structure, M = 2S + 1.  It vanishes
for a neutral singlet (Q = 0, M = 1), so it changes nothing for such structures; the linear and
quadratic terms distinguish cations from anions and doublets from triplets.
"""

from __future__ import annotations

import torch
from torch import nn


class ChargeSpinEmbedding(nn.Module):
    """Additive per-atom feature from the structure's total charge and spin multiplicity.

    Args:
        num_elements: size of the species index (species values must lie in [0, num_elements)).
        dim: feature width.
        init_std: standard deviation of the normal initialisation of the four tables.
        total_charge: the term reads the structure's total charge; ``False``: only the spin
            terms (the charge tables then serve :meth:`atom_charge_term`).
    """

    def __init__(
        self, num_elements: int, dim: int, init_std: float = 0.1, *, total_charge: bool = True
    ) -> None:
        super().__init__()
        self.tables = nn.Parameter(torch.randn(4, num_elements, dim) * init_std)
        self.total_charge = bool(total_charge)

    def forward(
        self,
        species: torch.Tensor,
        total_charge: torch.Tensor,
        multiplicity: torch.Tensor,
        batch: torch.Tensor,
    ) -> torch.Tensor:
        """Per-atom term [n_atoms, dim].

        Args:
            species: [n_atoms] int64 element index.
            total_charge: [n_graphs] Q in e.
            multiplicity: [n_graphs] M = 2S + 1 (1 for a singlet).
            batch: [n_atoms] structure index.
        """
        dtype = self.tables.dtype
        m = (multiplicity.to(dtype) - 1.0)[batch][:, None]
        a, b, c, d = self.tables[:, species]
        if not self.total_charge:
            return m * c + m * m * d
        q = total_charge.to(dtype)[batch][:, None]
        return q * a + q * q * b + m * c + m * m * d

    def extra_repr(self) -> str:
        return f"total_charge={self.total_charge}"

    def atom_charge_term(self, species: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """q_i·a[Z_i] + q_i²·b[Z_i], [n_atoms, dim]: the charge part of the term with each
        atom's own charge q_i (e, [n_atoms]) in place of its structure's total charge."""
        q = charges.to(self.tables.dtype)[:, None]
        return q * self.tables[0, species] + q * q * self.tables[1, species]
