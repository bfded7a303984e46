import pytest
import torch

from sda_lite.diffusion import VPSDE
from sda_lite.dynamics import LinearGaussian
from sda_lite.guidance import DPSGuidance, MMPSGuidance, SDAGuidance, assimilate, solve
from sda_lite.observe import Operator, compose, every, matrix, observe, select
from sda_lite.score import GaussianEps, LocalScore, LocalScoreNet

L, D, N_OBS, STD = 12, 2, 3, 0.1


@pytest.fixture(scope="module")
def problem():
    r"""A linear-Gaussian chain observed on its first variable every 4th state, with its exact posterior."""

    torch.manual_seed(0)
    chain = LinearGaussian.rotation()
    m, C = chain.moments(L)
    prior = VPSDE(GaussianEps(m, C, (L, D)), (L, D))
    A = compose(every(4), select(0))
    x = chain.trajectory(chain.prior(), L).float()
    y = observe(x, A, STD)
    mean, cov = chain.posterior(
        y, torch.tensor([[1.0, 0.0]]), torch.tensor([[STD**2]]), every=4, length=L
    )
    return chain, prior, A, y, mean, cov


def _errors(x, mean, cov):
    std = cov.diagonal().sqrt().reshape(mean.shape)
    err = (x.double().mean(0) - mean) / std
    ratio = x.double().var(0) / std**2
    return err.square().mean().sqrt().item(), ratio.mean().item()


def test_mmps_is_the_exact_posterior_score(problem):
    _, prior, A, y, mean, cov = problem
    exact = GaussianEps(mean.flatten(), cov, (L, D))
    guided = MMPSGuidance(y, A, STD, prior, iterations=N_OBS)
    for t in (0.99, 0.7, 0.3, 0.05, 0.02):
        x, t = torch.randn(16, L, D), torch.tensor(t)
        likelihood = prior.eps(x, t) - exact(x, t)  # sigma_t grad log p(y | x(t)), exactly
        error = guided(x, t) - exact(x, t)
        assert error.norm() < 1e-2 * likelihood.norm(), t  # float32 rounding, amplified by 1 / mu_t


def test_mmps_samples_match_the_exact_posterior(problem):
    _, prior, A, y, mean, cov = problem
    torch.manual_seed(1)
    x = assimilate(
        prior, y, A, STD, method="mmps", iterations=N_OBS, steps=64, samples=2048, progress=False
    )
    assert x.shape == (2048, L, D)
    err, ratio = _errors(x, mean, cov)
    assert err < 0.05 and 0.9 < ratio < 1.1, (err, ratio)


def test_sda_samples_are_close_to_the_exact_posterior(problem):
    _, prior, A, y, mean, cov = problem
    torch.manual_seed(2)
    x = assimilate(
        prior,
        y,
        A,
        STD,
        method="sda",
        gamma=0.1,
        steps=64,
        corrections=1,
        tau=0.25,
        samples=2048,
        progress=False,
    )
    err, ratio = _errors(x, mean, cov)
    assert err < 0.2 and 0.8 < ratio < 1.25, (err, ratio)


def test_naive_likelihood_collapses_the_variance(problem):
    _, prior, A, y, mean, cov = problem
    torch.manual_seed(3)
    x = assimilate(prior, y, A, STD, method="sda", gamma=0.0, steps=64, samples=512, progress=False)
    assert _errors(x, mean, cov)[1] < 0.8


def test_dps_is_finite_and_pulls_towards_y(problem):
    _, prior, A, y, _, _ = problem
    torch.manual_seed(4)
    x = assimilate(prior, y, A, STD, method="dps", zeta=1.0, steps=64, samples=256, progress=False)
    x0 = prior.sample(256, steps=64)
    assert torch.isfinite(x).all()
    assert (A(x) - y).square().mean() < 0.5 * (A(x0) - y).square().mean()


