r"""Calibration of an ensemble against the truth: do the samples spread as much as they err?

A posterior is *calibrated* when the truth behaves like one more draw from it. Four scores test
this from samples alone, each for one event (a state, a trajectory, a field) and its truth:

* :func:`coverage` -- the fraction of the truth inside the central credible intervals
  (:func:`intervals`) of the samples, per level; calibrated: the level itself;
* :func:`ranks` and :func:`rank_histogram` -- the rank of the truth among the samples (ties
  broken at random); calibrated: every rank equally likely, a flat histogram;
* :func:`crps` -- the continuous ranked probability score in its energy form, with the unbiased
  (*fair*) variant, and :func:`crps_gaussian`, its closed form for a Gaussian; lower is better, and
  the exact posterior has the lowest expected score;
* :func:`spread_skill` -- the ensemble spread over the RMSE of the ensemble mean, with the
  finite-ensemble factor; calibrated: 1, under-dispersed below 1, over-dispersed above.

Shapes: the samples ``x: (n, *event)``, the truth ``truth: (*event)``. Every coordinate of the
event is one test of the truth against the samples; the scores average over the coordinates
(``dim``, all by default). Several truths (independent observation sets) stack into the event:
``x: (n, B, L, D)``, ``truth: (B, L, D)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def _check(x: Tensor, truth: Tensor, least: int = 1) -> tuple[Tensor, Tensor]:
    r"""The samples ``(n, *event)`` and the truth ``(*event)`` in float64, checked: shapes that
    match, at least ``least`` samples, finite values."""

    for value, name in ((x, "x"), (truth, "truth")):
        if not isinstance(value, Tensor):
            raise ValueError(f"{name} is {type(value).__name__}: expected a tensor")
    if x.ndim < 1 or x.shape[1:] != truth.shape or x.shape[0] < least:
        raise ValueError(
            f"x has shape {tuple(x.shape)} and truth {tuple(truth.shape)}: expected samples "
            f"(n >= {least}, *event) and the truth (*event) of the same event"
        )
    for value, name in ((x, "x"), (truth, "truth")):
        bad = int((~torch.isfinite(value)).sum()) if value.is_floating_point() else 0
        if bad:
            raise ValueError(
                f"{name} has {bad} non-finite value(s) out of {value.numel()}: expected finite "
                "values (a diverged sampler?)"
            )
    return x.detach().double(), truth.detach().to(x.device).double()


def _mean(v: Tensor, dim: int | tuple[int, ...] | None) -> Tensor:
    r"""The mean of ``v: (*event)`` over ``dim`` (all dimensions when None)."""

    return v.mean() if dim is None else v.mean(dim=dim)


def intervals(x: Tensor, level: float) -> tuple[Tensor, Tensor]:
    r"""The central credible interval of level :math:`p` of the samples, per coordinate.

    .. math:: [\, q_{(1 - p) / 2}, \; q_{(1 + p) / 2} \,], \qquad
        q_a = x_{(h)}, \quad h = a (n + 1) \text{ clipped to } [1, n],

    with :math:`x_{(1)} \leq \dots \leq x_{(n)}` the sorted samples and a fractional position
    :math:`h` interpolated linearly between its neighbours (``numpy.quantile``'s ``"weibull"``
    method). The position :math:`a (n + 1)` is what makes the interval honest for a finite
    ensemble: a truth exchangeable with the samples falls below :math:`x_{(k)}` with probability
    :math:`k / (n + 1)`, so :math:`[x_{(k)}, x_{(n + 1 - k)}]` holds it with probability
    :math:`p = 1 - 2k / (n + 1)`, exactly when :math:`h` is an integer (e.g. the range of 19 samples
    is their 90% interval). The usual :math:`h = 1 + a (n - 1)` (``torch.quantile``) gives
    narrower intervals, which cover less than :math:`p` (81% for a 90% interval of 19 samples).

    Arguments:
        x: Samples ``(n, *event)``.
        level: The level :math:`p \in (0, 1)`.

    Returns:
        The lower and upper bounds, each ``(*event)``.
    """

    if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[0] < 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x has shape {shape}: expected samples (n >= 1, *event)")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level={level!r}: expected a probability in (0, 1)")
    return _intervals(x.detach().double().sort(0).values, level)


def _intervals(x: Tensor, level: float) -> tuple[Tensor, Tensor]:
    r""":func:`intervals` of samples already sorted along the first dimension."""

    n, bounds = x.shape[0], []
    for a in ((1 - level) / 2, (1 + level) / 2):
        h = min(max(a * (n + 1), 1.0), float(n)) - 1  # 0-based position
        j = min(int(h), n - 1)
        f = h - j
        bounds.append(x[j] if f == 0 else (1 - f) * x[j] + f * x[j + 1])
    return bounds[0], bounds[1]


def coverage(
    x: Tensor,
    truth: Tensor,
    levels: Sequence[float] = (0.5, 0.9),
    dim: int | tuple[int, ...] | None = None,
) -> Tensor:
    r"""The coverage of the central credible intervals: how often they hold the truth.

    .. math:: \mathrm{cov}(p) = \overline{\mathbb{1}\{q_{(1-p)/2} \leq x^\star \leq q_{(1+p)/2}\}}

    averaged over the coordinates (``dim``), with the intervals of :func:`intervals`. For a
    calibrated posterior the expected coverage is :math:`p` for every level; below :math:`p` the
    samples are over-confident (too narrow or biased), above it under-confident (too wide).

    Arguments:
        x: Samples ``(n, *event)``.
        truth: The truth ``(*event)``.
        levels: The levels :math:`p \in (0, 1)`.
        dim: The event dimensions to average over (indexed as in ``truth``; all when None).

    Returns:
        The coverage of each level, ``(len(levels), *kept)``, in [0, 1].
    """

    x, truth = _check(x, truth)
    if isinstance(levels, (int, float)) or len(levels) < 1:
        raise ValueError(f"levels={levels!r}: expected a non-empty sequence of probabilities")
    inside, sorted_x = [], x.sort(0).values
    for p in levels:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < 1:
            raise ValueError(f"level={p!r}: expected a probability in (0, 1)")
        low, high = _intervals(sorted_x, p)
        inside.append(_mean(((low <= truth) & (truth <= high)).double(), dim))
    return torch.stack(inside)


def ranks(x: Tensor, truth: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""The rank of the truth among the samples, per coordinate, ties broken at random.

    .. math:: r = \#\{i : x_i < x^\star\} + U, \quad U \sim \mathcal{U}\{0, \dots,
        \#\{i : x_i = x^\star\}\}

    so that :math:`r \in \{0, \dots, n\}`. When the truth and the ``n`` samples are exchangeable
    (the truth is one more draw of the same distribution) every rank has probability
    :math:`1 / (n + 1)`, ties included (the uniform :math:`U` is what keeps it so when the samples
    are discrete or repeated).

    Arguments:
        x: Samples ``(n, *event)``.
        truth: The truth ``(*event)``.
        generator: The random generator of the ties.

    Returns:
        The ranks, ``(*event)``, integers in ``[0, n]``.
    """

    x, truth = _check(x, truth)
    below = (x < truth).sum(0)
    ties = (x == truth).sum(0)
    u = torch.rand(truth.shape, generator=generator, dtype=torch.float64, device="cpu")
    return below + (u.to(ties.device) * (ties + 1)).floor().long()


