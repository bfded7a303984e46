r"""Operations on periodic 2-D fields in torch: vorticity, coarsening, upsampling, energy spectra.

Fields are velocities ``x: (*batch, 2, H, W)`` on the periodic domain :math:`[0, 2\pi]^2`, channel 0
:math:`u_x`, channel 1 :math:`u_y`, axis ``-2`` is :math:`x` and axis ``-1`` is :math:`y`
(jax-cfd's ``indexing="ij"``), with cell size :math:`h = 2 \pi / H`. Or scalar fields ``(*, H, W)``.

A generic leaf: it imports no dynamical system, so that both the observation operators
(:mod:`sda_lite.observe`) and the Kolmogorov system (:mod:`sda_lite.kolmogorov`) can use it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

SCHEMES = ("spectral", "central")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive integer")
    return int(value)


def vorticity(x: Tensor, scheme: str = "spectral") -> Tensor:
    r"""The vorticity :math:`\omega = \partial_x u_y - \partial_y u_x` of a periodic velocity field,
    in physical units (1 / time) on :math:`[0, 2\pi]^2`.

    Two derivative schemes:

    * ``"spectral"``: :math:`\widehat{\partial_x f}(k) = i k_x \hat{f}(k)` with integer
      wavenumbers (the Nyquist mode's derivative set to zero), exact for trigonometric polynomials
      below the Nyquist frequency;
    * ``"central"``: second-order central differences with periodic wrap-around,
      :math:`\partial_x f[i, j] \approx (f[i + 1, j] - f[i - 1, j]) / 2h`, :math:`h = 2\pi / H`. This is
      the paper's scheme (``torch.gradient`` on a circularly padded grid); it damps wavenumber
      :math:`k` by :math:`\sin(k h) / (k h)`, which matters on coarse grids (0.64 at :math:`k = 4`
      on :math:`16 \times 16`).

    Both treat the two components as sampled at the same (cell-centred) points, so a staggered
    field's vorticity is off by at most half a cell.

    Arguments:
        x: The velocity :math:`(u_x, u_y)`, ``(*batch, 2, H, W)``.
        scheme: ``"spectral"`` or ``"central"``.

    Returns:
        The vorticity, ``(*batch, H, W)``.
    """

    if not isinstance(x, Tensor) or x.ndim < 3 or x.shape[-3] != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x has shape {shape}: expected a velocity field shaped (*batch, 2, H, W)")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r}: expected one of {SCHEMES}")
    H, W = x.shape[-2:]
    if scheme == "central":
        ux, uy = x[..., 0, :, :], x[..., 1, :, :]
        dx_uy = (uy.roll(-1, -2) - uy.roll(1, -2)) * (H / (4 * np.pi))
        dy_ux = (ux.roll(-1, -1) - ux.roll(1, -1)) * (W / (4 * np.pi))
        return dx_uy - dy_ux
    kx = torch.fft.fftfreq(H, d=1 / H, device=x.device)
    ky = torch.fft.rfftfreq(W, d=1 / W, device=x.device)
    if H % 2 == 0:
        kx[H // 2] = 0
    if W % 2 == 0:
        ky[-1] = 0
    u = torch.fft.rfft2(x)
    w = 1j * (kx[:, None] * u[..., 1, :, :] - ky * u[..., 0, :, :])
    return torch.fft.irfft2(w, s=(H, W)).to(x.dtype)


def coarsen(x: Tensor, r: int) -> Tensor:
    r"""Averages blocks of ``r x r`` cells over the last two axes: ``(*, H, W) -> (*, H / r, W / r)``.

    .. math:: \bar{x}[I, J] = \frac{1}{r^2} \sum_{a, b < r} x[r I + a, r J + b]

    The mean over the grid is preserved.
    """

    r = _positive_int("r", r)
    if not isinstance(x, Tensor) or x.ndim < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x has shape {shape}: expected a tensor shaped (*, H, W)")
    H, W = x.shape[-2:]
    if H % r or W % r:
        raise ValueError(
            f"grid {H}x{W} is not divisible by r={r}: expected H and W divisible by {r}"
        )
    return x.unflatten(-1, (W // r, r)).unflatten(-3, (H // r, r)).mean(dim=(-3, -1))


def upsample(x: Tensor, r: int) -> Tensor:
    r"""Interpolates a periodic field onto a grid ``r`` times finer: ``(*, H, W) -> (*, r H, r W)``.

    Bilinear interpolation with circular wrap-around: coarse values are read as samples at the
    centres of ``r x r`` blocks (consistent with :func:`coarsen`), the grid is padded by one cell
    on each side with periodic copies, interpolated, then cropped. The mean over the grid is preserved.
    """

    r = _positive_int("r", r)
    if not isinstance(x, Tensor) or x.ndim < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x has shape {shape}: expected a tensor shaped (*, H, W)")
    *batch, H, W = x.shape
    y = F.pad(x.reshape(-1, 1, H, W), (1, 1, 1, 1), mode="circular")
    y = F.interpolate(y, scale_factor=r, mode="bilinear", align_corners=False)
    return y[..., r:-r, r:-r].reshape(*batch, r * H, r * W)


def energy_spectrum(x: Tensor) -> tuple[Tensor, Tensor]:
    r"""The isotropic kinetic energy spectrum :math:`E(\kappa)` of periodic velocity fields.

    .. math:: E(\kappa) = \sum_{\kappa - \frac{1}{2} \le |k| < \kappa + \frac{1}{2}} \frac{1}{2} |\hat{u}(k)|^2,
        \qquad \hat{u}(k) = \frac{1}{H W} \sum_{i, j} u[i, j] \, e^{-i k \cdot x_{ij}},

    summed over both components and averaged over the batch, so that
    :math:`\sum_\kappa E(\kappa)` is the mean kinetic energy :math:`\frac{1}{2} \overline{|u|^2}`
    (Parseval) but for the modes in the corners :math:`|k| > \min(H, W) / 2` of the grid, which
    are dropped: the shells are the resolved wavenumbers :math:`\kappa = 0, 1, \dots, \min(H, W) / 2`.

    Arguments:
        x: The velocity :math:`(u_x, u_y)`, ``(*batch, 2, H, W)``.

    Returns:
        The wavenumbers :math:`\kappa` ``(K,)`` and the spectrum :math:`E(\kappa)` ``(K,)``.
    """

    if not isinstance(x, Tensor) or x.ndim < 3 or x.shape[-3] != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x has shape {shape}: expected a velocity field shaped (*batch, 2, H, W)")
    H, W = x.shape[-2:]
    u = torch.fft.fft2(x.to(torch.float64)) / (H * W)
    e = 0.5 * u.abs().square().sum(-3).reshape(-1, H, W).mean(0)
    kx = torch.fft.fftfreq(H, d=1 / H, dtype=torch.float64)
    ky = torch.fft.fftfreq(W, d=1 / W, dtype=torch.float64)
    shell = torch.sqrt(kx[:, None] ** 2 + ky**2).round().long()
    K = min(H, W) // 2 + 1
    keep = shell < K
    E = torch.zeros(K, dtype=torch.float64).index_add_(0, shell[keep], e[keep])
    return torch.arange(K), E.to(x.dtype)
