r"""The Lorenz-63 posterior explorer: SDA, DPS and MMPS posteriors against the particle filter.

Also the Lorenz pieces that the diffusion explorer shares: the trained local priors
(:func:`lorenz_checkpoint`, :func:`lorenz_window_prior`, :func:`available_orders`), the chain
(``CHAIN``) and the test trajectories (:func:`lorenz_truth`, ``L_LORENZ`` states each).

Trained priors are found by :func:`~sda_lite.train.checkpoint`: the checkpoint that the chapters
trained in :func:`~sda_lite.config.data_dir`, else the small one shipped in ``data/shipped/``
(finished, and with the configuration asked for). The Lorenz panels use the ``cpu``-scale priors
by default (``prior_scale``), shipped for ``k`` = 1, 2 and 4, whatever ``SDA_SCALE``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from sda_lite import plots
from sda_lite.baselines import particle_filter
from sda_lite.checkpoints import SHIPPED
from sda_lite.config import data_dir, sampling, scale
from sda_lite.diffusion import VPSDE
from sda_lite.guidance import assimilate
from sda_lite.lorenz import (
    SCENARIOS,
    L,
    NoisyLorenz63,
    first_states,
    lorenz_configs,
    lorenz_prior,
)
from sda_lite.metrics import log_px, log_py, w1
from sda_lite.observe import compose, every, observe, select
from sda_lite.priors import find_checkpoint as checkpoint
from sda_lite.priors import load_prior, prior_for_length
from sda_lite.widgets.panel import (
    LIMITER,
    MAX_CORRECTIONS,
    MAX_SAMPLES,
    MAX_STEPS,
    METHODS,
    Panel,
    _check,
    _checkbox,
    _dropdown,
    _slider,
)

LORENZ_SCENARIOS = {  # the paper's scenarios (sda_lite.lorenz.SCENARIOS) as presets of the controls
    name: {"every": s["every"], "sigma_y": s["std"], "observed": (0,)}
    for name, s in SCENARIOS.items()
}
L_LORENZ = L  # states per Lorenz trajectory, as in the paper
LORENZ_SAMPLING = sampling("lorenz")  # the paper's gamma and tau (configs/sampling.json)
CHAIN = NoisyLorenz63()


# --------------------------------------------------------------------------------------------------
# Checkpoints


def lorenz_checkpoint(k: int, scale_name: str = "cpu") -> Path | None:
    r"""The directory of the trained local Lorenz prior of order ``k`` at a scale
    (:func:`~sda_lite.train.lorenz_configs`), by :func:`~sda_lite.train.checkpoint`."""

    name = f"lorenz_local_k{k}_{scale(scale_name)}"
    return checkpoint(name, *lorenz_configs("local", k, scale_name))


@lru_cache(maxsize=8)
def lorenz_window_prior(k: int, scale_name: str = "cpu", train: bool = True) -> VPSDE:
    r"""The trained local Lorenz window prior of order ``k`` (:func:`lorenz_checkpoint`), trained by
    :func:`~sda_lite.train.lorenz_prior` when no checkpoint exists and ``train`` (else
    FileNotFoundError).

    Cached: treat the returned prior as read-only.
    """

    directory = lorenz_checkpoint(k, scale_name)
    if directory is not None:
        return load_prior(directory, lorenz_configs("local", k, scale_name)[0]).eval()
    if not train:
        name = f"lorenz_local_k{k}_{scale(scale_name)}"
        raise FileNotFoundError(f"no trained {name} in {data_dir()} nor in {SHIPPED}")
    return lorenz_prior("local", k, scale_name).eval()


def available_orders(scale_name: str = "cpu", orders: tuple[int, ...] = (1, 2, 3, 4)) -> list[int]:
    r"""The window half-widths ``k`` whose trained prior is on disk (:func:`lorenz_checkpoint`)."""

    return [k for k in orders if lorenz_checkpoint(k, scale_name) is not None]


# --------------------------------------------------------------------------------------------------
# Truth, observations, reference, posterior


@lru_cache(maxsize=4)
def lorenz_truth(index: int = 0, length: int = L_LORENZ) -> Tensor:
    r"""Test trajectory ``index`` of the ``ci`` Lorenz dataset, its first ``length`` states, in raw
    units, ``(length, 3)`` float64."""

    from sda_lite.io import load
    from sda_lite.lorenz import ensure_lorenz

    x = load(ensure_lorenz(scale_name="ci", progress=False), "test")
    if not 0 <= index < len(x):
        raise ValueError(f"index={index!r}: expected a test trajectory in [0, {len(x) - 1}]")
    return CHAIN.postprocess(x[index, :length].double())


def _operator(n: int, observed: tuple[int, ...]) -> tuple[Callable, Callable]:
    r"""Every ``n``-th state, variables ``observed``: of a standardised trajectory and of one raw
    state."""

    index = list(observed)
    return compose(every(n), select(index)), (lambda x: CHAIN.preprocess(x)[..., index])


@lru_cache(maxsize=16)
def _lorenz_observations(
    index: int, n: int, observed: tuple[int, ...], sigma_y: float, seed: int
) -> Tensor:
    r"""The observations ``y`` of test trajectory ``index`` (standardised units), seeded."""

    A, _ = _operator(n, observed)
    x = CHAIN.preprocess(lorenz_truth(index))
    return observe(x, A, sigma_y, generator=torch.Generator().manual_seed(seed))


@lru_cache(maxsize=8)
def _lorenz_reference(
    index: int,
    n: int,
    observed: tuple[int, ...],
    sigma_y: float,
    seed: int,
    particles: int,
    samples: int,
) -> Tensor:
    r"""Particle-filter posterior trajectories ``(samples, L, 3)`` (raw units), started on the
    attractor."""

    y = _lorenz_observations(index, n, observed, sigma_y, seed)
    _, A_state = _operator(n, observed)
    g = torch.Generator().manual_seed(seed + 1)
    x0 = first_states(CHAIN, particles, g)
    return particle_filter(
        CHAIN,
        y,
        A_state,
        sigma_y,
        every=n,
        length=L_LORENZ,
        x0=x0,
        samples=samples,
        generator=g,
        progress=True,
    )


@lru_cache(maxsize=16)
def _lorenz_posterior(
    index,
    n,
    observed,
    sigma_y,
    seed,
    k,
    method,
    gamma,
    limit,
    steps,
    corrections,
    samples,
    prior_scale,
) -> Tensor:
    r"""Posterior trajectories ``(samples, L, 3)`` (raw units) of a guidance under the local prior
    of order ``k``, seeded."""

    y = _lorenz_observations(index, n, observed, sigma_y, seed)
    A, _ = _operator(n, observed)
    prior = prior_for_length(lorenz_window_prior(k, prior_scale), L_LORENZ)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x = assimilate(
            prior,
            y.float(),
            A,
            sigma_y,
            method=method,
            gamma=gamma,
            limit=limit,
            steps=steps,
            corrections=corrections,
            tau=LORENZ_SAMPLING["tau"],
            samples=samples,
        )
    return CHAIN.postprocess(x.double())


# --------------------------------------------------------------------------------------------------
# The explorer


def _lorenz_setting(
    scenario: str,
    sigma_y: float | None,
    every: int | None,
    observed: tuple[int, ...] | None,
) -> tuple[float, int, tuple[int, ...]]:
    r"""The observation setting ``(sigma_y, every, observed)``: what is given, else the scenario's
    preset (:data:`LORENZ_SCENARIOS`), with ``observed`` sorted."""

    if scenario not in LORENZ_SCENARIOS:
        raise ValueError(f"scenario={scenario!r}: expected one of {tuple(LORENZ_SCENARIOS)}")
    preset = LORENZ_SCENARIOS[scenario]
    sigma_y = float(preset["sigma_y"] if sigma_y is None else sigma_y)
    n = int(preset["every"] if every is None else every)
    observed = preset["observed"] if observed is None else observed
    observed = tuple(sorted(int(i) for i in observed))
    if not observed or not set(observed) <= {0, 1, 2}:
        raise ValueError(f"observed={observed!r}: expected a non-empty subset of (0, 1, 2)")
    return sigma_y, n, observed


def _lorenz_readouts(
    x: Tensor, ref: Tensor, y: Tensor, n: int, observed: tuple[int, ...], sigma_y: float, name: str
) -> tuple[dict[str, tuple[float, float]], float]:
    r"""The read-outs of posterior samples ``x`` against the filter's ``ref`` (both raw units):
    :math:`(\log p(x_{2:L} \mid x_1), \log p(y \mid x))` of each, by name (``name`` for ``x``,
    ``"particle filter"`` for ``ref``), and :math:`W_1` between ``x`` and as many filter
    trajectories."""

    A_traj = lambda z: CHAIN.preprocess(z)[..., ::n, list(observed)]  # noqa: E731
    scores = {
        label: (log_px(CHAIN, z).item(), log_py(z, y, A_traj, sigma_y).item())
        for label, z in ((name, x), ("particle filter", ref))
    }
    return scores, w1(x, ref[: len(x)])


def _draw_lorenz(
    axes: list[Axes],
    x: np.ndarray,
    ref: np.ndarray,
    truth: np.ndarray,
    y: np.ndarray,
    n: int,
    observed: tuple[int, ...],
    sigma_y: float,
) -> None:
    r"""Draws, one variable per axis: the filter's band, up to 16 posterior samples, the truth and,
    on observed variables, the observations with their 2-std error bars, in raw units."""

    t = np.arange(L_LORENZ)
    for d, ax in enumerate(axes):
        mean, std = ref[..., d].mean(0), ref[..., d].std(0)
        plots.band(ax, t, mean, std, plots.REFERENCE, "particle filter (mean ± 2 std)")
        for i, xi in enumerate(x[:16]):
            label = "posterior samples" if i == 0 else None
            ax.plot(t, xi[:, d], color=plots.POSTERIOR, alpha=0.3, lw=0.8, label=label)
        ax.plot(t, truth[:, d], color=plots.TRUTH, lw=1, label="truth")
        if d in observed:
            raw = CHAIN.MEAN[d] + CHAIN.STD[d] * y[:, observed.index(d)]
            ax.errorbar(
                t[::n],
                raw,
                2 * CHAIN.STD[d] * sigma_y,
                fmt="o",
                ms=2.5,
                color=plots.OBS,
                label="observations",
            )
        ax.set_ylabel(plots.LORENZ_LABELS[d])
    axes[-1].set_xlabel("state index $i$ (raw units)")
    axes[0].legend(loc="upper right", fontsize=7, ncol=4)


def _lorenz_title(
    method: str,
    k: int,
    steps: int,
    corrections: int,
    gamma: float,
    limit: bool,
    distance: float,
    scores: dict[str, tuple[float, float]],
) -> str:
    r"""The title: the sampler's setting, :math:`W_1` and the log-likelihoods of each."""

    setting = f"{method.upper()} (k = {k}, {steps} steps, C = {corrections}"
    if method == "sda":
        setting += f", γ = {gamma:.2g}" + (", step limiter" if limit else "")
    lines = [
        f"{name}: log p(x) {lpx:.0f}, log p(y|x) {lpy:.1f}" for name, (lpx, lpy) in scores.items()
    ]
    return setting + f") vs particle filter: $W_1$ = {distance:.2f}\n" + "; ".join(lines)


