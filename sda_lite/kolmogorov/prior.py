r"""The Kolmogorov prior: windows of the dataset, their statistics (the Gaussian part) and the recipe."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from sda_lite.config import data_dir
from sda_lite.config import scale as get_scale
from sda_lite.diffusion import VPSDE
from sda_lite.io import load
from sda_lite.kolmogorov.data import ensure_kolmogorov
from sda_lite.priors import CONFIGS, build_prior, ensure_prior, load_configs
from sda_lite.windows import FieldWindows

DATA_KEYS = ("trajectories", "seed", "burn", "length")


def prior_data(scale_name: str | None = None, progress: bool = True) -> Path:
    r"""The dataset the Kolmogorov prior of a scale trains on (generated when missing).

    By default the scale's own dataset (:func:`~sda_lite.kolmogorov.ensure_kolmogorov`), whose
    training split the prior sees. A scale whose entry in ``sda_lite/configs/kolmogorov.json``
    has a ``"data"`` mapping (keys among ``trajectories``, ``seed``, ``burn``, ``length``) trains
    on a dataset of its own, ``data_dir() / f"kolmogorov_{scale}_prior.h5"``: more trajectories,
    drawn from other seeds than the scale's dataset, so that every split of the latter (the truths
    the chapters assimilate) stays unseen by the prior. ``progress`` shows the generation's bar.
    """

    scale_name = get_scale(scale_name)
    extra = json.loads((CONFIGS / "kolmogorov.json").read_text())[scale_name].get("data")
    if not extra:
        return ensure_kolmogorov(scale_name=scale_name, progress=progress)
    unknown = set(extra) - set(DATA_KEYS)
    if unknown:
        raise ValueError(
            f"kolmogorov.json[{scale_name!r}]['data'] has {sorted(unknown)}: expected keys among "
            f"{list(DATA_KEYS)}"
        )
    path = data_dir() / f"kolmogorov_{scale_name}_prior.h5"
    return ensure_kolmogorov(path, scale_name, progress=progress, **extra)


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


def prior_windows(scale_name: str | None = None, k: int = 2) -> FieldWindows:
    r"""The training windows of the prior of a scale: :func:`kolmogorov_windows` of
    :func:`prior_data`'s training split, ``(2k + 1, 2, H, W)``."""

    return FieldWindows(load(prior_data(scale_name), "train"), 2 * k + 1)


@functools.lru_cache(maxsize=4)
def window_statistics(scale_name: str | None = None, k: int = 2) -> tuple[Tensor, Tensor]:
    r"""The mean and the stationary covariance of the windows the prior of a scale trains on
    (:func:`prior_data`): the Gaussian part of a :class:`~sda_lite.score.FieldScoreNet`.

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

    return field_statistics(load(prior_data(scale_name), "train"), k)


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
    shipped checkpoint, ``cpu`` scale, which holds its Gaussian part: loading it generates no data)
    or trained there on :func:`prior_windows`, its Gaussian part first fitted to
    :func:`window_statistics` when the config asks for one (``"gaussian": scale``).

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
        data=lambda: prior_windows(scale_name, config["k"]),
        progress=progress,
        prepare=gaussian_part(config),
    )


def gaussian_part(config: dict) -> Callable[[VPSDE], None] | None:
    r"""The ``prepare`` step of a field prior's training: fits its Gaussian part to the
    :func:`window_statistics` of the dataset named by ``config["gaussian"]`` (None without one)."""

    if config.get("gaussian") is None:
        return None
    return lambda sde: sde.eps.fit(*window_statistics(config["gaussian"], config["k"]))


def gaussian_only(sde: VPSDE) -> VPSDE:
    r"""The Gaussian part of a field prior alone: a prior of the same config but with a fresh,
    one-level U-Net (:math:`F_\phi = 0`: its last layer starts at zero, and the smallest one costs
    least) and the Gaussian statistics of ``sde``, so that :math:`\epsilon_\phi = \epsilon_G`.
    What the trained network adds is the difference between the two."""

    config = getattr(sde, "config", None)
    if not isinstance(config, dict) or config.get("kind") != "field" or sde.eps.mean is None:
        raise ValueError(
            "expected a field prior with a Gaussian part (built by build_prior with a 'grid')"
        )
    gaussian = build_prior({**config, "channels": [8], "blocks": 1}).to(sde.device)
    for name in ("mean", "lam", "U"):
        getattr(gaussian.eps, name).copy_(getattr(sde.eps, name))
    return gaussian
