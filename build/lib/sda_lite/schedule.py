r"""The noise schedule of a variance-preserving diffusion: :math:`\mu(t)` and :math:`\sigma(t)`.

A clean sample :math:`x` is perturbed into :math:`x(t) = \mu(t) x + \sigma(t) \epsilon` for
:math:`t \in [0, 1]`. Schedules (``alpha``), with :math:`\eta` the smallest noise level:

* ``"cos"``: :math:`\mu(t) = \cos(\arccos(\sqrt{\eta}) \, t)^2` (the paper's);
* ``"lin"``: :math:`\mu(t) = 1 - (1 - \eta) t`;
* ``"exp"``: :math:`\mu(t) = \exp(t \log \eta)`;

and always :math:`\sigma(t) = \sqrt{1 - \mu(t)^2 + \eta^2}`. The same object serves the diffusion
(:class:`~sda_lite.diffusion.VPSDE`), the networks that are parametrised through it
(:mod:`sda_lite.score`) and the guidance.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SCHEDULES = ("cos", "lin", "exp")


def time(t: Tensor | float) -> Tensor:
    r"""``t`` as a floating-point tensor, checked to lie in :math:`[0, 1]`."""

    if not torch.is_tensor(t) or not t.is_floating_point():
        t = torch.as_tensor(t, dtype=torch.get_default_dtype())
    if t.numel() > 0 and not bool(((t >= 0) & (t <= 1)).all()):
        raise ValueError(
            f"diffusion time t must lie in [0, 1], got values in [{t.min():g}, {t.max():g}]"
        )
    return t


class NoiseSchedule:
    r"""The schedule :math:`(\mu(t), \sigma(t))` named ``alpha`` with smallest noise level ``eta``.

    Arguments:
        alpha: ``"cos"``, ``"lin"`` or ``"exp"``.
        eta: The noise level at :math:`t = 0`, in :math:`(0, 1)`.
    """

    def __init__(self, alpha: str = "cos", eta: float = 1e-3):
        if alpha not in SCHEDULES:
            raise ValueError(f"unknown schedule alpha={alpha!r}: expected one of {SCHEDULES}")
        if not 0 < eta < 1:
            raise ValueError(f"eta must lie in (0, 1), got {eta}")
        self.alpha, self.eta = alpha, eta

    def mu(self, t: Tensor | float) -> Tensor:
        r""":math:`\mu(t)`, the scale of the clean signal in :math:`x(t)`, shaped like ``t``."""

        t, eta = time(t), self.eta
        if self.alpha == "cos":
            return torch.cos(math.acos(math.sqrt(eta)) * t) ** 2
        if self.alpha == "lin":
            return 1 - (1 - eta) * t
        return torch.exp(math.log(eta) * t)

    def sigma(self, t: Tensor | float) -> Tensor:
        r""":math:`\sigma(t) = \sqrt{1 - \mu(t)^2 + \eta^2}`, the scale of the noise in :math:`x(t)`."""

        return (1 - self.mu(t) ** 2 + self.eta**2).sqrt()

    @staticmethod
    def expand(v: Tensor, events: int) -> Tensor:
        r"""Appends ``events`` unit axes to ``v: (*batch,)``, so that it broadcasts against
        ``(*batch, *event)``."""

        return v.reshape(v.shape + (1,) * events)

    def __repr__(self) -> str:
        return f"NoiseSchedule(alpha={self.alpha!r}, eta={self.eta:g})"
