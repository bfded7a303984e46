r"""The diffusion explorer: noising a Lorenz trajectory to a level :math:`t` and denoising it with a
trained prior, :math:`\hat{x} = (x(t) - \sigma_t \epsilon(x(t), t)) / \mu_t`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from sda_lite import plots
from sda_lite.priors import prior_for_length
from sda_lite.widgets.lorenz import (
    CHAIN,
    L_LORENZ,
    available_orders,
    lorenz_truth,
    lorenz_window_prior,
)
from sda_lite.widgets.panel import Panel, _check, _dropdown, _slider


def _denoised(
    t: float, k: int, index: int, seed: int, prior_scale: str
) -> tuple[Tensor, Tensor, Tensor, float, float]:
    r"""The standardised test trajectory ``index`` :math:`x`, its noised :math:`x(t)` (seeded) and
    the denoised :math:`\hat{x}` of the local prior of order ``k``, each ``(L, 3)``, and
    :math:`\mu_t` and :math:`\sigma_t`."""

    prior = prior_for_length(lorenz_window_prior(k, prior_scale), L_LORENZ)
    x = CHAIN.preprocess(lorenz_truth(index)).float()
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        xt = prior(x, t)
        x_hat = prior.denoise(xt, t)
    mu, sigma = prior.mu(t).item(), prior.sigma(t).item()
    return x, xt, x_hat, mu, sigma


def plot_diffusion(
    t: float = 0.3, k: int = 2, index: int = 0, seed: int = 0, prior_scale: str = "cpu"
) -> Figure:
    r"""A standardised Lorenz trajectory :math:`x` (test trajectory ``index``, 65 states), its noised
    :math:`x(t) = \mu_t x + \sigma_t z` and the denoised estimate
    :math:`\hat{x} = (x(t) - \sigma_t \epsilon(x(t), t)) / \mu_t` of the trained local prior of
    order ``k``.

    Returns:
        A figure of three axes, one per variable, each with the three curves; titled with
        :math:`\mu_t`, :math:`\sigma_t` and the RMSE of :math:`\hat{x}` to :math:`x`.
    """

    _check("t", t, 0.0, 1.0)
    x, xt, x_hat, mu, sigma = _denoised(t, k, index, seed, prior_scale)
    error = (x_hat - x).square().mean().sqrt().item()
    x, xt, x_hat = x.numpy(), xt.numpy(), x_hat.numpy()

    fig = Figure(figsize=(8, 5.2))
    axes = fig.subplots(3, 1, sharex=True)
    i = np.arange(L_LORENZ)
    for d, ax in enumerate(axes):
        ax.plot(i, xt[:, d], color=plots.DATA, lw=0.8, label="noised $x(t)$")
        ax.plot(i, x[:, d], color=plots.TRUTH, lw=1, label="clean $x$")
        ax.plot(i, x_hat[:, d], color=plots.PRIOR, lw=1.5, label=r"denoised $\hat{x}$")
        ax.set_ylabel(plots.LORENZ_LABELS[d])
        ax.set_ylim(-3.5, 3.5)
    axes[-1].set_xlabel("state index $i$ (standardised units)")
    axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    title = f"t = {t:.2f}: $\\mu_t$ = {mu:.3f}, $\\sigma_t$ = {sigma:.3f}; "
    title += f"RMSE of $\\hat{{x}}$ = {error:.3f} (k = {k})"
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def diffusion_panel(**defaults: Any) -> Panel:
    r"""The diffusion explorer around :func:`plot_diffusion`: the noise level ``t``, the order ``k``
    (the priors on disk) and the noise seed.

    ``defaults`` override the initial parameters; those that no control sets stay fixed. Returns
    the :class:`~sda_lite.widgets.panel.Panel`, its figure drawn."""

    params = {"t": 0.3, "k": 2, "seed": 0} | defaults
    orders = sorted(set(available_orders(params.get("prior_scale", "cpu"))) | {params["k"]})
    controls = {
        "t": _slider("float", params["t"], 0.0, 1.0, 0.02, "diffusion time t"),
        "k": _dropdown(orders, params["k"], "k"),
        "seed": _slider("int", params["seed"], 0, 9, 1, "noise seed"),
    }
    fixed = {name: value for name, value in params.items() if name not in controls}
    title = "Diffusion explorer: noising and denoising a Lorenz trajectory"
    return Panel(plot_diffusion, controls, fixed, title)
