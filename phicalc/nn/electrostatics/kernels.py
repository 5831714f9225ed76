"""Pair kernels of the damped Coulomb interaction, finite and differentiable down to r = 0.

All kernels take the *squared* distance r² (Å²) so that their gradient with respect to the
separation vector d (r² = |d|²) is finite even at d = 0 exactly: near 0 they switch to a Taylor
series in r², whose derivative 2 d · ∂k/∂r² vanishes there.
"""

from __future__ import annotations

import math

import ase.units
import torch

#: Coulomb constant k_e = 1/(4π ε₀) in eV·Å/e², from ASE's Hartree and Bohr.
COULOMB_CONSTANT: float = float(ase.units.Hartree * ase.units.Bohr)

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
# Below (a r)² < _SERIES_X2 the series 2a/√π (1 - x²/3 + x⁴/10 - x⁶/42) is used; its truncation
# error there is < x⁸/216 ≈ 5e-19 relative, below float64 round-off.
_SERIES_X2 = 1e-2**2


def safe_norm_sq(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """r² and r of separation vectors d [..., 3] (Å); r's gradient is 0 (not NaN) at d = 0."""
    r2 = (d * d).sum(-1)
    positive = r2 > 0
    r = torch.where(positive, torch.sqrt(torch.where(positive, r2, torch.ones_like(r2))), 0.0)
    return r2, r


def erf_over_r(r2: torch.Tensor, a: float) -> torch.Tensor:
    """erf(a r)/r (Å⁻¹) as a function of r² (Å²); equals 2a/√π at r = 0.

    Args:
        r2: squared distances, any shape, Å².
        a: inverse length in Å⁻¹ (a = 1/(√2 σ) for a Gaussian charge width σ).
    """
    x2 = (a * a) * r2
    small = x2 < _SERIES_X2
    series = (_TWO_OVER_SQRT_PI * a) * (1.0 - x2 / 3.0 + x2 * x2 / 10.0 - x2 * x2 * x2 / 42.0)
    r_safe = torch.sqrt(torch.where(small, torch.ones_like(r2), r2))
    exact = torch.erf(a * r_safe) / r_safe
    return torch.where(small, series, exact)


def damped_coulomb(r2: torch.Tensor, sigma: float) -> torch.Tensor:
    """f(r)/r = erf(r/(√2 σ))/r (Å⁻¹): Coulomb between Gaussian charges of combined width σ (Å)."""
    return erf_over_r(r2, 1.0 / (math.sqrt(2.0) * sigma))


def dsf_scalar(r: float, sigma: float, alpha: float) -> tuple[float, float]:
    """g(r) = [erf(r/(√2σ)) − erf(α r)]/r and g'(r) at one distance r > 0 (Python floats).

    Returns:
        (g in Å⁻¹, dg/dr in Å⁻²).
    """
    a = 1.0 / (math.sqrt(2.0) * sigma)
    g = (math.erf(a * r) - math.erf(alpha * r)) / r
    dg = _TWO_OVER_SQRT_PI * (a * math.exp(-((a * r) ** 2)) - alpha * math.exp(-((alpha * r) ** 2)))
    return g, dg / r - g / r


def dsf_kernel(
    r2: torch.Tensor, r: torch.Tensor, sigma: float, alpha: float, cutoff: float
) -> torch.Tensor:
    """Damped shifted-force kernel (Å⁻¹), zero beyond the cutoff.

    g(r) − g(r_c) − g'(r_c)(r − r_c) for r < r_c with the screened damped kernel
    g(r) = [erf(r/(√2σ)) − erf(α r)]/r = erf(r/(√2σ))/r − erf(α r)/r, i.e. the damped Coulomb
    kernel minus the smooth long-range part erf(α r)/r (for r ≫ σ this is erfc(α r)/r, the usual
    DSF screening). Value and first derivative vanish at r_c, so energy and forces are continuous.

    Args:
        r2: squared distances [n_pairs] (Å²); r: distances [n_pairs] (Å), same pairs.
        sigma: Gaussian width σ (Å); alpha: DSF damping α (Å⁻¹), < 1/(√2σ); cutoff: r_c (Å).
    """
    g_c, dg_c = dsf_scalar(cutoff, sigma, alpha)
    g = damped_coulomb(r2, sigma) - erf_over_r(r2, alpha)
    shifted = g - g_c - dg_c * (r - cutoff)
    return torch.where(r < cutoff, shifted, torch.zeros_like(shifted))