def test_batched_observations_condition_each_sample(problem):
    _, prior, A, y, _, _ = problem
    ys = torch.stack([y, -y, 2 * y])  # (3, 3, 1)
    for guided, single in [
        (SDAGuidance(ys, A, STD, prior), lambda y: SDAGuidance(y, A, STD, prior)),
        (
            MMPSGuidance(ys, A, STD, prior, iterations=2),
            lambda y: MMPSGuidance(y, A, STD, prior, iterations=2),
        ),
        (DPSGuidance(ys, A, prior), lambda y: DPSGuidance(y, A, prior)),
    ]:
        x, t = torch.randn(5, 3, L, D), torch.tensor(0.4)
        e = guided(x, t)
        for j in range(3):
            assert torch.allclose(e[:, j], single(ys[j])(x[:, j], t), atol=1e-5)
    samples = assimilate(prior, ys, A, STD, steps=8, samples=5, progress=False)
    assert samples.shape == (5, 3, L, D)


def test_time_per_sample_matches_scalar_time(problem):
    _, prior, A, y, _, _ = problem
    x = torch.randn(3, L, D)
    for guided in (SDAGuidance(y, A, STD, prior), MMPSGuidance(y, A, STD, prior, iterations=2)):
        t = torch.tensor([0.2, 0.5, 0.9])
        e = guided(x, t)
        for i in range(3):
            assert torch.allclose(e[i], guided(x[i : i + 1], t[i])[0], atol=1e-5)


def test_mmps_nonlinear_path_agrees_with_the_linear_one(problem):
    _, prior, A, y, _, _ = problem
    plain = Operator(lambda x: A(x))  # not flagged linear: goes through torch.func.jvp
    x, t = torch.randn(4, L, D), torch.tensor(0.5)
    e1 = MMPSGuidance(y, A, STD, prior, iterations=3)(x, t)
    e2 = MMPSGuidance(y, plain, STD, prior, iterations=3)(x, t)
    assert torch.allclose(e1, e2, atol=1e-5)


