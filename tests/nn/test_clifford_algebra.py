"""Cl(3,0) algebra: the fast gather product against a slow blade-by-blade reference, algebra
identities, grade rules and the O(3) action (written from the math, not from the implementation)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from phicalc.nn import clifford_algebra as ca

# Reference basis: each blade as the sorted tuple of its vector indices (1 = e1, ...).
REFERENCE_BLADES = [(), (1,), (2,), (3,), (1, 2), (1, 3), (2, 3), (1, 2, 3)]


def reference_blade_product(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """e_a e_b by bubble-sorting the word a + b (each swap of distinct vectors: −1) and then
    cancelling adjacent equal vectors (e_i e_i = +1)."""
    word = list(a) + list(b)
    sign = 1
    for end in range(len(word) - 1, 0, -1):
        for k in range(end):
            if word[k] > word[k + 1]:
                word[k], word[k + 1] = word[k + 1], word[k]
                sign = -sign
    reduced: list[int] = []
    for v in word:
        if reduced and reduced[-1] == v:
            reduced.pop()
        else:
            reduced.append(v)
    return sign, tuple(reduced)


def reference_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Slow geometric product: a Python double loop over blades (shapes [..., 8])."""
    out = torch.zeros(torch.broadcast_shapes(x.shape, y.shape), dtype=x.dtype)
    for i, a in enumerate(REFERENCE_BLADES):
        for j, b in enumerate(REFERENCE_BLADES):
            sign, blade = reference_blade_product(a, b)
            out[..., REFERENCE_BLADES.index(blade)] += sign * x[..., i] * y[..., j]
    return out


def random_multivectors(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, 8, generator=generator, dtype=torch.float64)


def random_orthogonal(seed: int, reflection: bool) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if (torch.linalg.det(q) < 0) != reflection:
        q = -q  # −I has det −1 in 3D, so this flips the determinant
    return q


