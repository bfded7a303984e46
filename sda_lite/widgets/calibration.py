r"""The calibration explorer: how calibrated SDA, DPS and MMPS posteriors are on the
damped-rotation chain, judged by draws of its exact posterior (:mod:`sda_lite.calibration`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from sda_lite import plots
from sda_lite.calibration import crps, crps_gaussian, intervals, rank_histogram, spread_skill
from sda_lite.config import sampling
from sda_lite.diffusion import VPSDE
from sda_lite.guidance import assimilate
from sda_lite.linear import LinearGaussian
from sda_lite.observe import compose, every, observe, select
from sda_lite.score import GaussianEps
from sda_lite.widgets.panel import (
    MAX_CORRECTIONS,
    MAX_STEPS,
    METHODS,
    Panel,
    _check,
    _dropdown,
    _slider,
)

TEST_BED = sampling("linear")  # the book's settings for the exact test bed (tau = 0.1)
LEVELS = tuple(np.round(np.linspace(0.05, 0.95, 19), 2).tolist())  # of the reliability curve
BINS = 8  # of the rank histogram


@lru_cache(maxsize=16)
def _calibration_run(
    method, gamma, zeta, iterations, sigma_y, n, L, sets, samples, draws, steps, corrections, seed
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""For ``sets`` truths of the chain observed (first variable, every ``n`` states, noise
    ``sigma_y``), all seeded: the observations ``y: (sets, M, 1)``, the posterior samples
    ``(samples, sets, L, 2)`` of a guidance, as many exact posterior samples, ``draws`` exact
    posterior draws ``(draws, sets, L, 2)`` (the judges), and the exact posterior means
    ``(sets, L, 2)`` and standard deviations ``(L, 2)``."""

    chain = LinearGaussian.rotation()
    D = chain.D
    m, C = chain.moments(L)
    prior = VPSDE(GaussianEps(m, C, (L, D)), (L, D))
    A = compose(every(n), select(0))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        truth = torch.stack([chain.trajectory(chain.prior(), L) for _ in range(sets)])
        y = observe(truth.float(), A, sigma_y)
        H, R = torch.tensor([[1.0, 0.0]]), torch.tensor([[sigma_y**2]])
        mean, cov = chain.posterior(y, H, R, every=n, length=L)
        chol = torch.linalg.cholesky(cov)
        eps = torch.randn(draws + samples, sets, L * D, dtype=torch.float64)
        exact = mean + (eps @ chol.mT).reshape(draws + samples, sets, L, D)
        x = assimilate(
            prior,
            y,
            A,
            sigma_y,
            method=method,
            gamma=gamma,
            zeta=zeta,
            iterations=iterations,
            steps=steps,
            corrections=corrections,
            tau=TEST_BED["tau"],
            samples=samples,
        )
    sd = cov.diagonal().sqrt().reshape(L, D)
    return y, x.double(), exact[draws:], exact[:draws], mean, sd


def _scores(x: Tensor, judges: Tensor, levels=LEVELS) -> tuple[np.ndarray, float, float]:
    r"""The coverage of each level ``(len(levels),)``, the fair CRPS and the spread-skill ratio of
    samples ``(n, *event)``, averaged over the judges ``(K, *event)``."""

    cov = []  # coverage(x, r, levels) averaged over the judges r, with one sort per level
    for p in levels:
        low, high = intervals(x, p)
        cov.append(((low <= judges) & (judges <= high)).double().mean().item())
    score = torch.stack([crps(x, r, fair=True) for r in judges]).mean().item()
    ratio = torch.stack([spread_skill(x, r) for r in judges]).mean().item()
    return np.array(cov), score, ratio


