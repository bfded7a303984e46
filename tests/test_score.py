import math

import pytest
import torch
from helpers import randomise
from hypothesis import given, settings
from hypothesis import strategies as st

from sda_lite.diffusion import VPSDE
from sda_lite.dynamics import LinearGaussian
from sda_lite.score import GaussianEps, GlobalScoreNet, LocalScore, LocalScoreNet, fold, unfold

# unfold / fold


@settings(max_examples=40, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), max_size=2),
    k=st.integers(1, 3),
    extra=st.integers(0, 6),
    D=st.integers(1, 3),
)
def test_unfold_fold_round_trip(batch, k, extra, D):
    L = 2 * k + 1 + extra
    x = torch.randn(*batch, L, D)
    w = unfold(x, k)
    assert w.shape == (*batch, L - 2 * k, 2 * k + 1, D)
    for j in range(L - 2 * k):
        assert torch.equal(w[..., j, :, :], x[..., j : j + 2 * k + 1, :])
    assert torch.equal(fold(w, k), x)


def test_fold_takes_edges_from_end_windows_and_centres_elsewhere():
    k, W = 2, 4
    j, i = torch.meshgrid(torch.arange(W), torch.arange(2 * k + 1), indexing="ij")
    windows = (100 * j + i).float()[..., None]  # window j, position i
    expected = [0, 1] + [100 * j + k for j in range(W)] + [100 * (W - 1) + 3, 100 * (W - 1) + 4]
    assert fold(windows, k)[..., 0].tolist() == expected


def test_unfold_fold_along_another_time_axis():
    x = torch.randn(2, 7, 3, 4, 5)  # (B, L, C, H, W)
    w = unfold(x, 1, dim=-4)
    assert w.shape == (2, 5, 3, 3, 4, 5)
    assert torch.equal(w[:, 2], x[:, 2:5])
    assert torch.equal(fold(w, 1, dim=-4), x)


def test_unfold_fold_bad_input():
    with pytest.raises(ValueError, match="L=4 is shorter than a window of 2k\\+1=5"):
        unfold(torch.randn(4, 2), 2)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        unfold(torch.randn(4, 2), 0)
    with pytest.raises(ValueError, match="2k\\+1=3"):
        fold(torch.randn(4, 5, 2), 1)


# LocalScore


def test_local_score_equals_per_window_evaluation():
    torch.manual_seed(0)
    k, L, D = 2, 11, 3
    net = randomise(LocalScoreNet(D, k, width=32, depth=2, embedding=8))
    score = LocalScore(net)
    assert score.k == k
    x, t = torch.randn(4, L, D), torch.rand(4)
    out = score(x, t)
    assert out.shape == x.shape
    for b in range(4):
        windows = [net(x[b, j : j + 2 * k + 1], t[b]) for j in range(L - 2 * k)]
        expected = torch.cat(
            [windows[0][:k], torch.stack([w[k] for w in windows]), windows[-1][k + 1 :]]
        )
        assert torch.allclose(out[b], expected, atol=1e-6)
    assert torch.allclose(score(x, 0.3), score(x, torch.full((4,), 0.3)), atol=1e-6)


@pytest.mark.parametrize("per_trajectory_t", [False, True])
def test_local_score_differentiates_only_the_named_windows(per_trajectory_t):
    r"""``windows=``: the same values; the same VJP for cotangents on the states that the named
    windows produce (first k states: window 0, centres, last k states: the last window), and
    none through the other windows."""

    torch.manual_seed(0)
    k, L, D = 2, 13, 3
    score = LocalScore(randomise(LocalScoreNet(D, k, width=32, depth=2, embedding=8)))
    x = torch.randn(4, L, D, requires_grad=True)
    t = torch.rand(4) if per_trajectory_t else torch.tensor(0.4)
    windows = [0, 4, 8]  # they produce the states 0, 1, 2 (window 0), 6 and 10 (centres)
    states = [0, 1, 2, 6, 10]
    v = torch.zeros(4, L, D)
    v[:, states] = torch.randn(4, len(states), D)
    full, part = score(x, t), score(x, t, windows=windows)
    assert torch.allclose(full, part, atol=1e-6)
    (g_full,) = torch.autograd.grad(full, x, v)
    (g_part,) = torch.autograd.grad(part, x, v)
    assert torch.allclose(g_full, g_part, atol=1e-6) and g_full.abs().max() > 0
    u = torch.zeros(4, L, D)
    u[:, 4] = 1.0  # the centre of window 2, not named
    (g,) = torch.autograd.grad(score(x, t, windows=windows), x, u)
    assert (g == 0).all()
    assert torch.allclose(score(x, t, windows=range(L - 2 * k)), full, atol=1e-6)


