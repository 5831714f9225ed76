"""Screened nuclear repulsion at short range (ZBL), switched off before bonding distances.

A model whose energy includes a Coulomb term on learned charges has nothing that pushes two
ions apart at distances its training data never reached: Na⁺ and Cl⁻ fall together to 1.55 Å
(reports/ion_pair_md.md). This term is a wall that needs no data: the repulsion of the two
nuclei screened by their electrons, in the universal form of Ziegler, Biersack and Littmark
(1985), as MACE and SpookyNet carry it,

    E_ij = k_e Z_i Z_j / r · φ(r/a_ij) · u(r / r_s,ij),
    φ(x) = 0.18175 e^(−3.19980 x) + 0.50986 e^(−0.94229 x) + 0.28022 e^(−0.40290 x)
           + 0.02817 e^(−0.20162 x),   a_ij = 0.46850 Å / (Z_i^0.23 + Z_j^0.23),

switched off smoothly (the polynomial envelope u, p = 6: energy, force and its derivative go
to zero) at r_s,ij = ``switch_factor`` × (R_i + R_j), covalent radii R. With the default 0.8
it is zero for bonds at their length (C≡C at 0.79 × gets 1 meV, N≡N 22 meV) and 3.1 eV for
Na–Cl at 1.55 Å (0.58 ×), 11.7 eV at 1.3 Å.
"""

from __future__ import annotations

import torch
from ase.data import covalent_radii
from torch import nn

from phicalc.nn.electrostatics.kernels import COULOMB_CONSTANT
from phicalc.nn.radial import PolynomialEnvelope
from phicalc.nn.scatter import scatter_sum

#: ZBL screening function: weights and decay rates of its four exponentials.
ZBL_WEIGHTS = (0.18175, 0.50986, 0.28022, 0.02817)
ZBL_RATES = (3.19980, 0.94229, 0.40290, 0.20162)
#: ZBL screening length prefactor 0.8854 a₀ (Å).
ZBL_LENGTH = 0.46850
#: Default switch radius, × the sum of the pair's covalent radii.
SWITCH_FACTOR = 0.8


def zbl_screening(x: torch.Tensor) -> torch.Tensor:
    """φ(x) of the ZBL universal potential; φ(0) = 1."""
    return sum(w * torch.exp(-d * x) for w, d in zip(ZBL_WEIGHTS, ZBL_RATES))


class NuclearRepulsion(nn.Module):
    """Per-atom share of the screened nuclear repulsion, [n_atoms] eV (float64).

    Args:
        switch_factor: r_s,ij in units of R_i + R_j (default :data:`SWITCH_FACTOR`).

    Called with atomic numbers [n_atoms], a full edge list [2, n_edges] (each pair in both
    directions, periodic images as edges) and the edge lengths [n_edges] in Å; each directed
    edge gives half its pair's energy to its receiver. No parameters.
    """

    def __init__(self, switch_factor: float = SWITCH_FACTOR) -> None:
        super().__init__()
        self.switch_factor = float(switch_factor)
        self.envelope = PolynomialEnvelope(1.0)
        radii = torch.as_tensor(covalent_radii, dtype=torch.float64)
        self.register_buffer("covalent_radii", radii, persistent=False)

    def forward(
        self, numbers: torch.Tensor, edge_index: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        i, j = edge_index
        r = lengths.to(torch.float64)
        number_i, number_j = numbers[i], numbers[j]
        z_i, z_j = number_i.to(torch.float64), number_j.to(torch.float64)
        screening_length = ZBL_LENGTH / (z_i.pow(0.23) + z_j.pow(0.23))
        radii = self.covalent_radii  # float64
        u = self.envelope(r / (self.switch_factor * (radii[number_i] + radii[number_j])))
        pair = COULOMB_CONSTANT * z_i * z_j / r * zbl_screening(r / screening_length) * u
        return scatter_sum(0.5 * pair, j, numbers.shape[0])

    def extra_repr(self) -> str:
        return f"switch_factor={self.switch_factor}"
