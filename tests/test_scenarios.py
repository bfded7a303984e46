r"""Tests of the six Kolmogorov observation scenarios: operator shapes, observations, residuals, errors."""

import math

import numpy as np
import pytest
import torch

from sda_lite.fields import vorticity
from sda_lite.observe import matrix
from sda_lite.scenarios import (
    EVENT,
    PAPER_STRIDES,
    SCENARIOS,
    annulus,
    cell_vorticity,
    crop,
    operator,
    scenario,
)

L, G = 9, 32


@pytest.fixture(scope="module")
def x_true():
    return torch.randn(L, 2, G, G, generator=torch.Generator().manual_seed(0))


SHAPES = {  # observation shapes on a 32 x 32 grid, 9 states (every 4th: 3 states, every 3rd: 3)
    "assimilation": (3, 2, 8, 8),
    "extrapolation": (3, 2, 8, 8),
    "saturation": (3, 12, 12),
    "sparse": (L, 2, 256),
    "event": (int(annulus(G).sum()),),
    "loop": (2, G, G),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_shapes_and_batches(name, x_true):
    s = scenario(name, x_true)
    assert s.name == name and s.y.shape == SHAPES[name] and torch.isfinite(s.y).all()
    assert s.A(x_true[None].expand(4, 2, -1, -1, -1, -1)).shape == (4, 2, *SHAPES[name])
    assert (
        s.std
        == {
            "assimilation": 0.1,
            "extrapolation": 0.01,
            "saturation": 0.05,
            "sparse": 0.1,
            "event": 0.2,
            "loop": 0.01,
        }[name]
    )
    # differentiable, as guidance needs
    x = x_true.clone().requires_grad_()
    s.A(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", ["assimilation", "extrapolation", "saturation", "sparse"])
def test_noisy_observations_of_the_truth(name, x_true):
    s = scenario(name, x_true, seed=3)
    assert torch.equal(s.y, scenario(name, x_true, seed=3).y)
    assert not torch.equal(s.y, scenario(name, x_true, seed=4).y)
    assert s.residual(x_true) == pytest.approx(
        1, abs=0.15
    )  # the truth explains y to the noise level
    assert s.residual(torch.zeros_like(x_true)) > 2


def test_fixed_observations(x_true):
    event = scenario("event", x_true)
    assert torch.all(event.y == -0.6) and EVENT == -0.6
    loop = scenario("loop", x_true)
    assert torch.all(loop.y == 0)
    closed = torch.cat((x_true[:-1], x_true[:1]))  # x_L = x_1
    assert loop.residual(closed) == 0


def test_operators_read_what_they_say(x_true):
    A, _, s = operator("assimilation", G, L)
    coarse = x_true[4].unflatten(-1, (8, 4)).unflatten(-3, (8, 4)).mean(dim=(-3, -1))
    assert torch.allclose(A(x_true)[1], coarse, atol=1e-6)
    assert s["factor"] == 4 and A.linear

    A, _, s = operator("extrapolation", G, L)
    assert s == {"factor": 2, "crop": 8, "every": 3, "std": 0.01}
    assert torch.allclose(A(x_true)[2, 1, 0, 0], x_true[6, 1, 8:10, 8:10].mean(), atol=1e-6)

    A, _, _ = operator("saturation", G, L)
    w = cell_vorticity(
        x_true[3].unflatten(-1, (16, 2)).unflatten(-3, (16, 2)).mean(dim=(-3, -1)), 16
    )[2, 2]
    assert torch.allclose(A(x_true)[1, 0, 0], w / (1 + w.abs()), atol=1e-6) and not A.linear

    A, _, _ = operator("sparse", G, L, stride=4)
    assert A(x_true).shape == (L, 2, 64) and torch.equal(A(x_true)[2, 1, :8], x_true[2, 1, 0, ::4])

    A, _, _ = operator("event", G, L)
    assert torch.allclose(A(x_true), cell_vorticity(x_true[-1], 64)[annulus(G)])


def test_sizes_scale_with_the_grid():
    assert operator("assimilation", 64, 8)[2]["factor"] == 8  # the paper's 64 x 64
    assert operator("extrapolation", 64, 8)[2] == {"factor": 4, "crop": 8, "every": 3, "std": 0.01}
    assert operator("saturation", 64, 8)[2]["crop"] == 12
    assert operator("sparse", 64, 8)[2]["stride"] == 4
    assert operator("assimilation", 16, 8)[2]["factor"] == 2


def test_linear_operators_are_linear():
    for name in ("assimilation", "extrapolation", "sparse", "event", "loop"):
        A, _, _ = operator(
            name, 8, 3, **({"factor": 2} if name in ("assimilation", "extrapolation") else {})
        )
        M = matrix(A, (3, 2, 8, 8))
        x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
        assert A.linear and torch.allclose(M @ x.flatten(), A(x).flatten())


def test_cell_vorticity():
    t = (torch.arange(G) + 0.5) * 2 * math.pi / G
    u = torch.stack((torch.sin(t)[None, :].expand(G, G), torch.zeros(G, G)))  # omega = -cos(y)
    h = 2 * math.pi / G  # central differences: d/dy sin(y) -> sin(h) / h cos(y)
    assert torch.allclose(cell_vorticity(u, G), -torch.cos(t).expand(G, G) * math.sin(h), atol=1e-5)
    assert torch.allclose(vorticity(u), -torch.cos(t).expand(G, G), atol=1e-5)  # spectral: exact
    assert torch.allclose(cell_vorticity(u, 64), cell_vorticity(u, G) * G / 64)


# The paper's operators, re-derived from its code (francois-rozet/sda, experiments/kolmogorov/figures.ipynb)
# in NumPy on its 64 x 64 grid: KolmogorovFlow.coarsen (block means) and KolmogorovFlow.vorticity
# (torch.gradient with unit spacing on a circularly padded grid: d u_0 / d axis -1 - d u_1 / d axis -2).


def paper_coarsen(x, r):
    *batch, h, w = x.shape
    return x.reshape(*batch, h // r, r, w // r, r).mean(axis=(-3, -1))


def paper_vorticity(x):
    y = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], mode="wrap")
    du = np.gradient(y[..., 0, :, :], axis=-1)
    dv = np.gradient(y[..., 1, :, :], axis=-2)
    return (du - dv)[..., 1:-1, 1:-1]


def smooth_field(grid, L=8, kmax=4, seed=0):
    r"""A velocity trajectory ``(L, 2, grid, grid)`` with energy at wavenumbers 1 to ``kmax``, sampled
    at the points 2 pi i / grid, so that fields of two grids sample the same continuous flow."""

    rng = np.random.default_rng(seed)
    i = np.arange(grid) * 2 * np.pi / grid
    X, Y = np.meshgrid(i, i, indexing="ij")
    x = np.zeros((L, 2, grid, grid))
    for ka in range(-kmax, kmax + 1):
        for kb in range(-kmax, kmax + 1):
            if 1 <= math.hypot(ka, kb) <= kmax:
                a = rng.normal(size=(L, 2, 2)) / (ka * ka + kb * kb)
                x += a[..., 0, None, None] * np.cos(ka * X + kb * Y) + a[
                    ..., 1, None, None
                ] * np.sin(ka * X + kb * Y)
    return x / x.std()


def test_operators_are_the_paper_codes():
    x = smooth_field(64)
    X = torch.from_numpy(x)
    A = lambda name, **kw: operator(name, 64, 8, **kw)[0](X).numpy()  # noqa: E731
    assert np.allclose(A("assimilation"), paper_coarsen(x[::4], 8))
    assert np.allclose(A("extrapolation"), paper_coarsen(x, 4)[::3, :, 4:12, 4:12])
    for s in PAPER_STRIDES:
        assert np.allclose(A("sparse", stride=s), x[..., ::s, ::s].reshape(8, 2, -1))
    assert np.allclose(A("loop"), x[0] - x[-1])
    # the sign: the paper's vorticity is -omega; ours is the physical one
    ring = annulus(64).numpy()
    assert np.allclose(A("event"), -paper_vorticity(x[-1])[ring])
    assert np.all(scenario("event", X).y.numpy() == -0.6) and operator("event", 64, 8)[1] == 0.2
    w = paper_vorticity(paper_coarsen(x[::3], 4))
    paper = (w / (1 + abs(w)))[..., 2:14, 2:14]
    assert np.allclose(A("saturation"), -paper)
    assert np.abs(paper).max() > 0.3  # the saturation is far from linear on this field


def test_saturation_is_the_same_at_every_scale():
    r"""The saturation reads the velocity coarsened to 16 x 16 whatever the grid: from 32 x 32 fields
    that are block means of 64 x 64 ones it observes exactly what it observes on 64 x 64."""

    x64 = torch.from_numpy(smooth_field(64, seed=1))
    x32 = torch.from_numpy(paper_coarsen(x64.numpy(), 2))
    assert torch.allclose(
        operator("saturation", 32, 8)[0](x32), operator("saturation", 64, 8)[0](x64)
    )


def test_event_is_in_the_papers_units_at_every_scale():
    r"""The event's vorticity per cell of the 64 x 64 grid, from a 32 x 32 sampling of the same
    smooth flow: equal up to the central differences' error on the coarser grid (1% at k <= 2)."""

    w64 = cell_vorticity(torch.from_numpy(smooth_field(64, kmax=2, seed=2))[-1], 64)
    w32 = cell_vorticity(torch.from_numpy(smooth_field(32, kmax=2, seed=2))[-1], 64)
    assert torch.allclose(w32, w64[::2, ::2], atol=0.02 * w64.abs().max())


def test_annulus():
    m = annulus(64)
    assert m.shape == (64, 64) and m.dtype == torch.bool and 0 < m.sum() < 64 * 64 / 4
    assert torch.equal(m, m.flip(0)) and torch.equal(m, m.T) and not m[32, 32] and not m[0, 0]


def test_errors(x_true):
    with pytest.raises(ValueError, match="unknown scenario 'storm'"):
        scenario("storm", x_true)
    with pytest.raises(ValueError, match="30x30 grid is not divisible by the coarsening factor 4"):
        scenario("assimilation", torch.zeros(L, 2, 30, 30), factor=4)
    with pytest.raises(ValueError, match="36x36 grid is not divisible by the coarsening factor 5"):
        scenario("assimilation", torch.zeros(L, 2, 36, 36), factor=5)
    with pytest.raises(ValueError, match=r"crop: size=20 is outside the 16x16 field"):
        scenario("extrapolation", x_true, crop=20)
    with pytest.raises(ValueError, match=r"crop: x has shape"):
        crop(4, 16)(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match=r"y has shape \(3, 2, 4, 4\), expected .*\(3, 2, 8, 8\)"):
        scenario("assimilation", x_true, y=torch.zeros(3, 2, 4, 4))
    with pytest.raises(ValueError, match=r"x_true has shape \(9, 3, 32, 32\)"):
        scenario("assimilation", torch.zeros(L, 3, G, G))
    with pytest.raises(ValueError, match="std=0"):
        scenario("loop", x_true, std=0)
    with pytest.raises(ValueError, match="unknown override"):
        scenario("loop", x_true, factor=2)
    with pytest.raises(ValueError, match="stride=0"):
        scenario("sparse", x_true, stride=0)
    with pytest.raises(ValueError, match="length 1"):
        scenario("loop", x_true[:1])


def test_given_observations(x_true):
    y = torch.ones(3, 2, 8, 8)
    s = scenario("assimilation", x_true, y=y)
    assert torch.equal(s.y, y)


def test_rollout(monkeypatch):
    import sda_lite.kolmogorov.scenarios as scenarios
    from sda_lite.kolmogorov import KolmogorovFlow, coarsen, upsample

    monkeypatch.setattr(
        scenarios, "kolmogorov_sizes", lambda scale=None: {"size": 32}
    )  # a 32 x 32 simulation
    flow = KolmogorovFlow(size=32)
    fine = flow.trajectory(flow.prior(generator=torch.Generator().manual_seed(0)), 3)
    x = coarsen(fine, 4)[None]  # (1, 3, 2, 8, 8): a coarse trajectory of the true dynamics
    simulated = scenarios.rollout(x)
    assert simulated.shape == x.shape and torch.isfinite(simulated).all()
    assert torch.allclose(
        simulated[:, 0], coarsen(upsample(x[:, 0], 4), 4), atol=1e-6
    )  # upsampled, coarsened back
    expected = coarsen(
        flow.trajectory(upsample(x[:, 0], 4), 3), 4
    )  # the dynamics from the upsampled start
    assert torch.allclose(simulated, expected, atol=1e-5)
    assert (simulated - x).abs().mean() < x.abs().mean()  # near the true trajectory it came from
    with pytest.raises(ValueError, match="simulation grid 32 is not a multiple of the 12x12"):
        scenarios.rollout(torch.zeros(3, 2, 12, 12))


def test_step_error(monkeypatch):
    import sda_lite.kolmogorov.scenarios as scenarios
    from sda_lite.kolmogorov import KolmogorovFlow, coarsen, upsample

    monkeypatch.setattr(scenarios, "kolmogorov_sizes", lambda scale=None: {"size": 32})
    flow = KolmogorovFlow(size=32)
    fine = flow.trajectory(flow.prior((2,), generator=torch.Generator().manual_seed(1)), 8)
    x = coarsen(fine[:, 4:], 2)  # (2, 4, 2, 16, 16), past the first states
    e = scenarios.step_error(x)
    assert e.shape == (2, 3) and torch.isfinite(e).all()
    by_hand = coarsen(flow.transition(upsample(x[:, 1], 2)), 2) - x[:, 2]
    assert torch.allclose(e[:, 1], by_hand.square().mean((-3, -2, -1)).sqrt(), atol=1e-5)
    mixed = torch.stack([x[i % 2, i] for i in range(4)])[None]  # each state from the other run
    assert scenarios.step_error(mixed).mean() > 2 * e.mean()  # not the dynamics
    with pytest.raises(ValueError, match="L >= 2"):
        scenarios.step_error(x[:, :1])
