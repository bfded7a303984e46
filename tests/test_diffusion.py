import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sda_lite.diffusion import SCHEDULES, VPSDE


def gaussian_eps(m: torch.Tensor, s: torch.Tensor, sde: "VPSDE"):
    """Exact noise predictor of N(m, diag(s^2)) under the VP perturbation."""

    def eps(x, t):
        t = torch.as_tensor(t).reshape(-1, *[1] * m.dim()) if torch.as_tensor(t).dim() else t
        mu, sigma = sde.mu(t), sde.sigma(t)
        return sigma * (x - mu * m) / (mu**2 * s**2 + sigma**2)

    return eps


@pytest.mark.parametrize("alpha", SCHEDULES)
def test_schedule_end_points_and_monotonicity(alpha):
    sde = VPSDE(lambda x, t: x, (3,), alpha=alpha, eta=1e-3)
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    mu, sigma = sde.mu(t), sde.sigma(t)
    assert mu[0] == pytest.approx(1.0, abs=1e-6)
    assert mu[-1] == pytest.approx(1e-3, rel=1e-3)
    assert sigma[0] == pytest.approx(1e-3, rel=1e-3)
    assert sigma[-1] == pytest.approx(1.0, abs=1e-5)
    assert (mu.diff() < 0).all() and (sigma.diff() > 0).all()
    assert torch.allclose(mu**2 + sigma**2, torch.ones_like(t) + 1e-6)


@pytest.mark.parametrize("eta", [1e-3, 0.2])
def test_cosine_schedule_matches_paper(eta):
    r"""The paper's :math:`\mu(t) = \cos^2(\omega t)`, :math:`\omega = \arccos \sqrt{\eta}`, checked
    through closed forms rather than the formula: the end points, the half-angle identity
    :math:`\cos^2(a / 2) = (1 + \cos a) / 2` with :math:`\cos(\omega t) = \sqrt{\mu(t)}`, and
    :math:`\sigma(t)^2 = 1 - \mu(t)^2 + \eta^2`, with hand-computed values for :math:`\eta = 10^{-3}`."""

    sde = VPSDE(lambda x, t: x, (1,), eta=eta)

    def mu(t):
        return sde.mu(torch.as_tensor(t, dtype=torch.float64))

    def sigma(t):
        return sde.sigma(torch.as_tensor(t, dtype=torch.float64))

    assert mu(0.0).item() == pytest.approx(1.0, abs=1e-12)
    assert mu(1.0).item() == pytest.approx(eta, rel=1e-9)  # cos^2(arccos sqrt(eta)) = eta
    assert mu(0.5).item() == pytest.approx((1 + eta**0.5) / 2, rel=1e-9)
    assert mu(0.25).item() == pytest.approx((1 + ((1 + eta**0.5) / 2) ** 0.5) / 2, rel=1e-9)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(mu(t / 2), (1 + mu(t).sqrt()) / 2, rtol=1e-9, atol=1e-12)
    assert sigma(0.0).item() == pytest.approx(eta, rel=1e-6)  # the smallest noise level
    assert sigma(1.0).item() == pytest.approx(1.0, rel=1e-9)
    assert sigma(0.5).item() ** 2 == pytest.approx(1 - ((1 + eta**0.5) / 2) ** 2 + eta**2, rel=1e-9)
    if eta == 1e-3:  # by hand: sqrt(1e-3) = 0.0316227766..., so mu(1/2) = 0.5158113883...
        assert mu(0.5).item() == pytest.approx(0.5158113883, abs=1e-10)
        assert sigma(0.5).item() == pytest.approx((1 - 0.5158113883**2 + 1e-6) ** 0.5, abs=1e-9)


def test_perturbation_statistics():
    torch.manual_seed(0)
    sde = VPSDE(lambda x, t: x, (2,))
    x = torch.full((200_000, 2), 2.0)
    xt = sde(x, torch.tensor(0.5))
    mu, sigma = sde.mu(0.5), sde.sigma(0.5)
    assert torch.allclose(xt.mean(0), 2 * mu.expand(2), atol=1e-2)
    assert torch.allclose(xt.std(0), sigma.expand(2), atol=1e-2)
    xt, eps = sde(x[:4], torch.rand(4), train=True)
    assert xt.shape == eps.shape == (4, 2)


def test_sampler_recovers_gaussian():
    torch.manual_seed(0)
    m, s = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.5, 1.5, 0.1])
    sde = VPSDE(lambda x, t: x, (3,))
    sde.eps = gaussian_eps(m, s, sde)
    x = sde.sample((8192,), steps=256)
    assert x.shape == (8192, 3)
    assert torch.allclose(x.mean(0), m, atol=4 * s.max() / 8192**0.5)
    assert torch.allclose(x.std(0), s, rtol=0.05)


def test_corrections_restore_variance():
    # Coarse deterministic steps shrink the variance; Langevin corrections restore it. The step size
    # delta = tau / mean(eps^2) averages over the event, so the event must hold many values.
    torch.manual_seed(0)
    m, s = torch.randn(64, 3), torch.rand(64, 3) + 0.2
    sde = VPSDE(lambda x, t: x, (64, 3))
    sde.eps = gaussian_eps(m, s, sde)
    error = lambda x: (x.std(0) / s - 1).abs().mean()
    coarse = error(sde.sample((2048,), steps=8))
    corrected = error(sde.sample((2048,), steps=8, corrections=2, tau=0.1))
    assert corrected < 0.5 * coarse


def test_loss_falls_on_tiny_problem():
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f = torch.nn.Sequential(
                torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 2)
            )

        def forward(self, x, t):
            t = t.expand(x.shape[:-1]).unsqueeze(-1)
            return self.f(torch.cat((x, t), dim=-1))

    sde = VPSDE(Net(), (2,))
    optimizer = torch.optim.Adam(sde.parameters(), lr=1e-2)
    data = torch.randn(1024, 2) * torch.tensor([0.1, 1.0]) + 1
    losses = []
    for _ in range(300):
        loss = sde.loss(data[torch.randint(0, 1024, (128,))])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-50:]) / 50 < 0.7 * sum(losses[:10]) / 10


@settings(max_examples=20, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), max_size=2),
    event=st.lists(st.integers(1, 4), min_size=1, max_size=3),
)
def test_shapes(batch, event):
    sde = VPSDE(lambda x, t: torch.zeros_like(x), event)
    x = torch.randn(*batch, *event)
    assert sde(x, torch.rand(batch)).shape == x.shape
    assert sde.loss(x).dim() == 0
    assert sde.denoise(x, 0.3).shape == x.shape
    assert sde.sample(batch, steps=2, corrections=1).shape == (*batch, *event)


def test_bad_input():
    with pytest.raises(ValueError, match="'quadratic'"):
        VPSDE(lambda x, t: x, (2,), alpha="quadratic")
    with pytest.raises(ValueError, match="eta"):
        VPSDE(lambda x, t: x, (2,), eta=0.0)
    sde = VPSDE(lambda x, t: x[..., :1], (2,))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\].*1.5"):
        sde.mu(1.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\].*-0.1"):
        sde(torch.zeros(3, 2), torch.tensor([-0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match=r"returned shape \(4, 1\).*\(4, 2\)"):
        sde.sample(4, steps=2)
    with pytest.raises(ValueError, match=r"\(\*batch, 2\), got \(4, 3\)"):
        sde.loss(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="steps"):
        sde.sample(4, steps=0)
