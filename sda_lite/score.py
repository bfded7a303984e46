r"""Noise predictors for trajectories: local composition over Markov blankets, a global U-Net, and
the exact predictor of Gaussian data.

For a Markov chain of order one, the score of a trajectory :math:`x_{1:L}` with respect to a state
:math:`x_i` only involves its neighbours,

.. math:: \nabla_{x_i} \log p(x_{1:L}) = \nabla_{x_i} \log p(x_i \mid x_{i-1}) + \nabla_{x_i} \log p(x_{i+1} \mid x_i)
          = \nabla_{x_i} \log p(x_{i-k:i+k}) \quad (k \ge 1),

so a network that sees windows of :math:`2k + 1` states suffices. The design is in two pieces:

* :class:`LocalScoreNet` is the *window* network, ``eps(w, t)`` for ``w: (*batch, 2k+1, D)``; it is
  what trains, as ``VPSDE(LocalScoreNet(D, k), shape=(2k+1, D))`` on random windows of the data;
* :class:`LocalScore` wraps any window predictor into the predictor of a trajectory of any length
  ``L >= 2k+1`` (:func:`unfold`, one batched call, :func:`fold`); it is what samples, as
  ``VPSDE(LocalScore(net, k), shape=(L, D))``. Both share the same parameters.

The networks predict the noise in the *v-parametrisation* (Salimans & Ho, 2022),

.. math:: \epsilon_\phi(x(t), t) = \sigma_t \, x(t) + \mu_t \, F_\phi(x(t), t),

which is exact for standardised Gaussian data when :math:`F_\phi = 0` and, above all, makes
:math:`\epsilon_\phi(x(t), t) \approx x(t)` exact by construction at :math:`t \to 1`, where
:math:`\mu_t \to \eta` and the sampler divides by :math:`\mu_t`: a network that has to learn that
identity itself leaves small errors there that the sampler blows up (rare samples diverge after a
short training). The network's schedule (``alpha``, ``eta``) must be that of its ``VPSDE``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from sda_lite.nets import ResMLP, TimeEmbedding, UNet
from sda_lite.schedule import NoiseSchedule


def _check_k(k: int) -> None:
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"the Markov blanket half-width k must be an integer >= 1, got {k!r}")


def _time(t: Tensor | float, like: Tensor) -> Tensor:
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.numel() > 0 and (t.min() < 0 or t.max() > 1):
        raise ValueError(
            f"diffusion time t must lie in [0, 1], got values in [{t.min():g}, {t.max():g}]"
        )
    return t


def _axis(x: Tensor, dim: int) -> int:
    if not -x.dim() <= dim < 0:
        raise ValueError(f"dim must be a negative axis of x with shape {tuple(x.shape)}, got {dim}")
    return x.dim() + dim


def unfold(x: Tensor, k: int, dim: int = -2) -> Tensor:
    r"""Cuts a trajectory into its :math:`L - 2k` overlapping windows of :math:`2k + 1` states.

    Window :math:`j` holds :math:`x_{j:j+2k}` (0-based), the Markov blanket of order :math:`k` of
    the state :math:`x_{j+k}` at its centre.

    Arguments:
        x: A trajectory ``(*batch, L, D)``, ``L >= 2k + 1``.
        k: The half-width of the windows, ``k >= 1``.
        dim: The (negative) time axis of ``x``; ``-2`` for ``(*batch, L, D)``, ``-4`` for fields
            ``(*batch, L, C, H, W)``.

    Returns:
        The windows ``(*batch, L - 2k, 2k + 1, D)``.
    """

    _check_k(k)
    p = _axis(x, dim)
    if x.shape[p] < 2 * k + 1:
        raise ValueError(
            f"trajectory of length L={x.shape[p]} is shorter than a window of 2k+1={2 * k + 1} states (k={k})"
        )
    return x.unfold(p, 2 * k + 1, 1).movedim(-1, p + 1)


def fold(windows: Tensor, k: int, dim: int = -2) -> Tensor:
    r"""Reassembles a trajectory from per-window values, the inverse of :func:`unfold`.

    The first :math:`k` states come from the first window, each middle state from the centre of
    the window around it, and the last :math:`k` states from the last window.

    Arguments:
        windows: ``(*batch, W, 2k + 1, D)`` with ``W >= 1``.
        k: The half-width of the windows, ``k >= 1``.
        dim: The (negative) time axis of the result, as in :func:`unfold`.

    Returns:
        The trajectory ``(*batch, W + 2k, D)``.
    """

    _check_k(k)
    if windows.dim() < 1 - dim:
        raise ValueError(
            f"expected windows of shape (*batch, W, 2k+1, ...) with time axis dim={dim}, got {tuple(windows.shape)}"
        )
    p = windows.dim() - 1 + dim  # window axis p, position within the window p + 1
    if windows.shape[p + 1] != 2 * k + 1 or windows.shape[p] < 1:
        raise ValueError(
            f"expected windows of 2k+1={2 * k + 1} states (k={k}) at axis {p + 1}, got shape {tuple(windows.shape)}"
        )
    first = windows.select(p, 0).narrow(p, 0, k)
    middle = windows.select(p + 1, k)
    last = windows.select(p, -1).narrow(p, k + 1, k)
    return torch.cat((first, middle, last), dim=p)


class _VParametrised(nn.Module):
    r"""Base of the networks: :math:`\epsilon = \sigma_t x + \mu_t F(x, t)` over ``events`` trailing axes."""

    def __init__(self, alpha: str, eta: float, events: int):
        super().__init__()

        self.schedule, self.events = NoiseSchedule(alpha, eta), events

    def _eps(self, x: Tensor, t: Tensor, F: Tensor) -> Tensor:
        mu, sigma = (
            self.schedule.expand(v.to(x), self.events)
            for v in (self.schedule.mu(t), self.schedule.sigma(t))
        )
        return sigma * x + mu * F


class LocalScore(nn.Module):
    r"""The noise predictor of a whole trajectory, composed from a window predictor.

    .. math:: \epsilon(x_{1:L}, t)_i = \epsilon_\phi(x_{j:j+2k}, t)_{i - j}, \quad
              j = \mathrm{clip}(i - k, 1, L - 2k)

    Every window is evaluated in one batched call; the state at the centre of each window takes
    the centre of the window's prediction, the first and last :math:`k` states take the edges of
    the first and last windows (:func:`fold`).

    A guidance differentiates :math:`\epsilon` only along cotangents on the observed states,
    which window :math:`j` alone produces for state :math:`i`: ``windows`` names the windows to
    evaluate with autograd; the others are evaluated without a graph (in the network's faster
    inference mode, each window once). The vector-Jacobian products of the result are then exact
    for cotangents on the states that these windows produce, and zero for the other states.

    Arguments:
        net: A window noise predictor ``net(w, t)``, ``w: (N, 2k+1, D)``, ``t: (N)``; for instance
            a :class:`LocalScoreNet` or the exact :class:`GaussianEps` of the window marginal.
        k: The half-width of the windows; by default ``net.k``.
        dim: The (negative) time axis of trajectories, as in :func:`unfold`.

    Shapes:
        ``x: (*batch, L, D)`` with ``L >= 2k + 1``, ``t`` a scalar or broadcastable to ``batch``,
        in :math:`[0, 1]`, ``windows`` indices in ``[0, L - 2k)`` -> ``(*batch, L, D)``.
    """

    def __init__(
        self, net: Callable[[Tensor, Tensor], Tensor], k: int | None = None, dim: int = -2
    ):
        super().__init__()

        k = getattr(net, "k", None) if k is None else k
        _check_k(k)
        self.net, self.k, self.dim = net, k, dim

    def forward(
        self, x: Tensor, t: Tensor | float, windows: Sequence[int] | Tensor | None = None
    ) -> Tensor:
        w = unfold(x, self.k, self.dim)  # (*batch, W, 2k+1, D)
        p = _axis(x, self.dim)
        batch = w.shape[: p + 1]
        t = _time(t, x)
        if t.dim() > 0:  # one time per trajectory: repeat it for each of its windows
            try:
                t = torch.broadcast_to(t[..., None], batch)
            except RuntimeError:
                raise ValueError(
                    f"t of shape {tuple(t.shape)} does not broadcast to the batch shape {tuple(batch[:-1])} of x"
                ) from None
        if windows is None:
            return fold(self._windows(w, t), self.k, self.dim)

        j = torch.as_tensor(windows, dtype=torch.long, device=x.device).reshape(-1)
        W = w.shape[p]
        if j.numel() == 0 or j.min() < 0 or j.max() >= W or j.unique().numel() != j.numel():
            raise ValueError(
                f"windows={j.tolist()}: expected distinct window indices in [0, {W}) (L={x.shape[p]}, k={self.k})"
            )
        keep = torch.ones(W, dtype=torch.bool, device=x.device)
        keep[j] = False
        rest = keep.nonzero()[:, 0]
        if rest.numel() == 0:
            return fold(self._windows(w, t), self.k, self.dim)
        pick = lambda v, i: v if v.dim() == 0 else v.index_select(-1, i)  # noqa: E731
        with torch.no_grad():
            e_rest = self._windows(w.index_select(p, rest), pick(t, rest))
        e_grad = self._windows(w.index_select(p, j), pick(t, j))
        order = torch.argsort(torch.cat((j, rest)))
        eps = torch.cat((e_grad, e_rest), dim=p).index_select(p, order)
        return fold(eps, self.k, self.dim)

    def _windows(self, w: Tensor, t: Tensor) -> Tensor:
        r"""The predictions of windows ``w: (*batch, W, 2k+1, *event)``, in one batched call."""

        p = w.dim() - 1 + self.dim  # the window axis
        event = w.shape[p + 1 :]
        eps = self.net(w.reshape(-1, *event), t.reshape(-1) if t.dim() > 0 else t)
        return eps.reshape(w.shape)


class LocalScoreNet(_VParametrised):
    r"""Window noise predictor: a residual MLP over :math:`2k + 1` flattened states (the paper's
    Lorenz network).

    Train it on windows, ``VPSDE(LocalScoreNet(D, k), shape=(2k + 1, D))``; sample trajectories of
    any length with ``VPSDE(LocalScore(net), shape=(L, D))``. It returns
    :math:`\sigma_t x + \mu_t F_\phi(x, t)` (the v-parametrisation of the module docstring), with
    :math:`F_\phi` the MLP of the flattened window and the time embedding.

    Arguments:
        features: The number :math:`D` of state variables.
        k: The half-width of the windows (order of the Markov blanket).
        width: The hidden width of the MLP.
        depth: The number of residual blocks.
        embedding: The number of time-embedding features.
        alpha, eta: The schedule of the ``VPSDE`` that trains and samples the network.

    Shapes:
        ``x: (*batch, 2k + 1, D)``, ``t`` broadcastable to ``batch`` -> ``(*batch, 2k + 1, D)``.
    """

    def __init__(
        self,
        features: int,
        k: int,
        width: int = 256,
        depth: int = 5,
        embedding: int = 32,
        alpha: str = "cos",
        eta: float = 1e-3,
    ):
        super().__init__(alpha, eta, events=2)

        _check_k(k)
        self.features, self.k = features, k
        self.embedding = TimeEmbedding(embedding)
        self.mlp = ResMLP((2 * k + 1) * features, (2 * k + 1) * features, width, depth, embedding)

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        shape = (2 * self.k + 1, self.features)
        if x.shape[-2:] != shape:
            raise ValueError(
                f"expected windows of shape (*batch, {shape[0]}, {shape[1]}) (k={self.k}), got {tuple(x.shape)}"
            )
        t = _time(t, x)
        F = self.mlp(x.flatten(-2), self.embedding(t)).unflatten(-1, shape)
        return self._eps(x, t, F)


class GlobalScoreNet(_VParametrised):
    r"""Noise predictor of a whole trajectory: a 1-D U-Net along the time axis, the states'
    variables as channels (the paper's global network, trained on 32-state windows).

    Being convolutional, it applies to trajectories of any length divisible by the total stride
    :math:`2^{\text{levels} - 1}` (any length for a single level). It returns
    :math:`\sigma_t x + \mu_t F_\phi(x, t)`, as :class:`LocalScoreNet`.

    Arguments:
        features: The number :math:`D` of state variables.
        channels: The number of channels per level.
        blocks: The number of residual blocks per level.
        embedding: The number of time-embedding features.
        kernel_size: The size of the convolution kernels.
        alpha, eta: The schedule of the ``VPSDE`` that trains and samples the network.

    Shapes:
        ``x: (*batch, L, D)``, ``t`` broadcastable to ``batch`` -> ``(*batch, L, D)``.
    """

    def __init__(
        self,
        features: int,
        channels: Sequence[int] = (64,),
        blocks: int | Sequence[int] = 3,
        embedding: int = 32,
        kernel_size: int = 3,
        alpha: str = "cos",
        eta: float = 1e-3,
    ):
        super().__init__(alpha, eta, events=2)

        self.features = features
        self.embedding = TimeEmbedding(embedding)
        self.unet = UNet(features, features, embedding, channels, blocks, kernel_size, spatial=1)

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        if x.dim() < 2 or x.shape[-1] != self.features:
            raise ValueError(
                f"expected x of shape (*batch, L, {self.features}), got {tuple(x.shape)}"
            )
        t = _time(t, x)
        F = self.unet(x.transpose(-1, -2), self.embedding(t)).transpose(-1, -2)
        return self._eps(x, t, F)


class FieldScoreNet(_VParametrised):
    r"""Window noise predictor for 2-D fields: a 2-D U-Net over :math:`2k + 1` states stacked as
    channels (the paper's Kolmogorov network), optionally around the exact predictor of a Gaussian
    with the data's spectrum.

    A window ``(2k + 1, C, H, W)`` becomes ``(2k + 1) C`` channels on the ``H x W`` grid, to which
    a constant *forcing* channel :math:`\sin(n y)` is appended (``y`` along the last axis, at the
    cell centres :math:`y_j = 2 \pi (j + \frac{1}{2}) / W`), so that the network knows where the
    forcing pushes; the convolutions pad circularly (a periodic domain). It returns

    .. math:: \epsilon_\phi(x(t), t) = \epsilon_G(x(t), t) + \mu_t F_\phi(x(t), t), \qquad
        \epsilon_G(x(t), t) = \sigma_t (\mu_t^2 C + \sigma_t^2 I)^{-1} (x(t) - \mu_t m),

    where :math:`\epsilon_G` is the exact noise predictor of a Gaussian :math:`\mathcal{N}(m, C)`
    (as :class:`GaussianEps`) whose covariance is *stationary*: diagonal in Fourier space, each
    mode :math:`\kappa` of each channel with its own ``(2k + 1) x (2k + 1)`` covariance across the
    window, :math:`C_\kappa = U_\kappa \Lambda_\kappa U_\kappa^\top`, so that
    :math:`\epsilon_G` costs two FFTs. Until :meth:`fit` sets them, :math:`m = 0` and :math:`C = I`,
    and the predictor is the v-parametrisation :math:`\sigma_t x + \mu_t F` of
    :class:`LocalScoreNet` (up to a factor :math:`1 + \eta^2`). With the data's :math:`m` and
    :math:`C`, a fresh network samples a Gaussian field with the data's energy spectrum and
    time correlations, and the U-Net learns only what is not Gaussian (vortices, their advection);
    above all, the small scales, where the data have almost no energy, are denoised exactly
    from the start, which a U-Net trained for minutes fails to learn.

    Sample trajectories ``(L, C, H, W)`` with ``LocalScore(net, dim=-4)``.

    Arguments:
        features: The number :math:`C` of channels of one state (2 for a velocity field).
        k: The half-width of the windows.
        channels: The number of U-Net channels per level.
        blocks: The number of residual blocks per level.
        embedding: The number of time-embedding features.
        kernel_size: The size of the convolution kernels.
        forcing: The wavenumber :math:`n` of the forcing channel :math:`\sin(n y)`, or None for none.
        grid: The grid size ``H = W`` (needed for the Gaussian part; None: no Gaussian part).
        alpha, eta: The schedule of the ``VPSDE`` that trains and samples the network.

    Shapes:
        ``x: (*batch, 2k + 1, C, H, W)`` with ``H, W`` divisible by the U-Net's total stride,
        ``t`` broadcastable to ``batch`` -> ``(*batch, 2k + 1, C, H, W)``.
    """

    def __init__(
        self,
        features: int,
        k: int,
        channels: Sequence[int] = (32, 64, 128),
        blocks: int | Sequence[int] = 2,
        embedding: int = 64,
        kernel_size: int = 3,
        forcing: int | None = 4,
        grid: int | None = None,
        alpha: str = "cos",
        eta: float = 1e-3,
    ):
        super().__init__(alpha, eta, events=4)

        _check_k(k)
        self.features, self.k, self.forcing = features, k, forcing
        c, w = (2 * k + 1) * features, 2 * k + 1
        self.embedding = TimeEmbedding(embedding)
        self.unet = UNet(
            c + (forcing is not None),
            c,
            embedding,
            channels,
            blocks,
            kernel_size,
            spatial=2,
            circular=True,
        )
        if grid is not None:
            self.register_buffer("mean", torch.zeros(features, grid, grid))
            self.register_buffer("lam", torch.ones(features, grid, grid, w))
            self.register_buffer("U", torch.eye(w).expand(features, grid, grid, w, w).clone())
        else:
            self.mean = None

    @torch.no_grad()
    def fit(self, mean: Tensor, cov: Tensor) -> None:
        r"""Sets the Gaussian part: ``mean: (C, H, W)``, ``cov: (C, H, W, 2k+1, 2k+1)`` symmetric
        positive semi-definite, the covariance across the window of each Fourier mode."""

        if self.mean is None or mean.shape != self.mean.shape or cov.shape != self.U.shape:
            expected = (
                "a grid"
                if self.mean is None
                else f"mean {tuple(self.mean.shape)} and cov {tuple(self.U.shape)}"
            )
            raise ValueError(
                f"fit: got mean {tuple(mean.shape)} and cov {tuple(cov.shape)}, expected {expected}"
            )
        lam, U = torch.linalg.eigh(cov.double())
        self.mean.copy_(mean)
        self.lam.copy_(lam.clamp(min=0))
        self.U.copy_(U)

    def gaussian(self, x: Tensor, t: Tensor) -> Tensor:
        r"""The exact predictor :math:`\epsilon_G(x(t), t)` of the Gaussian part, ``x: (*batch, 2k+1, C, H, W)``."""

        mu, sigma = (
            self.schedule.expand(v.to(x), 4) for v in (self.schedule.mu(t), self.schedule.sigma(t))
        )
        if self.mean is None:
            return sigma * x / (mu**2 + sigma**2)
        d = torch.fft.fft2(x - mu * self.mean, norm="ortho").movedim(
            -4, -1
        )  # (*batch, C, H, W, 2k+1)
        z = (d[..., None, :] @ self.U.to(d.dtype))[..., 0, :]  # U^T d, per mode
        z = z * (sigma / (mu**2 * self.lam + sigma**2))
        d = (self.U.to(d.dtype) @ z[..., None])[..., 0]
        return torch.fft.ifft2(d.movedim(-1, -4), norm="ortho").real.to(x.dtype)

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        window = 2 * self.k + 1
        if x.dim() < 4 or x.shape[-4:-2] != (window, self.features):
            raise ValueError(
                f"expected windows of shape (*batch, {window}, {self.features}, H, W) (k={self.k}), "
                f"got {tuple(x.shape)}"
            )
        if self.mean is not None and x.shape[-2:] != self.mean.shape[-2:]:
            raise ValueError(
                f"expected fields on the {tuple(self.mean.shape[-2:])} grid of the network, got {tuple(x.shape)}"
            )
        t = _time(t, x)
        h = x.flatten(-4, -3)  # (*batch, (2k+1) C, H, W)
        if self.forcing is not None:
            W = x.shape[-1]
            y = 2 * torch.pi * (torch.arange(W, dtype=x.dtype, device=x.device) + 0.5) / W
            f = torch.sin(self.forcing * y).expand(*h.shape[:-3], 1, x.shape[-2], W)
            h = torch.cat((h, f), dim=-3)
        F = self.unet(h, self.embedding(t)).unflatten(-3, (window, self.features))
        mu = self.schedule.expand(self.schedule.mu(t).to(x), 4)
        return self.gaussian(x, t) + mu * F


class GaussianEps(nn.Module):
    r"""The exact noise predictor of Gaussian data :math:`x \sim \mathcal{N}(m, C)` under the VP
    perturbation :math:`x(t) = \mu_t x + \sigma_t z`, for which :math:`x(t) \sim \mathcal{N}(\mu_t m, \Sigma_t)`:

    .. math:: \epsilon(x(t), t) = -\sigma_t \nabla \log p(x(t)) = \sigma_t \Sigma_t^{-1} (x(t) - \mu_t m),
              \quad \Sigma_t = \mu_t^2 C + \sigma_t^2 I.

    Computed in float64 from one eigendecomposition :math:`C = U \Lambda U^\top`, which serves
    every :math:`t` at once (a batch of times costs no extra factorisation):
    :math:`\Sigma_t^{-1} = U (\mu_t^2 \Lambda + \sigma_t^2)^{-1} U^\top`.

    Arguments:
        mean: The mean :math:`m`, ``(N,)`` flattened or already of the event shape.
        cov: The covariance :math:`C`, ``(N, N)``, symmetric positive semi-definite, over the event
            flattened in C order (state-major for trajectories: index ``i * D + d``).
        shape: The event shape, e.g. ``(L, D)``; by default ``mean.shape``.
        alpha, eta: The schedule of the :class:`~sda_lite.diffusion.VPSDE` that will use this
            predictor (the same values must be given to both).

    Shapes:
        ``x: (*batch, *shape)``, ``t`` broadcastable to ``batch`` in :math:`[0, 1]` -> ``(*batch, *shape)``.
    """

    def __init__(
        self,
        mean: Tensor,
        cov: Tensor,
        shape: Sequence[int] | None = None,
        alpha: str = "cos",
        eta: float = 1e-3,
    ):
        super().__init__()

        mean = torch.as_tensor(mean, dtype=torch.float64)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        shape = torch.Size(mean.shape if shape is None else shape)
        n = shape.numel()
        if mean.numel() != n or cov.shape != (n, n):
            raise ValueError(
                f"expected mean of {n} elements and cov of shape ({n}, {n}) for the event shape "
                f"{tuple(shape)}, got {tuple(mean.shape)} and {tuple(cov.shape)}"
            )
        if not torch.allclose(cov, cov.mT, atol=1e-8 * cov.abs().max()):
            raise ValueError("cov must be symmetric")
        lam, U = torch.linalg.eigh(cov)
        if lam.min() < -1e-8 * lam.abs().max():
            raise ValueError(f"cov must be positive semi-definite, got an eigenvalue {lam.min():g}")

        self.shape = shape
        self.schedule = NoiseSchedule(alpha, eta)
        self.register_buffer("mean", mean.flatten())
        self.register_buffer("lam", lam.clamp(min=0))
        self.register_buffer("U", U)

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        e = len(self.shape)
        if x.shape[x.dim() - e :] != self.shape or x.dim() < e:
            raise ValueError(
                f"expected x of shape (*batch, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}"
            )
        batch = x.shape[: x.dim() - e]
        t = _time(t, x)
        mu = self.schedule.mu(t).to(torch.float64)[..., None]
        sigma = self.schedule.sigma(t).to(torch.float64)[..., None]
        z = (x.reshape(*batch, -1).to(torch.float64) - mu * self.mean) @ self.U
        eps = sigma * (z / (mu**2 * self.lam + sigma**2)) @ self.U.mT
        return eps.to(x.dtype).reshape(*eps.shape[:-1], *self.shape)