def rank_histogram(
    x: Tensor,
    truth: Tensor,
    bins: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""The rank histogram (Talagrand diagram): the counts of the ranks of :func:`ranks` over the
    coordinates.

    With ``n`` samples the ranks take ``n + 1`` values; ``bins`` pools them into ``bins`` groups of
    ``(n + 1) / bins`` consecutive ranks (``bins`` must divide ``n + 1``). A calibrated posterior
    gives a flat histogram (expected count ``numel(truth) / bins`` per bin); a U shape means
    over-confident samples (the truth too often outside them), a dome under-confident ones, a slope
    a biased mean. Coordinates of one trajectory are correlated, so the counts fluctuate more than
    a multinomial's.

    Arguments:
        x: Samples ``(n, *event)``.
        truth: The truth ``(*event)``.
        bins: The number of bins (default ``n + 1``, one per rank).
        generator: The random generator of the ties.

    Returns:
        The counts, ``(bins,)``, integers summing to ``truth.numel()``.
    """

    n = x.shape[0] if isinstance(x, Tensor) and x.ndim >= 1 else 0
    bins = n + 1 if bins is None else bins
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1 or (n + 1) % bins:
        raise ValueError(
            f"bins={bins!r} with n = {n} samples: expected a divisor of n + 1 = {n + 1} "
            "(the number of possible ranks)"
        )
    r = ranks(x, truth, generator)
    return torch.bincount(r.flatten().cpu() // ((n + 1) // bins), minlength=bins)


def crps(
    x: Tensor,
    truth: Tensor,
    fair: bool = False,
    dim: int | tuple[int, ...] | None = None,
) -> Tensor:
    r"""The continuous ranked probability score of the ensemble, in its energy form.

    .. math:: \mathrm{CRPS}(F, x^\star) = \mathbb{E}|X - x^\star| - \tfrac{1}{2} \mathbb{E}|X - X'|,
        \quad X, X' \sim F \text{ independent},

    which equals :math:`\int (F(z) - \mathbb{1}\{z \geq x^\star\})^2 dz`. With the ``n`` samples
    as :math:`F`, the ensemble estimate is

    .. math:: \frac{1}{n} \sum_i |x_i - x^\star| - \frac{1}{2 n^2} \sum_{i, j} |x_i - x_j|,

    the exact CRPS of the empirical distribution; the *fair* (unbiased) variant divides the second
    sum by :math:`2 n (n - 1)` instead, an unbiased estimate of the CRPS of the distribution the
    samples are drawn from (Ferro, 2014), whatever ``n``. The pair sum is computed from the sorted
    samples, :math:`\sum_{i, j} |x_i - x_j| = 2 \sum_k (2k - n - 1) \, x_{(k)}`. In the units of
    ``x``; lower is better, and the posterior the truth is drawn from has the lowest expected score
    (the CRPS is a proper score), so a wider or a narrower ensemble than the posterior scores worse.

    Arguments:
        x: Samples ``(n, *event)``, ``n >= 2`` when ``fair``.
        truth: The truth ``(*event)``.
        fair: Whether to use the unbiased (fair) estimate.
        dim: The event dimensions to average over (indexed as in ``truth``; all when None).

    Returns:
        The mean CRPS over ``dim``.
    """

    x, truth = _check(x, truth, least=2 if fair else 1)
    n = x.shape[0]
    skill = (x - truth).abs().mean(0)
    k = torch.arange(1, n + 1, dtype=torch.float64, device=x.device)
    pairs = 2 * torch.tensordot(2 * k - n - 1, x.sort(0).values, dims=1)  # sum_ij |x_i - x_j|
    score = skill - pairs / (2 * n * (n - 1) if fair else 2 * n**2)
    return _mean(score, dim)


def crps_gaussian(
    mean: Tensor, std: Tensor, truth: Tensor, dim: int | tuple[int, ...] | None = None
) -> Tensor:
    r"""The CRPS of a Gaussian :math:`\mathcal{N}(m, s^2)` at the truth, in closed form.

    .. math:: \mathrm{CRPS} = s \left[ z \, (2 \Phi(z) - 1) + 2 \varphi(z) - \frac{1}{\sqrt{\pi}}
        \right], \quad z = \frac{x^\star - m}{s}

    with :math:`\Phi` and :math:`\varphi` the standard normal distribution and density (Gneiting
    et al., 2005). What :func:`crps` tends to with many samples of the Gaussian.

    Arguments:
        mean: The means :math:`m`, ``(*event)`` (or broadcastable with ``truth``).
        std: The standard deviations :math:`s > 0`, broadcastable with ``truth``.
        truth: The truth ``(*event)``.
        dim: The event dimensions to average over (all when None).

    Returns:
        The mean CRPS over ``dim``.
    """

    mean, std, truth = (torch.as_tensor(a, dtype=torch.float64) for a in (mean, std, truth))
    if not bool(((std > 0) & torch.isfinite(std)).all()):
        raise ValueError(
            f"std has values from {std.min().item():.3g} to {std.max().item():.3g}: expected "
            "finite positive standard deviations"
        )
    try:
        z = (truth - mean) / std
    except RuntimeError as error:
        raise ValueError(
            f"mean {tuple(mean.shape)}, std {tuple(std.shape)} and truth {tuple(truth.shape)}: "
            "expected broadcastable shapes"
        ) from error
    phi, Phi = torch.exp(-z.square() / 2) / math.sqrt(2 * math.pi), torch.special.ndtr(z)
    return _mean(std * (z * (2 * Phi - 1) + 2 * phi - 1 / math.sqrt(math.pi)), dim)


def spread_skill(
    x: Tensor, truth: Tensor, dim: int | tuple[int, ...] | None = None, corrected: bool = True
) -> Tensor:
    r"""The spread-skill ratio: the ensemble spread over the RMSE of the ensemble mean.

    .. math:: \frac{\mathrm{spread}}{\mathrm{skill}} = \sqrt{\frac{n + 1}{n}} \,
        \frac{\sqrt{\overline{s^2}}}{\sqrt{\overline{(\bar{x} - x^\star)^2}}}, \quad
        s^2 = \frac{1}{n - 1} \sum_i (x_i - \bar{x})^2, \quad \bar{x} = \frac{1}{n} \sum_i x_i

    with the bars averages over the coordinates (``dim``). When the truth is one more draw of the
    distribution of the ``n`` samples, :math:`\mathbb{E}[s^2] = \sigma^2` while
    :math:`\mathbb{E}[(\bar{x} - x^\star)^2] = \sigma^2 (1 + 1 / n)`: the mean of a finite ensemble
    errs by more than one member spreads, and the factor :math:`\sqrt{(n + 1) / n}` (dropped when
    not ``corrected``) makes the calibrated value 1. Below 1 the ensemble is over-confident
    (under-dispersed), above 1 under-confident. It sees only second moments: a biased, too wide
    ensemble can score 1.

    Arguments:
        x: Samples ``(n, *event)``, ``n >= 2``.
        truth: The truth ``(*event)``.
        dim: The event dimensions to average over (indexed as in ``truth``; all when None).
        corrected: Whether to apply the finite-ensemble factor :math:`\sqrt{(n + 1) / n}`.

    Returns:
        The ratio over ``dim``.
    """

    x, truth = _check(x, truth, least=2)
    n = x.shape[0]
    spread = _mean(x.var(0), dim).sqrt()
    skill = _mean((x.mean(0) - truth).square(), dim).sqrt()
    factor = math.sqrt((n + 1) / n) if corrected else 1.0
    return factor * spread / skill
