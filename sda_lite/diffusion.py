r"""Variance-preserving diffusion over any event shape.

The forward (noising) process perturbs a clean sample :math:`x` into

.. math:: x(t) = \mu(t) x + \sigma(t) \epsilon, \quad \epsilon \sim \mathcal{N}(0, I), \quad t \in [0, 1],

and a noise predictor :math:`\epsilon_\phi(x(t), t) \approx -\sigma(t) \nabla_{x(t)} \log p(x(t))` is
learned by denoising score matching. Reversing the process samples from :math:`p(x)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real

import torch
from torch import Tensor, nn

from sda_lite.samplers import check, sample
from sda_lite.schedule import SCHEDULES, NoiseSchedule  # noqa: F401 (SCHEDULES re-exported)
from sda_lite.schedule import time as _time


class VPSDE(nn.Module):
    r"""Variance-preserving SDE around a noise predictor :math:`\epsilon(x(t), t)`.

    The noise schedule (``alpha``, ``eta``) is a :class:`~sda_lite.schedule.NoiseSchedule`,
    ``self.schedule``; :meth:`mu` and :meth:`sigma` evaluate it on the SDE's device.

    Arguments:
        eps: Any callable ``eps(x, t)`` taking ``x: (*batch, *shape)`` and ``t`` broadcastable to
            ``batch`` (a scalar while sampling) and returning a tensor shaped like ``x``: a network, a
            composed local score, an analytic predictor or a guidance wrapper.
        shape: The event shape, e.g. ``(L, D)`` for a trajectory of ``L`` states.
        alpha: The schedule name.
        eta: The noise level at :math:`t = 0`, in :math:`(0, 1)`.
    """

    def __init__(
        self,
        eps: Callable[[Tensor, Tensor], Tensor],
        shape: Sequence[int],
        alpha: str = "cos",
        eta: float = 1e-3,
    ):
        super().__init__()

        self.schedule = NoiseSchedule(alpha, eta)
        self.eps = eps
        self.shape = torch.Size(shape)
        self.dims = tuple(range(-len(self.shape), 0))
        self.alpha = alpha
        self.eta = eta
        self.register_buffer("_anchor", torch.empty(()), persistent=False)  # follows .to(device)

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def mu(self, t: Tensor | float) -> Tensor:
        r""":math:`\mu(t)`, the scale of the clean signal in :math:`x(t)`."""

        return self.schedule.mu(_time(t).to(self.device))

    def sigma(self, t: Tensor | float) -> Tensor:
        r""":math:`\sigma(t)`, the scale of the noise in :math:`x(t)`."""

        return self.schedule.sigma(_time(t).to(self.device))

    def _expand(self, t: Tensor) -> Tensor:
        return self.schedule.expand(t, len(self.shape))

    def _check(self, x: Tensor) -> None:
        if x.shape[x.dim() - len(self.shape) :] != self.shape or x.dim() < len(self.shape):
            raise ValueError(
                f"expected x of shape (*batch, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}"
            )

    def forward(
        self, x: Tensor, t: Tensor | float, train: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        r"""Perturbs ``x: (*batch, *shape)`` into :math:`x(t) = \mu(t) x + \sigma(t) \epsilon`.

        Returns :math:`x(t)`, or :math:`(x(t), \epsilon)` when ``train`` is true.
        """

        self._check(x)
        t = self._expand(_time(t).to(x))
        eps = torch.randn_like(x)
        xt = self.mu(t) * x + self.sigma(t) * eps
        return (xt, eps) if train else xt

    def denoise(self, x: Tensor, t: Tensor | float) -> Tensor:
        r"""Tweedie's estimate :math:`\hat{x} = (x(t) - \sigma(t) \epsilon(x(t), t)) / \mu(t)` of
        :math:`E[x \mid x(t)]`."""

        t = _time(t).to(x)
        te = self._expand(t)
        return (x - self.sigma(te) * self._eps(x, t)) / self.mu(te)

    def _eps(self, x: Tensor, t: Tensor) -> Tensor:
        eps = self.eps(x, t)
        if eps.shape != x.shape:
            raise ValueError(
                f"eps(x, t) returned shape {tuple(eps.shape)}, expected the shape of x {tuple(x.shape)}"
            )
        return eps

    def loss(self, x: Tensor) -> Tensor:
        r"""Denoising score matching in the :math:`\epsilon`-parametrisation,

        .. math:: \mathbb{E}_{t \sim U(0, 1), \epsilon}
            \| \epsilon_\phi(\mu(t) x + \sigma(t) \epsilon, t) - \epsilon \|^2,

        averaged over the batch ``x: (*batch, *shape)`` and the event dimensions.
        """

        self._check(x)
        t = torch.rand(x.shape[: x.dim() - len(self.shape)], dtype=x.dtype, device=x.device)
        xt, eps = self.forward(x, t, train=True)
        return (self._eps(xt, t) - eps).square().mean()

    @torch.no_grad()
    def sample(
        self,
        shape: Sequence[int] | int = (),
        c: Tensor | None = None,
        steps: int = 64,
        corrections: int = 0,
        tau: float = 1.0,
        progress: bool = False,
        sampler: str = "pc",
    ) -> Tensor:
        r"""Draws samples ``(*shape, *self.shape)`` by reversing the diffusion from :math:`t = 1`
        to 0 with a sampler of :mod:`sda_lite.samplers`, on the grid
        :math:`t_i = 1 - i / \text{steps}`.

        The default, ``"pc"``, is the paper's predictor-corrector. Predictor (exponential
        integrator, DDIM), from :math:`t` to :math:`s = t - 1 / \text{steps}`:

        .. math:: x(s) = \frac{\mu(s)}{\mu(t)} x(t)
            + \Big(\sigma(s) - \frac{\mu(s)}{\mu(t)} \sigma(t)\Big) \epsilon(x(t), t).

        Corrector (``corrections`` Langevin steps at :math:`s`), with :math:`\delta = \tau / \text{mean}(\epsilon^2)`:

        .. math:: x(s) \gets x(s) - \sigma(s) \big(\delta \, \epsilon(x(s), s) + \sqrt{2 \delta} \, z\big),
            \quad z \sim \mathcal{N}(0, I).

        The mean of :math:`\epsilon^2` is taken over the event of each sample, which is a stable
        estimate only for events of many values (a trajectory of tens of states or a field), as
        in the paper. The corrections follow the predictor of every sampler.

        Arguments:
            shape: The batch shape of the samples.
            c: Ignored unless ``eps`` takes a context, then passed as ``eps(x, t, c)``.
            steps: The number of predictor steps (>= 1).
            corrections: The number of Langevin corrections per step (>= 0).
            tau: The Langevin step size factor (> 0).
            progress: Whether to show a progress bar.
            sampler: ``"pc"`` (the paper's), ``"heun"``, ``"dpm2m"`` (DPM-Solver++(2M)) or
                ``"sde-dpm2m"``; :func:`sda_lite.samplers.evaluations` counts the evaluations of
                ``eps`` per sample.
        """

        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        check(sampler)
        if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
            raise ValueError(f"steps={steps!r}: expected an integer >= 1")
        if (
            isinstance(corrections, bool)
            or not isinstance(corrections, Integral)
            or corrections < 0
        ):
            raise ValueError(f"corrections={corrections!r}: expected an integer >= 0")
        if (
            isinstance(tau, bool)
            or not isinstance(tau, Real)
            or not (math.isfinite(tau) and tau > 0)
        ):
            raise ValueError(f"tau={tau!r}: expected a finite number > 0")

        eps = self._eps if c is None else (lambda x, t: self.eps(x, t, c))
        return sample(self, eps, shape, steps, corrections, tau, sampler, progress)
