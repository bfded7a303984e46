r"""Metrics that compare posterior samples with a reference or with the truth.

* :func:`w1` -- the Wasserstein-1 (earth mover's) distance between two sample sets, as in the paper:
  POT's exact ``emd2`` with uniform weights and the Euclidean cost between flattened trajectories;
* :func:`mmd` -- the maximum mean discrepancy with a Gaussian kernel;
* :func:`log_px` -- :math:`\log p(x_{2:L} \mid x_1)` under the true transition;
* :func:`log_py` -- :math:`\log p(y \mid x)` for Gaussian observations;
* :func:`rmse` and :func:`spread` -- the data-assimilation scores of an ensemble.

Sample sets are shaped ``(N, *shape)`` (e.g. trajectories ``(N, L, D)``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from sda_lite.chain import MarkovChain


def _emd2(a: np.ndarray, b: np.ndarray, M: np.ndarray) -> float:
    r"""POT's exact ``emd2``, imported lazily and without its JAX, TensorFlow and CuPy backends
    (JAX is only ever loaded by the Kolmogorov flow)."""

    for key in (
        "POT_BACKEND_DISABLE_JAX",
        "POT_BACKEND_DISABLE_TENSORFLOW",
        "POT_BACKEND_DISABLE_CUPY",
    ):
        os.environ.setdefault(key, "1")
    import ot

    return float(ot.emd2(a, b, M, numItermax=10**7))


def _finite(x: Tensor, name: str, expected: str = "finite values") -> None:
    r"""Raises a ValueError when ``x`` has NaN or infinite values: a metric of a broken posterior
    (e.g. a sampler that diverged) must not read as a score."""

    if x.is_floating_point() or x.is_complex():
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(
                f"{name} has {bad} non-finite value(s) (NaN or inf) out of {x.numel()}: expected "
                f"{expected} (a diverged sampler or a corrupt file?)"
            )


def _samples(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[0] < 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} has shape {shape}: expected a non-empty sample set (N, *shape)")
    _finite(x, name, "finite samples")
    return x.detach().flatten(1).double()


def _pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    x, y = _samples(x, "x"), _samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} features per sample and y has {y.shape[1]}: expected the same"
        )
    return x, y


def w1(x: Tensor, y: Tensor) -> float:
    r"""The Wasserstein-1 distance between the empirical distributions of two sample sets.

    .. math:: W_1 = \min_{\pi \in \Pi(\frac{1}{N} 1, \frac{1}{M} 1)} \sum_{n, m} \pi_{nm} \|x_n - y_m\|_2

    solved exactly by ``ot.emd2`` (a transport linear program), on flattened samples, in the units of
    ``x`` and ``y`` (the paper: raw Lorenz units, trajectories of 65 x 3).

    Arguments:
        x: Samples ``(N, *shape)``.
        y: Samples ``(M, *shape)``.
    """

    x, y = _pair(x, y)
    M = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist").cpu().numpy()
    a = np.full(len(x), 1 / len(x))
    b = np.full(len(y), 1 / len(y))
    return _emd2(a, b, M)


def mmd(x: Tensor, y: Tensor, bandwidth: float | None = None) -> float:
    r"""The maximum mean discrepancy with the Gaussian kernel :math:`k(a, b) = \exp(-\|a - b\|^2 / 2 h^2)`.

    .. math:: \mathrm{MMD}^2 = \overline{k(x, x')} + \overline{k(y, y')} - 2 \, \overline{k(x, y)}

    with the averages over all pairs (the biased V-statistic, which is never negative), and returns
    :math:`\mathrm{MMD}`. Without ``bandwidth``, :math:`h` is the median distance between the pooled
    samples (the median heuristic).

    Arguments:
        x: Samples ``(N, *shape)``.
        y: Samples ``(M, *shape)``.
        bandwidth: The kernel width :math:`h > 0`.
    """

    x, y = _pair(x, y)
    z = torch.cat((x, y))
    d2 = torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist").square()
    if bandwidth is None:
        h2 = d2[d2 > 0].median() if (d2 > 0).any() else torch.tensor(1.0, dtype=d2.dtype)
    elif isinstance(bandwidth, (int, float)) and math.isfinite(bandwidth) and bandwidth > 0:
        h2 = torch.tensor(bandwidth**2, dtype=d2.dtype)
    else:
        raise ValueError(f"bandwidth={bandwidth!r}: expected a positive kernel width or None")
    K = torch.exp(-d2 / (2 * h2))
    n = len(x)
    mmd2 = K[:n, :n].mean() + K[n:, n:].mean() - 2 * K[:n, n:].mean()
    return float(mmd2.clamp(min=0).sqrt())


def log_px(chain: MarkovChain, x: Tensor, reduce: bool = True) -> Tensor:
    r"""The log-density of trajectories under the true transition, given their first state.

    .. math:: \log p(x_{2:L} \mid x_1) = \sum_{i=1}^{L-1} \log p(x_{i+1} \mid x_i)

    Arguments:
        chain: The Markov chain, whose ``log_prob(x_prev, x_next)`` is the transition density.
        x: Trajectories ``(*batch, L, D)`` in the chain's (raw) units, ``L >= 2``.
        reduce: Whether to average over the batch.

    Returns:
        The mean over the batch (a scalar tensor), or every value ``(*batch)`` if not ``reduce``.
    """

    if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[-1] != chain.D or x.shape[-2] < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x has shape {shape}: expected trajectories (*batch, L >= 2, {chain.D})")
    _finite(x, "x", "finite trajectories")
    lp = chain.log_prob_trajectory(x)
    return lp.mean() if reduce else lp


def log_py(
    x: Tensor,
    y: Tensor,
    A: Callable[[Tensor], Tensor],
    std: float | Tensor,
    reduce: bool = True,
) -> Tensor:
    r"""The Gaussian log-likelihood of observations :math:`y = A(x) + \sigma_y \epsilon`.

    .. math:: \log p(y \mid x) = \sum_j \log \mathcal{N}(y_j \mid A(x)_j, \sigma_{y,j}^2)

    Arguments:
        x: Trajectories (or any states) ``(*batch, *shape)``.
        y: Observations ``(*obs)``, with ``A(x)`` shaped ``(*batch, *obs)``.
        A: The observation operator.
        std: The noise standard deviation :math:`\sigma_y > 0`, a float or a tensor broadcastable to ``obs``.
        reduce: Whether to average over the batch.

    Returns:
        The mean over the batch (a scalar tensor), or every value ``(*batch)`` if not ``reduce``.
    """

    if not isinstance(x, Tensor):
        raise ValueError(f"x is {type(x).__name__}: expected a tensor of trajectories")
    _finite(x, "x", "finite trajectories")
    if isinstance(y, Tensor):
        _finite(y, "y", "finite observations")
    Ax = A(x)
    if not isinstance(y, Tensor) or y.ndim < 1 or Ax.shape[Ax.ndim - y.ndim :] != y.shape:
        shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(
            f"y has shape {shape}: expected the trailing shape of A(x), {tuple(Ax.shape)}"
        )
    std = torch.as_tensor(std, dtype=Ax.dtype, device=Ax.device)
    if not bool(((std > 0) & torch.isfinite(std)).all()):
        raise ValueError(
            f"std={std.tolist()!r}: expected finite positive noise standard deviations"
        )
    lp = torch.distributions.Normal(Ax, std).log_prob(y.to(Ax))
    lp = lp.flatten(Ax.ndim - y.ndim).sum(dim=-1)
    return lp.mean() if reduce else lp


def rmse(x: Tensor, truth: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    r"""The root mean squared error :math:`\sqrt{\overline{(x - x^\star)^2}}`.

    The average runs over ``dim`` (all dimensions by default). For the data-assimilation score of an
    ensemble ``E: (N, L, D)`` pass its mean, ``rmse(E.mean(0), truth, dim=-1)``: the error of every
    state, whose time average is DAPPER's ``rmse``.

    Arguments:
        x: Estimates, broadcastable with ``truth``.
        truth: The true values.
        dim: The dimensions to average over.
    """

    for value, name in ((x, "x"), (truth, "truth")):
        if not isinstance(value, Tensor):
            raise ValueError(f"{name} is {type(value).__name__}: expected a tensor")
        _finite(value, name)
    try:
        e2 = (x - truth).square()
    except RuntimeError as e:
        raise ValueError(
            f"x {tuple(x.shape)} and truth {tuple(truth.shape)}: expected broadcastable shapes"
        ) from e
    return (e2.mean() if dim is None else e2.mean(dim=dim)).sqrt()


def spread(x: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    r"""The ensemble spread :math:`\sqrt{\overline{\mathrm{Var}_n[x_n]}}` of an ensemble ``x: (N, *shape)``.

    The unbiased variance over members (dimension 0) is averaged over ``dim`` of the remaining
    dimensions (all by default, indexed as in ``x[0]``), then square-rooted. For a calibrated
    ensemble the spread matches the RMSE of its mean.
    """

    if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[0] < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x has shape {shape}: expected an ensemble (N >= 2, *shape)")
    _finite(x, "x", "a finite ensemble")
    v = x.var(dim=0)
    return (v.mean() if dim is None else v.mean(dim=dim)).sqrt()
