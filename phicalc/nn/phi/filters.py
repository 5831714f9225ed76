"""Two ways to turn per-atom sources s into a smooth, low-frequency potential φ̂ = h(L) s.

Both are matrix functions of the per-structure Laplacian L with h(0) = 0, so the constant mode
(the total charge) never enters φ̂ and Σ_i (L φ̂)_i = 0 exactly.

* :class:`ChebyshevFilter` (default, "spectral"): h is a learned degree-K Chebyshev polynomial of
  the random-walk Laplacian D⁻¹L, whose spectrum lies in [0, 2] for every graph; K
  mat-vecs (one dense product each up to 200 atoms, a gather and a scatter over the edges
  beyond), cost linear in atoms, no eigenvectors, and local: a periodic supercell gives the
  same per-atom result as its primitive cell, distant fragments do not interact.
* :class:`EigenbasisWindow` ("eigenbasis", paper-faithful): dense ``eigh`` per structure and a
  smooth window over the k lowest non-trivial modes. Truncating eigenvectors is ill-conditioned on
  degenerate spectra (benzene, methane); here the window edge sits at a smooth symmetric function
  of the eigenvalues and the gradient is the Daleckii–Krein formula with divided differences, which
  is finite and exact to first order whatever the degeneracy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from phicalc.nn.phi.laplacian import GraphLaplacian, dense_laplacian, spectral_bound

#: ε added to degrees so an isolated atom (no neighbours) stays finite, in 1/Å.
DEGREE_EPS = 1e-3


def _default_low_pass(x: np.ndarray) -> np.ndarray:
    """Initial band-pass h₀(x) = (x/τ)·exp(1 − x/τ), τ = 0.1, x = λ/λ_b: zero at 0, peak 1 at x = τ."""
    tau = 0.1
    return (x / tau) * np.exp(1.0 - x / tau)


class ChebyshevFilter(nn.Module):
    """φ̂ = Σ_k c_k [T_k(L̂) − T_k(−1)] s with L̂ = (D + ε)⁻¹L − 1 (spectrum inside [−1, 1]).

    The random-walk normalisation needs no per-structure spectral bound (Gershgorin:
    eigenvalues of D⁻¹L lie in [0, 2]), so the filter is the same function on every graph.
    Subtracting T_k(−1) s makes h(0) = 0: constant sources give no potential. Coefficients c_k
    are learned, initialised to the Chebyshev interpolant of :func:`_default_low_pass`.

    Args:
        degree: K, the polynomial degree (K mat-vecs per call).
    """

    def __init__(self, degree: int = 8) -> None:
        super().__init__()
        self.degree = int(degree)
        nodes = np.cos(np.pi * (np.arange(64) + 0.5) / 64)
        coefficients = np.polynomial.chebyshev.chebfit(
            nodes, _default_low_pass((nodes + 1) / 2), degree
        )
        self.coefficients = nn.Parameter(torch.tensor(coefficients, dtype=torch.float32))

    def forward(
        self,
        sources: torch.Tensor,
        laplacian: GraphLaplacian,
        batch: torch.Tensor,
        n_graphs: int,
    ) -> torch.Tensor:
        """Args: sources [n_atoms], the batch's Laplacian, batch [n_atoms]; returns φ̂
        [n_atoms].

        Where the Laplacian has its dense W (small batches) L̂ is applied as a dense matrix (one
        matrix-vector product per degree), else over the edges; the two agree to rounding."""
        n_atoms = sources.shape[0]
        inverse_degree = 1.0 / (laplacian.degree + DEGREE_EPS)
        if laplacian.adjacency is not None:
            # L̂ = (D + ε)⁻¹(D − W) − 1 = −(D + ε)⁻¹(W + ε)
            scaled = -inverse_degree.unsqueeze(1) * laplacian.adjacency
            scaled = scaled - torch.diag(DEGREE_EPS * inverse_degree)

            def next_term(t_curr: torch.Tensor, t_prev: torch.Tensor) -> torch.Tensor:
                return torch.addmv(t_prev, scaled, t_curr, beta=-1.0, alpha=2.0)

            first = scaled @ sources
        else:
            weights, (senders, receivers) = laplacian.weights, laplacian.edge_index
            minus_inverse, minus_eps = -inverse_degree, -DEGREE_EPS * inverse_degree

            def apply_scaled(x: torch.Tensor) -> torch.Tensor:  # L̂ x = −(D + ε)⁻¹(W + ε) x
                messages = weights * x.index_select(0, senders)
                adjacency_x = x.new_zeros(n_atoms).index_add(0, receivers, messages)
                return torch.addcmul(minus_eps * x, minus_inverse, adjacency_x)

            def next_term(t_curr: torch.Tensor, t_prev: torch.Tensor) -> torch.Tensor:
                return 2.0 * apply_scaled(t_curr) - t_prev

            first = apply_scaled(sources)
        terms = [sources, first]  # T_k(L̂) s by T_k = 2 L̂ T_{k−1} − T_{k−2}
        for _ in range(2, self.degree + 1):
            terms.append(next_term(terms[-1], terms[-2]))
        c = self.coefficients.to(sources.dtype)
        # T_k(−1) = (−1)^k, made on the device (no host copy: the call stays capturable)
        signs = 1.0 - 2.0 * (torch.arange(self.degree + 1, device=c.device) % 2).to(c.dtype)
        return c @ torch.stack(terms) - (c * signs).sum() * sources

    def extra_repr(self) -> str:
        return f"degree={self.degree}"


def _window(
    lam: torch.Tensor, edge: torch.Tensor, width: torch.Tensor, zero_scale: torch.Tensor
) -> torch.Tensor:
    """h(λ) = σ((λ_c − λ)/δ) · (1 − exp(−λ/ε)): ≈1 on low non-trivial modes, 0 on λ = 0 and above λ_c."""
    return torch.sigmoid((edge - lam) / width) * (1.0 - torch.exp(-lam.clamp_min(0.0) / zero_scale))


def _window_derivative(lam, edge, width, zero_scale):
    sig = torch.sigmoid((edge - lam) / width)
    decay = torch.exp(-lam.clamp_min(0.0) / zero_scale)
    return -sig * (1 - sig) / width * (1 - decay) + sig * decay / zero_scale


class EigenbasisWindow(nn.Module):
    """Paper-faithful Φ path: project sources onto the k lowest non-trivial Laplacian modes.

    Per structure, L = U Λ Uᵀ by batched dense ``eigh`` (padded atoms sit at the top of the
    spectrum and carry no source). The hard "k lowest modes" projector is replaced by a window
    h(λ) = σ((λ_c − λ)/δ)(1 − e^{−λ/ε}) whose edge λ_c lies between the soft-ranked k-th and
    (k+1)-th non-trivial eigenvalues (k_eff = min(k, n − 1)); λ_c is a smooth symmetric function of
    the spectrum, so a degenerate group at the edge is split evenly and φ̂ = h(L) s is a smooth
    function of the geometry. Gradients use U, Λ of the detached L with the first-order
    expansion G = U[diag h(λ₀ + diag M) + Γ ∘ M]Uᵀ, M = Uᵀ(L − L₀)U, Γ_ab the divided differences
    (h_a − h_b)/(λ_a − λ_b) (→ h′ on degenerate pairs): forces are exact and finite; second
    derivatives with respect to positions (Hessians) are not provided by this path.

    Args:
        num_modes: k, the number of non-trivial modes kept.
    """

    def __init__(self, num_modes: int = 8) -> None:
        super().__init__()
        self.num_modes = int(num_modes)

    def forward(
        self,
        sources: torch.Tensor,
        laplacian: GraphLaplacian,
        batch: torch.Tensor,
        n_graphs: int,
    ) -> torch.Tensor:
        """Args: sources [n_atoms], the batch's Laplacian, batch [n_atoms]; returns φ̂
        [n_atoms]."""
        weights, edge_index = laplacian.weights, laplacian.edge_index
        bound = spectral_bound(laplacian.degree, batch, n_graphs)
        counts = torch.bincount(batch, minlength=n_graphs)
        n_max = int(counts.max())
        starts = torch.cumsum(counts, 0) - counts
        local = torch.arange(batch.shape[0], device=batch.device) - starts[batch]
        lap = dense_laplacian(weights, edge_index, batch, n_graphs, n_max, local)  # [g, n, n]
        real = torch.arange(n_max, device=batch.device).unsqueeze(0) < counts.unsqueeze(1)  # [g, n]
        # Padded atoms get an isolated diagonal far above the spectrum.
        pad_value = (4.0 * bound + 10.0).detach()
        lap = lap + torch.diag_embed((~real).to(lap.dtype) * pad_value.unsqueeze(1))

        lap0 = lap.detach()
        lam0, vecs = torch.linalg.eigh(lap0)  # ascending; real modes first
        m = vecs.transpose(1, 2) @ (lap - lap0) @ vecs  # value 0, carries dL
        lam = lam0 + torch.diagonal(m, dim1=1, dim2=2)  # [g, n], first-order eigenvalues
        mode_real = torch.arange(n_max, device=batch.device).unsqueeze(0) < counts.unsqueeze(1)

        edge, width, zero_scale = self._window_parameters(lam, mode_real, counts, bound)
        h = _window(lam, edge.unsqueeze(1), width.unsqueeze(1), zero_scale.unsqueeze(1))
        h = torch.where(mode_real, h, torch.zeros_like(h))

        with torch.no_grad():
            e0, w0, z0 = (t.detach().unsqueeze(1).unsqueeze(2) for t in (edge, width, zero_scale))
            h0 = _window(lam0, e0[:, :, 0], w0[:, :, 0], z0[:, :, 0])
            diff_lam = lam0.unsqueeze(2) - lam0.unsqueeze(1)
            diff_h = h0.unsqueeze(2) - h0.unsqueeze(1)
            mid = 0.5 * (lam0.unsqueeze(2) + lam0.unsqueeze(1))
            tol = 1e-6 * bound.detach().reshape(-1, 1, 1)
            close = diff_lam.abs() <= tol
            safe = torch.where(close, torch.ones_like(diff_lam), diff_lam)
            gamma = torch.where(close, _window_derivative(mid, e0, w0, z0), diff_h / safe)
            both_real = mode_real.unsqueeze(2) & mode_real.unsqueeze(1)
            gamma = torch.where(both_real, gamma, torch.zeros_like(gamma))
        off_diagonal = m - torch.diag_embed(torch.diagonal(m, dim1=1, dim2=2))
        core = torch.diag_embed(h) + gamma * off_diagonal
        projector = vecs @ core @ vecs.transpose(1, 2)  # [g, n, n]

        s_dense = sources.new_zeros((n_graphs, n_max))
        s_dense = s_dense.index_put((batch, local), sources)
        phi_dense = (projector @ s_dense.unsqueeze(-1)).squeeze(-1)
        return phi_dense[batch, local]

    def _window_parameters(self, lam, mode_real, counts, bound):
        """Smooth window edge λ_c, width δ and zero-mode scale ε per structure."""
        dtype = lam.dtype
        rank_width = 0.02 * bound.unsqueeze(1).unsqueeze(2)  # [g, 1, 1]
        pair = torch.sigmoid((lam.unsqueeze(2) - lam.unsqueeze(1)) / rank_width)  # [g, n, n]
        pair = pair * mode_real.unsqueeze(1).to(dtype)
        soft_rank = pair.sum(-1) - 0.5  # 0 for the lowest mode
        k_eff = torch.clamp(counts - 1, max=self.num_modes).to(dtype)  # [g]

        def pick(target: torch.Tensor) -> torch.Tensor:
            logits = -((soft_rank - target.unsqueeze(1)) ** 2) / (2 * 0.3**2)
            logits = logits.masked_fill(~mode_real, float("-inf"))
            return (torch.softmax(logits, dim=1) * lam).sum(1)

        lam_masked = lam.masked_fill(~mode_real, float("-inf"))
        top = lam_masked.max(dim=1).values
        last = pick(k_eff)
        above = torch.where(
            k_eff + 1 <= (counts - 1).to(dtype), pick(k_eff + 1), 1.5 * top + 0.05 * bound
        )
        edge = 0.5 * (last + above)
        width = 0.05 * edge.abs() + 1e-3 * bound
        zero_scale = 1e-3 * bound
        return edge, width, zero_scale

    def extra_repr(self) -> str:
        return f"num_modes={self.num_modes}"
