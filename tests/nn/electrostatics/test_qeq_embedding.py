"""Charge equilibration (constraint, closed form vs numeric minimum) and the Q/M embedding."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize

from phicalc.nn.electrostatics import ChargeEquilibration, ChargeSpinEmbedding, equilibrate


def test_total_charge_exact_per_structure():
    torch.manual_seed(0)
    sizes = [3, 7, 1, 12, 5]
    batch = torch.repeat_interleave(torch.arange(5), torch.tensor(sizes))
    total = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    model = ChargeEquilibration(feature_dim=6, hidden=8)
    q = model(torch.randn(len(batch), 6), total, batch, 5)
    sums = torch.zeros(5).index_add(0, batch, q)
    assert torch.allclose(sums, total, atol=1e-12, rtol=0)
    q.sum().backward()  # differentiable to the head parameters
    assert model.hardness[0].weight.grad is not None


def test_closed_form_equals_numeric_constrained_minimum():
    rng = np.random.default_rng(1)
    chi, hardness = rng.normal(size=6), rng.uniform(0.5, 3.0, size=6)
    q = equilibrate(
        torch.tensor(chi), torch.tensor(hardness), torch.tensor([1.0]),
        torch.zeros(6, dtype=torch.int64), 1,
    )  # fmt: skip
    res = minimize(
        lambda x: chi @ x + 0.5 * hardness @ x**2,
        np.zeros(6),
        jac=lambda x: chi + hardness * x,
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0}],
        method="SLSQP",
        options={"ftol": 1e-14},
    )
    assert np.allclose(q.numpy(), res.x, atol=1e-6)


def test_embedding_zero_for_neutral_singlet_and_distinct_otherwise():
    torch.manual_seed(0)
    emb = ChargeSpinEmbedding(num_elements=10, dim=4)
    species = torch.tensor([1, 6, 8, 8])
    batch = torch.zeros(4, dtype=torch.int64)

    def e(q: float, m: int) -> torch.Tensor:
        return emb(species, torch.tensor([q]), torch.tensor([m]), batch)

    assert torch.count_nonzero(e(0.0, 1)) == 0
    cation, anion, doublet = e(1.0, 1), e(-1.0, 1), e(0.0, 2)
    for a, b in ((cation, anion), (cation, doublet), (anion, doublet)):
        assert not torch.allclose(a, b)
    assert cation.abs().min() > 0
