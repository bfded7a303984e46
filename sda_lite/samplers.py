r"""Samplers of a variance-preserving diffusion: from noise at :math:`t = 1` to data at 0.

Every sampler only calls a noise predictor :math:`\epsilon(x(t), t)`, so a guided predictor
(:mod:`sda_lite.guidance`) plugs into any of them. In the notation of :mod:`sda_lite.diffusion`,
:math:`x(t) = \mu(t) x + \sigma(t) \epsilon`, Tweedie's denoiser
:math:`\hat{x} = (x(t) - \sigma(t) \epsilon(x(t), t)) / \mu(t)`, and the log signal-to-noise
ratio :math:`\lambda(t) = \log(\mu(t) / \sigma(t))`, which rises from about :math:`\log \eta`
at :math:`t = 1` to :math:`-\log \eta` at :math:`t = 0`. All samplers walk the same grid
:math:`t_i = 1 - i / \text{steps}` and write :math:`h = \lambda(s) - \lambda(t) > 0` for a step from
:math:`t` down to :math:`s`.

The deterministic samplers integrate the probability-flow ODE, which in the variables
:math:`\bar{x} = x(t) / \mu(t)` and :math:`\bar{\sigma} = \sigma(t) / \mu(t) = e^{-\lambda}` reads
:math:`d\bar{x} / d\bar{\sigma} = \epsilon(x(t), t)`, or, solved exactly in its linear part,

.. math:: x(s) = \frac{\sigma(s)}{\sigma(t)} x(t)
    + \sigma(s) \int_{\lambda(t)}^{\lambda(s)} e^{\lambda} \hat{x}(\lambda) \, d\lambda .

Names (``sampler=``), with the network evaluations per step (:func:`evaluations`):

* ``"pc"`` (1): the paper's predictor (DDIM, :math:`\hat{x}` constant over the step), the default;
* ``"heun"`` (2): Heun's method on :math:`d\bar{x} / d\bar{\sigma} = \epsilon` (Karras et al.,
  2022);
* ``"dpm2m"`` (1): DPM-Solver++(2M) (Lu et al., 2022), :math:`\hat{x}` extrapolated linearly in
  :math:`\lambda` from the last two steps;
* ``"sde-dpm2m"`` (1): its stochastic counterpart, SDE-DPM-Solver++(2M), which adds fresh noise
  at each step.

Each may be followed, at every step, by ``corrections`` Langevin steps (:func:`langevin`, one
evaluation each): the paper's predictor-corrector is ``"pc"`` with ``corrections >= 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

Eps = Callable[[Tensor, Tensor], Tensor]


class Diffusion(Protocol):
    r"""What a sampler needs of a diffusion (a :class:`~sda_lite.diffusion.VPSDE`): the schedule
    :math:`\mu(t), \sigma(t)` on its device, the event ``shape`` and its axes ``dims``."""

    shape: torch.Size
    dims: tuple[int, ...]

    @property
    def device(self) -> torch.device: ...

    def mu(self, t: Tensor | float) -> Tensor: ...

    def sigma(self, t: Tensor | float) -> Tensor: ...


def _steps(time: Tensor, progress: bool) -> Iterator[tuple[Tensor, Tensor]]:
    return tqdm(
        zip(time[:-1], time[1:]), total=len(time) - 1, disable=not progress, desc="sampling"
    )


def langevin(
    sde: Diffusion, eps: Eps, x: Tensor, s: Tensor, corrections: int, tau: float
) -> Tensor:
    r"""``corrections`` Langevin steps at time :math:`s` (the paper's corrector),

    .. math:: x \gets x - \sigma(s) \big(\delta \, \epsilon(x, s) + \sqrt{2 \delta} \, z\big), \quad
        z \sim \mathcal{N}(0, I), \quad \delta = \tau / \text{mean}(\epsilon^2),

    the mean of :math:`\epsilon^2` taken over the event of each sample ``x: (*batch, *shape)``,
    a stable estimate only for events of many values (as in the paper).
    """

    for _ in range(corrections):
        z = torch.randn_like(x)
        e = eps(x, s)
        delta = tau / e.square().mean(dim=sde.dims, keepdim=True)
        x = x - (delta * e + torch.sqrt(2 * delta) * z) * sde.sigma(s)
    return x


def pc(
    sde: Diffusion,
    eps: Eps,
    x: Tensor,
    time: Tensor,
    corrections: int = 0,
    tau: float = 1.0,
    progress: bool = False,
) -> Tensor:
    r"""The paper's predictor-corrector. Predictor (exponential integrator, DDIM), from :math:`t`
    to :math:`s`, with :math:`\hat{x}` held at its value at :math:`t`:

    .. math:: x(s) = \frac{\mu(s)}{\mu(t)} x(t)
        + \Big(\sigma(s) - \frac{\mu(s)}{\mu(t)} \sigma(t)\Big) \epsilon(x(t), t)
        = \frac{\sigma(s)}{\sigma(t)} x(t) + \mu(s) (1 - e^{-h}) \hat{x},

    first order in :math:`h`; then :func:`langevin` corrections at :math:`s`.

    Arguments:
        sde: The diffusion (its ``mu``, ``sigma``, ``dims``).
        eps: The noise predictor ``eps(x, t)``, ``t`` a scalar tensor.
        x: The start :math:`x(1)`, ``(*batch, *shape)``.
        time: The decreasing times :math:`1 = t_0 > \dots > t_n = 0`.
        corrections, tau: The Langevin corrections per step and their step size factor.
        progress: Whether to show a progress bar.
    """

    for t, s in _steps(time, progress):
        r = sde.mu(s) / sde.mu(t)
        x = r * x + (sde.sigma(s) - r * sde.sigma(t)) * eps(x, t)
        x = langevin(sde, eps, x, s, corrections, tau)
    return x


def heun(
    sde: Diffusion,
    eps: Eps,
    x: Tensor,
    time: Tensor,
    corrections: int = 0,
    tau: float = 1.0,
    progress: bool = False,
) -> Tensor:
    r"""Heun's method on the probability-flow ODE :math:`d\bar{x} / d\bar{\sigma} = \epsilon(x(t), t)`,
    :math:`\bar{x} = x(t) / \mu(t)`, :math:`\bar{\sigma} = \sigma(t) / \mu(t)` (Karras et al., 2022,
    Algorithm 1). An Euler step (the same as the ``"pc"`` predictor) to :math:`s`, then the slope
    there, and the step taken again with the average slope:

    .. math:: \bar{x}'(s) = \bar{x}(t) + (\bar{\sigma}_s - \bar{\sigma}_t) \, \epsilon(x(t), t), \qquad
        \bar{x}(s) = \bar{x}(t) + (\bar{\sigma}_s - \bar{\sigma}_t)
        \frac{\epsilon(x(t), t) + \epsilon(\mu(s) \bar{x}'(s), s)}{2},

    second order in the step, two evaluations of :math:`\epsilon` per step; then :func:`langevin`
    corrections at :math:`s`. Arguments as :func:`pc`.
    """

    for t, s in _steps(time, progress):
        mu_t, mu_s = sde.mu(t), sde.mu(s)
        d = sde.sigma(s) / mu_s - sde.sigma(t) / mu_t  # the step in sigma / mu, < 0
        e = eps(x, t)
        x_bar = x / mu_t
        euler = x_bar + d * e
        x = mu_s * (x_bar + d * (e + eps(mu_s * euler, s)) / 2)
        x = langevin(sde, eps, x, s, corrections, tau)
    return x


def _lam(sde: Diffusion, time: Tensor) -> list[float]:
    r""":math:`\lambda(t) = \log \mu(t) - \log \sigma(t)` on the grid, in float64."""

    return (sde.mu(time).double().log() - sde.sigma(time).double().log()).tolist()


def _extrapolate(x_hat: Tensor, previous: Tensor | None, h: float, h_previous: float) -> Tensor:
    r"""The 2M estimate :math:`\hat{x}_t + \frac{h}{2 h'} (\hat{x}_t - \hat{x}_{t'})` of
    :math:`\hat{x}` over a step of size :math:`h`, from the previous step's of size :math:`h'`."""

    if previous is None:
        return x_hat
    return x_hat + (h / (2 * h_previous)) * (x_hat - previous)


def dpm2m(
    sde: Diffusion,
    eps: Eps,
    x: Tensor,
    time: Tensor,
    corrections: int = 0,
    tau: float = 1.0,
    progress: bool = False,
) -> Tensor:
    r"""DPM-Solver++(2M) (Lu et al., 2022): the exact solution of the probability-flow ODE's linear
    part with :math:`\hat{x}(\lambda)` linear in :math:`\lambda` through the last two denoised
    estimates. With :math:`\hat{x}_t` at :math:`t`, :math:`\hat{x}_{t'}` at the previous time
    :math:`t' > t` and :math:`h' = \lambda(t) - \lambda(t')`,

    .. math:: D = \hat{x}_t + \frac{h}{2 h'} (\hat{x}_t - \hat{x}_{t'}), \qquad
        x(s) = \frac{\sigma(s)}{\sigma(t)} x(t) + \mu(s) (1 - e^{-h}) D,

    second order in :math:`h` for one evaluation of :math:`\epsilon` per step. The first step has
    no previous estimate and the last one (to :math:`t = 0`, where :math:`h` is several times the
    previous one and the extrapolation would overshoot) uses :math:`D = \hat{x}_t`: both are
    ``"pc"`` predictor steps. Then :func:`langevin` corrections at :math:`s`; they move
    :math:`x(s)` off the path that :math:`\hat{x}_t` belongs to, so with ``corrections >= 1``
    every step is first order (the ``"pc"`` sampler). Arguments as :func:`pc`.
    """

    lam, previous, h_previous = _lam(sde, time), None, 0.0
    for i, (t, s) in enumerate(_steps(time, progress)):
        mu_t, sigma_t, mu_s, sigma_s = sde.mu(t), sde.sigma(t), sde.mu(s), sde.sigma(s)
        h = lam[i + 1] - lam[i]
        x_hat = (x - sigma_t * eps(x, t)) / mu_t
        D = _extrapolate(x_hat, previous if i + 2 < len(lam) else None, h, h_previous)
        x = (sigma_s / sigma_t) * x - mu_s * math.expm1(-h) * D
        x = langevin(sde, eps, x, s, corrections, tau)
        previous, h_previous = (None if corrections else x_hat), h
    return x


def sde_dpm2m(
    sde: Diffusion,
    eps: Eps,
    x: Tensor,
    time: Tensor,
    corrections: int = 0,
    tau: float = 1.0,
    progress: bool = False,
) -> Tensor:
    r"""SDE-DPM-Solver++(2M) (Lu et al., 2022): the reverse SDE solved exactly in its linear part,
    with :math:`\hat{x}` as in :func:`dpm2m` (the midpoint form),

    .. math:: x(s) = \frac{\sigma(s)}{\sigma(t)} e^{-h} x(t) + \mu(s) (1 - e^{-2h}) D
        + \sigma(s) \sqrt{1 - e^{-2h}} \, z, \quad z \sim \mathcal{N}(0, I).

    With :math:`D = \hat{x}` this is ancestral (DDPM) sampling: if :math:`x(t) = \mu(t) x +
    \sigma(t) \epsilon` and :math:`\hat{x} = x`, then :math:`x(s) = \mu(s) x + \sigma(s) \epsilon'`
    exactly. The fresh noise forgets part of the past errors at each step, as Langevin
    corrections do, for no extra evaluation. First and last steps, and steps after corrections,
    as in :func:`dpm2m`. Arguments as :func:`pc`.
    """

    lam, previous, h_previous = _lam(sde, time), None, 0.0
    for i, (t, s) in enumerate(_steps(time, progress)):
        mu_t, sigma_t, mu_s, sigma_s = sde.mu(t), sde.sigma(t), sde.mu(s), sde.sigma(s)
        h = lam[i + 1] - lam[i]
        x_hat = (x - sigma_t * eps(x, t)) / mu_t
        D = _extrapolate(x_hat, previous if i + 2 < len(lam) else None, h, h_previous)
        z = torch.randn_like(x)
        x = (
            (sigma_s / sigma_t) * math.exp(-h) * x
            - mu_s * math.expm1(-2 * h) * D
            + sigma_s * math.sqrt(-math.expm1(-2 * h)) * z
        )
        x = langevin(sde, eps, x, s, corrections, tau)
        previous, h_previous = (None if corrections else x_hat), h
    return x


SAMPLERS = {"pc": pc, "heun": heun, "dpm2m": dpm2m, "sde-dpm2m": sde_dpm2m}
COST = {"pc": 1, "heun": 2, "dpm2m": 1, "sde-dpm2m": 1}  # evaluations of eps per predictor step


def check(sampler: str) -> str:
    r"""Returns ``sampler`` if it names a sampler, else raises a ``ValueError`` that lists them."""

    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}: expected one of {tuple(SAMPLERS)}")
    return sampler


def evaluations(sampler: str, steps: int, corrections: int = 0) -> int:
    r"""The evaluations of :math:`\epsilon` per sample: ``steps * (COST[sampler] + corrections)``
    (the paper's Lorenz setting, ``"pc"`` with 256 steps and 2 corrections, costs 768)."""

    return steps * (COST[check(sampler)] + corrections)


def sample(
    sde: Diffusion,
    eps: Eps,
    shape: Sequence[int],
    steps: int,
    corrections: int = 0,
    tau: float = 1.0,
    sampler: str = "pc",
    progress: bool = False,
) -> Tensor:
    r"""Draws ``(*shape, *sde.shape)`` samples: :math:`x(1) \sim \mathcal{N}(0, I)`, then ``steps``
    steps of ``sampler`` on the grid :math:`t_i = 1 - i / \text{steps}` (arguments checked by
    :meth:`~sda_lite.diffusion.VPSDE.sample`)."""

    step = SAMPLERS[check(sampler)]
    x = torch.randn((*shape, *sde.shape), device=sde.device)
    time = torch.linspace(1, 0, steps + 1, device=sde.device)
    return step(sde, eps, x, time, corrections, tau, progress)
