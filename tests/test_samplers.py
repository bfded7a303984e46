r"""The samplers of :mod:`sda_lite.samplers` against exact Gaussian results.

With the exact noise predictor of a Gaussian (``GaussianEps``, affine in :math:`x(t)`), a
deterministic sampler is an affine map :math:`x(1) \mapsto M x(1) + b`: pushing the origin and the
unit vectors through it gives the exact mean :math:`b` and covariance :math:`M M^\top` of its
samples, with no Monte Carlo noise, so that the order of convergence can be read off.
"""

import pytest
import torch
from tqdm.auto import tqdm

from sda_lite import samplers
from sda_lite.diffusion import VPSDE
from sda_lite.guidance import MMPSGuidance, SDAGuidance, assimilate
from sda_lite.linear import LinearGaussian
from sda_lite.observe import compose, every, observe, select
from sda_lite.samplers import SAMPLERS, evaluations
from sda_lite.score import GaussianEps

L, D = 8, 2
N = L * D


@pytest.fixture(scope="module")
def gaussian():
    m, C = LinearGaussian.rotation().moments(L)
    m = m + torch.linspace(-1, 1, N, dtype=torch.float64)  # a mean that is not zero
    return m, C, VPSDE(GaussianEps(m, C, (L, D)), (L, D))


def exact_moments(sde: VPSDE, sampler: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The mean and covariance of a deterministic sampler's samples, from x(1) ~ N(0, I), for an
    ``sde.eps`` affine in x(t)."""

    n = sde.shape.numel()
    x = torch.cat([torch.zeros(1, n), torch.eye(n)]).double().reshape(-1, *sde.shape)
    time = torch.linspace(1, 0, steps + 1)
    out = SAMPLERS[sampler](sde, sde.eps, x, time).reshape(-1, n)
    M = (out[1:] - out[0]).T
    return out[0], M @ M.T


def covariance_error(sde, C, sampler, budget):
    _, cov = exact_moments(sde, sampler, budget // evaluations(sampler, 1))
    return ((cov - C).norm() / C.norm()).item()


def old_sample(sde, shape, steps, corrections=0, tau=1.0, c=None):
    r"""``VPSDE.sample`` as it was before the samplers moved to their module (kept verbatim)."""

    eps = sde._eps if c is None else (lambda x, t: sde.eps(x, t, c))
    x = torch.randn((*shape, *sde.shape), device=sde.device)
    time = torch.linspace(1, 0, steps + 1, device=sde.device)

    for t, s in tqdm(zip(time[:-1], time[1:]), total=steps, disable=True, desc="sampling"):
        r = sde.mu(s) / sde.mu(t)
        x = r * x + (sde.sigma(s) - r * sde.sigma(t)) * eps(x, t)

        for _ in range(corrections):
            z = torch.randn_like(x)
            e = eps(x, s)
            delta = tau / e.square().mean(dim=sde.dims, keepdim=True)
            x = x - (delta * e + torch.sqrt(2 * delta) * z) * sde.sigma(s)

    return x


@pytest.mark.parametrize("kwargs", [dict(steps=16), dict(steps=8, corrections=2, tau=0.3)])
def test_pc_is_bit_identical_to_the_old_sampler(gaussian, kwargs):
    *_, sde = gaussian
    torch.manual_seed(3)
    old = old_sample(sde, (32,), **kwargs)
    torch.manual_seed(3)
    new = sde.sample(32, **kwargs)  # the default sampler
    torch.manual_seed(3)
    named = sde.sample(32, sampler="pc", **kwargs)
    assert torch.equal(old, new) and torch.equal(old, named)


def test_a_context_reaches_every_sampler():
    seen = []

    def eps(x, t, c):
        seen.append(c)
        return torch.zeros_like(x)

    sde = VPSDE(eps, (3,))
    for sampler in SAMPLERS:
        seen.clear()
        sde.sample(2, c="context", steps=3, corrections=1, sampler=sampler)
        assert seen and set(seen) == {"context"}, sampler


@pytest.mark.parametrize("sampler", ["pc", "heun", "dpm2m"])
def test_deterministic_samplers_converge_to_the_gaussian(gaussian, sampler):
    m, C, sde = gaussian
    errors = [covariance_error(sde, C, sampler, budget) for budget in (32, 64, 128, 256)]
    assert errors[-1] < 0.02, errors
    assert all(b < 0.6 * a for a, b in zip(errors, errors[1:])), errors  # shrinking
    b, _ = exact_moments(sde, sampler, 256 // evaluations(sampler, 1))
    # the start x(1) ~ N(0, I) ignores mu(1) m = 1e-3 m, hence a mean error of about 1e-3
    assert ((b - m).norm() / m.norm()).item() < 2e-3


@pytest.mark.parametrize("sampler, budgets", [("heun", (64, 128, 256)), ("dpm2m", (16, 32, 64))])
def test_second_order_samplers(gaussian, sampler, budgets):
    r"""Twice the evaluations divide a second-order error by about 4 and a first-order one by 2,
    so the higher-order samplers beat the paper's predictor without corrections at equal cost."""

    _, C, sde = gaussian
    errors = [covariance_error(sde, C, sampler, b) for b in budgets]
    first = [covariance_error(sde, C, "pc", b) for b in budgets]
    assert all(3.0 < a / b < 5.5 for a, b in zip(errors, errors[1:])), errors
    assert all(1.7 < a / b < 2.3 for a, b in zip(first, first[1:])), first
    assert all(e < f / 2 for e, f in zip(errors, first)), (errors, first)
    assert covariance_error(sde, C, "dpm2m", 16) < covariance_error(sde, C, "pc", 16) / 4


def test_stochastic_sampler_converges_to_the_gaussian(gaussian):
    m, C, sde = gaussian
    n = 8192
    for steps in (16, 64):
        torch.manual_seed(0)
        x = sde.sample(n, steps=steps, sampler="sde-dpm2m").reshape(n, -1).double()
        se = (C.diagonal() / n).sqrt()  # standard error of the sample mean
        assert ((x.mean(0) - m).abs() < 4 * se).all(), steps
        se = ((C**2 + C.diagonal()[:, None] * C.diagonal()[None, :]) / n).sqrt()
        assert ((torch.cov(x.T) - C).abs() < 4 * se + 0.01).all(), steps
    torch.manual_seed(0)
    first = sde.sample(n, steps=16).reshape(n, -1).double()
    # at 16 evaluations the paper's predictor alone shrinks the variances by about 20 %
    ratio = lambda x: (x.var(0) / C.diagonal()).mean().item()  # noqa: E731
    assert ratio(first) < 0.9 < ratio(x), (ratio(first), ratio(x))


@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("corrections", [0, 2])
def test_evaluations_count_the_calls(sampler, corrections):
    calls = []

    def eps(x, t):
        calls.append(x.shape[0])
        return 0.1 * x

    VPSDE(eps, (4,)).sample(5, steps=6, corrections=corrections, sampler=sampler)
    assert len(calls) == evaluations(sampler, 6, corrections) and set(calls) == {5}
    assert evaluations("pc", 256, 2) == 768 and evaluations("heun", 8) == 16


def test_multistep_samplers_restart_after_corrections(gaussian):
    r"""Langevin corrections move x off the path of the previous denoised estimate, so with
    corrections DPM-Solver++(2M) takes first-order steps: the paper's predictor-corrector."""

    *_, sde = gaussian
    torch.manual_seed(1)
    a = sde.sample(64, steps=8, corrections=1, tau=0.1, sampler="dpm2m")
    torch.manual_seed(1)
    b = sde.sample(64, steps=8, corrections=1, tau=0.1, sampler="pc")
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def problem():
    torch.manual_seed(0)
    chain = LinearGaussian.rotation()
    m, C = chain.moments(12)
    prior = VPSDE(GaussianEps(m, C, (12, D)), (12, D))
    A = compose(every(4), select(0))
    y = observe(chain.trajectory(chain.prior(), 12).float(), A, 0.1)
    mean, cov = chain.posterior(
        y, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.01]]), every=4, length=12
    )
    return prior, A, y, mean, cov.diagonal().sqrt().reshape(mean.shape)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_guidance_plugs_into_every_sampler(problem, sampler):
    r"""MMPS is the exact posterior score here: every sampler draws the exact posterior (the
    first-order ``"pc"`` with variances still shrunk at 32 steps), and :func:`assimilate` is
    ``VPSDE(guided).sample(sampler=...)``."""

    prior, A, y, mean, sd = problem
    torch.manual_seed(1)
    x = assimilate(
        prior, y, A, 0.1, method="mmps", iterations=3, steps=32, samples=1024,
        sampler=sampler, progress=False,
    ).double()  # fmt: skip
    error = ((x.mean(0) - mean) / sd).square().mean().sqrt().item()
    ratio = (x.var(0) / sd**2).mean().item()
    low, high = (0.75, 0.95) if sampler == "pc" else (0.93, 1.07)
    assert error < 0.08 and low < ratio < high, (error, ratio)

    torch.manual_seed(2)
    a = assimilate(prior, y, A, 0.1, steps=8, samples=4, sampler=sampler, progress=False)
    torch.manual_seed(2)
    b = VPSDE(SDAGuidance(y, A, 0.1, prior), prior.shape).sample((4,), steps=8, sampler=sampler)
    assert torch.equal(a, b)


