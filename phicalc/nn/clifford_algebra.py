"""The Clifford algebra Cl(3,0) of Euclidean 3-space, on tensors of shape ``[..., 8]``.

A multivector is x = Σ_A x_A e_A over the eight basis blades, stored in short-lex order::

    index   0    1    2    3    4     5     6     7
    blade   1    e1   e2   e3   e12   e13   e23   e123
    grade   0    1    1    1    2     2     2     3

Blades are encoded as bitmaps (bit k−1 set ⇔ e_k is a factor): e13 ↔ 0b101. With the Euclidean
metric (e_k² = +1) the product of two basis blades is a single signed blade,

    e_A e_B = σ(A, B) e_{A △ B},   σ(A, B) = (−1)^(number of transpositions to sort A·B),

so the geometric product has exactly 8 × 8 = 64 non-zero terms (one output blade per input pair)
and, grouped by grades, 20 grade paths (grade_left, grade_out, grade_right). It is computed here
with one gather and a signed sum over those 64 terms, never with a dense 8×8×8 tensor.

Involutions and norms (k = grade of the part they act on):

- grade involution α(x) = Σ_k (−1)^k x^(k)  (an automorphism: α(xy) = α(x)α(y)),
- reversion x̃ = Σ_k (−1)^(k(k−1)/2) x^(k)  (an anti-automorphism: (xy)~ = ỹ x̃),
- Clifford conjugation x̄ = α(x̃),
- quadratic form q(x) = ⟨x̃ x⟩₀ = Σ_A x_A² (Euclidean), per grade q(x^(k)),
- safe grade norm ‖x^(k)‖_ε = sqrt(q(x^(k)) + ε), finite with finite second derivatives at 0.

The orthogonal group acts on multivectors through the outermorphism of Q ∈ O(3): e_{i1}∧…∧e_{ik}
↦ (Q e_{i1})∧…∧(Q e_{ik}), i.e. 1 ⊕ Q ⊕ Λ²Q ⊕ det Q on grades 0–3. It preserves every grade, is
orthogonal on each, and is an algebra automorphism (ρ(xy) = ρ(x)ρ(y)), so polynomials in
multivectors with grade-wise weights are O(3)-equivariant (Ruhe, Brandstetter & Forré, Clifford
Group Equivariant Neural Networks, arXiv:2305.11141). The same action is the adjusted twisted
conjugation by a versor w: ρ(w)(x) = w α_w(x) w⁻¹ (α_w = α for odd w). Grade 1 is a polar vector,
grade 2 an axial vector (its dual), grade 3 a pseudoscalar that changes sign under reflections.

Example:
    >>> import torch
    >>> e1, e2 = basis_blade(1), basis_blade(2)
    >>> geometric_product(e1, e2).tolist()  # e1 e2 = e12
    [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    >>> geometric_product(e2, e1)[4].item()  # e2 e1 = −e12
    -1.0
"""

from __future__ import annotations

import functools
import itertools

import torch

#: Bitmap of each basis blade, in storage order.
BLADE_BITMAPS: tuple[int, ...] = (0b000, 0b001, 0b010, 0b100, 0b011, 0b101, 0b110, 0b111)
#: Grade of each basis blade, in storage order.
BLADE_GRADES: tuple[int, ...] = (0, 1, 1, 1, 2, 2, 2, 3)
#: Readable blade names, in storage order.
BLADE_NAMES: tuple[str, ...] = ("1", "e1", "e2", "e3", "e12", "e13", "e23", "e123")
#: Blade indices of each grade.
GRADE_BLADES: tuple[tuple[int, ...], ...] = ((0,), (1, 2, 3), (4, 5, 6), (7,))
NUM_BLADES = 8
NUM_GRADES = 4

_INDEX_OF_BITMAP = {bitmap: index for index, bitmap in enumerate(BLADE_BITMAPS)}


def reorder_sign(a: int, b: int) -> int:
    """σ(A, B) of e_A e_B = σ e_{A△B} for blade bitmaps A, B (Euclidean metric).

    Sorting the factors of e_A e_B into increasing order moves each factor e_k of A past every
    factor of B with a smaller index; the sign is (−1) to the number of such transpositions.
    """
    swaps = 0
    a >>= 1
    while a:
        swaps += bin(a & b).count("1")
        a >>= 1
    return -1 if swaps % 2 else 1


def _cayley_terms() -> list[tuple[int, int, int, int]]:
    """All 64 (out, left, right, sign) terms with e_left e_right = sign · e_out (indices)."""
    terms = []
    for out, left in itertools.product(range(NUM_BLADES), repeat=2):
        right_bitmap = BLADE_BITMAPS[left] ^ BLADE_BITMAPS[out]
        right = _INDEX_OF_BITMAP[right_bitmap]
        terms.append((out, left, right, reorder_sign(BLADE_BITMAPS[left], right_bitmap)))
    return terms


