r"""The Kolmogorov prior: windows of the dataset, their statistics (the Gaussian part) and the recipe."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from sda_lite.config import scale as get_scale
from sda_lite.diffusion import VPSDE
from sda_lite.io import load
from sda_lite.kolmogorov.data import ensure_kolmogorov
from sda_lite.priors import ensure_prior, load_configs
from sda_lite.windows import FieldWindows


def kolmogorov_windows(
    scale_name: str | None = None, k: int = 2
) -> tuple[FieldWindows, FieldWindows]:
    r"""The training and validation windows of ``2k + 1`` states of the Kolmogorov dataset of a scale
    (generated when missing): one random window per trajectory and epoch, ``(2k + 1, 2, H, W)``.

    The velocities are used as they are: the flow's statistics put their standard deviation close
    to 1 (0.97 and 0.93 for :math:`u_x` and :math:`u_y` at ``cpu`` scale) and their mean at 0, so the
    data are already standardised (the paper does the same).
    """

    path = ensure_kolmogorov(scale_name=scale_name)
    return FieldWindows(load(path, "train"), 2 * k + 1), FieldWindows(
        load(path, "valid"), 2 * k + 1
    )


@functools.lru_cache(maxsize=4)
def window_statistics(scale_name: str | None = None, k: int = 2) -> tuple[Tensor, Tensor]:
    r"""The mean and the stationary covariance of the windows of the Kolmogorov dataset of a scale:
    the Gaussian part of a :class:`~sda_lite.score.FieldScoreNet`.

    With :math:`m = \mathbb{E}[x_i]` the mean field (over trajectories and time) and
    :math:`\hat{d}_i(\kappa)` the orthonormal 2-D Fourier coefficients of :math:`x_i - m`, the
    covariance of mode :math:`\kappa` across a window is

    .. math:: C_\kappa[a, b] = \mathbb{E}\big[\mathrm{Re}\,
        \hat{d}_{i + a}(\kappa) \overline{\hat{d}_{i + b}(\kappa)}\big],
        \quad 0 \le a, b \le 2k,

    averaged over all windows of the training split: the energy spectrum on its diagonal, the
    time correlation of each scale off it.

    Returns:
        ``mean: (2, H, W)`` and ``cov: (2, H, W, 2k + 1, 2k + 1)``, float64.
    """

    return field_statistics(load(ensure_kolmogorov(scale_name=scale_name), "train"), k)


def field_statistics(x: Tensor, k: int = 2) -> tuple[Tensor, Tensor]:
    r"""The statistics of :func:`window_statistics` for trajectories ``x: (N, L, C, H, W)``:
    ``mean: (C, H, W)`` and ``cov: (C, H, W, 2k + 1, 2k + 1)``, float64."""

    if not isinstance(x, Tensor) or x.ndim != 5 or x.shape[1] < 2 * k + 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"x has shape {shape}: expected trajectories (N, L, C, H, W) with L >= 2k + 1 = {2 * k + 1}"
        )
    x = x.double()
    mean = x.mean(dim=(0, 1))
    d = torch.fft.fft2(x - mean, norm="ortho").unfold(1, 2 * k + 1, 1)  # (N, L - 2k, 2, H, W, 2k+1)
    cov = torch.einsum("nlchwa,nlchwb->chwab", d.real, d.real) + torch.einsum(
        "nlchwa,nlchwb->chwab", d.imag, d.imag
    )
    return mean, cov / (d.shape[0] * d.shape[1])


def kolmogorov_prior(scale_name: str | None = None, progress: bool = True) -> VPSDE:
    r"""The trained Kolmogorov window prior of a scale: a :class:`~sda_lite.score.FieldScoreNet` of
    half-width ``k = 2`` over windows ``(5, 2, H, W)``, configured by ``sda_lite/configs/kolmogorov.json``
    (:func:`~sda_lite.priors.load_configs`), loaded from ``data_dir() / f"kolmogorov_{scale}"`` (or the
    shipped checkpoint) or trained there on :func:`kolmogorov_windows`, its Gaussian part first fitted
    to :func:`window_statistics` when the config asks for one (``"gaussian": scale``).

    Use :func:`~sda_lite.priors.prior_for_length` to sample trajectories ``(L, 2, H, W)`` from it.
    Training skips the per-epoch validation loss (1024 windows per evaluation, more than a ``ci``
    epoch trains on); the validation windows of :func:`kolmogorov_windows` serve the chapters.
    """

    scale_name = get_scale(scale_name)
    config, train_config = load_configs("kolmogorov", scale_name)
    return ensure_prior(
        f"kolmogorov_{scale_name}",
        config,
        train_config,
        data=lambda: kolmogorov_windows(scale_name, config["k"])[0],
        progress=progress,
        prepare=gaussian_part(config),
    )


def gaussian_part(config: dict) -> Callable[[VPSDE], None] | None:
    r"""The ``prepare`` step of a field prior's training: fits its Gaussian part to the
    :func:`window_statistics` of the dataset named by ``config["gaussian"]`` (None without one)."""

    if config.get("gaussian") is None:
        return None
    return lambda sde: sde.eps.fit(*window_statistics(config["gaussian"], config["k"]))