def plot_lorenz_posterior(
    scenario: str = "lo",
    sigma_y: float | None = None,
    every: int | None = None,
    observed: tuple[int, ...] | None = None,
    k: int = 2,
    method: str = "sda",
    gamma: float = LORENZ_SAMPLING["gamma"],
    limit: bool = True,
    steps: int = 32,
    corrections: int = 1,
    samples: int = 32,
    particles: int = 2**12,
    index: int = 0,
    seed: int = 0,
    prior_scale: str = "cpu",
) -> Figure:
    r"""Lorenz-63 posterior trajectories of SDA (or DPS, MMPS) against the particle filter.

    The truth is test trajectory ``index`` (65 states); :math:`y = A(\tilde{x}^\star) + \sigma_y z`
    observes the standardised variables ``observed`` every ``every`` states. The scenario (``"lo"``:
    first variable every 8th state, :math:`\sigma_y = 0.05`; ``"hi"``: every state, 0.25) sets what
    is not given. The prior is the local prior of order ``k`` (:func:`lorenz_window_prior`), the
    sampler ``steps`` predictor steps and ``corrections`` Langevin corrections (:math:`\tau = 0.25`,
    the paper's). ``limit`` turns on SDA's step limiter
    (:meth:`~sda_lite.guidance.Guidance._limit`), on by default here so that no slider setting
    diverges, unlike the paper's sampler.

    Returns:
        A figure of three axes, one per variable (raw units): the filter's mean ± 2 std, up to 16
        posterior samples, the truth and the observations; titled with :math:`W_1` to the filter
        and :math:`\log p(x_{2:L} \mid x_1)` and :math:`\log p(y \mid x)` of both.
    """

    sigma_y, n, observed = _lorenz_setting(scenario, sigma_y, every, observed)
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    _check("sigma_y", sigma_y, 1e-3, 10.0)
    _check("every", n, 1, 32)
    _check("steps", steps, 1, MAX_STEPS)
    _check("corrections", corrections, 0, MAX_CORRECTIONS)
    _check("samples", samples, 2, MAX_SAMPLES)

    y = _lorenz_observations(index, n, observed, sigma_y, seed)
    ref = _lorenz_reference(index, n, observed, sigma_y, seed, particles, MAX_SAMPLES)
    x = _lorenz_posterior(
        index,
        n,
        observed,
        sigma_y,
        seed,
        k,
        method,
        gamma,
        limit,
        steps,
        corrections,
        samples,
        prior_scale,
    )
    truth = lorenz_truth(index)
    name = "SDA" if method == "sda" else method.upper()
    scores, distance = _lorenz_readouts(x, ref, y, n, observed, sigma_y, name)

    fig = Figure(figsize=(8, 5.6))
    axes = fig.subplots(3, 1, sharex=True)
    _draw_lorenz(axes, x.numpy(), ref.numpy(), truth.numpy(), y.numpy(), n, observed, sigma_y)
    title = _lorenz_title(method, k, steps, corrections, gamma, limit, distance, scores)
    axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def lorenz_panel(**defaults: Any) -> Panel:
    r"""The Lorenz posterior explorer around :func:`plot_lorenz_posterior`. Choosing a scenario sets
    :math:`\sigma_y`, the interval and the observed variables; ``k`` offers the priors on disk.

    ``defaults`` override the initial parameters; those that no control sets (e.g. ``particles``)
    stay fixed. Returns the :class:`~sda_lite.widgets.panel.Panel`, its figure drawn."""

    import ipywidgets as widgets

    params = {
        "scenario": "lo",
        "k": 2,
        "method": "sda",
        "gamma": LORENZ_SAMPLING["gamma"],
        "limit": True,
        "steps": 32,
        "corrections": 1,
        "samples": 32,
    } | defaults
    preset = LORENZ_SCENARIOS[params["scenario"]]
    params = {name: preset[name] for name in ("sigma_y", "every", "observed")} | params
    orders = sorted(set(available_orders(params.get("prior_scale", "cpu"))) | {params["k"]})
    scenario = _dropdown(list(LORENZ_SCENARIOS), params["scenario"], "scenario")
    variables = [("x1", 0), ("x2", 1), ("x3", 2)]
    controls = {
        "sigma_y": _slider("log", params["sigma_y"], 0.01, 1.0, 0.1, "σ_y"),
        "every": _slider("int", params["every"], 1, 16, 1, "interval"),
        "observed": widgets.SelectMultiple(
            options=variables, value=tuple(params["observed"]), rows=3, description="observed"
        ),
        "k": _dropdown(orders, params["k"], "k"),
        "method": _dropdown(list(METHODS), params["method"], "method"),
        "gamma": _slider("log", params["gamma"], 1e-3, 1.0, 0.1, "γ"),
        "limit": _checkbox(params["limit"], LIMITER),
        "steps": _slider("int", params["steps"], 8, MAX_STEPS, 8, "steps"),
        "corrections": _slider("int", params["corrections"], 0, 4, 1, "corrections C"),
        "samples": _slider("int", params["samples"], 8, MAX_SAMPLES, 8, "samples"),
    }
    fixed = {
        name: value for name, value in params.items() if name not in controls and name != "scenario"
    }
    title = "Lorenz-63 posterior explorer"
    panel = Panel(plot_lorenz_posterior, controls, fixed, title, extra=[scenario])

    def preset_changed(change: dict) -> None:
        values = LORENZ_SCENARIOS[change["new"]]
        with panel.hold():
            for name in ("sigma_y", "every", "observed"):
                controls[name].value = values[name]

    scenario.observe(preset_changed, names="value")
    return panel
