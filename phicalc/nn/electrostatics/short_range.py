"""The short-range part of the Coulomb energy, switched off inside a radius r_s.

With a switch, the Coulomb term on learned charges keeps only what the backbone cannot see:

    E_C = k_e Σ_{i<j} q_i q_j s(r_ij) erf(r_ij/(√2σ))/r_ij,   s(r) = 1 − u(r/r_s),

u the polynomial envelope of :class:`~phicalc.nn.radial.PolynomialEnvelope` (p = 6: s and its
first two derivatives are continuous; s = 0 at r = 0, 1 from r_s on): further than PhysNet and
SpookyNet go, which switch to a shielded kernel at short range rather than to zero. Bonded pairs then carry almost no Coulomb energy
(s(1.5 Å) = 0.011 for r_s = 5 Å) that the backbone must cancel; beyond r_s the pair energy is the
physical one.

The full sum is made by any method (direct, DSF, Ewald/PME); the switched-off part, nonzero
only for r < r_s ≤ the model's cutoff, is then taken away over the model's own neighbour list
(every pair within the cutoff, periodic images included), so the correction costs O(n_edges).
"""

from __future__ import annotations

import torch

from phicalc.nn.electrostatics.kernels import COULOMB_CONSTANT, damped_coulomb
from phicalc.nn.radial import PolynomialEnvelope


def short_range_potentials(
    charges: torch.Tensor,
    edge_index: torch.Tensor,
    lengths: torch.Tensor,
    sigma: float,
    switch_radius: float,
) -> torch.Tensor:
    """ΔV_i = k_e Σ_{j ∈ N(i)} u(r_ij/r_s) q_j erf(r_ij/(√2σ))/r_ij (V): the part of each
    atom's damped Coulomb potential that the switch removes.

    The Coulomb energy with the switch is E − ½ Σ_i q_i ΔV_i (E: the unswitched energy).

    Args:
        charges: [n_atoms] e.
        edge_index: [2, n_edges] full neighbour list (both directions of every pair, periodic
            images as their own edges; :class:`~phicalc.graph.batch.AtomGraph`'s convention);
            edges at r ≥ r_s (padding, a Verlet list's candidates) contribute nothing.
        lengths: [n_edges] edge lengths r_ij (Å), > 0.
        sigma: Gaussian width σ (Å) of the Coulomb kernel.
        switch_radius: r_s (Å).

    Returns:
        [n_atoms] potentials in V.
    """
    # clamped: u(1) = 0 with zero gradient, and no large powers of far (padding) edges
    weight = PolynomialEnvelope(switch_radius)(lengths.clamp(max=switch_radius))
    kernel = weight * damped_coulomb(lengths * lengths, sigma)
    sender, receiver = edge_index
    removed = torch.zeros_like(charges).index_add(0, receiver, kernel * charges[sender])
    return COULOMB_CONSTANT * removed