#: The 20 grade paths (grade_left, grade_out, grade_right) of the product, in sorted order.
GRADE_PATHS: tuple[tuple[int, int, int], ...] = tuple(
    sorted(
        {
            (BLADE_GRADES[left], BLADE_GRADES[out], BLADE_GRADES[right])
            for out, left, right, _ in _cayley_terms()
        }
    )
)
NUM_PATHS = len(GRADE_PATHS)

# Tables indexed [out, left]: the right factor is fixed by out and left (A △ B = out ⇔ B = A △ out).
_RIGHT_INDEX = [[0] * NUM_BLADES for _ in range(NUM_BLADES)]
_SIGN = [[0] * NUM_BLADES for _ in range(NUM_BLADES)]
_PATH = [[0] * NUM_BLADES for _ in range(NUM_BLADES)]
for _out, _left, _right, _sign in _cayley_terms():
    _RIGHT_INDEX[_out][_left] = _right
    _SIGN[_out][_left] = _sign
    _PATH[_out][_left] = GRADE_PATHS.index(
        (BLADE_GRADES[_left], BLADE_GRADES[_out], BLADE_GRADES[_right])
    )

# Vector × multivector: v x = v⌋x + v∧x with v = Σ_i v_i e_i. For output blade `out` and vector
# factor e_i (i = 0, 1, 2 ↔ e1, e2, e3) the multivector factor is e_{out △ i}; the term lowers the
# grade (left contraction) when e_i is a factor of that blade, else it raises it (wedge).
_VECTOR_INPUT = [[0] * 3 for _ in range(NUM_BLADES)]  # [out, i] → index into [x_inner ‖ x_outer]
_VECTOR_SIGN = [[0] * 3 for _ in range(NUM_BLADES)]
for _out in range(NUM_BLADES):
    for _i in range(3):
        _bit = 1 << _i
        _other = BLADE_BITMAPS[_out] ^ _bit
        _lowering = bool(_other & _bit)
        _VECTOR_INPUT[_out][_i] = _INDEX_OF_BITMAP[_other] + (0 if _lowering else NUM_BLADES)
        _VECTOR_SIGN[_out][_i] = reorder_sign(_bit, _other)


