import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import sda_lite.dynamics as dynamics
from sda_lite.dynamics import LinearGaussian, MarkovChain, NoisyLorenz63


def lorenz(t, x, sigma=10.0, rho=28.0, beta=8 / 3):
    return np.array([sigma * (x[1] - x[0]), x[0] * (rho - x[2]) - x[1], x[0] * x[1] - beta * x[2]])


def rk4_numpy(x, dt):
    k1 = lorenz(0, x)
    k2 = lorenz(0, x + dt / 2 * k1)
    k3 = lorenz(0, x + dt / 2 * k2)
    k4 = lorenz(0, x + dt * k3)
    return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


X0 = [np.array([1.5, -2.0, 20.0]), np.array([-8.0, -9.0, 27.0]), np.array([0.1, 0.2, 0.3])]


@pytest.mark.parametrize("x0", X0)
def test_rk4_matches_hand_written_and_exact_flow(x0):
    chain = NoisyLorenz63()
    x1 = chain.rk4(torch.tensor(x0)).numpy()
    assert np.allclose(x1, rk4_numpy(x0, 0.025), rtol=0, atol=1e-12)
    exact = solve_ivp(lorenz, (0, 0.025), x0, method="DOP853", rtol=1e-13, atol=1e-13).y[:, -1]
    assert np.abs(x1 - exact).max() < 1e-3  # local error of RK4, O(dt^5)
    # fourth order: halving dt divides the one-step error by about 2^5
    err_half = np.abs(
        NoisyLorenz63(dt=0.0125).rk4(torch.tensor(x0)).numpy()
        - solve_ivp(lorenz, (0, 0.0125), x0, method="DOP853", rtol=1e-13, atol=1e-13).y[:, -1]
    ).max()
    assert 16 < np.abs(x1 - exact).max() / err_half < 64


def test_vector_field_batched():
    chain = NoisyLorenz63()
    x = torch.randn(5, 7, 3, dtype=torch.float64)
    expected = np.stack([lorenz(0, xi) for xi in x.reshape(-1, 3).numpy()]).reshape(5, 7, 3)
    assert np.allclose(chain.f(x).numpy(), expected)


def test_lorenz_trajectory_and_log_prob():
    chain = NoisyLorenz63()
    g = torch.Generator().manual_seed(0)
    x0 = chain.prior((512,), generator=g, dtype=torch.float64)
    x = chain.trajectory(x0, 33, generator=g)
    assert x.shape == (512, 33, 3) and x.dtype == torch.float64
    assert torch.equal(x[:, 0], x0)
    lp = chain.log_prob(x[:, :-1], x[:, 1:])
    assert lp.shape == (512, 32) and torch.isfinite(lp).all()
    # E[log N(w | 0, dt I)] = -D/2 log(2 pi dt) - D/2; the mean of 16384 values has std ~0.01
    expected = -1.5 * math.log(2 * math.pi * 0.025) - 1.5
    assert abs(lp.mean().item() - expected) < 0.05
    # a transition to another trajectory's state is much less likely
    assert chain.log_prob(x[:, :-1], x.roll(1, 0)[:, 1:]).mean() < expected - 100
    assert torch.allclose(chain.log_prob_trajectory(x), lp.sum(-1))


def test_lorenz_seeded_and_prior_moments():
    chain = NoisyLorenz63()

    def run():
        x1 = chain.prior((3,), generator=torch.Generator().manual_seed(1))
        return chain.trajectory(x1, 5, torch.Generator().manual_seed(2))

    a, b = run(), run()
    assert torch.equal(a, b) and a.dtype == torch.float32
    x = chain.prior((50000,), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(x.mean(0), chain.m0, atol=0.2)
    assert torch.allclose(x.T.cov(), chain.P0, rtol=0.05, atol=1.0)


def test_preprocess_postprocess():
    x = torch.tensor([[0.0, 0.0, 25.0], [8.0, -9.0, 33.6]])
    z = NoisyLorenz63.preprocess(x)
    assert torch.allclose(z, torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 1.0]]))
    assert torch.allclose(NoisyLorenz63.postprocess(z), x)


def test_markov_chain_is_abstract():
    with pytest.raises(TypeError):
        MarkovChain()


def chain_3d():
    F = torch.tensor([[0.9, 0.2, 0.0], [-0.1, 0.8, 0.3], [0.0, 0.1, 0.7]])
    Q = torch.tensor([[0.3, 0.1, 0.0], [0.1, 0.2, 0.05], [0.0, 0.05, 0.1]])
    P0 = torch.tensor([[1.0, 0.3, 0.0], [0.3, 2.0, 0.1], [0.0, 0.1, 0.5]])
    return LinearGaussian(F, Q, torch.tensor([1.0, -1.0, 0.5]), P0)


def test_moments_against_recursion_and_monte_carlo():
    chain = chain_3d()
    L, D = 4, 3
    m, C = chain.moments(L)
    assert m.shape == (L * D,) and C.shape == (L * D, L * D)
    # recursion, written independently: x_i = F^i x_0 + sum_k F^{i-1-k} w_k
    Fp = [torch.linalg.matrix_power(chain.F, i) for i in range(L)]
    for i in range(L):
        assert torch.allclose(m[i * D : (i + 1) * D], Fp[i] @ chain.m0)
        for j in range(L):
            cov = Fp[i] @ chain.P0 @ Fp[j].T + sum(
                Fp[i - 1 - k] @ chain.Q @ Fp[j - 1 - k].T for k in range(min(i, j))
            )
            assert torch.allclose(C[i * D : (i + 1) * D, j * D : (j + 1) * D], cov)
    # Monte Carlo
    g = torch.Generator().manual_seed(0)
    x = chain.trajectory(
        chain.prior((40000,), generator=g, dtype=torch.float64), L, generator=g
    ).reshape(-1, L * D)
    assert torch.allclose(x.mean(0), m, atol=0.05)
    assert torch.allclose(x.T.cov(), C, atol=0.08)


