import importlib.util
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sda_lite.baselines import (
    Deterministic,
    Localisation,
    _resample,
    bootstrap_filter,
    enkf,
    enks,
    fourdvar,
    gaspari_cohn,
    kalman_smoother,
    particle_filter,
)
from sda_lite.chain import MarkovChain
from sda_lite.dynamics import LinearGaussian, NoisyLorenz63

L, EVERY, STD = 21, 2, 0.3
H = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # observe the first of two variables


def A(x):
    return x @ H.mT.to(x)


@pytest.fixture(scope="module")
def problem():
    r"""A damped 2-D rotation observed through its first variable every other state."""

    chain = LinearGaussian.rotation()
    g = torch.Generator().manual_seed(1)
    x = chain.trajectory(chain.prior((), generator=g, dtype=torch.float64), L, generator=g)
    y = A(x[::EVERY]) + STD * torch.randn(L // EVERY + 1, 1, generator=g, dtype=torch.float64)
    mean, cov = kalman_smoother(chain, y, H, STD, every=EVERY)
    return chain, y, mean, cov.diagonal(dim1=-2, dim2=-1).sqrt()


def test_kalman_smoother_wrapper_is_the_exact_posterior(problem):
    chain, y, mean, std = problem
    m, C = chain.posterior(y, H, STD**2 * torch.eye(1, dtype=torch.float64), every=EVERY)
    torch.testing.assert_close(mean, m)
    torch.testing.assert_close(std, C.diagonal().reshape(L, 2).sqrt())


@pytest.mark.parametrize("resampling", ["systematic", "multinomial"])
def test_particle_filter_matches_the_kalman_smoother(problem, resampling):
    chain, y, mean, std = problem
    g = torch.Generator().manual_seed(2)
    x0 = chain.prior((2**14,), generator=g, dtype=torch.float64)
    x, log_z = particle_filter(
        chain,
        y,
        A,
        STD,
        every=EVERY,
        x0=x0,
        samples=4096,
        resampling=resampling,
        evidence=True,
        generator=g,
        progress=False,
    )
    assert x.shape == (4096, L, 2)
    assert ((x.mean(0) - mean) / std).abs().max() < 0.25  # path degeneracy thins early states
    assert ((x.std(0) / std) - 1).abs().max() < 0.15
    # The evidence: y ~ N(A m, A C A^T + R) for the stacked observation matrix A.
    m, C = chain.moments(L)
    O = torch.zeros(len(y), L, 2, dtype=torch.float64)
    O[torch.arange(len(y)), torch.arange(0, L, EVERY), 0] = 1
    O = O.flatten(1)
    p = torch.distributions.MultivariateNormal(
        O @ m, O @ C @ O.mT + STD**2 * torch.eye(len(y), dtype=torch.float64)
    )
    assert log_z.item() == pytest.approx(p.log_prob(y[:, 0]).item(), abs=0.1)


def test_bootstrap_filter_weights_and_parents(problem):
    chain, y, _, _ = problem
    steps = list(bootstrap_filter(chain, y, A, STD, every=EVERY, particles=64, length=L + 3))
    assert len(steps) == L + 3
    for i, s in enumerate(steps):
        assert s.x.shape == (64, 2) and s.log_w.shape == (64,)
        assert s.log_w.exp().sum().item() == pytest.approx(1.0)
        # Resampling (always, by default) follows each observation, before the next move.
        assert (s.parents is not None) == (i > 0 and (i - 1) % EVERY == 0 and i - 1 < L)
    assert torch.allclose(
        steps[-1].log_w.double(), torch.full((64,), -math.log(64), dtype=torch.float64)
    )


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.01, 1.0), min_size=1, max_size=20),
    st.integers(1, 64),
    st.integers(0, 2**16),
)
def test_systematic_resampling_copies_each_particle_about_n_w_times(w, n, seed):
    w = torch.tensor(w, dtype=torch.float64)
    w = w / w.sum()
    j = _resample(w, n, "systematic", torch.Generator().manual_seed(seed))
    counts = torch.bincount(j, minlength=len(w)).double()
    assert j.shape == (n,) and ((counts - n * w).abs() < 1 + 1e-9).all()


def test_enkf_matches_the_kalman_filter(problem):
    chain, y, _, _ = problem
    g = torch.Generator().manual_seed(3)
    E = enkf(
        chain,
        y,
        A,
        STD,
        every=EVERY,
        x0=chain.prior((1000,), generator=g, dtype=torch.float64),
        generator=g,
        progress=False,
    )
    mean, cov, _, _ = chain.kalman_filter(
        y, H, STD**2 * torch.eye(1, dtype=torch.float64), every=EVERY
    )
    std = cov.diagonal(dim1=-2, dim2=-1).sqrt()
    assert E.shape == (1000, L, 2)
    assert ((E.mean(0) - mean) / std).abs().max() < 0.3
    assert ((E.std(0) / std) - 1).abs().max() < 0.1