def plot_calibration(
    method: str = "sda",
    gamma: float = 0.1,
    zeta: float = 1.0,
    iterations: int = 4,
    sigma_y: float = 0.1,
    every: int = 4,
    L: int = 32,
    sets: int = 8,
    samples: int = 63,
    draws: int = 32,
    steps: int = 64,
    corrections: int = 1,
    seed: int = 0,
) -> Figure:
    r"""The calibration of a guidance (``"sda"``, ``"dps"``, ``"mmps"``) under the exact Gaussian
    prior of the damped-rotation chain (:meth:`~sda_lite.linear.LinearGaussian.rotation`), on
    ``sets`` seeded truths whose first variable is observed every ``every`` states with noise
    ``sigma_y``, judged by ``draws`` draws of each exact posterior
    (:meth:`~sda_lite.linear.LinearGaussian.posterior`).

    ``samples + 1`` must be a multiple of 8, the bins of the rank histogram (e.g. 31, 63, 127).

    Returns:
        A figure of three axes: the reliability curve (coverage of the central intervals of levels
        :math:`p` from 0.05 to 0.95, :func:`~sda_lite.calibration.coverage`, minus :math:`p`) of
        the samples and of as many exact posterior samples; the rank histogram of the judges among the samples
        (:func:`~sda_lite.calibration.rank_histogram`, as frequencies over the flat one); and the
        spread-skill ratio of each state and variable (:func:`~sda_lite.calibration.spread_skill`
        over the sets). Titled with the 90% coverage, the fair CRPS over the exact posterior's
        (:func:`~sda_lite.calibration.crps_gaussian`) and the spread-skill ratio.
    """

    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    _check("every", every, 1, L - 1)
    _check("sigma_y", sigma_y, 1e-3, 10.0)
    _check("steps", steps, 1, MAX_STEPS)
    _check("corrections", corrections, 0, MAX_CORRECTIONS)
    _check("iterations", iterations, 1, 64)
    _check("sets", sets, 1, 256)
    _check("draws", draws, 1, 1024)
    _check("samples", samples, 7, 1023)
    if (samples + 1) % BINS:
        raise ValueError(
            f"samples={samples!r}: expected samples + 1 a multiple of {BINS} (e.g. 31, 63, 127), "
            "the bins of the rank histogram"
        )
    _, x, exact, judges, mean, sd = _calibration_run(
        method, gamma, zeta, iterations, sigma_y, every, L, sets, samples, draws, steps,
        corrections, seed,
    )  # fmt: skip
    cov, score, ratio = _scores(x, judges)
    cov_exact = _scores(exact, judges)[0]
    score_exact = torch.stack([crps_gaussian(mean, sd, r) for r in judges]).mean().item()
    g = torch.Generator().manual_seed(seed)
    counts = sum(rank_histogram(x, r, bins=BINS, generator=g) for r in judges).numpy()
    per_state = torch.stack([spread_skill(x, r, dim=0) for r in judges]).mean(0).numpy()

    fig = Figure(figsize=(12, 3.6))
    ax_rel, ax_rank, ax_state = fig.subplots(1, 3, gridspec_kw={"width_ratios": (1, 1, 1.6)})
    levels = np.array(LEVELS)
    ax_rel.axhline(0, color=plots.TRUTH, lw=1, ls="--", label="calibrated")
    ax_rel.plot(levels, cov_exact - levels, "-", color=plots.REFERENCE, label="exact samples")
    ax_rel.plot(levels, cov - levels, "o-", ms=3, color=plots.POSTERIOR, label=method.upper())
    ax_rel.set_xlabel("level $p$ of the central interval")
    ax_rel.set_ylabel("coverage of the exact draws $- p$")
    ax_rel.set_title("reliability (below 0: over-confident)", fontsize=9)
    ax_rel.legend(fontsize=7)
    ax_rank.bar(np.arange(BINS), counts / counts.sum() * BINS, color=plots.POSTERIOR)
    ax_rank.axhline(1, color=plots.TRUTH, lw=1, ls="--")
    ax_rank.set_xticks(range(BINS))
    ax_rank.set_xlabel(f"rank of the exact draws ({BINS} bins)")
    ax_rank.set_ylabel("frequency / flat")
    ax_rank.set_title("rank histogram (U: over-confident, dome: too wide)", fontsize=9)
    i = np.arange(L)
    for d, style in ((0, "-"), (1, "--")):
        ax_state.plot(
            i, per_state[:, d], style, color=plots.POSTERIOR, label=f"$x_{d + 1}$"
        )  # fmt: skip
    ax_state.axhline(1, color=plots.TRUTH, lw=1, ls=":")
    ax_state.plot(i[::every], np.ones(len(i[::every])), "o", ms=3, color=plots.OBS,
                  label="observed states")  # fmt: skip
    ax_state.set_xlabel("state index $i$")
    ax_state.set_ylabel("spread / error of the mean")
    ax_state.set_title("spread-skill ratio by state (1: calibrated)", fontsize=9)
    ax_state.legend(fontsize=7)
    setting = {"sda": f"γ = {gamma:.2g}", "dps": f"ζ = {zeta:.2g}", "mmps": f"{iterations} it."}
    fig.suptitle(
        f"{method.upper()} ({setting[method]}, {steps} steps, C = {corrections}, "
        f"σ_y = {sigma_y:.2g}): 90% coverage {cov[LEVELS.index(0.9)]:.0%}, "
        f"CRPS {score / score_exact:.2f} × exact, spread-skill {ratio:.2f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def calibration_panel(**defaults: Any) -> Panel:
    r"""The calibration explorer around :func:`plot_calibration`: the method and its parameter
    (:math:`\gamma` of SDA, :math:`\zeta` of DPS, the iterations of MMPS), the steps, the
    corrections and :math:`\sigma_y`.

    ``defaults`` override the initial parameters; those that no control sets (e.g. ``L``,
    ``sets``, ``samples``) stay fixed. Returns the :class:`~sda_lite.widgets.panel.Panel`, its
    figure drawn."""

    params = {
        "method": "sda",
        "gamma": TEST_BED["gamma"],
        "zeta": TEST_BED["zeta"],
        "iterations": 4,
        "steps": TEST_BED["steps"],
        "corrections": TEST_BED["corrections"],
        "sigma_y": 0.1,
    } | defaults
    controls = {
        "method": _dropdown(list(METHODS), params["method"], "method"),
        "gamma": _slider("log", params["gamma"], 1e-3, 10.0, 0.1, "γ (SDA)"),
        "zeta": _slider("log", params["zeta"], 0.1, 30.0, 0.1, "ζ (DPS)"),
        "iterations": _slider("int", params["iterations"], 1, 8, 1, "iterations (MMPS)"),
        "steps": _slider("int", params["steps"], 8, 128, 8, "steps"),
        "corrections": _slider("int", params["corrections"], 0, 4, 1, "corrections C"),
        "sigma_y": _slider("log", params["sigma_y"], 0.01, 1.0, 0.1, "σ_y"),
    }
    fixed = {name: value for name, value in params.items() if name not in controls}
    title = "Calibration explorer: SDA, DPS and MMPS judged by the exact posterior"
    return Panel(plot_calibration, controls, fixed, title)
