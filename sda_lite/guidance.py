r"""Posterior sampling by guidance: noise predictors of :math:`p(x(t) \mid y)` around a prior's.

Bayes' rule splits the posterior score into the prior score and a likelihood score,

.. math:: \nabla_{x(t)} \log p(x(t) \mid y) = \nabla_{x(t)} \log p(x(t)) + \nabla_{x(t)} \log p(y \mid x(t)),

and, since :math:`\epsilon(x(t), t) = -\sigma(t) \nabla_{x(t)} \log p(x(t))`, a guided noise predictor is

.. math:: \epsilon(x(t), t \mid y) = \epsilon(x(t), t) - \sigma(t) \nabla_{x(t)} \log p(y \mid x(t)).

Each class below is such a predictor (an ``nn.Module`` ``eps(x, t)``) that wraps the prior
``sde.eps``; they differ in how they approximate :math:`p(y \mid x(t))` through Tweedie's denoiser
:math:`\hat{x} = (x(t) - \sigma(t) \epsilon(x(t), t)) / \mu(t)`. One sampler serves them all:
``VPSDE(guided, sde.shape).sample(...)``, or the one-call :func:`assimilate`.

Observations ``y: (*y_batch, *obs)`` with ``A(x): (*batch, *obs)`` for trajectories
``x: (*batch, L, D)``; without a ``y_batch`` every sample sees the same ``y``, else the samples are
``(n, *y_batch, L, D)`` and sample ``[i, j]`` sees ``y[j]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sda_lite.diffusion import VPSDE
from sda_lite.samplers import check

PRECISIONS = ("float32", "bfloat16")
LIMIT = 4.0  # the largest move of A(x_hat) by a guidance step, in residuals (see Guidance._limit)


def _positive(name: str, value: float | Tensor, strict: bool = True) -> Tensor:
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise ValueError(f"{name}={value!r}: expected a number or a tensor of numbers")
    value = torch.as_tensor(value, dtype=torch.float32)
    ok = (value > 0) if strict else (value >= 0)
    if not bool(torch.all(ok & torch.isfinite(value))):
        expected = "> 0" if strict else ">= 0"
        raise ValueError(f"{name}={value.tolist()}: expected finite values {expected}")
    return value


def _noise(std: float | Tensor, y: Tensor) -> Tensor:
    r"""The noise standard deviations ``std`` (finite, > 0), checked to broadcast to ``y``'s shape
    without changing it (a ``std`` of another shape would silently change the likelihood)."""

    std = _positive("std", std).to(y.device)
    try:
        shape = torch.broadcast_shapes(std.shape, y.shape)
    except RuntimeError:
        shape = None
    if shape != y.shape:
        raise ValueError(
            f"std has shape {tuple(std.shape)} and y has shape {tuple(y.shape)}: expected std "
            "broadcastable to y's shape (a number, or a tensor shaped like y's trailing axes)"
        )
    return std


class Guidance(nn.Module):
    r"""The common part of every guidance: checks, shapes and the denoiser :math:`\hat{x}`.

    Arguments:
        y: The observations ``(*y_batch, *obs)``, finite.
        A: The observation operator, ``(*batch, L, D) -> (*batch, *obs)``, differentiable.
        sde: The prior ``VPSDE`` (its ``eps``, ``mu``, ``sigma`` and ``shape``).
        precision: ``"bfloat16"`` evaluates the prior's network under autocast; the guidance
            arithmetic stays in float32.
    """

    def __init__(
        self, y: Tensor, A: Callable[[Tensor], Tensor], sde: VPSDE, precision: str = "float32"
    ):
        super().__init__()

        y = torch.as_tensor(y, dtype=torch.float32, device=sde.device)
        if not bool(torch.isfinite(y).all()):
            bad = int((~torch.isfinite(y)).sum())
            raise ValueError(
                f"y has {bad} non-finite value(s) (NaN or inf) out of {y.numel()}: expected finite observations"
            )
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")

        with torch.no_grad():
            obs = A(torch.zeros((1, *sde.shape), device=sde.device)).shape[1:]
        if y.shape[y.dim() - len(obs) :] != obs or y.dim() < len(obs):
            raise ValueError(
                f"A(x) has shape {tuple(obs)} for one trajectory of shape {tuple(sde.shape)}, but y has shape "
                f"{tuple(y.shape)}: expected y shaped (*y_batch, {', '.join(map(str, obs))})"
            )

        self.register_buffer("y", y)
        self.A, self.sde, self.precision = A, sde, precision
        self.obs, self.y_batch = obs, y.shape[: y.dim() - len(obs)]
        self.dims = tuple(range(-len(obs), 0))  # the observation axes of A(x)
        self.limit = False  # see _limit
        self.local = self._locality()

    def _locality(self) -> tuple | None:
        r"""Finds the states that a linear ``A`` reads, when the prior is local (a ``LocalScore``, with
        attributes ``k`` and ``dim``: state :math:`i` is predicted from the window
        :math:`x_{j:j+2k}`, :math:`j = \mathrm{clip}(i - k, 0, L - 2k - 1)`).

        Returns ``None`` (the dense path) or the time axis, the observed states, the windows they need,
        and for each state the index of its window and its position in it."""

        k, dim = getattr(self.sde.eps, "k", None), getattr(self.sde.eps, "dim", -2)
        if not isinstance(k, int) or not getattr(self.A, "linear", False):
            return None
        axis = dim % len(self.sde.shape)
        W = self.sde.shape[axis] - 2 * k  # the number of windows
        with torch.enable_grad():
            z = torch.zeros((1, *self.sde.shape), device=self.y.device, requires_grad=True)
            out = self.A(z)
            (g,) = torch.autograd.grad(out, z, torch.randn_like(out), allow_unused=True)
        if W < 2 or g is None:
            return None
        states = g[0].ne(0).movedim(axis, 0).flatten(1).any(1).nonzero()[:, 0]
        j = (states - k).clamp(0, W - 1)
        windows, index = torch.unique(j, return_inverse=True)
        if len(windows) > W // 2:
            return None
        return axis, states, windows.tolist(), index, states - j

    def _split(self, x: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""Views ``x: (*batch, L, D)`` as ``(n, *y_batch, L, D)``; returns it with ``t``, mu and sigma
        broadcastable to x and to the observations."""

        x = x.reshape(-1, *self.y_batch, *self.sde.shape)
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.dim() > 0:
            t = t.reshape(x.shape[: x.dim() - len(self.sde.shape)])
        mu, sigma = self.sde.mu(t), self.sde.sigma(t)
        return (
            x,
            t,
            mu.reshape(mu.shape + (1,) * len(self.sde.shape)),
            sigma.reshape(sigma.shape + (1,) * len(self.sde.shape)),
        )

    def _denoise(self, x: Tensor, t: Tensor, mu: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        r"""Returns :math:`\epsilon(x(t), t)` and :math:`\hat{x} = (x(t) - \sigma \epsilon) / \mu`, in float32.

        With a local prior and an ``A`` that reads few states, only the windows of the observed states
        are evaluated with a graph, the others without (each window once,
        :meth:`~sda_lite.score.LocalScore.forward`), so that the vector-Jacobian products, whose
        cotangents live on the observed states, are exact and cheap.
        """

        with torch.autocast(
            x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16"
        ):
            if self.local is None:
                eps = self.sde.eps(x, t)
            else:
                eps = self.sde.eps(x, t, windows=self.local[2])  # LocalScore
        eps = eps.to(x.dtype)
        return eps, (x - sigma * eps) / mu

    def log_likelihood(self, x_hat: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
        r"""The approximate :math:`\log p(y \mid x(t))` through the denoiser, summed over the batch."""

        raise NotImplementedError

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        r"""The guided noise predictor :math:`\epsilon(x(t), t) - \sigma(t) \nabla_{x(t)} \log p(y \mid x(t))`,
        the gradient taken through the denoiser by :meth:`log_likelihood`."""

        shape = x.shape
        x, t, mu, sigma = self._split(x, t)
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            eps, x_hat = self._denoise(x, t, mu, sigma)
            log_p = self.log_likelihood(x_hat, mu, sigma)
        (s,) = torch.autograd.grad(log_p, x)
        if self.limit:
            s = s * self._limit(x_hat.detach(), s * sigma**2 / mu)
        return (eps.detach() - sigma * s).reshape(shape)

    def _limit(self, x_hat: Tensor, delta: Tensor) -> Tensor:
        r"""The step limiter: a factor
        :math:`\alpha = \min(1, \kappa \lVert r \rVert / \lVert A(\hat{x} + \delta) - A(\hat{x}) \rVert)`
        per trajectory, with :math:`r = y - A(\hat{x})` and :math:`\kappa` = ``LIMIT`` = 4.

        The guidance moves the denoised estimate by :math:`\delta = \sigma_t^2 / \mu_t \nabla \log p(y \mid x(t))`.
        The exact Gaussian update :math:`V A^\top (A V A^\top + \Sigma_y)^{-1} r` moves :math:`A(\hat{x})` by
        less than :math:`\lVert r \rVert`. An approximate variance much smaller than :math:`A V A^\top`
        (a small :math:`\gamma` against a small :math:`\sigma_y`) moves it by the factor
        :math:`A V A^\top / (\sigma_y^2 + \gamma \sigma_t^2 / \mu_t^2)`, up to :math:`10^3` and more: each
        sampler step then overshoots the observations further than the last, and the samples
        overflow. A sampler step takes only a fraction of :math:`\delta`, so moderate overshoots are
        harmless; steps that would move :math:`A(\hat{x})` by more than :math:`\kappa` residuals are
        scaled back to :math:`\kappa` residuals. On the linear-Gaussian chain this keeps every
        :math:`\gamma \in [10^{-3}, 1]`, :math:`\sigma_y \in [0.01, 1]`, 16 to 256 steps and 0 to 4
        corrections bounded, and leaves the samples of the settings that were already stable
        unchanged or closer to the exact posterior.
        """

        with torch.no_grad():
            y_hat = self.A(x_hat)
            r = (self.y - y_hat).square().sum(self.dims).sqrt()
            d = (self.A(x_hat + delta) - y_hat).square().sum(self.dims).sqrt()
            alpha = (LIMIT * r / d.clamp_min(1e-30)).clamp(max=1.0)
        return alpha.reshape(alpha.shape + (1,) * len(self.sde.shape))

    def _obs(self, a: Tensor) -> Tensor:
        r"""Reshapes a per-trajectory factor ``(n, *y_batch, 1, ..)`` to broadcast against ``A(x)``."""

        return a.reshape(a.shape[: a.dim() - len(self.sde.shape)] + (1,) * len(self.obs))

    def extra_repr(self) -> str:
        return f"A={self.A!r}, y={tuple(self.y.shape)}, precision={self.precision}"


class SDAGuidance(Guidance):
    r"""The likelihood score of score-based data assimilation (Rozet & Louppe, 2023),

    .. math:: p(y \mid x(t)) \approx \mathcal{N}\big(y \mid A(\hat{x}), \Sigma_y + \gamma (\sigma_t / \mu_t)^2 I\big),

    differentiated through the denoiser :math:`\hat{x}(x(t))`. The :math:`\gamma` term stands for the
    variance of :math:`x` given :math:`x(t)`, which dominates :math:`\Sigma_y` at high noise.

    Arguments:
        y: The observations ``(*y_batch, *obs)``.
        A: The observation operator.
        std: The observation noise :math:`\sigma_y > 0` (float, or tensor broadcastable to ``y``).
        sde: The prior ``VPSDE``.
        gamma: :math:`\gamma \geq 0`.
        precision: ``"float32"`` or ``"bfloat16"`` (network evaluations only).
        limit: Whether to shorten a guidance step that would move :math:`A(\hat{x})` by more than
            4 residuals :math:`y - A(\hat{x})` (:meth:`Guidance._limit`). Off by default, as in the
            paper. A departure from the paper, for robustness: without it, a :math:`\gamma` much
            smaller than the true variance of :math:`A(x)` given :math:`x(t)` makes the sampler
            diverge. Other steps are unchanged.
    """

    def __init__(
        self,
        y: Tensor,
        A: Callable,
        std: float | Tensor,
        sde: VPSDE,
        gamma: float = 1e-2,
        precision: str = "float32",
        limit: bool = False,
    ):
        super().__init__(y, A, sde, precision)
        self.register_buffer("std", _noise(std, self.y))
        self.gamma = float(_positive("gamma", gamma, strict=False))
        if not isinstance(limit, bool):
            raise ValueError(f"limit={limit!r}: expected True or False")
        self.limit = limit

    def log_likelihood(self, x_hat: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
        var = self.std**2 + self.gamma * self._obs(sigma / mu) ** 2
        return -((self.y - self.A(x_hat)).square() / var).sum() / 2


class DPSGuidance(Guidance):
    r"""Diffusion posterior sampling (Chung et al., 2022) as the paper's code implements it: the
    likelihood :math:`\mathcal{N}(y \mid A(\hat{x}), \Sigma_y)` with the denoiser's uncertainty
    dropped, whose score is replaced by a step of size :math:`\zeta` normalised by the residual norm,

    .. math:: \nabla_{x(t)} \log p(y \mid x(t)) \approx -\zeta \frac{\nabla_{x(t)} \| r \|^2}{\| r \|}
        = -2 \zeta \nabla_{x(t)} \| r \|, \qquad r = y - A(\hat{x}),

    one norm per sample. With ``zeta=1`` on a single sample this is the step of
    ``DPSGaussianScore(zeta=1)`` in Rozet's ``sda`` (which takes one norm over the whole batch it is
    given). :math:`\Sigma_y` is ignored.
    """

    def __init__(
        self, y: Tensor, A: Callable, sde: VPSDE, zeta: float = 1.0, precision: str = "float32"
    ):
        super().__init__(y, A, sde, precision)
        self.zeta = float(_positive("zeta", zeta))

    def log_likelihood(self, x_hat: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
        err = (self.y - self.A(x_hat)).square()
        return -2 * self.zeta * err.sum(dim=self.dims).clamp_min(1e-30).sqrt().sum()


def solve(K: Callable[[Tensor], Tensor], b: Tensor, var: Tensor, iterations: int) -> Tensor:
    r"""Solves :math:`(\Sigma + K) u = b` for a batch ``b: (N, m)``, with :math:`\Sigma = \mathrm{diag}(var) \succ 0`
    and a covariance :math:`K` known only through products, in a Krylov space of ``iterations``
    dimensions (at most ``m``).

    The basis :math:`Q` of :math:`\mathrm{span}(b, Mb, M^2 b, \dots)`, :math:`M = \Sigma + K`, is built by
    Arnoldi (float64, one product by :math:`K` per dimension) and the projected system
    :math:`Q^\top (\Sigma + |K_s|) Q \, c = Q^\top b` is solved, :math:`u = Q c`, where :math:`|K_s|` is the
    symmetric part of :math:`K` with its eigenvalues made positive (in the Krylov space). For a
    symmetric positive semi-definite :math:`K` this is conjugate gradients' (Galerkin) solution, exact
    once the space is all of :math:`\mathbb{R}^m`. A learned :math:`K` may be non-symmetric and
    indefinite; a negative variance is then read as the same amount of *positive* uncertainty (as in
    saddle-free Newton), so that the projected matrix stays positive definite, :math:`u^\top b \geq 0`
    and :math:`\|u\| \leq \|b\| / \min var`: the solution is always finite.
    """

    tiny = torch.finfo(torch.float64).tiny
    var = var.double().expand(b.shape)
    Q, KQ = [b.double() / b.double().norm(dim=-1, keepdim=True).clamp_min(tiny)], []
    for j in range(min(iterations, b.shape[-1])):
        KQ.append(K(Q[j].to(b.dtype)).double())
        w = var * Q[j] + KQ[j]
        scale = w.norm(dim=-1, keepdim=True)
        for q in Q + Q:  # modified Gram-Schmidt, twice: the Krylov vectors can be nearly parallel
            w = w - (w * q).sum(-1, keepdim=True) * q
        norm = w.norm(dim=-1, keepdim=True)
        Q.append(torch.where(norm > 1e-5 * scale, w / norm.clamp_min(tiny), 0))  # 0 after breakdown
    Q, KQ = torch.stack(Q[:-1], 1), torch.stack(KQ, 1)  # (N, k, m)
    S = (Q * var[:, None]) @ Q.mT  # the projections of Sigma and K, (N, k, k)
    lam, U = torch.linalg.eigh((Q @ KQ.mT + KQ @ Q.mT) / 2)
    G = S + U @ (lam.abs()[..., None] * U.mT)
    G = G + torch.diag_embed(1 - Q.square().sum(-1)).clamp(min=0)  # empty directions (breakdown)
    c = torch.linalg.solve(G, (Q @ b.double()[..., None]))[..., 0]
    return (c[:, None] @ Q)[:, 0].to(b.dtype)


class MMPSGuidance(Guidance):
    r"""Moment-matching posterior sampling (Rozet et al., 2024):

    .. math:: p(y \mid x(t)) \approx \mathcal{N}(y \mid A \hat{x}, \Sigma_y + A V A^\top), \quad
        V = \mathbb{V}[x \mid x(t)] = \frac{\sigma_t^2}{\mu_t} \frac{\partial \hat{x}}{\partial x(t)}

    (Tweedie's covariance), whose score, treating :math:`V` as constant, is
    :math:`(\partial \hat{x} / \partial x(t))^\top A^\top u` with :math:`(\Sigma_y + A V A^\top) u = y - A \hat{x}`.
    The system is solved matrix-free in a Krylov space of ``iterations`` dimensions (:func:`solve`),
    each costing one vector-Jacobian product through the denoiser (and, for a nonlinear ``A``, one
    JVP, by double backward, and one VJP of ``A`` at :math:`\hat{x}`). Exact for a Gaussian prior with
    its exact denoiser once ``iterations`` reaches the size of ``y``.

    A learned denoiser's Jacobian is neither symmetric nor positive definite, and at high noise the
    factor :math:`\sigma_t^2 / \mu_t` amplifies its errors: a trained Lorenz prior gives
    :math:`A V A^\top` with eigenvalues near :math:`-10^3` at :math:`t = 1`. There, plain conjugate gradients
    return huge, wrongly signed solutions and the samples diverge (to :math:`|x| \approx 100` standard
    deviations on the ``ci`` Lorenz prior, 'lo' scenario); GMRES solves the indefinite system as it
    is, without any bound on its solution. :func:`solve` reads negative variances as positive ones
    (large uncertainty, hence weak guidance), which bounds every solution and leaves the exact
    Gaussian case unchanged.
    """

    def __init__(
        self,
        y: Tensor,
        A: Callable,
        std: float | Tensor,
        sde: VPSDE,
        iterations: int = 3,
        precision: str = "float32",
    ):
        super().__init__(y, A, sde, precision)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations={iterations!r}: expected an integer >= 1")
        self.register_buffer("std", _noise(std, self.y))
        self.iterations = iterations

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        shape = x.shape
        x, t, mu, sigma = self._split(x, t)
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            eps, x_hat = self._denoise(x, t, mu, sigma)
            y_hat = self.A(x_hat)

        m = self.obs
        flat = lambda v: v.reshape(-1, m.numel())  # noqa: E731, (N, m): one system per trajectory
        var_y = flat((self.std**2).expand(self.y.shape).expand(y_hat.shape))
        if getattr(self.A, "linear", False):
            A_jvp = self.A
        else:  # w -> A'(x_hat) w by double backward: the VJP v -> A'^T v is linear in v
            with torch.enable_grad():
                x0 = x_hat.detach().requires_grad_()
                v0 = torch.zeros_like(y_hat, requires_grad=True)
                (At_v0,) = torch.autograd.grad(self.A(x0), x0, v0, create_graph=True)
            A_jvp = lambda w: torch.autograd.grad(At_v0, v0, w, retain_graph=True)[0]  # noqa: E731

        def AVAt(v: Tensor) -> Tensor:
            (At_v,) = torch.autograd.grad(y_hat, x_hat, v.reshape(y_hat.shape), retain_graph=True)
            (J_v,) = torch.autograd.grad(x_hat, x, At_v, retain_graph=True)
            return flat(A_jvp(J_v * sigma**2 / mu))

        u = solve(AVAt, flat(self.y - y_hat.detach()), var_y, self.iterations)
        (s,) = torch.autograd.grad(y_hat, x, u.reshape(y_hat.shape))
        return (eps.detach() - sigma * s).reshape(shape)


def assimilate(
    prior: VPSDE,
    y: Tensor,
    A: Callable[[Tensor], Tensor],
    std: float | Tensor,
    method: str = "sda",
    gamma: float = 1e-2,
    limit: bool = False,
    zeta: float = 1.0,
    iterations: int = 3,
    steps: int = 64,
    corrections: int = 0,
    tau: float = 1.0,
    samples: int = 1,
    precision: str = "float32",
    progress: bool = True,
    sampler: str = "pc",
) -> Tensor:
    r"""Draws posterior trajectories :math:`x \sim p(x \mid y)` under the diffusion ``prior``.

    Arguments:
        prior: The prior ``VPSDE`` over trajectories ``(L, D)``.
        y: The observations ``(*y_batch, *obs)``, with ``A(x): (*batch, *obs)``.
        A: The observation operator (see :mod:`sda_lite.observe`).
        std: The observation noise standard deviation (DPS ignores it).
        method: ``"sda"`` (uses ``gamma`` and ``limit``, the step limiter, off by default as in the
            paper), ``"dps"`` (uses ``zeta``) or ``"mmps"`` (uses ``iterations``).
        steps, corrections, tau: The predictor-corrector settings of :meth:`VPSDE.sample`.
        sampler: The sampler of :mod:`sda_lite.samplers`: ``"pc"`` (the paper's, the default),
            ``"heun"``, ``"dpm2m"`` or ``"sde-dpm2m"``.
        samples: The number of posterior samples per observation.
        precision: ``"float32"``, or ``"bfloat16"`` to run the network under autocast.
        progress: Whether to show a progress bar.

    Returns:
        The samples ``(samples, *y_batch, L, D)``.
    """

    if method == "sda":
        guided = SDAGuidance(y, A, std, prior, gamma=gamma, precision=precision, limit=limit)
    elif method == "dps":
        guided = DPSGuidance(y, A, prior, zeta=zeta, precision=precision)
    elif method == "mmps":
        guided = MMPSGuidance(y, A, std, prior, iterations=iterations, precision=precision)
    else:
        raise ValueError(f"method={method!r}: expected 'sda', 'dps' or 'mmps'")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r}: expected an integer >= 1")
    check(sampler)

    posterior = VPSDE(guided, prior.shape, alpha=prior.alpha, eta=prior.eta).to(prior.device)
    settings = {"method": method, "sampler": sampler, "steps": steps}
    settings |= {"corrections": corrections, "tau": tau}
    settings |= {"sda": {"gamma": gamma, "limit": limit}, "dps": {"zeta": zeta},
                 "mmps": {"iterations": iterations}}[method]  # fmt: skip
    try:
        x = posterior.sample(
            (samples, *guided.y_batch),
            steps=steps,
            corrections=corrections,
            tau=tau,
            progress=progress,
            sampler=sampler,
        )
    except torch.linalg.LinAlgError as error:  # MMPS's solve, on overflowing values
        x = torch.full((samples, *guided.y_batch, *prior.shape), float("nan"))
        reason = f" (the solver failed: {str(error).splitlines()[0][:80]})"
    else:
        reason = ""
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        scale = guided.y.abs().max().item()
        raise ValueError(
            f"the posterior samples diverged{reason}: {bad} of {x.numel()} values are NaN or inf "
            "with "
            + ", ".join(f"{k}={v!r}" for k, v in settings.items())
            + f" and observations up to |y| = {scale:.3g}: expected finite samples; likely "
            "causes: tau too large, gamma too small for the noise std (try limit=True), or y far "
            "outside the prior's scale (standardised data are of order 1)"
        )
    return x