def test_enks_matches_the_kalman_smoother(problem):
    chain, y, mean, std = problem
    g = torch.Generator().manual_seed(4)
    E = enks(
        chain,
        y,
        A,
        STD,
        every=EVERY,
        x0=chain.prior((1000,), generator=g, dtype=torch.float64),
        generator=g,
        progress=False,
    )
    assert ((E.mean(0) - mean) / std).abs().max() < 0.4
    assert ((E.std(0) / std) - 1).abs().max() < 0.15
    # The filter's first states are far from the smoother's, so the test above tells them apart.
    F = enkf(
        chain,
        y,
        A,
        STD,
        every=EVERY,
        x0=chain.prior((1000,), generator=g, dtype=torch.float64),
        generator=g,
        progress=False,
    )
    assert ((F.mean(0) - mean) / std).abs().max() > 1.0


def test_inflation_widens_the_ensemble(problem):
    chain, y, _, _ = problem
    x0 = chain.prior((500,), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    runs = [
        enkf(
            chain,
            y,
            A,
            STD,
            every=EVERY,
            x0=x0,
            inflation=f,
            generator=torch.Generator().manual_seed(6),
            progress=False,
        )
        for f in (1.0, 1.2)
    ]
    assert (runs[1][:, -1].std(0) > 1.1 * runs[0][:, -1].std(0)).all()


@pytest.mark.parametrize("smooth", [False, True])
def test_localisation_of_ones_is_the_plain_update(problem, smooth):
    chain, y, _, _ = problem
    x0 = chain.prior((20,), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ones = Localisation(torch.ones(2, 1), torch.ones(1, 1))
    runs = [
        enkf(
            chain,
            y,
            A,
            STD,
            every=EVERY,
            x0=x0,
            inflation=1.1,
            smooth=smooth,
            generator=torch.Generator().manual_seed(6),
            progress=False,
            localisation=loc,
        )
        for loc in (None, ones)
    ]
    torch.testing.assert_close(runs[0], runs[1])


class _Walks(MarkovChain):
    r"""``D`` independent Gaussian random walks: no variable tells anything about another."""

    D = 3

    def prior(self, shape=(), generator=None):
        return torch.randn(*shape, self.D, generator=generator, dtype=torch.float64)

    def transition(self, x, generator=None):
        return x + torch.randn(x.shape, generator=generator, dtype=x.dtype)

    def log_prob(self, x_prev, x_next):
        return torch.distributions.Normal(x_prev, 1.0).log_prob(x_next).sum(-1)


def test_localisation_cuts_spurious_covariances():
    chain, y = _Walks(), torch.tensor([[3.0]], dtype=torch.float64)

    def first(x):
        return x[..., :1]

    x0 = chain.prior((5,), generator=torch.Generator().manual_seed(0))
    taper = Localisation(torch.tensor([[1.0], [0.0], [0.5]]), torch.ones(1, 1))
    plain, local = (
        enkf(
            chain,
            y,
            first,
            1.0,
            x0=x0,
            generator=torch.Generator().manual_seed(1),
            progress=False,
            localisation=loc,
        )[:, 0]
        for loc in (None, taper)
    )
    # with 5 members, the sample covariances of x_1 and x_2 with x_0 are not zero
    assert ((plain - x0)[:, 1:].abs() > 1e-3).all()
    assert torch.equal(local[:, 1], x0[:, 1])  # tapered to zero: left alone
    torch.testing.assert_close(local[:, 0], plain[:, 0])  # the observed variable as before
    torch.testing.assert_close(local[:, 2] - x0[:, 2], (plain[:, 2] - x0[:, 2]) / 2)
    with pytest.raises(ValueError, match=r"expected xy \(3, 1\) and yy \(1, 1\)"):
        enkf(chain, y, first, 1.0, x0=x0, progress=False, localisation=(torch.ones(2, 1),) * 2)


def test_gaspari_cohn_values():
    z = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    rho = gaspari_cohn(2 * z, 2.0)
    assert rho[0] == 1 and rho[-2:].abs().max() < 1e-12
    assert math.isclose(rho[2].item(), 5 / 24, rel_tol=1e-12)
    # the first branch at 1/2 and the second at 3/2, by hand
    assert math.isclose(rho[1].item(), 1 - 1 / 128 + 1 / 32 + 5 / 64 - 5 / 12, rel_tol=1e-12)
    outer = 1.5**5 / 12 - 1.5**4 / 2 + 5 * 1.5**3 / 8 + 5 * 1.5**2 / 3 - 7.5 + 4 - 2 / 4.5
    assert math.isclose(rho[3].item(), outer, rel_tol=1e-12)
    # continuous and decreasing
    r = gaspari_cohn(torch.linspace(0, 5, 5001), 2.0)
    assert (r.diff() <= 1e-15).all() and r.diff().abs().max() < 1e-3
    with pytest.raises(ValueError, match="c=0"):
        gaspari_cohn(torch.ones(3), 0)
    with pytest.raises(ValueError, match="negative"):
        gaspari_cohn(-torch.ones(3), 1.0)


def test_fourdvar_converges_to_the_posterior_mode(problem):
    chain, y, mean, _ = problem
    x = 3 * torch.randn(4, L, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x = fourdvar(chain, y, A, STD, x=x, every=EVERY, iterations=4, progress=False)
    assert x.shape == (4, L, 2)
    torch.testing.assert_close(x, mean.expand_as(x), atol=1e-4, rtol=0)  # Gaussian: mode = mean


def test_fourdvar_prior_options(problem):
    chain, y, mean, _ = problem
    # No prior on x_0: a near-deterministic chain fits noise-free data exactly.
    line = LinearGaussian(torch.eye(1) * 0.9, torch.eye(1) * 1e-6, torch.zeros(1), torch.eye(1))
    data = torch.tensor([[5.0], [4.5], [4.05]], dtype=torch.float64)
    x = fourdvar(
        line,
        data,
        lambda x: x,
        1e-3,
        x=torch.zeros(3, 1, dtype=torch.float64),
        prior=False,
        iterations=4,
        progress=False,
    )
    torch.testing.assert_close(x, data, atol=1e-3, rtol=0)
    # A callable prior equal to the chain's Gaussian gives the posterior mode again.
    p0 = torch.distributions.MultivariateNormal(chain.m0, chain.P0)
    x = fourdvar(
        chain,
        y,
        A,
        STD,
        x=torch.zeros(L, 2, dtype=torch.float64),
        every=EVERY,
        prior=p0.log_prob,
        iterations=4,
        progress=False,
    )
    torch.testing.assert_close(x, mean, atol=1e-4, rtol=0)


def test_deterministic_lorenz():
    chain = Deterministic(NoisyLorenz63(dt=0.01))
    x = chain.prior((5,), generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(chain.transition(x), chain.chain.rk4(x))
    with pytest.raises(NotImplementedError):
        chain.log_prob(x, x)
    with pytest.raises(ValueError, match="rk4"):
        Deterministic(LinearGaussian.rotation())


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dapper.py"
    spec = importlib.util.spec_from_file_location("bench_dapper", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, N, settings, bound",
    [
        ("enkf", 10, {"inflation": 1.04}, 0.85),  # DAPPER, 1000 cycles: 0.65
        ("pf", 100, {"jitter": 2.4, "ess": 0.3}, 0.55),  # DAPPER, 1000 cycles: 0.38
    ],
)
def test_dapper_sakov2012_shortened(method, N, settings, bound):
    r"""DAPPER's Lorenz-63 benchmark over 200 cycles (20 of burn-in), one seed: analysis RMSE."""

    score = _bench().analysis_rmse(method, N, cycles=200, seed=0, burn=20, **settings)
    assert 0.1 < score < bound  # climatology: 7.6


def test_bad_input(problem):
    chain, y, _, _ = problem
    x0 = torch.zeros(8, 2, dtype=torch.float64)
    kw = dict(x0=x0, progress=False)
    with pytest.raises(ValueError, match=r"\(K >= 1, M\)"):
        particle_filter(chain, y[:, 0], A, STD, **kw)
    with pytest.raises(ValueError, match="A maps"):
        particle_filter(chain, y, lambda x: x, STD, **kw)
    with pytest.raises(ValueError, match="std"):
        enkf(chain, y, A, 0.0, **kw)
    with pytest.raises(ValueError, match="every"):
        enks(chain, y, A, STD, every=0, **kw)
    with pytest.raises(ValueError, match="length"):
        particle_filter(chain, y, A, STD, every=EVERY, length=3, **kw)
    with pytest.raises(ValueError, match="x0"):
        particle_filter(chain, y, A, STD, x0=torch.zeros(8, 3), progress=False)
    with pytest.raises(ValueError, match="resampling"):
        particle_filter(chain, y, A, STD, resampling="stratified", **kw)
    with pytest.raises(ValueError, match="ess"):
        particle_filter(chain, y, A, STD, ess=0.0, **kw)
    with pytest.raises(ValueError, match="jitter"):
        particle_filter(chain, y, A, STD, jitter=-1.0, **kw)
    with pytest.raises(ValueError, match="samples"):
        particle_filter(chain, y, A, STD, samples=0, **kw)
    with pytest.raises(ValueError, match="members"):
        enkf(chain, y, A, STD, members=1, progress=False)
    with pytest.raises(ValueError, match="inflation"):
        enkf(chain, y, A, STD, inflation=0.9, **kw)
    with pytest.raises(ValueError, match="length"):
        fourdvar(chain, y, A, STD, x=torch.zeros(4, 5, 2), every=EVERY, progress=False)
    with pytest.raises(ValueError, match="prior"):
        fourdvar(
            chain, y, A, STD, x=torch.zeros(L, 2), every=EVERY, prior="gaussian", progress=False
        )
    with pytest.raises(ValueError, match="LinearGaussian"):
        kalman_smoother(NoisyLorenz63(), y, H, STD)