def _matrices(n=3, m=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(n, m, m, generator=g, dtype=torch.float64)
    return (
        B @ B.mT / m,
        torch.rand(n, m, generator=g, dtype=torch.float64) + 0.1,
        torch.randn(n, m, generator=g, dtype=torch.float64),
    )


def _apply(K):
    return lambda v: torch.einsum("nij,nj->ni", K, v)


def test_solve_is_exact_for_a_covariance():
    K, var, b = _matrices()
    u = solve(_apply(K), b, var, iterations=6)
    assert torch.allclose(torch.einsum("nij,nj->ni", torch.diag_embed(var) + K, u), b, atol=1e-8)
    assert torch.allclose(solve(_apply(K), b, var, iterations=60), u)  # at most m dimensions


def test_solve_is_accurate_in_float32_when_the_krylov_space_breaks_down():
    Q, _ = torch.linalg.qr(
        torch.randn(8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    )
    b, var = torch.randn(1, 8), torch.full((1, 8), 0.01)
    for lam in ([0.0134] * 8, [0.0134] * 7 + [0.015]):  # one or two distinct eigenvalues
        K = Q @ torch.diag(torch.tensor(lam, dtype=torch.float64)) @ Q.T
        exact = torch.linalg.solve(torch.diag(var[0].double()) + K, b[0].double())
        u = solve(lambda v, K=K: v @ K.float().T, b, var, iterations=8)
        assert torch.allclose(u[0].double(), exact, rtol=1e-5, atol=1e-5 * exact.abs().max())


def test_solve_reads_negative_and_skew_parts_safely():
    K, var, b = _matrices()
    u = solve(_apply(K), b, var, iterations=6)
    assert torch.allclose(solve(_apply(-K), b, var, iterations=6), u, atol=1e-8)  # |K|
    W = torch.randn(3, 6, 6, dtype=torch.float64)
    assert torch.allclose(
        solve(_apply(K + W - W.mT), b, var, iterations=6), u, atol=1e-8
    )  # symmetric part
    for seed in range(5):  # indefinite, non-symmetric, few iterations: bounded and aligned with b
        W = torch.randn(3, 6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        for iterations in (1, 2, 6):
            u = solve(_apply(100 * W), b, var, iterations)
            assert torch.isfinite(u).all() and ((u * b).sum(-1) >= 0).all()
            assert (u.norm(dim=-1) <= b.norm(dim=-1) / var.min(dim=-1).values + 1e-9).all()


def test_solve_breakdowns():
    _, var, b = _matrices()
    assert torch.allclose(
        solve(lambda v: 0 * v, b, var[:, :1], iterations=3), b / var[:, :1]
    )  # one dimension suffices
    assert torch.equal(
        solve(lambda v: v, torch.zeros(2, 4), torch.ones(2, 4), iterations=3), torch.zeros(2, 4)
    )


def _random_local_prior(length: int, width: int = 32) -> VPSDE:
    r"""An untrained local score network whose zero-initialised layers are randomised, so that its
    Jacobian is neither symmetric nor positive definite."""

    torch.manual_seed(0)
    net = LocalScoreNet(3, k=2, width=width, depth=2)
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.add_(0.1 * torch.randn_like(p))
    return VPSDE(LocalScore(net), (length, 3))


class _CountingWindows(torch.nn.Module):
    r"""Wraps a window network and records, per call, whether a graph is built and how many windows
    ``w: (n, 2k+1, D)`` it evaluates."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.k, self.calls = net, net.k, []

    def forward(self, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.is_grad_enabled(), w.shape[0]))
        return self.net(w, t)

    def windows(self, graph: bool) -> int:
        r"""The number of windows evaluated with (``graph=True``) or without a graph."""

        return sum(n for g, n in self.calls if g == graph)


@pytest.mark.parametrize(
    "cls,kwargs", [(SDAGuidance, {"std": 0.05}), (DPSGuidance, {}), (MMPSGuidance, {"std": 0.05})]
)
def test_local_fast_path_is_exact(cls, kwargs):
    r"""With a local prior, the guidance differentiates the network on the windows of the observed
    states only, evaluates every other window once without a graph, and gives the dense result."""

    local = _random_local_prior(21)  # k = 2: L - 2k = 17 windows per trajectory
    counter = local.eps.net = _CountingWindows(local.eps.net)
    dense = VPSDE(lambda x, t: local.eps(x, t), local.shape)  # hides the locality: dense gradients
    A, y = compose(every(8), select(0)), torch.randn(3, 1)  # the states 0, 8 and 16
    fast, slow = cls(y, A, sde=local, **kwargs), cls(y, A, sde=dense, **kwargs)
    x = torch.randn(4, 21, 3)
    for t in (torch.tensor(0.3), torch.rand(4)):
        counter.calls.clear()
        expected = slow(x, t)
        assert counter.windows(graph=True) == 4 * 17  # dense: every window in the graph
        counter.calls.clear()
        assert torch.allclose(fast(x, t), expected, atol=1e-4, rtol=1e-4)
        assert counter.windows(graph=True) == 4 * 3  # fast: one window per observed state
        assert counter.windows(graph=False) == 4 * (17 - 3)  # the others once, without one


def test_mmps_with_a_nonlinear_operator_runs(problem):
    _, prior, _, y, _, _ = problem
    A = Operator(lambda x: torch.tanh(x[..., ::4, :1]), "tanh")
    x = assimilate(prior, torch.tanh(y), A, STD, method="mmps", steps=16, samples=8, progress=False)
    assert torch.isfinite(x).all()


def test_mmps_reads_a_negative_covariance_as_positive():
    prior = VPSDE(lambda x, t: 3 * x, (L, D))  # dx_hat/dx = (1 - 3 sigma) / mu < 0 at t = 0.5
    A, y, t = compose(every(4), select(0)), torch.randn(3, 1), torch.tensor(0.5)
    mu, sigma = prior.mu(t), prior.sigma(t)
    x = torch.randn(2, L, D)
    J = (1 - 3 * sigma) / mu
    V = sigma**2 / mu * J  # V = V I, negative
    assert V < 0
    u = (y - A(J * x)) / (STD**2 + V.abs())  # x_hat = J x
    At_u = (u.flatten(-2) @ matrix(A, (L, D)).float()).reshape(x.shape)
    guided = MMPSGuidance(y, A, STD, prior, iterations=3)(x, t)
    assert torch.allclose(guided, 3 * x - sigma * J * At_u, rtol=1e-4, atol=1e-4)


def test_mmps_stays_finite_on_an_untrained_network():
    prior = _random_local_prior(9)
    A = compose(every(4), select(0))
    y = torch.tensor([[1.5], [-2.0], [0.5]])
    for steps, corrections, iterations in [(16, 0, 1), (16, 4, 3), (64, 1, 3)]:
        x = assimilate(
            prior,
            y,
            A,
            0.05,
            method="mmps",
            iterations=iterations,
            steps=steps,
            corrections=corrections,
            samples=8,
            progress=False,
        )
        assert torch.isfinite(x).all(), (steps, corrections, iterations)


def test_bfloat16_network_float32_guidance():
    prior = _random_local_prior(9)
    A = compose(every(4), select(0))
    y = torch.tensor([[1.5], [-2.0], [0.5]])
    x, t = torch.randn(4, 9, 3), torch.tensor(0.3)
    e32 = SDAGuidance(y, A, 0.05, prior, gamma=1.0)(x, t)
    e16 = SDAGuidance(y, A, 0.05, prior, gamma=1.0, precision="bfloat16")(x, t)
    assert e16.dtype == torch.float32
    assert (e16 - e32).norm() < 0.05 * e32.norm()
    samples = assimilate(
        prior, y, A, 0.05, method="mmps", steps=8, samples=4, precision="bfloat16", progress=False
    )
    assert samples.dtype == torch.float32 and torch.isfinite(samples).all()


def test_bad_inputs_name_both_sides(problem):
    _, prior, A, y, _, _ = problem
    with pytest.raises(ValueError, match="non-finite"):
        SDAGuidance(torch.full_like(y, float("nan")), A, STD, prior)
    with pytest.raises(ValueError, match=r"A\(x\) has shape \(4, 1\).*y has shape \(3, 1\)"):
        SDAGuidance(y, compose(every(3), select(0)), STD, prior)
    with pytest.raises(ValueError, match=r"std=0.0.*> 0"):
        SDAGuidance(y, A, 0.0, prior)
    with pytest.raises(ValueError, match=r"std=.*> 0"):
        MMPSGuidance(y, A, torch.tensor([0.1, -0.1, 0.1])[:, None], prior)
    with pytest.raises(ValueError, match=r"gamma=-0.1.*>= 0"):
        SDAGuidance(y, A, STD, prior, gamma=-0.1)
    with pytest.raises(ValueError, match=r"index \[2\].*size 2"):
        SDAGuidance(y, compose(every(4), select(2)), STD, prior)
    with pytest.raises(ValueError, match=f"start=12.*size {L}"):
        MMPSGuidance(y, every(4, start=12), STD, prior)
    with pytest.raises(ValueError, match="iterations=0"):
        MMPSGuidance(y, A, STD, prior, iterations=0)
    with pytest.raises(ValueError, match="method='4dvar'"):
        assimilate(prior, y, A, STD, method="4dvar")
    with pytest.raises(ValueError, match="precision='float16'"):
        DPSGuidance(y, A, prior, precision="float16")


SWEEP = [("sda", gamma) for gamma in (1e-3, 1e-2, 1e-1, 1.0)] + [("dps", None), ("mmps", None)]


@pytest.mark.parametrize("method,gamma", SWEEP)
@pytest.mark.parametrize("std", [0.01, 0.1, 1.0])
def test_no_nan_or_inf_over_the_settings(problem, method, gamma, std):
    chain, prior, A, _, _, _ = problem
    y = observe(chain.trajectory(chain.prior(), L).float(), A, std)
    torch.manual_seed(5)
    for steps, corrections in [(16, 0), (16, 4), (256, 0), (256, 4)]:
        x = assimilate(
            prior,
            y,
            A,
            std,
            method=method,
            gamma=gamma or 0.0,
            limit=True,
            steps=steps,
            corrections=corrections,
            tau=0.5,
            samples=4,
            progress=False,
        )
        assert torch.isfinite(x).all(), (method, gamma, std, steps, corrections)
        assert x.abs().max() < 100, (
            method,
            gamma,
            std,
            steps,
            corrections,
        )  # bounded, not merely finite


def test_step_limiter(problem):
    _, prior, A, y, mean, cov = problem
    sample = lambda guided: VPSDE(guided, prior.shape).sample(
        (64,), steps=32, corrections=1, tau=0.5
    )  # noqa: E731
    # A stable setting: the limiter never acts, the samples are the same.
    torch.manual_seed(0)
    a = sample(SDAGuidance(y, A, STD, prior, gamma=0.1, limit=False))
    torch.manual_seed(0)
    b = sample(SDAGuidance(y, A, STD, prior, gamma=0.1, limit=True))
    assert torch.equal(a, b)
    # gamma far below the variance of A(x) given x(t), sigma_y small: without it the samples overflow.
    y_ = y + 0.0  # same observations, read with sigma_y = 0.01
    torch.manual_seed(0)
    bad = sample(SDAGuidance(y_, A, 0.01, prior, gamma=1e-3, limit=False))
    torch.manual_seed(0)
    good = sample(SDAGuidance(y_, A, 0.01, prior, gamma=1e-3, limit=True))
    assert not bool((bad.abs() < 100).all())
    assert good.abs().max() < 10
    free = prior.sample((64,), steps=32)
    assert (A(good) - y_).abs().mean() < 0.5 * (A(free) - y_).abs().mean()  # still guided towards y


def test_the_paper_method_is_the_default(problem):
    r"""No step limiter unless asked for: the default SDA step is the paper's ``GaussianScore`` step,
    re-derived here by hand (gamma = 1e-2, its default too)."""

    _, prior, A, y, _, _ = problem
    x, t = torch.randn(8, L, D), torch.tensor(0.7)
    assert SDAGuidance(y, A, STD, prior).limit is False
    with torch.enable_grad():
        xr = x.clone().requires_grad_()
        eps = prior.eps(xr, t)
        mu, sigma = prior.mu(t), prior.sigma(t)
        x_hat = (xr - sigma * eps) / mu
        log_p = -((y - A(x_hat)) ** 2 / (STD**2 + 1e-2 * (sigma / mu) ** 2)).sum() / 2
        (s,) = torch.autograd.grad(log_p, xr)
    assert torch.allclose(SDAGuidance(y, A, STD, prior)(x, t), eps.detach() - sigma * s, atol=1e-5)
    # assimilate passes no limiter either: same samples as the default guidance in the sampler
    torch.manual_seed(3)
    a = assimilate(prior, y, A, STD, steps=8, corrections=1, samples=4, progress=False)
    torch.manual_seed(3)
    b = VPSDE(SDAGuidance(y, A, STD, prior), prior.shape).sample((4,), steps=8, corrections=1)
    assert torch.equal(a, b)


@pytest.mark.parametrize("zeta", [1.0, 0.3])
def test_dps_step_is_the_paper_codes(problem, zeta):
    r"""``DPSGuidance(zeta)`` on one sample is ``DPSGaussianScore(zeta)`` of the paper's code:
    :math:`\epsilon - \sigma s` with :math:`s = -\zeta \nabla \|r\|^2 / \|r\|`; on a batch, each sample
    takes that step with its own residual."""

    _, prior, A, y, _, _ = problem
    t = torch.tensor(0.4)
    x = torch.randn(3, L, D)
    mu, sigma = prior.mu(t), prior.sigma(t)
    expected = []
    for xi in x:
        with torch.enable_grad():
            xr = xi[None].clone().requires_grad_()
            eps = prior.eps(xr, t)
            err = (y - A((xr - sigma * eps) / mu)).square().sum()
            (g,) = torch.autograd.grad(err, xr)
        expected.append(eps.detach() - sigma * (-g * zeta / err.detach().sqrt()))
    guided = DPSGuidance(y, A, prior, zeta=zeta)
    assert torch.allclose(guided(x[:1], t), expected[0], atol=1e-5)
    assert torch.allclose(guided(x, t), torch.cat(expected), atol=1e-5)
