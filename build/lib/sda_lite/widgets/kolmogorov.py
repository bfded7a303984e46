r"""The Kolmogorov scenario explorer: the observation scenarios of :mod:`sda_lite.scenarios` on a
Kolmogorov-flow trajectory, with SDA posterior samples of a trained prior on request."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor

from sda_lite.config import sampling, scale
from sda_lite.diffusion import VPSDE
from sda_lite.guidance import assimilate
from sda_lite.priors import find_checkpoint as checkpoint
from sda_lite.priors import load_configs, load_prior, prior_for_length
from sda_lite.widgets.panel import MAX_STEPS, Panel, _check, _dropdown, _slider

FACTOR_SCENARIOS = ("assimilation", "extrapolation", "saturation")  # factor: the coarsening


@lru_cache(maxsize=2)
def kolmogorov_truth(index: int = 0, scale_name: str = "ci") -> Tensor:
    r"""Test trajectory ``index`` of the Kolmogorov dataset of a scale (generated when missing),
    ``(L, 2, H, W)`` standardised velocities."""

    from sda_lite.io import load
    from sda_lite.kolmogorov.data import ensure_kolmogorov

    x = load(ensure_kolmogorov(scale_name=scale_name, progress=False), "test")
    if not 0 <= index < len(x):
        raise ValueError(f"index={index!r}: expected a test trajectory in [0, {len(x) - 1}]")
    return x[index]


@lru_cache(maxsize=2)
def kolmogorov_window_prior(scale_name: str = "ci") -> VPSDE:
    r"""The trained Kolmogorov window prior of a scale found by :func:`~sda_lite.train.checkpoint`
    (never trained here: train it with :func:`~sda_lite.kolmogorov.kolmogorov_prior`, else
    FileNotFoundError)."""

    config, schedule = load_configs("kolmogorov", scale_name)
    name = f"kolmogorov_{scale(scale_name)}"
    directory = checkpoint(name, config, schedule)
    if directory is None:
        raise FileNotFoundError(
            f"no trained {name} prior: train it first with "
            f"sda_lite.kolmogorov.kolmogorov_prior({scale_name!r})"
        )
    return load_prior(directory, config).eval()


@lru_cache(maxsize=8)
def _kolmogorov_posterior(
    name, overrides, index, seed, data_scale, prior_scale, samples, steps
) -> Tensor:
    r"""SDA posterior samples ``(samples, L, 2, H, W)`` of a scenario, with the paper's
    :math:`\gamma`, corrections and :math:`\tau`, seeded."""

    from sda_lite.kolmogorov.scenarios import scenario

    x = kolmogorov_truth(index, data_scale)
    s = scenario(name, x, seed=seed, **dict(overrides))
    prior = prior_for_length(kolmogorov_window_prior(prior_scale), len(x))
    paper = sampling("kolmogorov", name)  # the paper's gamma, corrections and tau
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return assimilate(
            prior,
            s.y,
            s.A,
            s.std,
            gamma=paper["gamma"],
            steps=steps,
            corrections=paper["corrections"],
            tau=paper["tau"],
            samples=samples,
        )


def _observed_images(s, x: Tensor, states: list[int]) -> tuple[list[Tensor], str]:
    r"""The observations of ``states`` as images (NaN where nothing is observed) and what they
    show."""

    from sda_lite.fields import vorticity
    from sda_lite.kolmogorov.scenarios import annulus

    y, n, (H, W) = s.y, s.settings["every"], x.shape[-2:]
    if s.name in ("assimilation", "extrapolation"):
        what = f"vorticity of the observed (coarsened) velocity, {y.shape[-2]}x{y.shape[-1]}"
        return [vorticity(y[i // n]) for i in states], what
    if s.name == "saturation":
        return [y[i // n] for i in states], "observed saturated vorticity w / (1 + |w|)"
    if s.name == "sparse":
        r = s.settings["stride"]
        images = []
        for i in states:
            image = torch.full((H, W), float("nan"))
            image[::r, ::r] = y[i // n, 0].reshape(-(-H // r), -(-W // r))
            images.append(image)
        return images, f"observed $u_x$ at every {r}-th pixel (blank: unobserved)"
    if s.name == "event":
        image = torch.full((H, W), float("nan"))
        image[annulus(H)] = y
        return [image], "observed vorticity per cell on the annulus"
    return [vorticity(y)], "vorticity of the observed $x_1 - x_L$"


def _overrides(scenario: str, sigma_y: float | None, factor: int | None) -> dict[str, Any]:
    r"""The scenario's settings that ``sigma_y`` (its ``std``) and ``factor`` (its ``factor`` or,
    for ``sparse``, its ``stride``; ignored by the others) override."""

    overrides = {}
    if sigma_y is not None:
        _check("sigma_y", sigma_y, 1e-3, 10.0)
        overrides["std"] = float(sigma_y)
    if factor is not None and scenario in FACTOR_SCENARIOS:
        overrides["factor"] = int(factor)
    elif factor is not None and scenario == "sparse":
        overrides["stride"] = int(factor)
    return overrides


def _shown_states(scenario: str, L: int, every: int) -> list[int]:
    r"""The states shown: the last (``event``), the first and the last (``loop``), else up to four
    observed ones."""

    return {"event": [L - 1], "loop": [0, L - 1]}.get(scenario, list(range(0, L, every))[:4])


def plot_kolmogorov_scenario(
    scenario: str = "assimilation",
    sigma_y: float | None = None,
    factor: int | None = None,
    samples: int = 0,
    steps: int = 32,
    index: int = 0,
    seed: int = 0,
    data_scale: str = "ci",
    prior_scale: str = "ci",
) -> Figure:
    r"""An observation scenario of :mod:`sda_lite.scenarios` on Kolmogorov test trajectory
    ``index``.

    ``sigma_y`` overrides the scenario's noise; ``factor`` its coarsening factor (assimilation,
    extrapolation, saturation) or its pixel stride (sparse), and is ignored by the others.

    Returns:
        A figure of a row per kind, a column per shown state: the true vorticity of (up to four
        of) the observed states, the observations as images, and, when ``samples > 0``, the
        vorticity of an SDA posterior sample (a trained prior is needed, see
        :func:`kolmogorov_window_prior`); titled with the scenario's settings and the residual
        :math:`\mathrm{std}(A(x) - y) / \sigma_y` of the samples.
    """

    from sda_lite.fields import vorticity
    from sda_lite.kolmogorov.plots import plot_vorticity
    from sda_lite.kolmogorov.scenarios import SCENARIOS
    from sda_lite.kolmogorov.scenarios import scenario as make

    if scenario not in SCENARIOS:
        raise ValueError(f"scenario={scenario!r}: expected one of {SCENARIOS}")
    _check("samples", samples, 0, 4)
    _check("steps", steps, 1, MAX_STEPS)
    overrides = _overrides(scenario, sigma_y, factor)
    x = kolmogorov_truth(index, data_scale)
    s = make(scenario, x, seed=seed, **overrides)
    states = _shown_states(scenario, len(x), s.settings["every"])
    observed, what = _observed_images(s, x, states)

    rows = 3 if samples > 0 else 2
    size = (max(2.3 * len(states) + 1.2, 6), 2.4 * rows + 0.4)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(rows, len(states), squeeze=False)
    truth = vorticity(x[states])
    vmax = float(truth.abs().max())
    plot_vorticity(
        truth,
        axes=axes[0],
        titles=[f"truth, state {i}" for i in states],
        vmax=vmax,
        label="vorticity $\\omega$",
    )
    o = torch.stack([torch.as_tensor(image, dtype=torch.float32) for image in observed])
    plot_vorticity(
        o,
        axes=axes[1, : len(o)],
        titles=[f"observed, state {i}" for i in states],
        vmax=float(o.nan_to_num().abs().max()) or 1.0,
        label="observed",
    )
    for ax in axes[1, len(o) :]:
        ax.set_axis_off()
    settings = ", ".join(f"{k} {v}" for k, v in s.settings.items() if k not in ("std",))
    title = f"scenario {scenario}: $\\sigma_y$ = {s.std:g}, {settings}"
    title += f"\nsecond row: {what}"
    if samples > 0:
        post = _kolmogorov_posterior(
            scenario,
            tuple(sorted(overrides.items())),
            index,
            seed,
            data_scale,
            prior_scale,
            samples,
            steps,
        )
        titles = [f"SDA sample, state {i}" for i in states]
        plot_vorticity(
            vorticity(post[0, states]),
            axes=axes[2],
            titles=titles,
            vmax=vmax,
            label="vorticity $\\omega$",
        )
        title += (
            f"\nSDA ({samples} samples, {steps} steps, the paper's γ, C and τ): "
            f"residual std(A(x) - y) / $\\sigma_y$ = {s.residual(post):.2f}"
        )
    fig.suptitle(title, fontsize=9)
    return fig


def kolmogorov_panel(**defaults: Any) -> Panel:
    r"""The Kolmogorov scenario explorer around :func:`plot_kolmogorov_scenario`: the scenario,
    :math:`\sigma_y`, the coarsening factor or pixel stride, and posterior samples (0: none).

    ``defaults`` override the initial parameters; those that no control sets stay fixed. Returns
    the :class:`~sda_lite.widgets.panel.Panel`, its figure drawn."""

    from sda_lite.kolmogorov.scenarios import SCENARIOS

    params = {"scenario": "assimilation", "sigma_y": 0.1, "factor": 4, "samples": 0} | defaults
    controls = {
        "scenario": _dropdown(list(SCENARIOS), params["scenario"], "scenario"),
        "sigma_y": _slider("log", params["sigma_y"], 0.01, 1.0, 0.1, "σ_y"),
        "factor": _dropdown([1, 2, 4, 8], params["factor"], "coarsening / stride"),
        "samples": _slider("int", params["samples"], 0, 4, 1, "SDA samples"),
    }
    fixed = {name: value for name, value in params.items() if name not in controls}
    return Panel(plot_kolmogorov_scenario, controls, fixed, "Kolmogorov scenario explorer")
