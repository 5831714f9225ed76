"""CliffordNet: the shared Potential contract plus checks specific to multivector features.

Equivariance is tested against the outermorphism of Q ∈ O(3) (1 ⊕ Q ⊕ Λ²Q ⊕ det Q), which the
algebra tests derive independently of the network: scalars stay, vectors rotate, bivectors rotate
as axial vectors and the pseudoscalar changes sign under reflections.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from phicalc.build import build_model
from phicalc.errors import ConfigError
from phicalc.graph.batch import atoms_to_graph
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn import clifford_algebra as ca
from phicalc.nn.backbones.base import Geometry
from phicalc.nn.backbones.clifford import (
    CliffordConfig,
    CliffordNet,
    GeometricProductLayer,
    GradeNormalization,
    MVGate,
    MVLinear,
    invariant_features,
)
from phicalc.potential import Potential
from phicalc.testing import CONTRACT_VARIANTS, MODEL_VARIANTS, PotentialContract

HYPERPARAMETERS = {"num_channels": 8, "num_blocks": 2, "num_radial": 6}


#: charge_input="equilibrated" adds the charge tables of the Q/spin embedding to the readout
#: features, which needs the embedding as wide as the features; CliffordNet's are not.
CLIFFORD_VARIANTS = [name for name in CONTRACT_VARIANTS if name != "local"]


class TestCliffordContract(PotentialContract):
    backbone = "clifford"
    hyperparameters = HYPERPARAMETERS

    @pytest.fixture(params=CLIFFORD_VARIANTS, ids=CLIFFORD_VARIANTS)
    def model(self, request: pytest.FixtureRequest) -> Potential:
        return self.build_variant(request.param)


def test_equilibrated_charge_input_is_refused_by_name():
    with pytest.raises(ConfigError, match="embedding as wide as its features"):
        build_model("clifford", elements=("H", "O"), **MODEL_VARIANTS["local"], **HYPERPARAMETERS)


# ------------------------------------------------------------------------------ helpers
def clifford_model(seed: int = 0, **overrides) -> Potential:
    hp = {**HYPERPARAMETERS, **overrides}
    model = build_model(
        "clifford", phi=False, elements=("H", "C", "N", "O"), cutoff=4.0, seed=seed, **hp
    )
    return model.double().eval()


def geometry_of(model: Potential, atoms: Atoms, transform: torch.Tensor | None = None) -> Geometry:
    """Geometry of ``atoms`` with positions (and cell) mapped r ↦ Q r, on an unchanged graph."""
    graph = atoms_to_graph(atoms, model.cutoff)
    if transform is not None:
        graph = dataclasses.replace(
            graph, positions=graph.positions @ transform.T, cell=graph.cell @ transform.T
        )
    vectors = edge_vectors(
        graph.positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch
    )
    species = model.species(graph.numbers)
    return Geometry(graph, species, graph.positions, graph.cell, vectors, vectors.norm(dim=-1))


def chiral_cluster() -> Atoms:
    """Five atoms in a generic (chiral) arrangement, all within the cutoff of each other."""
    rng = np.random.default_rng(7)
    atoms = molecule("CH4")
    atoms.positions += rng.normal(scale=0.25, size=atoms.positions.shape)
    atoms.numbers = [6, 1, 7, 8, 1]
    return atoms


def orthogonal(seed: int, reflection: bool) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return -q if (torch.linalg.det(q) < 0) != reflection else q


def random_multivectors(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(
        *shape, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


# ------------------------------------------------------------------------------ config, repr
def test_repr_shows_grade_layout():
    net = CliffordNet(CliffordConfig(), cutoff=5.0, num_elements=4)
    assert repr(net) == (
        "CliffordNet(channels=16 x [0,1,2,3], blocks=3, radial=8, kernel=16 x [0,1], cutoff=5.0)"
    )
    assert net.layout == "16 x [0,1,2,3]" and net.feature_dim == 64 and net.num_blocks == 3
    assert "16 x [0,1,2,3] -> 48 x [0,1,2,3]" in repr(net.blocks[0].source)


def test_default_config_is_small():
    assert CliffordConfig() == CliffordConfig(
        num_channels=16,
        num_blocks=3,
        num_radial=8,
        kernel_layers=1,
        avg_num_neighbors=8.0,
        norm_smoothing=0.01,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"num_channels": 0},
        {"num_blocks": -1},
        {"num_radial": 2.5},
        {"kernel_layers": -1},
        {"avg_num_neighbors": 0.0},
        {"norm_smoothing": 0.0},
        {"norm_smoothing": "0.01"},
    ],
)
def test_invalid_config_names_the_value(options):
    name, value = next(iter(options.items()))
    with pytest.raises(ConfigError, match=rf"{name} .*{value!r}"):
        CliffordConfig(**options)


def test_unknown_option_is_rejected_by_name():
    with pytest.raises(ConfigError, match="num_features"):
        build_model("clifford", phi=False, elements=("H",), num_features=8)


# ------------------------------------------------------------------------------ layers
LAYERS = {
    "linear": lambda: MVLinear(4, 3),
    "gate": lambda: MVGate(4),
    "normalization": lambda: GradeNormalization(4),
    "product": lambda: GeometricProductLayer(4),
}


@pytest.mark.parametrize("reflection", [False, True], ids=["rotation", "reflection"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layers_are_o3_equivariant(name: str, reflection: bool):
    torch.manual_seed(0)
    layer = LAYERS[name]().double()
    with torch.no_grad():  # move parameters away from their special initial values
        for parameter in layer.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    rho = ca.orthogonal_action(orthogonal(1, reflection))
    x = random_multivectors(5, 4, seed=2)
    torch.testing.assert_close(layer(x @ rho.T), layer(x) @ rho.T)


@pytest.mark.parametrize("name", list(LAYERS))
def test_span_evaluation_matches_full_multivectors(name: str):
    """forward_span on (a, b) equals forward on a + b n: each layer preserves span{1, n}."""
    torch.manual_seed(0)
    layer = LAYERS[name]().double()
    generator = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 6, 4, generator=generator, dtype=torch.float64)
    n = torch.nn.functional.normalize(
        torch.randn(6, 1, 3, generator=generator, dtype=torch.float64), dim=-1
    )
    full = layer(ca.embed_scalar(a) + b.unsqueeze(-1) * ca.embed_vector(n))
    span_a, span_b = layer.forward_span(a, b)
    torch.testing.assert_close(
        full, ca.embed_scalar(span_a) + span_b.unsqueeze(-1) * ca.embed_vector(n)
    )


def test_kernel_is_a_plus_b_rhat():
    """The Clifford MLP of r̂ lands in span{1, r̂}: no bivector or pseudoscalar part."""
    model = clifford_model(kernel_layers=2)
    geometry = geometry_of(model, chiral_cluster())
    backbone = model.backbone
    radial = backbone.radial_scale * backbone.radial(geometry.edge_lengths)
    unit = geometry.edge_vectors / geometry.edge_lengths.unsqueeze(-1)
    kernel = backbone.kernel
    full = kernel.multivectors(radial, unit)  # [n_edges, C, 8]
    a, b = kernel(radial)
    expected = ca.embed_scalar(a) + b.unsqueeze(-1) * ca.embed_vector(unit.unsqueeze(1))
    torch.testing.assert_close(full, expected)
    assert full[..., 4:].abs().max() < 1e-12
    assert b.abs().mean() > 0.05 and a.abs().mean() > 0.05  # both parts are used


# ------------------------------------------------------------------------------ network equivariance
@pytest.mark.parametrize("reflection", [False, True], ids=["rotation", "reflection"])
def test_multivector_features_are_o3_equivariant(reflection: bool):
    model = clifford_model()
    atoms = chiral_cluster()
    q = orthogonal(5, reflection)
    rho = ca.orthogonal_action(q)
    with torch.no_grad():
        features = model.backbone.multivector_features(geometry_of(model, atoms))
        moved = model.backbone.multivector_features(geometry_of(model, atoms, q))
    for h, h_moved in zip(features, moved):
        torch.testing.assert_close(h_moved, h @ rho.T, atol=1e-12, rtol=1e-9)
    last, last_moved = features[-1], moved[-1]
    # Not vacuous: every grade is populated, and the parts transform as the math says.
    assert all(ca.grade_norms(last, 0.0)[..., k].max() > 1e-6 for k in range(4))
    torch.testing.assert_close(last_moved[..., 0], last[..., 0], atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(last_moved[..., 1:4], last[..., 1:4] @ q.T, atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(
        ca.bivector_to_axial(last_moved),
        torch.linalg.det(q) * ca.bivector_to_axial(last) @ q.T,
        atol=1e-12,
        rtol=1e-9,
    )
    sign = -1.0 if reflection else 1.0
    torch.testing.assert_close(last_moved[..., 7], sign * last[..., 7], atol=1e-12, rtol=1e-9)


def test_block_features_are_invariant_under_reflection():
    model = clifford_model()
    atoms = chiral_cluster()
    q = orthogonal(6, reflection=True)
    with torch.no_grad():
        out = model.backbone(geometry_of(model, atoms))
        moved = model.backbone(geometry_of(model, atoms, q))
    assert len(out.block_features) == 2 and out.node_features.shape == (5, 32)
    for f, f_moved in zip(out.block_features, moved.block_features):
        torch.testing.assert_close(f_moved, f, atol=1e-12, rtol=1e-9)


def test_energy_invariant_and_forces_equivariant_under_reflection():
    model = clifford_model()
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=3)
    q = orthogonal(8, reflection=True)
    graph = atoms_to_graph(atoms, model.cutoff)
    mirrored = dataclasses.replace(graph, positions=graph.positions @ q.T)
    out, out_mirrored = model(graph), model(mirrored)
    torch.testing.assert_close(out_mirrored["energy"], out["energy"], atol=1e-12, rtol=0)
    torch.testing.assert_close(out_mirrored["forces"], out["forces"] @ q.T, atol=1e-12, rtol=0)
    assert out["forces"].abs().max() > 1e-3


# ------------------------------------------------------------------------------ smoothness
def test_force_training_gradients_are_finite_at_symmetric_sites():
    """Exact CH4: vector sums vanish on C and higher grades start at 0; the safe norms must keep
    the force loss's parameter gradients (double backprop) finite."""
    model = clifford_model()
    model.train()
    graph = atoms_to_graph(molecule("CH4"), model.cutoff)
    out = model(graph, training=True)
    loss = out["forces"].pow(2).sum() + out["energy"].pow(2).sum()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_float32_matches_float64():
    model = clifford_model()
    atoms = molecule("CH3CH2OH")
    e64 = model(atoms_to_graph(atoms, model.cutoff))["energy"]
    model32 = clifford_model().float()
    e32 = model32(atoms_to_graph(atoms, model.cutoff, dtype=torch.float32))["energy"]
    assert float(e32) == pytest.approx(float(e64), abs=1e-4)


