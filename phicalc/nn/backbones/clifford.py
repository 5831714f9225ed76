"""CliffordNet: O(3)-equivariant message passing on Cl(3,0) multivector features.

Node features are C channels of multivectors h_i ∈ Cl(3,0), stored as ``[n_atoms, C, 8]``
(blades 1, e1, e2, e3, e12, e13, e23, e123; see :mod:`phicalc.nn.clifford_algebra`); they start
as scalars, h_i = Embedding(Z_i)·1. Per block:

1. **Steerable kernel** (Clifford-steerable CNNs, Zhdanov et al., arXiv:2402.14730): a Clifford
   MLP maps the edge multivectors x_n = e_n(r_ij)·(1 + r̂_ij), one per Bessel function e_n, to
   one kernel multivector per channel, k_ij,c. Every layer (grade-wise linear, geometric product,
   gate) is equivariant and polynomials in a single vector r̂ span only {1, r̂} (r̂² = 1), so
   k_ij,c = a_c(r_ij) + b_c(r_ij) r̂_ij *exactly*: the MLP is evaluated on the two coefficients
   (a, b) per channel (:meth:`CliffordKernel.forward`), with a full-multivector evaluation of the
   same weights for checking (:meth:`CliffordKernel.multivectors`). One kernel network serves all
   blocks (its last layer has blocks × C outputs). The Bessel input is scaled to unit RMS.
2. **Message** by a weighted geometric product of the kernel with the sender's features, summed at
   the receiver with the smooth envelope u(r) (sender i = ``edge_index[0]``, receiver j, r̂ from i
   to j):

       m_j = (1/N̄) Σ_i u(r_ij) [ a_ij ∘ S(h_i) + b_ij ∘ ( r̂_ij ⌋ D(h_i) + r̂_ij ∧ U(h_i) ) ],

   i.e. k_ij h_i split into its 10 grade paths with a left factor of grade ≤ 1 (grade kept,
   lowered by the contraction, raised by the wedge), each path family weighted by its own
   grade-wise linear map S, D, U (a per-channel path weight is the diagonal special case).
   N̄ = ``avg_num_neighbors`` is a fixed constant, so the energy stays extensive. Per atom the
   four multivectors [S, e_k⌋D + e_k∧U (k = 1, 2, 3)] are formed once; an edge gathers them
   (32 C numbers) and contracts with (a, b r̂) in one batched matmul.
3. **Update** (CGENN-style, Ruhe et al., arXiv:2305.11141): z = Linear([h ‖ m]),
   z ← (Linear(z) + Σ_paths w ⟨z · Norm(Linear(z))⟩)/√2, z ← Gate(z), h ← h + Linear(z).

Grade-wise linear layers, the weighted product, grade projections and gates commute with the
O(3) action on multivectors, so h is O(3)-equivariant: under Q scalars stay, vectors rotate,
bivectors rotate as axial vectors (det Q · Q) and pseudoscalars change sign under reflections.
The invariant features handed to the readout (and the Φ-Module) are, per channel, [h⁽⁰⁾,
‖h⁽¹⁾‖_δ, ‖h⁽²⁾‖_δ, ‖h⁽³⁾‖_δ] with ‖x‖_δ = sqrt(q(x) + δ²) (``feature_dim = 4 C``), so energies
are O(3)-invariant and forces O(3)-equivariant. δ (``norm_smoothing``, 0.01) makes the energy
smooth where a grade vanishes: a pseudoscalar is one number that changes sign along ordinary MD
(a reflection-odd quantity), and with a negligible δ its |h⁽³⁾| would make the forces jump at
each sign change. δ = 0.01 spreads the turn over |h⁽³⁾| ≲ δ, i.e. over about ±δ / |∇h⁽³⁾| (Å)
of atomic motion. Inside the blocks (grade normalisation) norms keep ε = 1e-8 (as PaiNN): there
they only scale a grade, so the energy stays continuously differentiable.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from phicalc.config import check_int_at_least, check_positive
from phicalc.nn import clifford_algebra as ca
from phicalc.nn.backbones.base import Backbone, BackboneOutput, Geometry
from phicalc.nn.radial import RadialEmbedding
from phicalc.nn.scatter import scatter_sum

#: ε inside square roots: ‖x^(k)‖_ε = sqrt(q(x^(k)) + ε); derivatives stay finite at x = 0
#: to second order (double backprop), as PaiNN's NORM_EPS.
NORM_EPS = 1e-8

_GRADE_OF_BLADE = torch.tensor(ca.BLADE_GRADES, dtype=torch.int64)

# Grade paths (left, out, right) of (a + b n)(c + d n) for a unit vector n; n² = 1.
_SPAN_PATHS = {name: ca.GRADE_PATHS.index(path) for name, path in {
    "ss": (0, 0, 0), "vv": (1, 0, 1), "sv": (0, 1, 1), "vs": (1, 1, 0)
}.items()}  # fmt: skip


@dataclass(frozen=True)
class CliffordConfig:
    """CliffordNet hyperparameters (small CPU defaults).

    Args:
        num_channels: multivector channels C; invariant feature width is 4 C (default: 16).
        num_blocks: message + update blocks (default: 3).
        num_radial: Bessel functions fed to the kernel MLP (default: 8).
        kernel_layers: geometric-product layers inside the kernel MLP (default: 1).
        avg_num_neighbors: constant N̄ dividing the summed messages; set it to the mean
            neighbour count of the training data (default: 8.0).
        norm_smoothing: δ of the invariant norms ‖x^(k)‖_δ = sqrt(q(x^(k)) + δ²) (feature
            units; default: 0.01). Model files of format 1 used 1e-4 (read as such).
    """

    num_channels: int = 16
    num_blocks: int = 3
    num_radial: int = 8
    kernel_layers: int = 1
    avg_num_neighbors: float = 8.0
    norm_smoothing: float = 0.01

    def __post_init__(self) -> None:
        for name in ("num_channels", "num_blocks", "num_radial"):
            check_int_at_least(f"CliffordConfig.{name}", getattr(self, name), 1)
        check_int_at_least("CliffordConfig.kernel_layers", self.kernel_layers, 0)
        for name in ("avg_num_neighbors", "norm_smoothing"):
            check_positive(f"CliffordConfig.{name}", getattr(self, name))


# ---------------------------------------------------------------------------------- layers
class MVLinear(nn.Module):
    """Grade-wise linear map y_o^(k) = Σ_i W_{o,i,k} x_i^(k) (+ b_o on the scalar blade).

    One weight matrix per grade, so the map commutes with the O(3) action. Init W ~ N(0, 1/C_in).

    Args:
        in_channels: C_in.
        out_channels: C_out.
        bias: add a learnable scalar (grade-0) bias (default: True).
    """

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(
            torch.randn(ca.NUM_GRADES, out_channels, in_channels) / math.sqrt(in_channels)
        )
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("grade_of_blade", _GRADE_OF_BLADE.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., C_in, 8] → [..., C_out, 8]: one batched matmul over the 8 blades."""
        weight = self.weight[self.grade_of_blade]  # [8, C_out, C_in]
        out = torch.bmm(x.reshape(-1, *x.shape[-2:]).permute(2, 0, 1), weight.transpose(1, 2))
        out = out.permute(1, 2, 0).reshape(*x.shape[:-2], self.out_channels, ca.NUM_BLADES)
        if self.bias is not None:
            out = out + ca.embed_scalar(self.bias)
        return out

    def forward_span(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same map on x = a + b n (n a unit vector): coefficients [..., C_in] → [..., C_out]."""
        a = a @ self.weight[0].T
        if self.bias is not None:
            a = a + self.bias
        return a, b @ self.weight[1].T

    def extra_repr(self) -> str:
        return (
            f"{ca.layout_string(self.in_channels)} -> {ca.layout_string(self.out_channels)}, "
            f"bias={self.bias is not None}"
        )


class MVGate(nn.Module):
    """Gated nonlinearity per grade: y^(k) = sigmoid(α_k f_k + β_k) x^(k).

    f_0 = x^(0) (so the scalar part gets SiLU at init) and f_k = q(x^(k)) for k ≥ 1; both are
    invariant (the pseudoscalar enters squared), so the gate is equivariant. α = 1, β = 0 at init.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.alpha = nn.Parameter(torch.ones(channels, ca.NUM_GRADES))
        self.beta = nn.Parameter(torch.zeros(channels, ca.NUM_GRADES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., C, 8] → [..., C, 8]."""
        q = ca.grade_quadratic_forms(x)  # [..., C, 4]
        f = torch.cat([x[..., :1], q[..., 1:]], dim=-1)
        return x * ca.expand_grades(torch.sigmoid(self.alpha * f + self.beta))

    def forward_span(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gate on x = a + b n: q(b n) = b²."""
        ga = torch.sigmoid(self.alpha[:, 0] * a + self.beta[:, 0])
        gb = torch.sigmoid(self.alpha[:, 1] * b * b + self.beta[:, 1])
        return ga * a, gb * b

    def extra_repr(self) -> str:
        return ca.layout_string(self.channels)


class GradeNormalization(nn.Module):
    """x^(k) ↦ x^(k) / (σ(s_k)(‖x^(k)‖_ε − 1) + 1) per channel and grade (CGENN).

    s = 0 at init (half-way between identity and unit grade norms). The denominator is
    σ(s)‖x‖_ε + 1 − σ(s) > 0, so it never divides by zero.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.strength = nn.Parameter(torch.zeros(channels, ca.NUM_GRADES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., C, 8] → [..., C, 8]."""
        s = torch.sigmoid(self.strength)
        denominator = s * (ca.grade_norms(x, NORM_EPS) - 1.0) + 1.0  # [..., C, 4]
        return x / ca.expand_grades(denominator)

    def forward_span(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.sigmoid(self.strength)
        norm_a = torch.sqrt(a * a + NORM_EPS)
        norm_b = torch.sqrt(b * b + NORM_EPS)
        return a / (s[:, 0] * (norm_a - 1.0) + 1.0), b / (s[:, 1] * (norm_b - 1.0) + 1.0)

    def extra_repr(self) -> str:
        return ca.layout_string(self.channels)


class GeometricProductLayer(nn.Module):
    """Per-channel steerable geometric-product layer (CGENN):

        y_c = (1/√2) [ L(x)_c + Σ_{(i,j,k)} w_{c,ijk} ⟨ x_c^(i) · Norm(R(x))_c^(k) ⟩_j ],

    L, R grade-wise linear (R without bias), w [C, 20] ~ N(0, 1/4) one weight per grade path.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.left = MVLinear(channels, channels)
        self.right = MVLinear(channels, channels, bias=False)
        self.normalization = GradeNormalization(channels)
        self.path_weights = nn.Parameter(0.5 * torch.randn(channels, ca.NUM_PATHS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., C, 8] → [..., C, 8]."""
        right = self.normalization(self.right(x))
        product = ca.weighted_geometric_product(x, right, self.path_weights)
        return (self.left(x) + product) / math.sqrt(2.0)

    def forward_span(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer on x = a + b n: (a + b n)(c + d n) = (ac + bd) + (ad + bc) n, weighted."""
        la, lb = self.left.forward_span(a, b)
        c, d = self.normalization.forward_span(*self.right.forward_span(a, b))
        w = self.path_weights
        pa = w[:, _SPAN_PATHS["ss"]] * a * c + w[:, _SPAN_PATHS["vv"]] * b * d
        pb = w[:, _SPAN_PATHS["sv"]] * a * d + w[:, _SPAN_PATHS["vs"]] * b * c
        return (la + pa) / math.sqrt(2.0), (lb + pb) / math.sqrt(2.0)

    def extra_repr(self) -> str:
        return f"{ca.layout_string(self.channels)}, paths={ca.NUM_PATHS}"


# ---------------------------------------------------------------------------------- kernel
class CliffordKernel(nn.Module):
    """Steerable kernel k(r_ij) ∈ Cl(3,0)^C: a Clifford MLP of the relative position.

    Input: one multivector per radial function, x_n = e_n(r)·(1 + r̂) (grades 0 and 1).
    Layers: MVLinear(R → C), ``num_layers`` × [GeometricProductLayer → MVGate] at width C, then
    MVLinear(C → C_out); one network serves all blocks (C_out = blocks × C, as schnetpack's PaiNN
    shares its filter network), each block reading its own C output channels.
    Because the input lies in span{1, r̂}, a subalgebra (r̂² = 1) that every layer preserves, the
    output is k_c = a_c(r) + b_c(r) r̂ exactly; :meth:`forward` evaluates the network on the
    coefficients (a, b) and never builds the 8-blade multivectors (4× less work per edge).

    Args:
        num_radial: R, number of radial basis functions.
        channels: C, hidden kernel channels.
        num_layers: geometric-product layers (default: 1).
        out_channels: C_out, kernel multivectors per edge (default: C).
    """

    def __init__(
        self, num_radial: int, channels: int, num_layers: int = 1, out_channels: int | None = None
    ) -> None:
        super().__init__()
        self.num_radial = num_radial
        self.channels = channels
        self.out_channels = channels if out_channels is None else out_channels
        self.embedding = MVLinear(num_radial, channels)
        self.products = nn.ModuleList(GeometricProductLayer(channels) for _ in range(num_layers))
        self.gates = nn.ModuleList(MVGate(channels) for _ in range(num_layers))
        self.output = MVLinear(channels, self.out_channels)

    def forward(self, radial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Kernel coefficients: radial [n_edges, R] → (a, b), each [n_edges, C_out]; k = a + b r̂."""
        a, b = self.embedding.forward_span(radial, radial)
        for product, gate in zip(self.products, self.gates):
            a, b = gate.forward_span(*product.forward_span(a, b))
        return self.output.forward_span(a, b)

    def multivectors(self, radial: torch.Tensor, unit_vectors: torch.Tensor) -> torch.Tensor:
        """The same network on full multivectors (slow; for checks): → [n_edges, C_out, 8].

        Args:
            radial: [n_edges, R] radial features e_n(r).
            unit_vectors: [n_edges, 3] r̂.
        """
        x = radial.unsqueeze(-1) * (
            ca.embed_scalar(torch.ones_like(unit_vectors[:, 0])) + ca.embed_vector(unit_vectors)
        ).unsqueeze(1)  # [n_edges, R, 8]
        x = self.embedding(x)
        for product, gate in zip(self.products, self.gates):
            x = gate(product(x))
        return self.output(x)

    def extra_repr(self) -> str:
        return (
            f"{self.num_radial} x [0,1] -> {ca.layout_string(self.channels, (0, 1))} -> "
            f"{ca.layout_string(self.out_channels, (0, 1))}"
        )


# ---------------------------------------------------------------------------------- block
class CliffordInteraction(nn.Module):
    """One message + update block (module docstring, steps 2–3); the kernel comes from outside.

    Args:
        channels: C.
        avg_num_neighbors: N̄, the constant that divides the summed messages.
    """

    def __init__(self, channels: int, avg_num_neighbors: float) -> None:
        super().__init__()
        self.channels = channels
        self.avg_num_neighbors = float(avg_num_neighbors)
        # S (grade kept), D (grade lowered by r̂⌋) and U (grade raised by r̂∧) in one map.
        self.source = MVLinear(channels, 3 * channels)
        self.mix = MVLinear(2 * channels, channels)
        self.product = GeometricProductLayer(channels)
        self.gate = MVGate(channels)
        self.output = MVLinear(channels, channels)

    def forward(
        self,
        h: torch.Tensor,
        kernel: tuple[torch.Tensor, torch.Tensor],
        envelope: torch.Tensor,
        unit_vectors: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        """One block.

        Args:
            h: [n_atoms, C, 8] multivector features.
            kernel: (a, b), each [n_edges, C]: the kernel k_ij = a + b r̂_ij of this block.
            envelope: [n_edges] u(r_ij), vanishing smoothly at the cutoff.
            unit_vectors: [n_edges, 3] r̂_ij, from sender to receiver.
            edge_index: [2, n_edges] (sender, receiver).

        Returns:
            [n_atoms, C, 8] updated features.
        """
        sender, receiver = edge_index
        n_atoms, c = h.shape[0], self.channels
        a, b = kernel
        # k h = a S(h) + b Σ_i r̂_i (e_i⌋D(h) + e_i∧U(h)): the four node-level multivectors
        # T = [S, P_1, P_2, P_3] are built once per atom, so an edge only gathers and contracts.
        same, lower, upper = self.source(h).split(c, dim=-2)  # [n_atoms, C, 8] each
        basis = torch.eye(3, dtype=h.dtype, device=h.device)  # [3 (i), 3 (xyz)]
        frames = ca.vector_product(basis, lower.unsqueeze(-2), upper.unsqueeze(-2))
        terms = torch.cat([same.unsqueeze(-2), frames], dim=-2)  # [n_atoms, C, 4, 8]
        weight = (envelope / self.avg_num_neighbors).reshape(-1, 1, 1)  # [n_edges, 1, 1]
        coefficients = weight * torch.cat(
            [a.unsqueeze(-1), b.unsqueeze(-1) * unit_vectors.unsqueeze(1)], dim=-1
        )  # [n_edges, C, 4]: u/N̄ · (a, b r̂_x, b r̂_y, b r̂_z)
        n_edges = coefficients.shape[0]
        gathered = torch.index_select(terms.reshape(n_atoms, -1), 0, sender)  # [n_edges, 32 C]
        messages = torch.bmm(
            coefficients.reshape(n_edges * c, 1, 4), gathered.view(n_edges * c, 4, ca.NUM_BLADES)
        ).view(n_edges, c, ca.NUM_BLADES)  # [n_edges, C, 8]
        m = scatter_sum(messages, receiver, n_atoms)  # [n_atoms, C, 8]
        z = self.mix(torch.cat([h, m], dim=-2))
        z = self.gate(self.product(z))
        return h + self.output(z)

    def extra_repr(self) -> str:
        return f"{ca.layout_string(self.channels)}, avg_num_neighbors={self.avg_num_neighbors}"


def invariant_features(h: torch.Tensor, smoothing: float) -> torch.Tensor:
    """O(3)-invariant features [h⁽⁰⁾, ‖h⁽¹⁾‖_δ, ‖h⁽²⁾‖_δ, ‖h⁽³⁾‖_δ] per channel, δ = ``smoothing``:
    [n, C, 8] → [n, 4C]. Smooth in h for δ > 0 (the Hessian of a norm is at most 1/δ)."""
    norms = ca.grade_norms(h, smoothing * smoothing)  # [n, C, 4]
    return torch.cat([h[..., 0], norms[..., 1], norms[..., 2], norms[..., 3]], dim=-1)


def _inverse_rms(radial: RadialEmbedding, cutoff: float) -> float:
    """1 / RMS of the enveloped Bessel functions over r ∈ [0.2 r_c, r_c] (a fixed constant).

    Scaling the kernel input by it makes the kernel O(1) at initialisation whatever the cutoff
    (the raw functions are ~0.2 at r_c = 5 Å), so geometric features are not born negligible.
    """
    r = torch.linspace(0.2 * cutoff, cutoff, 1001, dtype=torch.float64)
    with torch.no_grad():
        values = copy.deepcopy(radial).double()(r)
    return float(1.0 / values.pow(2).mean().sqrt())


class CliffordNet(Backbone):
    """Clifford-algebra backbone (see module docstring): features ``channels x [0,1,2,3]``.

    Example:
        >>> net = CliffordNet(CliffordConfig(num_channels=4, num_blocks=2), cutoff=4.0, num_elements=2)
        >>> net
        CliffordNet(channels=4 x [0,1,2,3], blocks=2, radial=8, kernel=4 x [0,1], cutoff=4.0)
        >>> net.feature_dim
        16
    """

    #: Grades carried by every feature channel.
    grades: tuple[int, ...] = (0, 1, 2, 3)

    def __init__(self, config: CliffordConfig, *, cutoff: float, num_elements: int) -> None:
        super().__init__()
        self.config = config
        self.cutoff = float(cutoff)
        self.channels = config.num_channels
        self.feature_dim = ca.NUM_GRADES * config.num_channels
        self.num_blocks = config.num_blocks
        self.embedding = nn.Embedding(num_elements, config.num_channels)
        self.radial = RadialEmbedding(cutoff, config.num_radial)
        self.radial_scale = _inverse_rms(self.radial, cutoff)
        self.kernel = CliffordKernel(
            config.num_radial,
            config.num_channels,
            config.kernel_layers,
            out_channels=config.num_blocks * config.num_channels,
        )
        self.blocks = nn.ModuleList(
            CliffordInteraction(config.num_channels, config.avg_num_neighbors)
            for _ in range(config.num_blocks)
        )

    @property
    def layout(self) -> str:
        """Feature layout, e.g. ``"16 x [0,1,2,3]"``."""
        return ca.layout_string(self.channels, self.grades)

    def multivector_features(self, geometry: Geometry) -> list[torch.Tensor]:
        """Equivariant features after each block, each [n_atoms, C, 8]."""
        h = ca.embed_scalar(self.embed_atoms(geometry))  # [n_atoms, C, 8]
        lengths = geometry.edge_lengths
        radial = self.radial_scale * self.radial(lengths)  # [n_edges, R], unit RMS, enveloped
        envelope = self.radial.envelope(lengths)  # [n_edges]
        unit_vectors = geometry.edge_vectors / lengths.unsqueeze(-1)  # [n_edges, 3]
        a, b = self.kernel(radial)  # [n_edges, blocks × C] each
        kernels = zip(a.split(self.channels, dim=-1), b.split(self.channels, dim=-1))
        features = []
        for block, kernel in zip(self.blocks, kernels):
            h = block(h, kernel, envelope, unit_vectors, geometry.graph.edge_index)
            features.append(h)
        return features

    def forward(self, geometry: Geometry) -> BackboneOutput:
        smoothing = self.config.norm_smoothing
        blocks = [invariant_features(h, smoothing) for h in self.multivector_features(geometry)]
        return BackboneOutput(node_features=blocks[-1], block_features=blocks)

    def __repr__(self) -> str:
        kernel = ca.layout_string(self.channels, (0, 1))
        return (
            f"{type(self).__name__}(channels={self.layout}, blocks={self.num_blocks}, "
            f"radial={self.config.num_radial}, kernel={kernel}, cutoff={self.cutoff})"
        )
