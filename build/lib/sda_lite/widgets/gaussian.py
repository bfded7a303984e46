r"""The Gaussian-guidance explorer: SDA, DPS and MMPS posteriors under the exact Gaussian prior of
the damped-rotation chain, against its exact (Kalman) posterior."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from sda_lite import plots
from sda_lite.baselines import kalman_smoother
from sda_lite.config import sampling
from sda_lite.diffusion import VPSDE
from sda_lite.guidance import assimilate
from sda_lite.linear import LinearGaussian
from sda_lite.observe import compose, every, observe, select
from sda_lite.score import GaussianEps
from sda_lite.widgets.panel import (
    LIMITER,
    MAX_CORRECTIONS,
    MAX_STEPS,
    METHODS,
    Panel,
    _check,
    _checkbox,
    _dropdown,
    _slider,
)

TEST_BED = sampling("linear")  # the book's settings for the exact test bed (tau = 0.1)


@lru_cache(maxsize=16)
def _gaussian_posterior(
    method, gamma, limit, zeta, sigma_y, n, L, samples, steps, corrections, seed
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""The truth ``(L, 2)``, the observations ``y`` of its first variable every ``n`` states
    (seeded), the posterior samples ``(samples, L, 2)`` of a guidance, and the exact posterior
    means ``(L, 2)`` and standard deviations ``(L, 2)`` of the Kalman smoother."""

    chain = LinearGaussian.rotation()
    m, C = chain.moments(L)
    prior = VPSDE(GaussianEps(m, C, (L, chain.D)), (L, chain.D))
    A = compose(every(n), select(0))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        truth = chain.trajectory(chain.prior(), L).float()
        y = observe(truth, A, sigma_y)
        x = assimilate(
            prior,
            y,
            A,
            sigma_y,
            method=method,
            gamma=gamma,
            limit=limit,
            zeta=zeta,
            iterations=len(y),
            steps=steps,
            corrections=corrections,
            tau=TEST_BED["tau"],
            samples=samples,
        )
    H = torch.tensor([[1.0, 0.0]])
    mean, cov = kalman_smoother(chain, y, H, sigma_y, every=n, length=L)
    return truth, y, x.double(), mean, cov.diagonal(dim1=-2, dim2=-1).sqrt()


def _gaussian_readouts(x: Tensor, mean: Tensor, sd: Tensor) -> tuple[float, float]:
    r"""The RMS error of the samples' mean in exact posterior standard deviations, and the mean
    ratio of the samples' variance to the exact one."""

    error = ((x.mean(0) - mean) / sd).square().mean().sqrt().item()
    ratio = (x.var(0) / sd**2).mean().item()
    return error, ratio


def _draw_gaussian(
    axes: list[Axes],
    truth: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    every: int,
) -> None:
    r"""Draws, one variable per axis: the exact posterior's band, the samples' band, the truth and,
    on the first (observed) variable, the observations."""

    i = np.arange(len(truth))
    for d, ax in enumerate(axes):
        plots.band(ax, i, mean[:, d], sd[:, d], plots.REFERENCE, "exact posterior (mean ± 2 std)")
        samples_mean, samples_std = x[..., d].mean(0), x[..., d].std(0)
        plots.band(ax, i, samples_mean, samples_std, plots.POSTERIOR, "samples (mean ± 2 std)")
        ax.plot(i, truth[:, d], color=plots.TRUTH, lw=1, label="truth")
        if d == 0:
            ax.plot(i[::every], y[:, 0], "o", ms=3, color=plots.OBS, label="observations")
        ax.set_xlabel("state index $i$")
        ax.set_ylabel(f"$x_{d + 1}$ (arbitrary units)")
        ax.set_ylim(mean[:, d].min() - 4 * sd[:, d].max(), mean[:, d].max() + 4 * sd[:, d].max())
    axes[0].legend(fontsize=7)
    axes[0].set_title("observed variable", fontsize=9)
    axes[1].set_title("unobserved variable", fontsize=9)