def _pseudoscalar_and_gradient(model: Potential, graph, atom: int, channel: int):
    """h⁽³⁾ of one atom and channel after the last block, and its gradient [n, 3] (1/Å)."""
    positions = graph.positions.clone().requires_grad_(True)
    vectors = edge_vectors(positions, graph.cell, graph.edge_index, graph.unit_shifts, graph.batch)
    species = model.species(graph.numbers)
    geometry = Geometry(graph, species, positions, graph.cell, vectors, vectors.norm(dim=-1))
    value = model.backbone.multivector_features(geometry)[-1][atom, channel, 7]
    (gradient,) = torch.autograd.grad(value, positions)
    return float(value.detach()), gradient


def _path_across_pseudoscalar_zero(model: Potential, atoms: Atoms, atom: int, channel: int):
    """A straight path in configuration space on which one last-block pseudoscalar h⁽³⁾ crosses
    zero: (graph moved to the zero, unit direction d [n, 3], |∂h⁽³⁾/∂t| in 1/Å), by Newton steps
    along the gradient."""
    graph = atoms_to_graph(atoms, model.cutoff)
    value, gradient = _pseudoscalar_and_gradient(model, graph, atom, channel)
    direction = gradient / gradient.norm()
    for _ in range(6):
        value, gradient = _pseudoscalar_and_gradient(model, graph, atom, channel)
        slope = float((gradient * direction).sum())
        graph = dataclasses.replace(graph, positions=graph.positions - value / slope * direction)
    assert abs(value) < 1e-9
    return graph, direction, abs(slope)


