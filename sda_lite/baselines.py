r"""Classical data assimilation: the references and baselines that SDA is judged against.

Every method assimilates observations of a :class:`~sda_lite.dynamics.MarkovChain`

.. math:: y_k = A(x_{k n}) + \sigma_y \epsilon_k, \quad \epsilon_k \sim \mathcal{N}(0, I), \quad k = 0, \dots, K - 1,

taken every ``n = every`` states from the first, with ``A`` acting on one state ``(*batch, D) -> (*batch, M)``
and ``y: (K, M)``. Trajectories have ``L >= (K - 1) n + 1`` states (``length``, by default the least).

* :func:`particle_filter` -- the bootstrap particle filter that resamples whole histories; it returns
  posterior trajectories and is the paper's ground truth (2^14 particles);
* :func:`kalman_smoother` -- the exact posterior marginals of a :class:`~sda_lite.linear.LinearGaussian`
  chain (the Rauch-Tung-Striebel smoother of :mod:`sda_lite.dynamics`);
* :func:`enkf`, :func:`enks` -- the ensemble Kalman filter and smoother with perturbed observations,
  multiplicative inflation and covariance localisation (:class:`Localisation`, :func:`gaspari_cohn`);
* :func:`fourdvar` -- weak-constraint 4D-Var, the maximum a posteriori trajectory by L-BFGS.

:class:`Deterministic` removes the transition noise of a chain, for filters on noise-free dynamics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sda_lite.chain import MarkovChain

StateMap = Callable[[Tensor], Tensor]  # a state (*, D) -> its observation (*, M)


class Deterministic(MarkovChain):
    r"""The noise-free version of a chain with an ``rk4`` step: :math:`x_{i+1} = \mathrm{RK4}(x_i)`.

    The prior is the wrapped chain's. The transition density is a Dirac, so ``log_prob`` is undefined.
    Used for the DAPPER benchmark (``Deterministic(NoisyLorenz63(dt=0.01))``).
    """

    def __init__(self, chain: MarkovChain):
        if not callable(getattr(chain, "rk4", None)):
            raise ValueError(
                f"chain={type(chain).__name__}: expected a chain with a deterministic rk4(x) step"
            )
        self.chain, self.D = chain, chain.D

    def prior(
        self, shape: tuple[int, ...] = (), generator: torch.Generator | None = None
    ) -> Tensor:
        return self.chain.prior(shape, generator=generator)

    def transition(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.chain.rk4(x)

    def log_prob(self, x_prev: Tensor, x_next: Tensor) -> Tensor:
        raise NotImplementedError("a deterministic transition has no density")


def _setup(
    chain: MarkovChain, y: Tensor, A: StateMap, std, every: int, length: int | None, x: Tensor
):
    r"""Validates the common arguments; returns ``std`` as a tensor and the trajectory length ``L``."""

    if not isinstance(y, Tensor) or y.ndim != 2 or y.shape[0] < 1:
        shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"y has shape {shape}: expected observations (K >= 1, M)")
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every={every!r}: expected an integer >= 1")
    K, M = y.shape
    L = (K - 1) * every + 1 if length is None else length
    if not isinstance(L, int) or L < (K - 1) * every + 1:
        raise ValueError(
            f"length={length!r}: expected an integer >= {(K - 1) * every + 1} to hold {K} observations "
            f"every {every} states"
        )
    if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[-1] != chain.D:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x0 has shape {shape}: expected an ensemble (N, {chain.D})")
    Ax = A(x)
    if Ax.shape[-1] != M:
        raise ValueError(
            f"A maps a state to {Ax.shape[-1]} values but y has M = {M}: expected A(x): (*batch, {M})"
        )
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    if not (std > 0).all() or std.numel() not in (1, M):
        raise ValueError(f"std={std.tolist()!r}: expected a positive scalar or {M} positive values")
    return std, L


def _gaussian_log_lik(y: Tensor, Ax: Tensor, std: Tensor) -> Tensor:
    r""":math:`\log \mathcal{N}(y \mid A(x), \sigma_y^2 I)` summed over the last dimension."""

    z = (y - Ax) / std
    return -0.5 * (z.square() + math.log(2 * math.pi) + 2 * std.log()).sum(dim=-1)


def _resample(w: Tensor, n: int, method: str, generator: torch.Generator | None) -> Tensor:
    r"""Draws ``n`` ancestor indices from the normalised weights ``w: (N,)``.

    * ``"multinomial"``: i.i.d. draws from :math:`\mathrm{Cat}(w)`;
    * ``"systematic"``: one uniform :math:`u`, indices :math:`F^{-1}((j + u) / n)` for :math:`j < n`
      (lower variance, the default).
    """

    if method == "multinomial":
        return torch.multinomial(w, n, replacement=True, generator=generator)
    u = torch.rand((), generator=generator, dtype=w.dtype, device=w.device)
    u = (u + torch.arange(n, dtype=w.dtype, device=w.device)) / n
    return torch.searchsorted(w.cumsum(0), u).clamp(max=len(w) - 1)


def _observed(i: int, every: int, K: int) -> bool:
    r"""Whether state ``i`` is observed: :math:`i = k n` with :math:`k < K` and ``n = every``."""

    return i % every == 0 and i // every < K


def _reweight(log_w: Tensor, log_lik: Tensor, ess: float) -> tuple[Tensor, Tensor, Tensor]:
    r"""Bayes' rule on the weights, :math:`w^n \leftarrow w^n p(y_k \mid x^n) / Z`.

    ``log_w, log_lik: (N,)`` -> the new ``log_w: (N,)``, :math:`\log Z` with the evidence increment
    :math:`Z = \sum_n w^n p(y_k \mid x^n)`, and whether to resample: whether the effective sample
    size :math:`1 / \sum_n (w^n)^2 \leq \mathrm{ess} \cdot N`.
    """

    log_w = log_w + log_lik
    log_norm = torch.logsumexp(log_w, dim=0)
    log_w = log_w - log_norm
    return log_w, log_norm, 1 / log_w.mul(2).exp().sum() <= ess * len(log_w)


def _weighted_cov(x: Tensor, w: Tensor) -> Tensor:
    r"""Unbiased :math:`C = \sum_n w^n (x^n - \bar{x})(x^n - \bar{x})^\top / (1 - \sum_n (w^n)^2)`.

    ``x: (N, D)``, ``w: (N,)`` summing to 1 -> ``(D, D)``, with :math:`\bar{x} = \sum_n w^n x^n`.
    """

    dx = x - w @ x
    return (w[:, None] * dx).mT @ dx / (1 - w.square().sum())


def _jitter(
    x: Tensor,
    log_w: Tensor,
    x_new: Tensor,
    parents: Tensor,
    jitter: float,
    generator: torch.Generator | None,
) -> Tensor:
    r"""Regularisation :math:`x_{new}^n + \mathbb{1}[a_n \text{ drawn twice or more}] \, h U z_n`.

    :math:`z_n \sim \mathcal{N}(0, I)`, :math:`U U^\top = C` the weighted covariance of the particles
    ``x: (N, D)`` before resampling, :math:`h = \mathrm{jitter} \cdot N^{-1/(D+4)}` (Scott's rule),
    ``parents`` the ancestors ``a: (N,)`` of ``x_new: (N, D)`` -> ``(N, D)``.
    """

    N, D = x.shape
    w = log_w.exp() if log_w.max().exp() < 1 - 1e-5 else torch.full_like(log_w, 1 / N)
    C = _weighted_cov(x, w)
    h = jitter * N ** (-1 / (D + 4))
    eye = torch.eye(D, dtype=C.dtype, device=C.device)
    chol = torch.linalg.cholesky(C + 1e-9 * C.diagonal().mean() * eye)
    dup = torch.bincount(parents, minlength=N)[parents] > 1
    z = torch.randn(N, D, generator=generator, dtype=x.dtype, device=x.device)
    return x_new + dup[:, None] * h * (z @ chol.mT)


def _resample_particles(
    x: Tensor,
    log_w: Tensor,
    resampling: str,
    jitter: float,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Resampling to equal weights: :math:`x^n \leftarrow x^{a_n}`, :math:`a_n \sim \mathrm{Cat}(w)`,
    :math:`w^n \leftarrow 1 / N`.

    ``x: (N, D)``, ``log_w: (N,)`` -> the new ``x: (N, D)`` (jittered by :func:`_jitter` if
    ``jitter > 0``), ``log_w: (N,)`` and the ancestors ``a: (N,)``.
    """

    N = len(log_w)
    parents = _resample(log_w.exp(), N, resampling, generator)
    x_new = x[parents]
    if jitter > 0:
        x_new = _jitter(x, log_w, x_new, parents, jitter, generator)
    return x_new, torch.full_like(log_w, -math.log(N)), parents


class Step(NamedTuple):
    r"""One state of :func:`bootstrap_filter`.

    Attributes:
        x: The particles at this state, ``(N, D)``.
        log_w: Their normalised log-weights, ``(N,)``, after assimilating this state's observation.
        parents: The resampling indices ``(N,)`` that drew the previous particles, ``x_prev[parents]``,
            before they moved to this state; ``None`` if there was no resampling.
        log_evidence: :math:`\log p(y_{0:k})` of the observations assimilated so far.
    """

    x: Tensor
    log_w: Tensor
    parents: Tensor | None
    log_evidence: Tensor


def bootstrap_filter(
    chain: MarkovChain,
    y: Tensor,
    A: StateMap,
    std: float | Tensor,
    every: int = 1,
    length: int | None = None,
    particles: int = 2**14,
    x0: Tensor | None = None,
    resampling: str = "systematic",
    ess: float = 1.0,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
) -> Iterator[Step]:
    r"""The bootstrap particle filter, one state at a time (sequential importance resampling).

    Particles move with the transition, :math:`x_i^n \sim p(x_i \mid x_{i-1}^n)`, and at each
    observation are reweighted by the likelihood, :math:`w^n \propto w^n \, \mathcal{N}(y_k \mid A(x_i^n),
    \sigma_y^2 I)`. The evidence grows by :math:`\log \sum_n w^n_{prev} \, p(y_k \mid x_i^n)`.
    Whenever the effective sample size :math:`1 / \sum_n (w^n)^2 \leq \mathrm{ess} \cdot N` after an
    observation (always, for the default ``ess = 1``), the particles are resampled to equal weights.

    On noise-free dynamics, resampled copies never separate again. ``jitter > 0`` then regularises
    the filter as DAPPER's ``PartFilt(reg=jitter)``: after resampling, each particle drawn more
    than once is moved by :math:`\mathcal{N}(0, h^2 C)`, with :math:`C` the weighted covariance of the
    particles before resampling and :math:`h = \mathrm{jitter} \cdot N^{-1/(D+4)}` (Scott's rule). This
    samples a kernel-smoothed filter, whose bias vanishes as :math:`N` grows.

    Arguments:
        chain: The Markov chain (``transition(x, generator)`` and, without ``x0``, ``prior``).
        y: The observations ``(K, M)`` of the states ``0, n, 2n, ...`` with ``n = every``.
        A: The observation operator of one state, ``(*batch, D) -> (*batch, M)``.
        std: The observation noise standard deviation, a float or ``(M,)``.
        length: The number of states ``L`` (default ``(K - 1) n + 1``).
        particles: The number of particles ``N``, drawn from ``chain.prior`` when ``x0`` is not given.
        x0: The initial particles ``(N, D)``, samples of :math:`p(x_0)`.
        resampling: ``"systematic"`` or ``"multinomial"``.
        ess: The resampling threshold, a fraction of ``N`` in ``(0, 1]``.
        jitter: The regularisation factor (0 for stochastic dynamics).

    Yields:
        One :class:`Step` per state ``i = 0, ..., L - 1``.
    """

    if resampling not in ("systematic", "multinomial"):
        raise ValueError(f"resampling={resampling!r}: expected 'systematic' or 'multinomial'")
    if not 0 < ess <= 1:
        raise ValueError(f"ess={ess!r}: expected a fraction in (0, 1]")
    if not jitter >= 0:
        raise ValueError(f"jitter={jitter!r}: expected a non-negative regularisation factor")
    if x0 is None:
        if not isinstance(particles, int) or particles < 1:
            raise ValueError(f"particles={particles!r}: expected a positive integer")
        x0 = chain.prior((particles,), generator=generator)
    std, L = _setup(chain, y, A, std, every, length, x0)
    if x0.ndim != 2:
        raise ValueError(f"x0 has shape {tuple(x0.shape)}: expected particles (N, {chain.D})")

    x, N = x0, x0.shape[0]
    y = y.to(x)
    log_w = torch.full((N,), -math.log(N), dtype=x.dtype, device=x.device)
    log_z = torch.zeros((), dtype=torch.float64, device=x.device)
    resample, parents = False, None

    for i in range(L):
        if i > 0:
            parents = None
            if resample:
                x, log_w, parents = _resample_particles(x, log_w, resampling, jitter, generator)
                resample = False
            x = chain.transition(x, generator=generator)  # forecast
        if _observed(i, every, len(y)):
            log_lik = _gaussian_log_lik(y[i // every], A(x), std)
            log_w, log_norm, resample = _reweight(log_w, log_lik, ess)
            log_z = log_z + log_norm.double()
        yield Step(x, log_w, parents, log_z)


def particle_filter(
    chain: MarkovChain,
    y: Tensor,
    A: StateMap,
    std: float | Tensor,
    every: int = 1,
    length: int | None = None,
    particles: int = 2**14,
    samples: int = 1024,
    x0: Tensor | None = None,
    resampling: str = "systematic",
    ess: float = 1.0,
    jitter: float = 0.0,
    evidence: bool = False,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Posterior trajectories :math:`x_{0:L-1} \sim p(x_{0:L-1} \mid y)` by a bootstrap particle filter.

    Each particle carries its whole history, and resampling copies histories (the paper's ground
    truth, after Doucet & Johansen's "filter-smoother"): the final weighted histories approximate the
    joint posterior, from which ``samples`` trajectories are drawn i.i.d. (multinomially). Early
    states share few ancestors (path degeneracy), so this reference is best where observations are
    informative and the trajectory short (the paper: 65 states, :math:`2^{14}` particles).

    Arguments are those of :func:`bootstrap_filter`, and:
        samples: The number of trajectories returned.
        evidence: Whether to return :math:`\log p(y)` too.
        progress: Whether to show a progress bar.

    Returns:
        Trajectories ``(samples, L, D)`` and, if ``evidence``, the log-evidence (a scalar tensor).
    """

    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r}: expected a positive integer")

    steps = bootstrap_filter(
        chain, y, A, std, every, length, particles, x0, resampling, ess, jitter, generator
    )
    history = []  # the particles' histories, state by state
    for step in tqdm(steps, desc="particle filter", disable=not progress):
        if step.parents is not None:  # resampling copies whole histories
            history = list(torch.stack(history, dim=1)[step.parents].unbind(dim=1))
        history.append(step.x)
    j = torch.multinomial(step.log_w.exp(), samples, replacement=True, generator=generator)
    x = torch.stack(history, dim=1)[j]
    return (x, step.log_evidence) if evidence else x


def kalman_smoother(
    chain: MarkovChain,
    y: Tensor,
    H: Tensor,
    std: float | Tensor,
    every: int = 1,
    length: int | None = None,
) -> tuple[Tensor, Tensor]:
    r"""The exact posterior marginals :math:`p(x_i \mid y) = \mathcal{N}(m_i, P_i)` of a linear-Gaussian chain.

    A wrapper of :meth:`~sda_lite.linear.LinearGaussian.kalman_smoother` (Kalman filter + Rauch-Tung-Striebel) with the
    arguments of the other baselines: ``A(x) = x H^T`` and :math:`R = \mathrm{diag}(\sigma_y^2)`.

    Arguments:
        chain: A linear-Gaussian chain (:class:`~sda_lite.linear.LinearGaussian`, or any chain with
            its ``kalman_smoother(y, H, R, every, length)``).
        y: The observations ``(K, M)``.
        H: The observation matrix ``(M, D)``.
        std: The observation noise standard deviation, a float or ``(M,)``.

    Returns:
        The means ``(L, D)`` and covariances ``(L, D, D)``, in float64.
    """

    if not callable(getattr(chain, "kalman_smoother", None)):
        raise ValueError(
            f"chain={type(chain).__name__}: expected a LinearGaussian chain (with a kalman_smoother method)"
        )
    H = torch.as_tensor(H, dtype=torch.float64)
    std = torch.as_tensor(std, dtype=torch.float64)
    if not (std > 0).all():
        raise ValueError(f"std={std.tolist()!r}: expected positive noise standard deviations")
    R = torch.diag(std.square().expand(H.shape[0]))
    return chain.kalman_smoother(y, H, R, every=every, length=length)


def _perturbed_innovations(y: Tensor, Ax: Tensor, e: Tensor) -> Tensor:
    r"""The perturbed innovations :math:`d_n = y + (e_n - \bar{e}) - A(E_n)`.

    ``y: (M,)``, the observed members ``Ax: (N, M)`` and draws ``e: (N, M)`` of
    :math:`\mathcal{N}(0, R)` -> ``(N, M)``.
    """

    return y + (e - e.mean(0)) - Ax


def _enkf_weights(Y: Tensor, d: Tensor, R: Tensor) -> Tensor:
    r"""The analysis on the anomalies, :math:`W = d \, C^{-1} Y^\top`, :math:`C = Y^\top Y + (N - 1) R`.

    ``Y, d: (N, M)``, ``R: (M, M)`` -> ``W: (N, N)``.
    """

    N = Y.shape[0]
    C = Y.mT @ Y + (N - 1) * R
    return torch.linalg.solve(C, d.mT).mT @ Y.mT


def gaspari_cohn(d: Tensor, c: float) -> Tensor:
    r"""The Gaspari-Cohn taper (1999, eq. 4.10) of distances ``d`` with half-width ``c > 0``.

    A fifth-order piecewise rational correlation function of compact support, close to
    :math:`e^{-z^2 / (2 \cdot 0.3)}` with :math:`z = d / c`:

    .. math:: \rho(z) = \begin{cases}
            -\tfrac{1}{4} z^5 + \tfrac{1}{2} z^4 + \tfrac{5}{8} z^3 - \tfrac{5}{3} z^2 + 1
                & 0 \leq z \leq 1, \\
            \tfrac{1}{12} z^5 - \tfrac{1}{2} z^4 + \tfrac{5}{8} z^3 + \tfrac{5}{3} z^2 - 5 z + 4
                - \tfrac{2}{3} z^{-1} & 1 < z \leq 2, \\
            0 & z > 2,
        \end{cases}

    so :math:`\rho(0) = 1`, :math:`\rho(1) = 5/24` and :math:`\rho = 0` beyond ``2 c``. (DAPPER's
    ``loc_rad = r`` is ``c = 1.82 r``.) ``d: (*shape)`` non-negative -> ``(*shape)``, float64.
    """

    if not isinstance(c, (int, float)) or not c > 0:
        raise ValueError(f"c={c!r}: expected a positive half-width")
    z = torch.as_tensor(d, dtype=torch.float64) / c
    if (z < 0).any():
        raise ValueError("d has negative values: expected distances >= 0")
    inner = 1 + z**2 * (-(z**3) / 4 + z**2 / 2 + 5 * z / 8 - 5 / 3)
    zs = z.clamp(min=1)  # the outer branch, away from its pole at 0
    outer = zs**5 / 12 - zs**4 / 2 + 5 * zs**3 / 8 + 5 * zs**2 / 3 - 5 * zs + 4 - 2 / (3 * zs)
    return torch.where(z <= 1, inner, torch.where(z <= 2, outer, torch.zeros_like(z)))


class Localisation(NamedTuple):
    r"""A covariance localisation: Schur (element-wise) tapers of the ensemble covariances.

    Attributes:
        xy: The taper ``(D, M)`` of the covariances between state variables and observations.
        yy: The taper ``(M, M)`` of the covariances between observations.

    For a linear operator :math:`A = H` and a taper :math:`\rho` of the state covariance,
    ``xy`` is :math:`\rho H^\top` and ``yy`` is :math:`H \rho H^\top`; for direct observations of
    sites, the tapers of their distances (e.g. :func:`gaspari_cohn`).
    """

    xy: Tensor
    yy: Tensor


def _check_localisation(loc: Localisation, D: int, M: int) -> Localisation:
    if not isinstance(loc, tuple) or len(loc) != 2:
        raise ValueError(f"localisation={loc!r}: expected a Localisation(xy, yy) of two tensors")
    xy, yy = (torch.as_tensor(v) for v in loc)
    if xy.shape != (D, M) or yy.shape != (M, M):
        raise ValueError(
            f"localisation tapers shaped xy {tuple(xy.shape)}, yy {tuple(yy.shape)}: expected "
            f"xy ({D}, {M}) and yy ({M}, {M})"
        )
    return Localisation(xy, yy)


def _enkf_analysis(
    E: Tensor,
    A: StateMap,
    y: Tensor,
    std: Tensor,
    R: Tensor,
    generator: torch.Generator | None,
    localisation: Localisation | None = None,
) -> Tensor:
    r"""The stochastic EnKF analysis :math:`E \leftarrow E + W (E - \bar{E})` (:func:`_enkf_weights`).

    ``E: (N, S, D)`` holds ``S`` states of the members, the last observed by ``y: (M,)``:
    :math:`Y = A(E_{:,-1}) - \overline{A(E_{:,-1})}`, :math:`R = \mathrm{diag}(\sigma_y^2)`
    ``(M, M)`` -> ``(N, S, D)``. With a ``localisation``, the gain of every state ``s`` is tapered
    instead, :math:`E_{n,s} \leftarrow E_{n,s} + (\rho_{xy} \circ X_s^\top Y)
    (\rho_{yy} \circ Y^\top Y + (N - 1) R)^{-1} d_n`, which is the same update for tapers of ones.
    """

    N, M = E.shape[0], y.shape[-1]
    Ax = A(E[:, -1])
    Y = Ax - Ax.mean(0)
    e = torch.randn(N, M, generator=generator, dtype=E.dtype, device=E.device) * std
    d = _perturbed_innovations(y, Ax, e)
    X = E - E.mean(0)
    if localisation is None:
        W = _enkf_weights(Y, d, R)
        return E + torch.einsum("nm,mld->nld", W, X)
    xy, yy = (v.to(E) for v in localisation)
    C = yy * (Y.mT @ Y) + (N - 1) * R
    G = torch.linalg.solve(C, d.mT)  # (M, N): C^{-1} d_n
    XY = torch.einsum("nsd,nm->sdm", X, Y) * xy  # tapered cross-covariances, times N - 1
    return E + torch.einsum("sdm,mn->nsd", XY, G)


def _inflate(x: Tensor, inflation: float) -> Tensor:
    r"""Multiplicative inflation :math:`x \leftarrow \bar{x} + \lambda (x - \bar{x})`, ``(N, D)``."""

    m = x.mean(0)
    return m + inflation * (x - m)


def enkf(
    chain: MarkovChain,
    y: Tensor,
    A: StateMap,
    std: float | Tensor,
    every: int = 1,
    length: int | None = None,
    members: int = 100,
    x0: Tensor | None = None,
    inflation: float = 1.0,
    smooth: bool = False,
    generator: torch.Generator | None = None,
    progress: bool = True,
    localisation: Localisation | None = None,
) -> Tensor:
    r"""The stochastic ensemble Kalman filter (perturbed observations), or smoother (``smooth=True``).

    Members move with the transition. At an observation, with anomalies :math:`X = E - \bar{E}` of
    the ensemble ``E: (N, D)``, :math:`Y = A(E) - \overline{A(E)}` and perturbed innovations
    :math:`d_n = y + e_n - A(E_n)`, :math:`e_n \sim \mathcal{N}(0, R)` (centred over members),

    .. math:: C = Y^\top Y + (N - 1) R, \quad W = d \, C^{-1} Y^\top, \quad E \leftarrow E + W X,

    i.e. :math:`E_n + K d_n` with the ensemble Kalman gain :math:`K = X^\top Y C^{-1}`. Then
    anomalies are inflated, :math:`E \leftarrow \bar{E} + \lambda (E - \bar{E})`. The smoother
    (EnKS) applies the same :math:`W` to the anomalies of every past state, so each member becomes
    a sample of :math:`p(x_{0:i} \mid y_{0:k})` (exact as :math:`N \to \infty` for linear-Gaussian chains).

    With few members, the sample covariances between distant variables are noise that the analysis
    mistakes for information. A ``localisation`` tapers them (Houtekamer & Mitchell, 2001): with
    :math:`\rho_{xy}` ``(D, M)`` and :math:`\rho_{yy}` ``(M, M)`` (:class:`Localisation`),

    .. math:: C = \rho_{yy} \circ (Y^\top Y) + (N - 1) R, \quad
        E_n \leftarrow E_n + \big(\rho_{xy} \circ (X^\top Y)\big) C^{-1} d_n,

    the same spatial taper for every past state of the smoother. Tapers of ones give the update
    above; the cost grows from :math:`O(N^2 D)` to :math:`O(N D M)` per updated state.

    Arguments:
        chain: The Markov chain (``transition(x, generator)`` and, without ``x0``, ``prior``).
        y, A, std, every, length: The observations, as in :func:`bootstrap_filter`.
        members: The ensemble size ``N >= 2``, drawn from ``chain.prior`` when ``x0`` is not given.
        x0: The initial ensemble ``(N, D)``.
        inflation: The multiplicative inflation :math:`\lambda \geq 1` after each analysis.
        smooth: Whether to smooth (EnKS) rather than filter (EnKF).
        progress: Whether to show a progress bar.
        localisation: The tapers :math:`(\rho_{xy}, \rho_{yy})`, or ``None`` for none.

    Returns:
        The members' trajectories ``(N, L, D)``: filtered states :math:`x_i \mid y_{jn \leq i}` for the
        EnKF, smoothed ones :math:`x_i \mid y` for the EnKS.
    """

    if x0 is None:
        if not isinstance(members, int) or members < 2:
            raise ValueError(f"members={members!r}: expected an integer >= 2")
        x0 = chain.prior((members,), generator=generator)
    std, L = _setup(chain, y, A, std, every, length, x0)
    if x0.ndim != 2 or x0.shape[0] < 2:
        raise ValueError(
            f"x0 has shape {tuple(x0.shape)}: expected an ensemble (N >= 2, {chain.D})"
        )
    if not inflation >= 1:
        raise ValueError(f"inflation={inflation!r}: expected a factor >= 1")

    M = y.shape[1]
    if localisation is not None:
        localisation = _check_localisation(localisation, chain.D, M)
    y = y.to(x0)
    R = torch.diag(std.square().expand(M))
    E = torch.empty(x0.shape[0], L, x0.shape[1], dtype=x0.dtype, device=x0.device)
    E[:, 0] = x0
    for i in tqdm(range(L), desc="EnKS" if smooth else "EnKF", disable=not progress):
        if i > 0:
            E[:, i] = chain.transition(E[:, i - 1], generator=generator)  # forecast
        if _observed(i, every, len(y)):
            past = slice(0, i + 1) if smooth else slice(i, i + 1)  # the states it updates
            E[:, past] = _enkf_analysis(
                E[:, past], A, y[i // every], std, R, generator, localisation
            )
            if inflation != 1:
                E[:, i] = _inflate(E[:, i], inflation)
    return E


def enks(
    chain: MarkovChain,
    y: Tensor,
    A: StateMap,
    std: float | Tensor,
    every: int = 1,
    length: int | None = None,
    members: int = 100,
    x0: Tensor | None = None,
    inflation: float = 1.0,
    generator: torch.Generator | None = None,
    progress: bool = True,
    localisation: Localisation | None = None,
) -> Tensor:
    r"""The ensemble Kalman smoother (EnKS): :func:`enkf` with ``smooth=True``.

    Returns:
        The members' smoothed trajectories ``(N, L, D)``, samples of :math:`p(x_{0:L-1} \mid y)`
        (exactly so as :math:`N \to \infty` for a linear-Gaussian chain).
    """

    return enkf(
        chain,
        y,
        A,
        std,
        every,
        length,
        members,
        x0,
        inflation,
        True,
        generator,
        progress,
        localisation=localisation,
    )


def _initial_log_density(
    chain: MarkovChain, prior: bool | Callable[[Tensor], Tensor], like: Tensor
) -> Callable[[Tensor], Tensor] | None:
    r"""The term :math:`\log p(x_0)` of :func:`fourdvar`, ``(*batch, D) -> (*batch)``, or ``None``.

    ``True``: the chain's :math:`\mathcal{N}(m_0, P_0)` (in the dtype and device of ``like``);
    ``False``: ``None`` (a flat prior); a callable: itself.
    """

    if prior is True:
        if not hasattr(chain, "m0") or not hasattr(chain, "P0"):
            raise ValueError(
                f"prior=True but {type(chain).__name__} has no Gaussian prior (m0, P0): "
                "pass False or a callable"
            )
        return torch.distributions.MultivariateNormal(chain.m0.to(like), chain.P0.to(like)).log_prob
    if prior is False:
        return None
    if callable(prior):
        return prior
    raise ValueError(f"prior={prior!r}: expected True, False or a callable log-density")


def _fourdvar_cost(
    chain: MarkovChain,
    x: Tensor,
    y: Tensor,
    A: StateMap,
    std: Tensor,
    every: int,
    log_p0: Callable[[Tensor], Tensor] | None,
) -> Tensor:
    r"""The weak-constraint cost :math:`J(x) = -\sum_i \log p(x_{i+1} \mid x_i)
    - \sum_k \log \mathcal{N}(y_k \mid A(x_{kn}), \sigma_y^2 I) - \log p(x_0)`.

    ``x: (*batch, L, D)``, ``y: (K, M)``, ``n = every`` -> a scalar, summed over the batch.
    """

    K = len(y)
    J = -chain.log_prob(x[..., :-1, :], x[..., 1:, :]).sum()
    J = J - _gaussian_log_lik(y, A(x[..., : (K - 1) * every + 1 : every, :]), std).sum()
    if log_p0 is not None:
        J = J - log_p0(x[..., 0, :]).sum()
    return J


def _lbfgs(cost: Callable[[Tensor], Tensor], x: Tensor, iterations: int, progress: bool) -> Tensor:
    r""":math:`\arg\min_x \mathrm{cost}(x)` from the guess ``x`` (any shape) by ``iterations`` L-BFGS.

    Each call runs up to 20 iterations with a strong Wolfe line search. Returns a detached tensor
    shaped like ``x``.
    """

    x = x.detach().clone().requires_grad_()
    optimizer = torch.optim.LBFGS([x], line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        J = cost(x)
        J.backward()
        return J

    for _ in tqdm(range(iterations), desc="4D-Var", disable=not progress):
        optimizer.step(closure)
    return x.detach()


def fourdvar(
    chain: MarkovChain,
    y: Tensor,
    A: StateMap,
    std: float | Tensor,
    x: Tensor,
    every: int = 1,
    prior: bool | Callable[[Tensor], Tensor] = True,
    iterations: int = 16,
    progress: bool = True,
) -> Tensor:
    r"""Weak-constraint 4D-Var: the maximum a posteriori trajectory, by L-BFGS from initial guesses.

    Minimises, for every trajectory of the batch independently,

    .. math:: J(x) = -\log p(x_0) - \sum_{i=0}^{L-2} \log p(x_{i+1} \mid x_i)
        - \sum_k \log \mathcal{N}(y_k \mid A(x_{kn}), \sigma_y^2 I),

    where the transition density (``chain.log_prob``) makes the model a weak constraint. The minimum
    is a posterior mode; for a multimodal posterior, starting from posterior samples finds several.

    Arguments:
        chain: The Markov chain with ``log_prob``.
        y, A, std, every: The observations, as in :func:`bootstrap_filter`.
        x: Initial trajectories ``(*batch, L, D)`` (e.g. a background, or posterior samples).
        prior: The term :math:`\log p(x_0)`: ``True`` for the chain's Gaussian prior
            :math:`\mathcal{N}(m_0, P_0)`, ``False`` for none (a flat prior), or a callable
            ``(*batch, D) -> (*batch)``.
        iterations: The number of L-BFGS calls (each up to 20 iterations, strong Wolfe line search).
        progress: Whether to show a progress bar.

    Returns:
        The optimised trajectories ``(*batch, L, D)``.
    """

    if not isinstance(x, Tensor) or x.ndim < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x has shape {shape}: expected initial trajectories (*batch, L, D)")
    std, L = _setup(chain, y, A, std, every, x.shape[-2], x)
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations={iterations!r}: expected a positive integer")
    log_p0 = _initial_log_density(chain, prior, x)

    y = y.to(x)

    def cost(z: Tensor) -> Tensor:
        return _fourdvar_cost(chain, z, y, A, std, every, log_p0)

    return _lbfgs(cost, x, iterations, progress)