def plot_gaussian_guidance(
    method: str = "sda",
    gamma: float = 0.1,
    limit: bool = True,
    zeta: float = 1.0,
    sigma_y: float = 0.1,
    every: int = 4,
    L: int = 32,
    samples: int = 256,
    steps: int = 64,
    corrections: int = 1,
    seed: int = 0,
) -> Figure:
    r"""Posterior samples of a guidance (``"sda"``, ``"dps"``, ``"mmps"``) under the exact Gaussian
    prior of the damped-rotation chain (:meth:`~sda_lite.dynamics.LinearGaussian.rotation`), against
    its exact posterior (:func:`~sda_lite.baselines.kalman_smoother`), observing the first variable
    every ``every`` states with noise ``sigma_y``. ``limit`` turns on SDA's step limiter (a
    departure from the paper, on by default here so that small :math:`\gamma` and
    :math:`\sigma_y` do not diverge).

    Returns:
        A figure of two axes (observed and unobserved variable): the exact posterior's and the
        samples' mean ± 2 std, the truth and the observations; titled with the RMS mean error in
        posterior standard deviations and the mean variance ratio (samples / exact).
    """

    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    _check("every", every, 1, L - 1)
    _check("sigma_y", sigma_y, 1e-3, 10.0)
    _check("steps", steps, 1, MAX_STEPS)
    _check("samples", samples, 2, 4096)
    _check("corrections", corrections, 0, MAX_CORRECTIONS)
    truth, y, x, mean, sd = _gaussian_posterior(
        method, gamma, limit, zeta, sigma_y, every, L, samples, steps, corrections, seed
    )
    error, ratio = _gaussian_readouts(x, mean, sd)

    fig = Figure(figsize=(11, 3.3))
    axes = fig.subplots(1, 2, sharex=True)
    _draw_gaussian(axes, *(z.numpy() for z in (truth, y, x, mean, sd)), every)
    setting = {
        "sda": f"γ = {gamma:.2g}" + (", step limiter" if limit else ""),
        "dps": f"ζ = {zeta:.2g}",
        "mmps": f"{len(y)} Krylov iterations",
    }[method]
    fig.suptitle(
        f"{method.upper()} ({setting}, C = {corrections}) vs exact: "
        f"mean error {error:.2f} std, variance ratio {ratio:.2f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def gaussian_panel(**defaults: Any) -> Panel:
    r"""The Gaussian-guidance explorer around :func:`plot_gaussian_guidance`: the method, its
    parameters (:math:`\gamma` and the step limiter of SDA, :math:`\zeta` of DPS), :math:`\sigma_y`,
    the observation spacing and the corrections.

    ``defaults`` override the initial parameters; those that no control sets (e.g. ``L``,
    ``samples``) stay fixed. Returns the :class:`~sda_lite.widgets.panel.Panel`, its figure drawn."""

    params = {
        "method": "sda",
        "gamma": 0.1,
        "limit": True,
        "zeta": 1.0,
        "sigma_y": 0.1,
        "every": 4,
        "corrections": 1,
    } | defaults
    controls = {
        "method": _dropdown(list(METHODS), params["method"], "method"),
        "gamma": _slider("log", params["gamma"], 1e-3, 10.0, 0.1, "γ (SDA)"),
        "limit": _checkbox(params["limit"], LIMITER),
        "zeta": _slider("log", params["zeta"], 0.1, 10.0, 0.1, "ζ (DPS)"),
        "sigma_y": _slider("log", params["sigma_y"], 0.01, 1.0, 0.1, "σ_y"),
        "every": _slider("int", params["every"], 1, 8, 1, "observation spacing"),
        "corrections": _slider("int", params["corrections"], 0, 4, 1, "corrections C"),
    }
    fixed = {name: value for name, value in params.items() if name not in controls}
    title = "Gaussian-guidance explorer: SDA, DPS and MMPS against the exact posterior"
    return Panel(plot_gaussian_guidance, controls, fixed, title)