def unit_vector(seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(3, generator=generator, dtype=torch.float64)
    return v / v.norm()


# ----------------------------------------------------------------------------------- tables
def test_blade_layout_matches_reference_order():
    bitmaps = [sum(1 << (k - 1) for k in blade) for blade in REFERENCE_BLADES]
    assert tuple(bitmaps) == ca.BLADE_BITMAPS
    assert tuple(len(blade) for blade in REFERENCE_BLADES) == ca.BLADE_GRADES


def test_cayley_table_has_64_terms_and_20_grade_paths():
    nonzero = 0
    paths = set()
    for a, b in itertools.product(range(8), repeat=2):
        product = ca.geometric_product(ca.basis_blade(a), ca.basis_blade(b))
        assert int((product != 0).sum()) == 1  # a single signed blade
        assert float(product.abs().sum()) == 1.0
        nonzero += 1
        out = int(product.abs().argmax())
        paths.add((ca.BLADE_GRADES[a], ca.BLADE_GRADES[out], ca.BLADE_GRADES[b]))
    assert nonzero == 64
    assert sorted(paths) == list(ca.GRADE_PATHS) and len(paths) == 20 == ca.NUM_PATHS


@pytest.mark.parametrize("a", range(8))
def test_basis_products_match_reference(a: int):
    for b in range(8):
        sign, blade = reference_blade_product(REFERENCE_BLADES[a], REFERENCE_BLADES[b])
        expected = sign * ca.basis_blade(REFERENCE_BLADES.index(blade))
        torch.testing.assert_close(
            ca.geometric_product(ca.basis_blade(a), ca.basis_blade(b)), expected
        )


# ----------------------------------------------------------------------------------- products
def test_product_matches_slow_reference_on_random_multivectors():
    x, y = random_multivectors(5, 3, seed=1), random_multivectors(5, 3, seed=2)
    torch.testing.assert_close(ca.geometric_product(x, y), reference_product(x, y))


def test_product_broadcasts():
    x, y = random_multivectors(4, 1, seed=1), random_multivectors(1, 6, seed=2)
    torch.testing.assert_close(ca.geometric_product(x, y), reference_product(x, y))


def test_associativity_and_distributivity():
    x, y, z = (random_multivectors(16, seed=s) for s in (3, 4, 5))
    gp = ca.geometric_product
    torch.testing.assert_close(gp(gp(x, y), z), gp(x, gp(y, z)))
    torch.testing.assert_close(gp(x, y + z), gp(x, y) + gp(x, z))
    torch.testing.assert_close(gp(x + y, z), gp(x, z) + gp(y, z))
    torch.testing.assert_close(gp(2.5 * x, y), 2.5 * gp(x, y))


def test_generator_relations():
    one = ca.basis_blade(0)
    e = [ca.basis_blade(i) for i in (1, 2, 3)]
    gp = ca.geometric_product
    for i in range(3):
        torch.testing.assert_close(gp(e[i], e[i]), one)  # e_i² = +1
        for j in range(3):
            if i != j:
                torch.testing.assert_close(gp(e[i], e[j]), -gp(e[j], e[i]))  # anticommute
    pseudoscalar = gp(gp(e[0], e[1]), e[2])
    torch.testing.assert_close(pseudoscalar, ca.basis_blade(7))
    torch.testing.assert_close(gp(pseudoscalar, pseudoscalar), -one)  # I² = −1
    x = random_multivectors(8, seed=6)
    torch.testing.assert_close(gp(pseudoscalar, x), gp(x, pseudoscalar))  # I is central in Cl(3)


def test_vector_times_vector_is_dot_plus_wedge():
    generator = torch.Generator().manual_seed(7)
    u, v = torch.randn(2, 10, 3, generator=generator, dtype=torch.float64)
    product = ca.geometric_product(ca.embed_vector(u), ca.embed_vector(v))
    torch.testing.assert_close(product[..., 0], (u * v).sum(-1))
    torch.testing.assert_close(ca.bivector_to_axial(product), torch.linalg.cross(u, v))
    assert torch.all(product[..., 1:4] == 0) and torch.all(product[..., 7] == 0)


@pytest.mark.parametrize("r,s", list(itertools.product(range(4), repeat=2)))
def test_grade_rules(r: int, s: int):
    """⟨x^(r) y^(s)⟩ lives in grades |r−s|, |r−s|+2, ..., at most min(r+s, 6−r−s) (Cl(3))."""
    x = ca.grade_projection(random_multivectors(32, seed=8), r)
    y = ca.grade_projection(random_multivectors(32, seed=9), s)
    product = ca.geometric_product(x, y)
    allowed = set(range(abs(r - s), min(r + s, 6 - r - s) + 1, 2))
    for k in range(4):
        part = ca.grade_projection(product, k)
        if k in allowed:
            assert part.abs().max() > 1e-3, (r, s, k)
            assert (r, k, s) in ca.GRADE_PATHS
        else:
            assert torch.all(part == 0), (r, s, k)
            assert (r, k, s) not in ca.GRADE_PATHS


def test_weighted_product_reduces_to_projected_products():
    x, y = random_multivectors(6, 4, seed=10), random_multivectors(6, 4, seed=11)
    ones = torch.ones(4, ca.NUM_PATHS, dtype=torch.float64)
    torch.testing.assert_close(
        ca.weighted_geometric_product(x, y, ones), ca.geometric_product(x, y)
    )
    for index, (i, j, k) in enumerate(ca.GRADE_PATHS):
        weights = torch.zeros(4, ca.NUM_PATHS, dtype=torch.float64)
        weights[:, index] = 1.0
        expected = ca.grade_projection(
            ca.geometric_product(ca.grade_projection(x, i), ca.grade_projection(y, k)), j
        )
        torch.testing.assert_close(ca.weighted_geometric_product(x, y, weights), expected)


def test_weighted_product_per_channel_weights():
    x, y = random_multivectors(3, 2, seed=12), random_multivectors(3, 2, seed=13)
    weights = torch.randn(2, ca.NUM_PATHS, dtype=torch.float64)
    out = ca.weighted_geometric_product(x, y, weights)
    for c in range(2):
        torch.testing.assert_close(
            out[:, c], ca.weighted_geometric_product(x[:, c], y[:, c], weights[c])
        )


def test_vector_product_is_contraction_plus_wedge():
    generator = torch.Generator().manual_seed(14)
    v = torch.randn(5, 1, 3, generator=generator, dtype=torch.float64)
    x, y = random_multivectors(5, 4, seed=15), random_multivectors(5, 4, seed=16)
    full = ca.geometric_product(ca.embed_vector(v), x)
    torch.testing.assert_close(ca.vector_product(v, x), full)
    lowering = sum(
        ca.grade_projection(
            ca.geometric_product(ca.embed_vector(v), ca.grade_projection(x, k)), k - 1
        )
        for k in range(1, 4)
    )
    raising = sum(
        ca.grade_projection(
            ca.geometric_product(ca.embed_vector(v), ca.grade_projection(y, k)), k + 1
        )
        for k in range(3)
    )
    torch.testing.assert_close(ca.vector_product(v, x, y), lowering + raising)


# ----------------------------------------------------------------------------------- involutions
def test_involutions_and_quadratic_form():
    x, y = random_multivectors(12, seed=17), random_multivectors(12, seed=18)
    gp = ca.geometric_product
    torch.testing.assert_close(ca.reverse(gp(x, y)), gp(ca.reverse(y), ca.reverse(x)))
    torch.testing.assert_close(
        ca.grade_involution(gp(x, y)), gp(ca.grade_involution(x), ca.grade_involution(y))
    )
    torch.testing.assert_close(
        ca.clifford_conjugate(gp(x, y)), gp(ca.clifford_conjugate(y), ca.clifford_conjugate(x))
    )
    torch.testing.assert_close(gp(ca.reverse(x), x)[..., 0], ca.quadratic_form(x))
    torch.testing.assert_close(ca.quadratic_form(x), (x * x).sum(-1))
    assert ca.reverse(ca.basis_blade(4))[4] == -1 and ca.reverse(ca.basis_blade(7))[7] == -1
    per_grade = ca.grade_quadratic_forms(x)
    for k in range(4):
        torch.testing.assert_close(per_grade[..., k], ca.quadratic_form(ca.grade_projection(x, k)))


def test_grade_norms_have_finite_second_derivatives_at_zero():
    eps = 1e-8
    x = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    norms = ca.grade_norms(x, eps)
    torch.testing.assert_close(norms, torch.full((4,), math.sqrt(eps), dtype=torch.float64))
    (grad,) = torch.autograd.grad(norms.sum(), x, create_graph=True)
    assert torch.all(grad == 0)
    hessian_diagonal = torch.autograd.grad(grad.sum(), x)[0]
    assert torch.all(torch.isfinite(hessian_diagonal))
    assert hessian_diagonal.max() <= 1 / math.sqrt(eps) + 1e-6


# ----------------------------------------------------------------------------------- O(3) action
@pytest.mark.parametrize("reflection", [False, True])
def test_orthogonal_action_is_an_orthogonal_automorphism(reflection: bool):
    q = random_orthogonal(19, reflection)
    rho = ca.orthogonal_action(q)
    torch.testing.assert_close(rho @ rho.T, torch.eye(8, dtype=torch.float64))
    x, y = random_multivectors(10, seed=20), random_multivectors(10, seed=21)
    act = lambda m: m @ rho.T  # noqa: E731
    torch.testing.assert_close(
        act(ca.geometric_product(x, y)), ca.geometric_product(act(x), act(y))
    )
    weights = torch.randn(1, ca.NUM_PATHS, dtype=torch.float64)
    wgp = lambda a, b: ca.weighted_geometric_product(a.unsqueeze(1), b.unsqueeze(1), weights)  # noqa: E731
    torch.testing.assert_close(act(wgp(x, y)), wgp(act(x), act(y)))
    torch.testing.assert_close(ca.grade_norms(act(x), 1e-8), ca.grade_norms(x, 1e-8))


@pytest.mark.parametrize("reflection", [False, True])
def test_grades_transform_as_scalar_vector_pseudovector_pseudoscalar(reflection: bool):
    q = random_orthogonal(22, reflection)
    det = torch.linalg.det(q)
    x = random_multivectors(7, seed=23)
    y = x @ ca.orthogonal_action(q).T
    torch.testing.assert_close(y[..., 0], x[..., 0])  # scalars stay
    torch.testing.assert_close(y[..., 1:4], x[..., 1:4] @ q.T)  # vectors rotate (polar)
    torch.testing.assert_close(  # bivectors rotate as axial vectors: det(Q)·Q
        ca.bivector_to_axial(y), det * ca.bivector_to_axial(x) @ q.T
    )
    torch.testing.assert_close(y[..., 7], det * x[..., 7])  # pseudoscalar flips on reflection


def test_bivector_of_two_vectors_is_their_wedge_after_transform():
    q = random_orthogonal(24, reflection=True)
    generator = torch.Generator().manual_seed(25)
    u, v = torch.randn(2, 3, generator=generator, dtype=torch.float64)
    wedge = lambda a, b: ca.grade_projection(  # noqa: E731
        ca.geometric_product(ca.embed_vector(a), ca.embed_vector(b)), 2
    )
    rho = ca.orthogonal_action(q)
    torch.testing.assert_close(wedge(u, v) @ rho.T, wedge(q @ u, q @ v))


def test_reflection_versor_matches_householder_matrix():
    n = unit_vector(26)
    householder = torch.eye(3, dtype=torch.float64) - 2.0 * torch.outer(n, n)
    x = random_multivectors(9, seed=27)
    torch.testing.assert_close(
        ca.versor_action(ca.embed_vector(n), x), x @ ca.orthogonal_action(householder).T
    )
    # A reflection flips the pseudoscalar and keeps the scalar.
    image = ca.versor_action(ca.embed_vector(n), ca.basis_blade(7) + 2.0 * ca.basis_blade(0))
    torch.testing.assert_close(image, -ca.basis_blade(7) + 2.0 * ca.basis_blade(0))


def test_rotor_versor_matches_product_of_reflections():
    n1, n2 = unit_vector(28), unit_vector(29)
    h = lambda n: torch.eye(3, dtype=torch.float64) - 2.0 * torch.outer(n, n)  # noqa: E731
    rotor = ca.geometric_product(ca.embed_vector(n2), ca.embed_vector(n1))
    rotation = h(n2) @ h(n1)
    assert torch.linalg.det(rotation) > 0
    x = random_multivectors(9, seed=30)
    torch.testing.assert_close(ca.versor_action(rotor, x), x @ ca.orthogonal_action(rotation).T)
    # R x R̃ with a unit rotor is the same sandwich.
    torch.testing.assert_close(
        ca.geometric_product(ca.geometric_product(rotor, x), ca.reverse(rotor)),
        ca.versor_action(rotor, x),
    )


def test_layout_string():
    assert ca.layout_string(16) == "16 x [0,1,2,3]"
    assert ca.layout_string(4, (0, 1)) == "4 x [0,1]"


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="8 blades"):
        ca.geometric_product(torch.zeros(3), torch.zeros(8))
    with pytest.raises(ValueError, match="20 grade paths"):
        ca.weighted_geometric_product(torch.zeros(2, 8), torch.zeros(2, 8), torch.zeros(2, 19))
    with pytest.raises(ValueError, match="grade"):
        ca.grade_projection(torch.zeros(8), 4)