def _force_jump(model: Potential, graph, direction: torch.Tensor, half: float) -> float:
    """|F·d(+half) − F·d(−half)| (eV/Å): the change of the force along the path across 0."""
    values = []
    for t in (-half, half):
        moved = dataclasses.replace(graph, positions=graph.positions + t * direction)
        values.append(float((model(moved)["forces"] * direction).sum()))
    return abs(values[1] - values[0])


def _kink(model: Potential, graph, direction: torch.Tensor, half: float) -> float:
    """The step of F·d across the path's origin with the linear background removed:
    2 J(half) − J(2 half) for the force change J over a window, → the jump of a kink, → 0
    (to O(half²)) where the force is smooth."""
    return abs(
        2 * _force_jump(model, graph, direction, half)
        - _force_jump(model, graph, direction, 2 * half)
    )


def test_forces_do_not_jump_where_a_pseudoscalar_changes_sign():
    """A pseudoscalar is one reflection-odd number, so it crosses zero along ordinary motion;
    with a negligible δ, |h⁽³⁾| in the invariants makes the force jump there. With the default
    δ the force is smooth across the crossing."""
    atoms = chiral_cluster()
    smooth = clifford_model(seed=1)
    sharp = clifford_model(seed=1, norm_smoothing=1e-6)
    sharp.load_state_dict(smooth.state_dict())
    graph, direction, slope = _path_across_pseudoscalar_zero(smooth, atoms, atom=0, channel=0)
    # Over the window h⁽³⁾ runs from -10 δ_sharp to +10 δ_sharp (the sharp |h| turns fully),
    # a 1e-3 fraction of the default δ.
    half = 10 * 1e-6 / slope
    kink_sharp = _kink(sharp, graph, direction, half)
    assert kink_sharp > 1e-4  # not vacuous: near-zero δ does kink here
    assert _kink(smooth, graph, direction, half) < 0.05 * kink_sharp


def test_default_invariants_turn_smoothly_at_a_vanishing_pseudoscalar():
    """Where h⁽³⁾ crosses zero over ±1e-4 (about 1e-3 Å of motion for a trained model), the slope
    of its invariant must change by at most 2·1e-4/δ ≪ 1, not flip from −1 to +1 like |h|."""
    smoothing = CliffordConfig().norm_smoothing
    h = torch.zeros(2, 1, 8, dtype=torch.float64)
    h[:, 0, 7] = torch.tensor([-1e-4, 1e-4], dtype=torch.float64)
    h.requires_grad_(True)
    (slope,) = torch.autograd.grad(invariant_features(h, smoothing)[:, 3].sum(), h)
    change = float(slope[1, 0, 7] - slope[0, 0, 7])
    assert 0 < change <= 2e-4 / smoothing + 1e-12
    assert change < 0.05