@functools.lru_cache(maxsize=32)
def _tables(device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Index and sign tables on a device, cast once and cached."""
    as_long = functools.partial(torch.tensor, dtype=torch.int64, device=device)
    as_float = functools.partial(torch.tensor, dtype=dtype, device=device)
    grades = as_long(BLADE_GRADES)
    return {
        "right": as_long(_RIGHT_INDEX).reshape(-1),  # [64] flattened [out, left]
        "sign": as_float(_SIGN),  # [8, 8]
        "path": as_long(_PATH).reshape(-1),  # [64]
        "vector_input": as_long(_VECTOR_INPUT).reshape(-1),  # [24] flattened [out, i]
        "vector_sign": as_float(_VECTOR_SIGN),  # [8, 3]
        "grades": grades,  # [8]
        "grade_sum": torch.nn.functional.one_hot(grades, NUM_GRADES).to(dtype),  # [8, 4]
        "reverse": as_float([(-1) ** (g * (g - 1) // 2) for g in BLADE_GRADES]),
        "involute": as_float([(-1) ** g for g in BLADE_GRADES]),
    }


def _check_blades(x: torch.Tensor, name: str = "x") -> None:
    if x.shape[-1] != NUM_BLADES:
        raise ValueError(
            f"{name} must have 8 blades in its last dimension, got shape {tuple(x.shape)}"
        )


# ---------------------------------------------------------------------------------- products
def geometric_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Geometric product xy = Σ_{A,B} x_A y_B σ(A,B) e_{A△B}.

    Args:
        x: [..., 8] left factor.
        y: [..., 8] right factor (broadcast against ``x``).

    Returns:
        [..., 8] product. For each output blade C the 8 terms x_A y_{A△C} σ(A, A△C) are gathered
        and summed: 64 multiplications per product.
    """
    _check_blades(x)
    _check_blades(y, "y")
    t = _tables(x.device, x.dtype)
    y_terms = y[..., t["right"]].unflatten(-1, (NUM_BLADES, NUM_BLADES))  # [..., out, left]
    return (x.unsqueeze(-2) * y_terms * t["sign"]).sum(-1)


def weighted_geometric_product(
    x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Geometric product with one weight per grade path (CGENN's steerable product).

    Σ_{(i,j,k) ∈ paths} w_ijk ⟨x^(i) y^(k)⟩_j, with the paths of :data:`GRADE_PATHS`. Each weight
    multiplies a grade projection of a product of grade projections, all O(3)-equivariant, so the
    weighted product is equivariant for any weights. All weights 1 give :func:`geometric_product`.

    Args:
        x: [..., C, 8] left factor.
        y: [..., C, 8] right factor.
        weights: [C, 20] (or anything broadcasting to ``[..., C, 20]``) path weights.

    Returns:
        [..., C, 8] weighted product.
    """
    _check_blades(x)
    _check_blades(y, "y")
    if weights.shape[-1] != NUM_PATHS:
        raise ValueError(
            f"weights need {NUM_PATHS} grade paths last, got shape {tuple(weights.shape)}"
        )
    t = _tables(x.device, x.dtype)
    coefficients = (weights[..., t["path"]].unflatten(-1, (NUM_BLADES, NUM_BLADES))) * t["sign"]
    y_terms = y[..., t["right"]].unflatten(-1, (NUM_BLADES, NUM_BLADES))  # [..., C, out, left]
    return (x.unsqueeze(-2) * y_terms * coefficients).sum(-1)


def vector_product(
    v: torch.Tensor, x_inner: torch.Tensor, x_outer: torch.Tensor | None = None
) -> torch.Tensor:
    """v⌋x_inner + v∧x_outer for a vector v: the grade-lowering and grade-raising parts of v x.

    For a vector v, v x = v⌋x + v∧x (left contraction plus wedge), so
    ``vector_product(v, x, x) == geometric_product(embed_vector(v), x)``. Passing two different
    multivectors lets each half carry its own (grade-wise) weights. 24 terms per product.

    Args:
        v: [..., 3] Cartesian components of the vector (v = v_1 e1 + v_2 e2 + v_3 e3); it
            broadcasts against the multivectors, e.g. [n_edges, 1, 3] against [n_edges, C, 8].
        x_inner: [..., 8] multivector whose grade-lowering product is taken.
        x_outer: [..., 8] multivector whose grade-raising product is taken (default: x_inner).

    Returns:
        [..., 8].
    """
    _check_blades(x_inner, "x_inner")
    x_outer = x_inner if x_outer is None else x_outer
    t = _tables(x_inner.device, x_inner.dtype)
    stacked = torch.cat(torch.broadcast_tensors(x_inner, x_outer), dim=-1)  # [..., 16]
    terms = stacked[..., t["vector_input"]].unflatten(-1, (NUM_BLADES, 3))  # [..., out, i]
    return (terms * (v.unsqueeze(-2) * t["vector_sign"])).sum(-1)


# ---------------------------------------------------------------------------------- grades
def grade_projection(x: torch.Tensor, grade: int) -> torch.Tensor:
    """⟨x⟩_k: keep the blades of grade ``grade``, zero the others. [..., 8] → [..., 8]."""
    if grade not in range(NUM_GRADES):
        raise ValueError(f"grade must be 0, 1, 2 or 3, got {grade!r}")
    mask = _tables(x.device, x.dtype)["grades"] == grade
    return x * mask.to(x.dtype)


def grade_involution(x: torch.Tensor) -> torch.Tensor:
    """α(x) = Σ_k (−1)^k x^(k)."""
    return x * _tables(x.device, x.dtype)["involute"]


def reverse(x: torch.Tensor) -> torch.Tensor:
    """x̃ = Σ_k (−1)^(k(k−1)/2) x^(k) (signs + + − − for grades 0–3)."""
    return x * _tables(x.device, x.dtype)["reverse"]


def clifford_conjugate(x: torch.Tensor) -> torch.Tensor:
    """x̄ = α(x̃) = Σ_k (−1)^(k(k+1)/2) x^(k)."""
    return grade_involution(reverse(x))


def quadratic_form(x: torch.Tensor) -> torch.Tensor:
    """q(x) = ⟨x̃ x⟩₀ = Σ_A x_A² (Euclidean signature). [..., 8] → [...]."""
    return (x * x).sum(-1)


def grade_quadratic_forms(x: torch.Tensor) -> torch.Tensor:
    """q(x^(k)) for k = 0..3: [..., 8] → [..., 4], a sum of squares per grade (O(3)-invariant)."""
    return (x * x) @ _tables(x.device, x.dtype)["grade_sum"]


def grade_norms(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Safe norms ‖x^(k)‖_ε = sqrt(q(x^(k)) + ε), [..., 8] → [..., 4].

    The ε keeps the first and second derivatives finite where a grade vanishes (bivectors and
    pseudoscalars start at exactly 0; a vector sum vanishes at symmetric sites): ∂‖x‖/∂x =
    x/‖x‖_ε and the Hessian is at most 1/sqrt(ε), which matters for force training (double
    backprop). The offset sqrt(ε) at 0 is a constant.
    """
    return torch.sqrt(grade_quadratic_forms(x) + eps)


def expand_grades(values: torch.Tensor) -> torch.Tensor:
    """Broadcast one value per grade to the blades: [..., 4] → [..., 8]."""
    return values[..., _tables(values.device, values.dtype)["grades"]]


# ---------------------------------------------------------------------------------- embeddings
def basis_blade(
    index: int, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> torch.Tensor:
    """The basis blade e_A with storage index ``index`` (0 = 1, ..., 7 = e123), shape [8]."""
    if index not in range(NUM_BLADES):
        raise ValueError(f"blade index must be in 0..7, got {index!r}")
    out = torch.zeros(NUM_BLADES, dtype=dtype, device=device)
    out[index] = 1.0
    return out


def embed_scalar(s: torch.Tensor) -> torch.Tensor:
    """s ↦ s·1: [...] → [..., 8]."""
    out = s.new_zeros((*s.shape, NUM_BLADES))
    out[..., 0] = s
    return out


def embed_vector(v: torch.Tensor) -> torch.Tensor:
    """v ↦ v_1 e1 + v_2 e2 + v_3 e3: [..., 3] → [..., 8]."""
    zeros = v.new_zeros((*v.shape[:-1], 1))
    return torch.cat([zeros, v, zeros.expand(*v.shape[:-1], 4)], dim=-1)


# ---------------------------------------------------------------------------------- O(3) action
def orthogonal_action(rotation: torch.Tensor) -> torch.Tensor:
    """The 8 × 8 matrix of the outermorphism of Q ∈ O(3): 1 ⊕ Q ⊕ Λ²Q ⊕ det Q.

    Column B of the grade-2 block holds (Q e_i)∧(Q e_j) for e_B = e_i e_j (i < j), whose
    e_k e_l component (k < l) is the minor Q_ki Q_lj − Q_li Q_kj. A multivector transforms as
    ``x @ orthogonal_action(Q).T``.

    Args:
        rotation: [3, 3] orthogonal matrix Q (det ±1); it acts on column vectors, v ↦ Q v.

    Returns:
        [8, 8].
    """
    q = rotation
    out = q.new_zeros((NUM_BLADES, NUM_BLADES))
    out[0, 0] = 1.0
    out[1:4, 1:4] = q
    pairs = ((0, 1), (0, 2), (1, 2))  # e12, e13, e23
    for row, (k, l) in enumerate(pairs):
        for col, (i, j) in enumerate(pairs):
            out[4 + row, 4 + col] = q[k, i] * q[l, j] - q[l, i] * q[k, j]
    out[7, 7] = torch.linalg.det(q)
    return out


def versor_action(versor: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Adjusted twisted conjugation ρ(w)(x) = w α_w(x) w⁻¹ by a versor w (product of vectors).

    α_w is the grade involution when w is odd (a product of an odd number of vectors, a
    reflection) and the identity when w is even (a rotor). w⁻¹ = w̃ / (w w̃). For a unit vector n,
    ρ(n) reflects in the plane orthogonal to n; for a rotor R = n₂n₁ it is the rotation by twice
    the angle from n₁ to n₂. ρ(w) equals :func:`orthogonal_action` of the matching matrix.

    Args:
        versor: [8] a product of non-null vectors (homogeneous in parity).
        x: [..., 8].
    """
    odd = float(versor[[1, 2, 3, 7]].abs().sum()) > 0.0
    norm = geometric_product(versor, reverse(versor))[0]
    inverse = reverse(versor) / norm
    twisted = grade_involution(x) if odd else x
    return geometric_product(geometric_product(versor, twisted), inverse)


def bivector_to_axial(x: torch.Tensor) -> torch.Tensor:
    """Hodge dual of the grade-2 part: b12 e12 + b13 e13 + b23 e23 ↦ (b23, −b13, b12), [..., 3].

    This axial vector is the cross product for a ∧ b, and transforms as det(Q)·Q under Q ∈ O(3).
    """
    return torch.stack([x[..., 6], -x[..., 5], x[..., 4]], dim=-1)


def layout_string(channels: int, grades: tuple[int, ...] = (0, 1, 2, 3)) -> str:
    """e3nn-style layout label, e.g. ``"16 x [0,1,2,3]"``."""
    return f"{channels} x [{','.join(str(g) for g in grades)}]"


__all__ = [
    "BLADE_BITMAPS",
    "BLADE_GRADES",
    "BLADE_NAMES",
    "GRADE_BLADES",
    "GRADE_PATHS",
    "NUM_BLADES",
    "NUM_GRADES",
    "NUM_PATHS",
    "basis_blade",
    "bivector_to_axial",
    "clifford_conjugate",
    "embed_scalar",
    "embed_vector",
    "expand_grades",
    "geometric_product",
    "grade_involution",
    "grade_norms",
    "grade_projection",
    "grade_quadratic_forms",
    "layout_string",
    "orthogonal_action",
    "quadratic_form",
    "reorder_sign",
    "reverse",
    "versor_action",
    "vector_product",
    "weighted_geometric_product",
]