def test_higher_order_sampler_with_guidance_at_few_evaluations(problem):
    r"""With MMPS, the exact posterior score here (affine in x(t)), the samples' exact moments:
    at 16 and 32 evaluations DPM-Solver++(2M) is much closer to the posterior than the paper's
    predictor."""

    prior, A, y, mean, sd = problem
    guided = VPSDE(MMPSGuidance(y, A, 0.1, prior, iterations=3), prior.shape)
    error = {}
    for sampler, steps in (("pc", 16), ("pc", 32), ("dpm2m", 16), ("dpm2m", 32)):
        b, cov = exact_moments(guided, sampler, steps)
        ratio = cov.diagonal().reshape(sd.shape) / sd**2
        error[sampler, steps] = (ratio - 1).abs().mean().item()
    # (the sharp observed coordinates make the posterior's ODE stiff: 16 steps are few for both)
    assert error["dpm2m", 16] < error["pc", 16] / 1.8, error
    assert error["dpm2m", 32] < error["pc", 32] / 3, error
    assert error["dpm2m", 16] < error["pc", 32], error


def test_bad_names_raise(problem):
    prior, A, y, *_ = problem
    for bad in ("euler", "PC", "", None, 2):
        with pytest.raises(ValueError, match=r"sampler=.*expected one of \('pc', 'heun'"):
            prior.sample(2, steps=2, sampler=bad)
        with pytest.raises(ValueError, match="sampler="):
            evaluations(bad, 8)
    calls = []
    with pytest.raises(ValueError, match="sampler='ddpm'"):
        assimilate(prior, y, A, 0.1, steps=2, sampler="ddpm", progress=False)
    with pytest.raises(ValueError, match="sampler='heun2'"):
        samplers.sample(prior, lambda x, t: calls.append(t) or x, (2,), 2, sampler="heun2")
    assert not calls  # refused before any evaluation