def test_stationary_rotation():
    chain = LinearGaussian.rotation(theta=0.3, damping=0.9, q=0.19)
    assert torch.allclose(
        chain.P0, torch.eye(2, dtype=torch.float64), atol=1e-12
    )  # q / (1 - a^2) = 1
    _, C = chain.moments(5)
    for i in range(5):
        assert torch.allclose(C[2 * i : 2 * i + 2, 2 * i : 2 * i + 2], chain.P0)
    F, Q = chain_3d().F, chain_3d().Q
    P = LinearGaussian.lyapunov(F, Q)
    assert torch.allclose(P, F @ P @ F.T + Q, atol=1e-12)
    with pytest.raises(ValueError, match="spectral radius"):
        LinearGaussian.stationary(torch.eye(2) * 1.01, torch.eye(2))


def test_linear_log_prob():
    chain = chain_3d()
    x, z = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64)
    expected = torch.distributions.MultivariateNormal(x @ chain.F.T, chain.Q).log_prob(z)
    assert torch.allclose(chain.log_prob(x, z), expected)


@pytest.mark.parametrize("every, O", [(1, 1), (3, 2), (4, 3)])
def test_kalman_smoother_equals_brute_force(every, O):
    chain = chain_3d()
    g = torch.Generator().manual_seed(every)
    H = torch.randn(O, 3, generator=g, dtype=torch.float64)
    R = 0.1 * torch.eye(O, dtype=torch.float64) + 0.05
    L = 3 * every + 2
    x = chain.trajectory(chain.prior((2,), generator=g, dtype=torch.float64), L, generator=g)
    y = x[:, ::every][:, :4] @ H.T + torch.randn(2, 4, O, generator=g, dtype=torch.float64) * 0.3
    ms, Ps = chain.kalman_smoother(y, H, R, every=every, length=L)
    mb, Cb = chain.posterior(y, H, R, every=every, length=L)
    assert (
        ms.shape == mb.shape == (2, L, 3) and Ps.shape == (L, 3, 3) and Cb.shape == (3 * L, 3 * L)
    )
    blocks = Cb.reshape(L, 3, L, 3).diagonal(dim1=0, dim2=2).permute(2, 0, 1)
    assert torch.allclose(ms, mb, atol=1e-6) and torch.allclose(Ps, blocks, atol=1e-6)
    assert torch.equal(chain.rts(y, H, R, every=every, length=L)[0], ms)
    # the last filtered marginal is the last smoothed one
    mf, Pf, _, _ = chain.kalman_filter(y, H, R, every=every, length=L)
    assert torch.allclose(mf[:, -1], ms[:, -1]) and torch.allclose(Pf[-1], Ps[-1])


def test_posterior_shrinks_towards_observations():
    chain = LinearGaussian.rotation()
    H, R = torch.tensor([[1.0, 0.0]]), torch.tensor([[1e-6]])
    y = torch.full((5, 1), 0.7)
    mean, cov = chain.posterior(y, H, R, every=2)
    assert torch.allclose(mean[::2, 0], y[:, 0].double(), atol=1e-4)
    assert (cov.diagonal().reshape(9, 2)[::2, 0] < 1e-5).all()
    assert torch.linalg.eigvalsh(cov).min() > -1e-10


def test_bad_inputs():
    with pytest.raises(ValueError, match="dt=0"):
        NoisyLorenz63(dt=0)
    with pytest.raises(ValueError, match="noise=-1"):
        NoisyLorenz63(noise=-1.0)
    with pytest.raises(ValueError, match=r"\(\*batch, 3\)"):
        NoisyLorenz63().rk4(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="length=0"):
        NoisyLorenz63().trajectory(torch.zeros(3), 0)
    with pytest.raises(ValueError, match="square"):
        LinearGaussian(torch.zeros(2, 3), torch.eye(2), torch.zeros(2), torch.eye(2))
    with pytest.raises(ValueError, match="m0 has shape"):
        LinearGaussian(torch.eye(2), torch.eye(2), torch.zeros(3), torch.eye(2))
    with pytest.raises(ValueError, match="Q="):
        LinearGaussian(torch.eye(2), -torch.eye(2), torch.zeros(2), torch.eye(2))
    chain = LinearGaussian.rotation()
    H, R = torch.eye(2)[:1], torch.eye(1)
    with pytest.raises(ValueError, match="H has shape"):
        chain.kalman_smoother(torch.zeros(3, 1), torch.eye(3), R)
    with pytest.raises(ValueError, match="R has shape"):
        chain.posterior(torch.zeros(3, 1), H, torch.eye(2))
    with pytest.raises(ValueError, match="y has shape"):
        chain.kalman_smoother(torch.zeros(3, 2), H, R)
    with pytest.raises(ValueError, match="length=4"):
        chain.kalman_smoother(torch.zeros(3, 1), H, R, every=2, length=4)
    with pytest.raises(ValueError, match="every=0"):
        chain.posterior(torch.zeros(3, 1), H, R, every=0)
    with pytest.raises(ValueError, match="damping=1.5"):
        LinearGaussian.rotation(damping=1.5)


def test_lorenz_code_never_imports_jax():
    code = (
        "import sys, torch; from sda_lite.dynamics import NoisyLorenz63, LinearGaussian; import sda_lite.data; "
        "NoisyLorenz63().trajectory(torch.zeros(3), 2); assert 'jax' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="NoSuchThing"):
        _ = dynamics.NoSuchThing
