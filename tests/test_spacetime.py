import pytest
import torch
from helpers import randomise

from sda_lite.diffusion import VPSDE
from sda_lite.lorenz96 import simulate_lorenz96
from sda_lite.score import LocalScore, unfold
from sda_lite.spacetime import SpaceTimeNet

K = 1


@pytest.fixture(scope="module")
def trained():
    r"""A small net trained briefly on windows of 3 states of a ring of 10 sites, with its loss
    on fixed draws before and after."""

    x = simulate_lorenz96(32, 12, N=10, spinup=100, seed=0, progress=False)
    windows = unfold(x, K).flatten(0, 1)  # (32 * 10, 3, 10)
    torch.manual_seed(0)
    net = SpaceTimeNet(K, channels=16, blocks=1)
    sde = VPSDE(net, shape=(2 * K + 1, 10))

    def loss() -> float:
        torch.manual_seed(1)
        with torch.no_grad():
            return sde.loss(windows).item()

    before = loss()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(2)
    for _ in range(60):
        batch = windows[torch.randint(len(windows), (64,), generator=g)]
        optimizer.zero_grad()
        sde.loss(batch).backward()
        optimizer.step()
    return net, before, loss()


def test_one_trained_net_serves_any_ring(trained):
    net, before, after = trained
    assert after < 0.9 * before  # it learnt something
    g = torch.Generator().manual_seed(3)
    w10 = torch.randn(5, 2 * K + 1, 10, generator=g)
    t = torch.rand(5, generator=g)
    with torch.no_grad():
        e10 = net(w10, t)
        e40 = net(w10.repeat(1, 1, 4), t)  # the same state, repeated around a ring of 40
        assert e10.shape == (5, 3, 10) and e40.shape == (5, 3, 40)
        torch.testing.assert_close(e40, e10.repeat(1, 1, 4), rtol=1e-5, atol=1e-5)
        assert net(torch.randn(2, 3, 17, generator=g), 0.5).shape == (2, 3, 17)


@pytest.mark.parametrize("N", [10, 40])
def test_equivariant_to_circular_shifts(N):
    net = randomise(SpaceTimeNet(2, channels=8, blocks=1), seed=4)
    g = torch.Generator().manual_seed(5)
    w, t = torch.randn(3, 5, N, generator=g), torch.rand(3, generator=g)
    with torch.no_grad():
        eps = net(w, t)
        assert (eps - net.schedule.sigma(t)[:, None, None] * w).abs().max() > 1e-2  # not trivial
        for s in (1, 3, N - 1):
            torch.testing.assert_close(net(w.roll(s, -1), t), eps.roll(s, -1))


def test_local_in_space():
    net = randomise(SpaceTimeNet(1, channels=8, blocks=1, kernel_size=3), seed=6).double()
    r = net.receptive_field
    assert r == 6
    w = torch.randn(1, 3, 40, dtype=torch.float64)
    dw = torch.zeros_like(w)
    dw[..., 20] = 1.0  # perturb one site at every time of the window
    with torch.no_grad():
        change = (net(w + dw, 0.5) - net(w, 0.5)).abs().amax(dim=(0, 1))
    assert change[20 - r] > 0 and change[20 + r] > 0
    assert change[: 20 - r].max() == 0 and change[20 + r + 1 :].max() == 0


def test_composes_into_a_trajectory_prior(trained):
    net = trained[0]
    sde = VPSDE(LocalScore(net), shape=(7, 40))
    torch.manual_seed(7)
    x = sde.sample((2,), steps=4)
    assert x.shape == (2, 7, 40) and torch.isfinite(x).all()
    with torch.no_grad():
        eps = sde.eps(x, 0.3)
        torch.testing.assert_close(sde.eps(x.roll(5, -1), 0.3), eps.roll(5, -1))


def test_bad_input():
    with pytest.raises(ValueError, match="k=0"):
        SpaceTimeNet(0)
    with pytest.raises(ValueError, match="channels=0"):
        SpaceTimeNet(1, channels=0)
    with pytest.raises(ValueError, match=r"expected windows \(\*batch, 3, N\) \(k=1\)"):
        SpaceTimeNet(1)(torch.zeros(2, 5, 10), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SpaceTimeNet(1)(torch.zeros(2, 3, 10), 2.0)
