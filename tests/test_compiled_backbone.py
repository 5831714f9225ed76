"""A compiled backbone (``PhiCalculator(compile=True)`` for periodic cells): the numbers of a
plain call, one compilation for every size, a fallback, and refusals where it cannot serve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from phicalc import build_model
from phicalc.calculator import PhiCalculator
from phicalc.compiled import CompiledBackbone, backbone_compile_blocker
from phicalc.errors import ConfigError
from phicalc.graph.batch import atoms_to_graph
from phicalc.nn.electrostatics.periodic import CoulombPotential, ewald_cutoff, ewald_grid
from phicalc.testing import MODEL_VARIANTS, TINY_PAINN

PROPERTIES = ("energy", "forces", "stress", "charges", "potentials")
#: The Ewald k-cutoff (1/Å) of the test model's Coulomb term (σ = 1 Å, accuracy 1e-5).
EWALD_K_CUT = ewald_cutoff(1e-5, 1.0)


def _model(backbone: str = "painn") -> torch.nn.Module:
    """A small float64 model with the default model's charge handling (Φ, Ewald, charges
    equilibrated per molecule, E_Q) and Na, Cl."""
    options = {**TINY_PAINN, **MODEL_VARIANTS["local"], "num_features": 8, "num_radial": 4}
    options.update(backbone=backbone, elements=[*TINY_PAINN["elements"], "Na", "Cl"])
    if backbone == "schnet":
        options.pop("num_radial")
    return build_model(**options).double().eval()


def _ions_in_water(n_waters: int, seed: int, scale: float = 1.0) -> Atoms:
    """Na⁺, Cl⁻ and ``n_waters`` waters at random places in a triclinic periodic cell (its
    edges × ``scale``)."""
    rng = np.random.default_rng(seed)
    cell = scale * np.array([[7.0, 0.0, 0.0], [0.6, 7.2, 0.0], [0.4, -0.3, 7.4]])
    atoms = Atoms("NaCl", scaled_positions=[[0.1, 0.1, 0.1], [0.6, 0.6, 0.6]], cell=cell, pbc=True)
    for k in range(n_waters):
        water = molecule("H2O")
        water.rotate(rng.uniform(0, 360), rng.normal(size=3))
        water.translate(cell.T @ ((np.array([0.35, 0.1, 0.55]) + 0.21 * k) % 1.0))
        atoms += water
    atoms.rattle(0.05, seed=seed)
    return atoms


@pytest.mark.parametrize("backbone", ["painn", "schnet"])
def test_compiled_backbone_equals_plain_calls_on_periodic_cells(backbone):
    """Energy, forces, stress, charges and potentials of a cell with ions (Ewald, per-molecule
    charges) equal a plain call's, for cells of other sizes, edge and k-vector counts through
    one compilation of the backbone (symbolic sizes)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    model = _model(backbone)
    plain = PhiCalculator(model, dtype="float64", device="cpu")
    compiled = PhiCalculator(model, dtype="float64", device="cpu", compile=True)
    torch._dynamo.reset()  # no compiled code of an earlier test serves: each part compiles here
    graphs = [counters["stats"]["unique_graphs"]]
    edge_counts, k_counts = set(), set()
    for seed, n_waters, scale in ((0, 3, 1.0), (1, 4, 1.0), (2, 3, 1.2)):
        atoms = _ions_in_water(n_waters, seed, scale)
        edge_counts.add(atoms_to_graph(atoms, model.cutoff).edge_index.shape[1])
        grid = ewald_grid(torch.tensor(atoms.cell.array), EWALD_K_CUT, CoulombPotential(1.0))
        k_counts.add(int((grid.green != 0).sum()))
        expected = {}
        for calc in (plain, compiled):
            atoms.calc = calc
            got = {name: np.array(calc.get_property(name, atoms)) for name in PROPERTIES}
            for name, value in expected.items():
                np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-9, err_msg=name)
            expected = got
        graphs.append(counters["stats"]["unique_graphs"])
    assert len(edge_counts) == 3 and len(k_counts) == 2  # and the ion charges mean something:
    assert expected["charges"][:2] == pytest.approx([1.0, -1.0], abs=0.3)
    assert compiled.compiled_backbone is not None and compiled.compiled_backbone.compiled
    assert compiled.graph_replay is not None and not compiled.graph_replay.compiled  # cells only
    # the backbone compiled at the first cell, nothing for the later cells
    assert graphs[1] - graphs[0] >= 1 and graphs[3] == graphs[1]


def test_compiled_parts_are_for_inference_only():
    model = _model()
    graph = atoms_to_graph(_ions_in_water(2, 0), model.cutoff)
    with pytest.raises(ConfigError, match="inference only"):
        model(graph, training=True, backbone_call=CompiledBackbone(model))


def test_backbones_that_do_not_compile_are_refused_and_left_plain():
    erwin = build_model(
        "erwin", phi=False, elements=["H", "O"], cutoff=3.0, seed=0, num_features=8
    ).double()
    assert backbone_compile_blocker(erwin) == "the erwin backbone"
    with pytest.raises(ConfigError, match="erwin"):
        CompiledBackbone(erwin)
    calc = PhiCalculator(erwin, dtype="float64", device="cpu", compile=True)
    assert calc.compiled_backbone is None
    box = molecule("H2O")
    box.set_cell([6.0, 6.0, 6.0])
    box.set_pbc(True)
    box.calc = calc
    assert np.isfinite(box.get_stress()).all()


def test_a_backbone_compiler_failure_falls_back_to_plain_calls(failing_compiler):
    model = _model()
    atoms = _ions_in_water(2, 0)
    atoms.calc = PhiCalculator(model, dtype="float64", device="cpu")
    expected = atoms.get_forces()
    calc = PhiCalculator(model, dtype="float64", device="cpu", compile=True)
    atoms.calc = calc
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        forces = atoms.get_forces()
    np.testing.assert_allclose(forces, expected, rtol=0, atol=1e-12)
    part = calc.compiled_backbone
    assert part is not None and not part.enabled and not part.compiled


def test_compile_settings_are_set_inside_and_restored_after_even_on_error():
    """The settings compiled calls enter (trace autograd, no SIMD, no duck shapes) hold inside
    the call only: a user's own torch.compile afterwards sees the values it had before."""
    import torch._dynamo
    import torch.fx.experimental._config

    from phicalc.compiled import _without_duck_shapes, config_values, trace_autograd

    dynamo = torch._dynamo.config
    before = (dynamo.trace_autograd_ops, dynamo.recompile_limit)
    duck = torch.fx.experimental._config.use_duck_shape
    with trace_autograd():
        assert dynamo.trace_autograd_ops is True
    with _without_duck_shapes(recompile_limit=before[1] + 5):
        assert torch.fx.experimental._config.use_duck_shape is False
        assert dynamo.recompile_limit == before[1] + 5
    with pytest.raises(RuntimeError, match="inside"):
        with config_values(dynamo, {"trace_autograd_ops": not before[0]}):
            assert dynamo.trace_autograd_ops is (not before[0])
            raise RuntimeError("inside")
    assert (dynamo.trace_autograd_ops, dynamo.recompile_limit) == before
    assert torch.fx.experimental._config.use_duck_shape == duck