def test_local_score_bad_windows():
    score = LocalScore(LocalScoreNet(2, 1, width=16, depth=1))
    x = torch.randn(3, 8, 2)
    for windows in ([], [6], [-1], [1, 1]):
        with pytest.raises(ValueError, match=r"distinct window indices in \[0, 6\)"):
            score(x, 0.5, windows=windows)


def test_local_score_bad_input():
    score = LocalScore(LocalScoreNet(2, 2, width=16, depth=1))
    with pytest.raises(ValueError, match="L=4 is shorter"):
        score(torch.randn(3, 4, 2), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        score(torch.randn(3, 8, 2), 1.5)
    with pytest.raises(ValueError, match="does not broadcast"):
        score(torch.randn(3, 8, 2), torch.rand(4))
    with pytest.raises(ValueError, match=r"\(\*batch, 5, 2\)"):
        score(torch.randn(3, 8, 3), 0.5)
    with pytest.raises(ValueError, match="k must be"):
        LocalScore(lambda x, t: x)


def test_local_score_net_trains_on_windows_and_samples_trajectories():
    torch.manual_seed(0)
    k, D = 1, 3
    net = LocalScoreNet(D, k, width=32, depth=2)
    loss = VPSDE(net, (2 * k + 1, D)).loss(torch.randn(16, 2 * k + 1, D))
    loss.backward()
    assert loss.item() > 0 and all(p.grad is not None for p in net.parameters())
    x = VPSDE(LocalScore(net), (20, D)).sample(5, steps=4)
    assert x.shape == (5, 20, D) and torch.isfinite(x).all()


@pytest.mark.parametrize(
    "net", [LocalScoreNet(2, 1, width=16, depth=1), GlobalScoreNet(2, channels=(8,), blocks=1)]
)
def test_networks_are_v_parametrised(net):
    # eps = sigma_t x + mu_t F(x, t): a fresh network (F = 0) is the exact predictor of N(0, I) data
    x, t = torch.randn(4, 3, 2), torch.tensor([0.0, 0.3, 0.7, 1.0])
    sde = VPSDE(net, (3, 2))
    assert torch.allclose(net(x, t), sde.sigma(t)[:, None, None] * x)
    assert torch.allclose(
        net(x, t), GaussianEps(torch.zeros(6), torch.eye(6), (3, 2))(x, t), atol=1e-5
    )
    # whatever F, eps = x(t) up to mu(1) = eta at t = 1, where the sampler divides by mu
    randomise(net)
    assert 20 * (net(x, 1.0) - x).abs().max() < (net(x, 0.5) - x).abs().max()


def test_global_score_net_shapes():
    net = randomise(GlobalScoreNet(3, channels=(16,), blocks=2, embedding=8))
    for L in (7, 32):
        assert net(torch.randn(4, L, 3), torch.rand(4)).shape == (4, L, 3)
    net = GlobalScoreNet(3, channels=(8, 16), blocks=1)
    assert net(torch.randn(2, 5, 32, 3), 0.1).shape == (2, 5, 32, 3)
    with pytest.raises(ValueError, match=r"\(\*batch, L, 3\)"):
        net(torch.randn(4, 32, 2), 0.5)


# GaussianEps


def test_gaussian_eps_is_minus_sigma_times_the_score():
    torch.manual_seed(0)
    A = torch.randn(6, 6, dtype=torch.float64)
    m, C = torch.randn(6, dtype=torch.float64), A @ A.T + 0.1 * torch.eye(6, dtype=torch.float64)
    eps = GaussianEps(m, C, (3, 2))
    x, t = torch.randn(5, 3, 2, dtype=torch.float64), torch.rand(5, dtype=torch.float64)
    mu, sigma = eps.schedule.mu(t).double(), eps.schedule.sigma(t).double()
    for b in range(5):
        p = torch.distributions.MultivariateNormal(
            mu[b] * m, mu[b] ** 2 * C + sigma[b] ** 2 * torch.eye(6, dtype=torch.float64)
        )
        xb = x[b].flatten().requires_grad_()
        (score,) = torch.autograd.grad(p.log_prob(xb), xb)
        assert torch.allclose(eps(x[b], t[b]).flatten(), -sigma[b] * score, atol=1e-8)
    assert torch.allclose(eps(x, t)[2], eps(x[2], t[2]))


def test_gaussian_eps_bad_input():
    C = torch.eye(4)
    with pytest.raises(ValueError, match=r"cov of shape \(4, 4\)"):
        GaussianEps(torch.zeros(4), torch.eye(3))
    with pytest.raises(ValueError, match="symmetric"):
        GaussianEps(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="semi-definite"):
        GaussianEps(torch.zeros(2), -torch.eye(2))
    eps = GaussianEps(torch.zeros(4), C, (2, 2))
    with pytest.raises(ValueError, match=r"\(\*batch, 2, 2\)"):
        eps(torch.randn(3, 4), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        eps(torch.randn(3, 2, 2), -0.1)


def test_gaussian_eps_sampling_recovers_the_gaussian():
    torch.manual_seed(0)
    L, D, n = 4, 2, 4096
    m, C = LinearGaussian.rotation().moments(L)
    m = m + torch.linspace(-1, 1, L * D, dtype=torch.float64)
    x = VPSDE(GaussianEps(m, C, (L, D)), (L, D)).sample(n, steps=256).reshape(n, -1).double()
    se = (C.diagonal() / n).sqrt()  # standard error of the sample mean
    assert ((x.mean(0) - m).abs() < 4 * se).all()
    # standard error of a sample covariance entry: sqrt((C_ij^2 + C_ii C_jj) / n)
    se = ((C**2 + C.diagonal()[:, None] * C.diagonal()[None, :]) / n).sqrt()
    assert ((torch.cov(x.T) - C).abs() < 4 * se + 0.01).all()


# composition of exact window predictors on a Gaussian Markov chain


def composition_error(chain: LinearGaussian, k: int, t: float, L: int = 24) -> float:
    r"""Relative error :math:`\sqrt{E\|\epsilon_k - \epsilon\|^2 / E\|\epsilon\|^2}` under :math:`x(t) \sim p_t`,
    exact: both predictors are linear in :math:`x(t)` (zero mean), so each is a matrix."""

    D = chain.D
    m, C = chain.moments(L)
    exact = GaussianEps(m, C, (L, D))
    local = LocalScore(GaussianEps(*chain.moments(2 * k + 1), (2 * k + 1, D)), k)
    basis = torch.eye(L * D, dtype=torch.float64).reshape(-1, L, D)
    M, Mk = (f(basis, t).reshape(L * D, L * D).T for f in (exact, local))
    mu, sigma = exact.schedule.mu(t).double(), exact.schedule.sigma(t).double()
    S = mu**2 * C + sigma**2 * torch.eye(L * D, dtype=torch.float64)
    return math.sqrt(torch.trace((Mk - M) @ S @ (Mk - M).T) / torch.trace(M @ S @ M.T))


def test_composition_of_exact_window_predictors_on_a_gaussian_chain():
    chain = LinearGaussian.rotation()  # stationary, damped rotation: long memory
    ks, ts = (1, 2, 3, 4), (0.01, 0.1, 0.3)
    error = torch.tensor([[composition_error(chain, k, t) for t in ts] for k in ks])
    # nearly exact in the clean limit: grad_{x_i} log p(x) only involves x_{i-1}, x_i, x_{i+1}
    assert error[:, 0].max() < 1e-2
    assert composition_error(chain, 1, 0.0) < 1e-4
    # noise breaks the Markov property: the error grows with t (low-noise half) and shrinks with k
    assert (error.diff(dim=1) > 0).all()
    assert (error.diff(dim=0) < 0).all()
    # at t = 1, x(t) is nearly pure noise and both predictors are nearly the identity
    assert composition_error(chain, 1, 1.0) < 1e-4
