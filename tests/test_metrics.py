import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sda_lite.dynamics import LinearGaussian, NoisyLorenz63
from sda_lite.metrics import log_px, log_py, mmd, rmse, spread, w1


def test_w1_identical_sets_is_zero():
    x = torch.randn(64, 5, 3, generator=torch.Generator().manual_seed(0))
    assert w1(x, x) == pytest.approx(0.0, abs=1e-9)
    assert w1(x, x[torch.randperm(64)]) == pytest.approx(0.0, abs=1e-9)


def test_w1_of_a_shift_is_its_norm():
    x = torch.randn(50, 4, 3, generator=torch.Generator().manual_seed(1))
    c = torch.tensor([3.0, -1.0, 2.0])
    assert w1(x, x + c) == pytest.approx(
        c.norm().item() * 2, rel=1e-6
    )  # 4 states shifted: sqrt(4) |c|


def test_w1_unequal_sizes():
    x = torch.zeros(2, 1)
    y = torch.tensor([[1.0], [2.0], [3.0]])
    assert w1(x, y) == pytest.approx(2.0)
    assert w1(torch.zeros(1, 2), torch.tensor([[3.0, 4.0]])) == pytest.approx(5.0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=2, max_size=12), st.integers(0, 2**16))
def test_w1_matches_sorted_coupling_in_one_dimension(a, seed):
    x = torch.tensor(a, dtype=torch.float64)[:, None]
    y = (
        torch.randn(len(a), 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        * 3
    )
    expected = (x.sort(0).values - y.sort(0).values).abs().mean().item()
    assert w1(x, y) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert w1(y, x) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_mmd():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(128, 3, generator=g)
    assert mmd(x, x) == pytest.approx(0.0, abs=1e-6)
    assert mmd(x, x + 3) > 10 * mmd(x, torch.randn(128, 3, generator=g))
    # One point each, h = 1: MMD^2 = 1 + 1 - 2 exp(-1 / 2).
    expected = math.sqrt(2 - 2 * math.exp(-0.5))
    assert mmd(torch.zeros(1, 1), torch.ones(1, 1), bandwidth=1.0) == pytest.approx(expected)
    # The median heuristic here: pooled distances {1}, so h = 1 too.
    assert mmd(torch.zeros(1, 1), torch.ones(1, 1)) == pytest.approx(expected)


def test_log_px_of_a_linear_gaussian_chain():
    chain = LinearGaussian.rotation()
    g = torch.Generator().manual_seed(3)
    x = chain.trajectory(chain.prior((5,), generator=g, dtype=torch.float64), 7, generator=g)
    F, Q = chain.F, chain.Q
    p = torch.distributions.MultivariateNormal(x[:, :-1] @ F.mT, Q)
    expected = p.log_prob(x[:, 1:]).sum(-1)
    torch.testing.assert_close(log_px(chain, x, reduce=False), expected)
    torch.testing.assert_close(log_px(chain, x), expected.mean())


def test_log_px_of_lorenz_trajectories_matches_its_expectation():
    # Each transition residual is N(0, dt I): E log p = -3/2 (1 + log(2 pi dt)) per transition.
    chain = NoisyLorenz63()
    g = torch.Generator().manual_seed(4)
    x = chain.trajectory(chain.prior((256,), generator=g, dtype=torch.float64), 65, generator=g)
    expected = -1.5 * 64 * (1 + math.log(2 * math.pi * chain.dt))
    assert log_px(chain, x).item() == pytest.approx(
        expected, abs=4 * 96**0.5 / 16
    )  # 4 standard errors


def test_log_py_against_the_formula():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(10, 65, 3, generator=g, dtype=torch.float64)
    A = lambda x: x[..., ::8, :1]  # noqa: E731
    y = torch.randn(9, 1, generator=g, dtype=torch.float64)
    sigma = 0.05
    expected = (
        -0.5 * ((y - A(x)) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
    ).sum((-1, -2))
    torch.testing.assert_close(log_py(x, y, A, sigma, reduce=False), expected)
    torch.testing.assert_close(log_py(x, y, A, sigma), expected.mean())
    std = torch.tensor([0.5])  # a per-feature std broadcasts the same way
    torch.testing.assert_close(log_py(x, y, A, std * 0.1, reduce=False), expected)  # 0.05 again


def test_rmse_and_spread():
    truth = torch.zeros(4, 3)
    x = torch.full((4, 3), 2.0)
    assert rmse(x, truth).item() == pytest.approx(2.0)
    x[:, 0] = 0
    torch.testing.assert_close(rmse(x, truth, dim=-1), torch.full((4,), math.sqrt(8 / 3)))
    E = torch.stack([torch.full((5, 3), -1.0), torch.full((5, 3), 1.0)])  # two members, var 2
    assert spread(E).item() == pytest.approx(math.sqrt(2))
    assert spread(E, dim=-1).shape == (5,)
    # A large ensemble of N(0, s^2) has spread s.
    E = 0.7 * torch.randn(20000, 3, generator=torch.Generator().manual_seed(6))
    assert spread(E).item() == pytest.approx(0.7, rel=0.02)


def test_bad_input():
    x = torch.randn(8, 5, 3)
    with pytest.raises(ValueError, match="features"):
        w1(x, torch.randn(8, 5, 2))
    with pytest.raises(ValueError, match="sample set"):
        w1(torch.randn(3), x)
    with pytest.raises(ValueError, match="sample set"):
        mmd(torch.randn(0, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="bandwidth"):
        mmd(x, x, bandwidth=0.0)
    with pytest.raises(ValueError, match="L >= 2"):
        log_px(NoisyLorenz63(), torch.randn(4, 1, 3))
    with pytest.raises(ValueError, match="trajector"):
        log_px(NoisyLorenz63(), torch.randn(4, 5, 2))
    with pytest.raises(ValueError, match="trailing shape"):
        log_py(x, torch.randn(4, 1), lambda x: x[..., ::2, :1], 0.1)
    with pytest.raises(ValueError, match="std"):
        log_py(x, torch.randn(3, 1), lambda x: x[..., ::2, :1], -1.0)
    with pytest.raises(ValueError, match="broadcastable"):
        rmse(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="N >= 2"):
        spread(torch.randn(1, 3))


def test_w1_is_finite_and_deterministic():
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(7))
    y = torch.randn(150, 6, generator=torch.Generator().manual_seed(8))
    d = w1(x, y)
    assert np.isfinite(d) and d > 0 and d == w1(x, y)
