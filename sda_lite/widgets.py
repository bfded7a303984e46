r"""Interactive panels: pure plotting functions with ipywidgets controls around them.

Each explorer is two functions:

* ``plot_...(**params) -> Figure`` -- pure and deterministic (seeded): the same parameters give the
  same figure, whether called from a script, a test or a widget;
* ``..._panel(**defaults) -> Panel`` -- the controls around it, live in JupyterLab.

A :class:`Panel` renders its figure again whenever a control changes, inside a progress area, and
keeps the last images in a small LRU cache keyed on the parameters, so that moving a slider back is
instant; the expensive steps (priors, particle filters, posterior samples) are cached too, each
keyed on the parameters it depends on. Displayed, a panel offers both the live widget and a PNG of
its current figure: the HTML book (``nb_mime_priority_overrides`` in ``book/_config.yml``) shows the
PNG, a kernel shows the widget.

Panels:

* :func:`diffusion_panel` -- the noise level :math:`t` on a Lorenz trajectory: :math:`x(t)` and the
  denoised estimate :math:`\hat{x} = (x(t) - \sigma_t \epsilon(x(t), t)) / \mu_t` of a trained prior;
* :func:`gaussian_panel` -- SDA, DPS and MMPS against the exact (Kalman) posterior of the
  linear-Gaussian chain;
* :func:`lorenz_panel` -- Lorenz-63 posteriors against the particle filter, with :math:`W_1` and
  log-likelihood read-outs;
* :func:`kolmogorov_panel` -- the observation scenarios of :mod:`sda_lite.scenarios` on a
  Kolmogorov-flow trajectory.

Trained priors are found by :func:`~sda_lite.train.checkpoint`: the checkpoint that the chapters
trained in :func:`~sda_lite.config.data_dir`, else the small one shipped in ``data/shipped/``
(finished, and with the configuration asked for). The Lorenz panels use the ``cpu``-scale priors
by default (``prior_scale``), shipped for ``k`` = 1, 2 and 4, whatever ``SDA_SCALE``.
"""

from __future__ import annotations

import base64
import io
import time
from collections import OrderedDict
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from sda_lite import plots
from sda_lite.baselines import kalman_smoother, particle_filter
from sda_lite.config import data_dir, sampling, scale
from sda_lite.diffusion import VPSDE
from sda_lite.dynamics import LinearGaussian, NoisyLorenz63
from sda_lite.guidance import assimilate
from sda_lite.metrics import log_px, log_py, w1
from sda_lite.observe import compose, every, observe, select
from sda_lite.score import GaussianEps
from sda_lite.train import SHIPPED, checkpoint, load_configs, load_prior, lorenz_configs, lorenz_prior, prior_for_length

METHODS = ("sda", "dps", "mmps")
LORENZ_SCENARIOS = {"lo": {"every": 8, "sigma_y": 0.05, "observed": (0,)}, "hi": {"every": 1, "sigma_y": 0.25, "observed": (0,)}}
MAX_STEPS, MAX_SAMPLES, MAX_CORRECTIONS = 256, 256, 8
L_LORENZ = 65  # states per Lorenz trajectory, as in the paper
LORENZ_SAMPLING = sampling("lorenz")  # the paper's gamma and tau (configs/sampling.json)
LIMITER = "step limiter (not in the paper)"  # the label of the limiter's control, a departure from the paper


# --------------------------------------------------------------------------------------------------
# Checkpoints


def lorenz_checkpoint(k: int, scale_name: str = "cpu") -> Path | None:
    r"""The directory of the trained local Lorenz prior of order ``k`` at a scale
    (:func:`~sda_lite.train.lorenz_configs`), by :func:`~sda_lite.train.checkpoint`."""

    return checkpoint(f"lorenz_local_k{k}_{scale(scale_name)}", *lorenz_configs("local", k, scale_name))


@lru_cache(maxsize=8)
def lorenz_window_prior(k: int, scale_name: str = "cpu", train: bool = True) -> VPSDE:
    r"""The trained local Lorenz window prior of order ``k`` (:func:`lorenz_checkpoint`), trained by
    :func:`~sda_lite.train.lorenz_prior` when no checkpoint exists and ``train`` (else FileNotFoundError).

    Cached: treat the returned prior as read-only.
    """

    directory = lorenz_checkpoint(k, scale_name)
    if directory is not None:
        return load_prior(directory, lorenz_configs("local", k, scale_name)[0]).eval()
    if not train:
        raise FileNotFoundError(f"no trained lorenz_local_k{k}_{scale(scale_name)} in {data_dir()} nor in {SHIPPED}")
    return lorenz_prior("local", k, scale_name).eval()


def available_orders(scale_name: str = "cpu", orders: tuple[int, ...] = (1, 2, 3, 4)) -> list[int]:
    r"""The Markov orders ``k`` whose trained prior is on disk (:func:`lorenz_checkpoint`)."""

    return [k for k in orders if lorenz_checkpoint(k, scale_name) is not None]


# --------------------------------------------------------------------------------------------------
# Panels


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((name, tuple(v) if isinstance(v, (list, tuple)) else v) for name, v in params.items()))


class Panel:
    r"""Controls around a pure plotting function ``plot(**params) -> Figure``.

    Whenever a control changes, the figure is drawn again (progress bars go to an output area) and
    shown as a PNG; the last ``cache`` images are kept, keyed on the parameters. Errors raised by
    ``plot`` are shown in the status line (ipywidgets would swallow them).

    Arguments:
        plot: The plotting function.
        controls: The ipywidgets value widgets, by the name of the parameter they set.
        fixed: Parameters passed to ``plot`` but not controlled.
        title: A heading shown above the controls.
        cache: The number of images kept.
        extra: Widgets shown before the controls that set no parameter themselves (e.g. presets).
        threads: The number of torch threads while drawing (restored afterwards), or None for
            torch's setting. One is the fastest for these small networks: on a busy 2-core machine
            two threads made the Lorenz panel ten times slower (``benchmarks/bench_widgets.py``).

    Attributes:
        widget: The ipywidgets ``VBox`` (controls, status, progress area, image).
        image: The ``Image`` widget holding the current PNG.
        status: The ``HTML`` status line: the time the figure took, or the error.
    """

    def __init__(
        self,
        plot: Callable[..., Figure],
        controls: dict[str, Any],
        fixed: dict[str, Any] | None = None,
        title: str = "",
        cache: int = 16,
        extra: list | None = None,
        threads: int | None = 1,
    ):
        import ipywidgets as widgets

        self.plot, self.controls, self.fixed = plot, controls, dict(fixed or {})
        self.images: OrderedDict[tuple, bytes] = OrderedDict()
        self.size, self.threads, self._held = cache, threads, False
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.status = widgets.HTML()
        self.output = widgets.Output()
        for control in controls.values():
            control.observe(lambda change: self.update(), names="value")
        boxes = widgets.Box(list(extra or []) + list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([widgets.HTML(f"<b>{title}</b>"), boxes, self.status, self.output, self.image])
        self.update()

    @property
    def params(self) -> dict[str, Any]:
        r"""The current parameters: the fixed ones and the controls' values."""

        return self.fixed | {name: control.value for name, control in self.controls.items()}

    def render(self, **params: Any) -> bytes:
        r"""The PNG of ``plot(**params)``, from the cache when it holds it."""

        key = _key(params)
        if key in self.images:
            self.images.move_to_end(key)
        else:
            self.images[key] = _png(self.plot(**params))
            if len(self.images) > self.size:
                self.images.popitem(last=False)
        return self.images[key]

    @contextmanager
    def hold(self) -> Iterator[None]:
        r"""Changes several controls at once: one update at the end instead of one per change."""

        self._held = True
        try:
            yield
        finally:
            self._held = False
            self.update()

    def update(self) -> None:
        r"""Draws the figure of the current parameters into :attr:`image`, or the error into :attr:`status`."""

        if self._held:
            return
        tic, threads = time.perf_counter(), torch.get_num_threads()
        self.status.value = "<i>computing…</i>"
        try:
            torch.set_num_threads(self.threads or threads)
            with self.output:
                self.image.value = self.render(**self.params)
            self.status.value = f"<small>figure in {time.perf_counter() - tic:.1f} s</small>"
        except Exception as error:  # shown, since ipywidgets would swallow it
            self.status.value = f"<span style='color:{plots.OBS}'><b>error:</b> {type(error).__name__}: {error}</span>"
        finally:
            torch.set_num_threads(threads)
            self.output.clear_output()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = self.widget._repr_mimebundle_(**kwargs)
        data["image/png"] = base64.b64encode(self.image.value).decode()
        return data


def _slider(kind: str, value, low, high, step=None, description: str = "", **kwargs):
    import ipywidgets as widgets

    cls = {"int": widgets.IntSlider, "float": widgets.FloatSlider, "log": widgets.FloatLogSlider}[kind]
    bounds = dict(min=low, max=high) if kind != "log" else dict(min=np.log10(low), max=np.log10(high))
    if step is not None:
        bounds["step"] = step
    style = {"description_width": "initial"}
    return cls(value=value, description=description, continuous_update=False, style=style, **bounds, **kwargs)


def _dropdown(options, value, description: str):
    import ipywidgets as widgets

    return widgets.Dropdown(options=options, value=value, description=description, style={"description_width": "initial"})


def _checkbox(value: bool, description: str):
    import ipywidgets as widgets

    return widgets.Checkbox(value=value, description=description, style={"description_width": "initial"})


def _check(name: str, value, low, high) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name}={value!r}: expected a value in [{low}, {high}]")


# --------------------------------------------------------------------------------------------------
# Lorenz-63: truth, observations, reference


CHAIN = NoisyLorenz63()


@lru_cache(maxsize=4)
def lorenz_truth(index: int = 0, length: int = L_LORENZ) -> Tensor:
    r"""Test trajectory ``index`` of the ``ci`` Lorenz dataset, its first ``length`` states, in raw
    units, ``(length, 3)`` float64."""

    from sda_lite.data import ensure_lorenz, load

    x = load(ensure_lorenz(scale="ci", progress=False), "test")
    if not 0 <= index < len(x):
        raise ValueError(f"index={index!r}: expected a test trajectory in [0, {len(x) - 1}]")
    return CHAIN.postprocess(x[index, :length].double())


def _operator(n: int, observed: tuple[int, ...]):
    r"""Every ``n``-th state, variables ``observed``: of a standardised trajectory and of one raw state."""

    index = list(observed)
    return compose(every(n), select(index)), (lambda x: CHAIN.preprocess(x)[..., index])


@lru_cache(maxsize=16)
def _lorenz_observations(index: int, n: int, observed: tuple[int, ...], sigma_y: float, seed: int) -> Tensor:
    A, _ = _operator(n, observed)
    return observe(CHAIN.preprocess(lorenz_truth(index)), A, sigma_y, generator=torch.Generator().manual_seed(seed))


@lru_cache(maxsize=8)
def _lorenz_reference(index: int, n: int, observed: tuple[int, ...], sigma_y: float, seed: int, particles: int, samples: int) -> Tensor:
    r"""Particle-filter posterior trajectories ``(samples, L, 3)`` (raw units), started on the attractor."""

    y = _lorenz_observations(index, n, observed, sigma_y, seed)
    _, A_state = _operator(n, observed)
    g = torch.Generator().manual_seed(seed + 1)
    x0 = CHAIN.trajectory(CHAIN.prior((particles,), generator=g, dtype=torch.float64), 65, generator=g)[:, -1]
    return particle_filter(CHAIN, y, A_state, sigma_y, every=n, length=L_LORENZ, x0=x0, samples=samples, generator=g, progress=True)


@lru_cache(maxsize=16)
def _lorenz_posterior(index, n, observed, sigma_y, seed, k, method, gamma, limit, steps, corrections, samples, prior_scale) -> Tensor:
    y = _lorenz_observations(index, n, observed, sigma_y, seed)
    A, _ = _operator(n, observed)
    prior = prior_for_length(lorenz_window_prior(k, prior_scale), L_LORENZ)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x = assimilate(prior, y.float(), A, sigma_y, method=method, gamma=gamma, limit=limit, steps=steps, corrections=corrections, tau=LORENZ_SAMPLING["tau"], samples=samples)
    return CHAIN.postprocess(x.double())


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

    The truth is test trajectory ``index`` (65 states); :math:`y = A(\tilde{x}^\star) + \sigma_y z` observes
    the standardised variables ``observed`` every ``every`` states. The scenario (``"lo"``: first
    variable every 8th state, :math:`\sigma_y = 0.05`; ``"hi"``: every state, 0.25) sets what is not
    given. The prior is the local prior of order ``k`` (:func:`lorenz_window_prior`), the sampler
    ``steps`` predictor steps and ``corrections`` Langevin corrections (:math:`\tau = 0.25`, the
    paper's). ``limit`` turns on SDA's step limiter (:meth:`~sda_lite.guidance.Guidance._limit`), on by
    default here so that no slider setting diverges, unlike the paper's sampler. Read-outs:
    :math:`W_1` to the filter (raw units), :math:`\log p(x_{2:L} \mid x_1)` and :math:`\log p(y \mid x)`.
    """

    if scenario not in LORENZ_SCENARIOS:
        raise ValueError(f"scenario={scenario!r}: expected one of {tuple(LORENZ_SCENARIOS)}")
    preset = LORENZ_SCENARIOS[scenario]
    sigma_y = float(preset["sigma_y"] if sigma_y is None else sigma_y)
    n = int(preset["every"] if every is None else every)
    observed = tuple(sorted(int(i) for i in (preset["observed"] if observed is None else observed)))
    if not observed or not set(observed) <= {0, 1, 2}:
        raise ValueError(f"observed={observed!r}: expected a non-empty subset of (0, 1, 2)")
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    _check("sigma_y", sigma_y, 1e-3, 10.0)
    _check("every", n, 1, 32)
    _check("steps", steps, 1, MAX_STEPS)
    _check("corrections", corrections, 0, MAX_CORRECTIONS)
    _check("samples", samples, 2, MAX_SAMPLES)

    y = _lorenz_observations(index, n, observed, sigma_y, seed)
    ref = _lorenz_reference(index, n, observed, sigma_y, seed, particles, MAX_SAMPLES)
    x = _lorenz_posterior(index, n, observed, sigma_y, seed, k, method, gamma, limit, steps, corrections, samples, prior_scale)
    truth = lorenz_truth(index)
    A_traj = lambda z: CHAIN.preprocess(z)[..., ::n, list(observed)]  # noqa: E731
    scores = {
        name: (log_px(CHAIN, z).item(), log_py(z, y, A_traj, sigma_y).item())
        for name, z in (("SDA" if method == "sda" else method.upper(), x), ("particle filter", ref))
    }
    distance = w1(x, ref[:samples])
    x, ref, truth, y = (z.numpy() for z in (x, ref, truth, y))

    fig = Figure(figsize=(8, 5.6))
    axes = fig.subplots(3, 1, sharex=True)
    t = np.arange(L_LORENZ)
    for d, ax in enumerate(axes):
        plots.band(ax, t, ref[..., d].mean(0), ref[..., d].std(0), plots.REFERENCE, "particle filter (mean ± 2 std)")
        for i, xi in enumerate(x[:16]):
            ax.plot(t, xi[:, d], color=plots.POSTERIOR, alpha=0.3, lw=0.8, label="posterior samples" if i == 0 else None)
        ax.plot(t, truth[:, d], color=plots.TRUTH, lw=1, label="truth")
        if d in observed:
            raw = CHAIN.MEAN[d] + CHAIN.STD[d] * y[:, observed.index(d)]
            ax.errorbar(t[::n], raw, 2 * CHAIN.STD[d] * sigma_y, fmt="o", ms=2.5, color=plots.OBS, label="observations")
        ax.set_ylabel(plots.LORENZ_LABELS[d])
    axes[-1].set_xlabel("state index $i$ (raw units)")
    axes[0].legend(loc="upper right", fontsize=7, ncol=4)
    lines = [f"{name}: log p(x) {lpx:.0f}, log p(y|x) {lpy:.1f}" for name, (lpx, lpy) in scores.items()]
    axes[0].set_title(
        f"{method.upper()} (k = {k}, {steps} steps, C = {corrections}"
        + (f", γ = {gamma:.2g}" + (", step limiter" if limit else "") if method == "sda" else "")
        + f") vs particle filter: $W_1$ = {distance:.2f}\n" + "; ".join(lines),
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def lorenz_panel(**defaults: Any) -> Panel:
    r"""The Lorenz posterior explorer around :func:`plot_lorenz_posterior`. Choosing a scenario sets
    :math:`\sigma_y`, the interval and the observed variables; ``k`` offers the priors on disk."""

    import ipywidgets as widgets

    params = {"scenario": "lo", "k": 2, "method": "sda", "gamma": LORENZ_SAMPLING["gamma"], "limit": True, "steps": 32, "corrections": 1, "samples": 32} | defaults
    preset = LORENZ_SCENARIOS[params["scenario"]]
    params = {"sigma_y": preset["sigma_y"], "every": preset["every"], "observed": preset["observed"]} | params
    orders = sorted(set(available_orders(params.get("prior_scale", "cpu"))) | {params["k"]})
    scenario = _dropdown(list(LORENZ_SCENARIOS), params["scenario"], "scenario")
    controls = {
        "sigma_y": _slider("log", params["sigma_y"], 0.01, 1.0, 0.1, "σ_y"),
        "every": _slider("int", params["every"], 1, 16, 1, "interval"),
        "observed": widgets.SelectMultiple(options=[("x1", 0), ("x2", 1), ("x3", 2)], value=tuple(params["observed"]), rows=3, description="observed"),
        "k": _dropdown(orders, params["k"], "k"),
        "method": _dropdown(list(METHODS), params["method"], "method"),
        "gamma": _slider("log", params["gamma"], 1e-3, 1.0, 0.1, "γ"),
        "limit": _checkbox(params["limit"], LIMITER),
        "steps": _slider("int", params["steps"], 8, MAX_STEPS, 8, "steps"),
        "corrections": _slider("int", params["corrections"], 0, 4, 1, "corrections C"),
        "samples": _slider("int", params["samples"], 8, MAX_SAMPLES, 8, "samples"),
    }
    fixed = {name: value for name, value in params.items() if name not in controls and name != "scenario"}
    panel = Panel(plot_lorenz_posterior, controls, fixed, "Lorenz-63 posterior explorer", extra=[scenario])

    def preset_changed(change: dict) -> None:
        values = LORENZ_SCENARIOS[change["new"]]
        with panel.hold():
            for name in ("sigma_y", "every", "observed"):
                controls[name].value = values[name]

    scenario.observe(preset_changed, names="value")
    return panel


# --------------------------------------------------------------------------------------------------
# The diffusion explorer


def plot_diffusion(t: float = 0.3, k: int = 2, index: int = 0, seed: int = 0, prior_scale: str = "cpu") -> Figure:
    r"""A standardised Lorenz trajectory :math:`x` (test trajectory ``index``, 65 states), its noised
    :math:`x(t) = \mu_t x + \sigma_t z` and the denoised estimate
    :math:`\hat{x} = (x(t) - \sigma_t \epsilon(x(t), t)) / \mu_t` of the trained local prior of order ``k``."""

    _check("t", t, 0.0, 1.0)
    prior = prior_for_length(lorenz_window_prior(k, prior_scale), L_LORENZ)
    x = CHAIN.preprocess(lorenz_truth(index)).float()
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        xt = prior(x, t)
        x_hat = prior.denoise(xt, t)
    mu, sigma = prior.mu(t).item(), prior.sigma(t).item()
    error = (x_hat - x).square().mean().sqrt().item()
    xt, x, x_hat = xt.numpy(), x.numpy(), x_hat.numpy()

    fig = Figure(figsize=(8, 5.2))
    axes = fig.subplots(3, 1, sharex=True)
    i = np.arange(L_LORENZ)
    for d, ax in enumerate(axes):
        ax.plot(i, xt[:, d], color=plots.DATA, lw=0.8, label="noised $x(t)$")
        ax.plot(i, x[:, d], color=plots.TRUTH, lw=1, label="clean $x$")
        ax.plot(i, x_hat[:, d], color=plots.PRIOR, lw=1.5, label=r"denoised $\hat{x}$")
        ax.set_ylabel(plots.LORENZ_LABELS[d])
        ax.set_ylim(-3.5, 3.5)
    axes[-1].set_xlabel("state index $i$ (standardised units)")
    axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[0].set_title(f"t = {t:.2f}: $\\mu_t$ = {mu:.3f}, $\\sigma_t$ = {sigma:.3f}; RMSE of $\\hat{{x}}$ = {error:.3f} (k = {k})", fontsize=10)
    fig.tight_layout()
    return fig


def diffusion_panel(**defaults: Any) -> Panel:
    r"""The diffusion explorer around :func:`plot_diffusion`: the noise level ``t`` and the order ``k``."""

    params = {"t": 0.3, "k": 2, "seed": 0} | defaults
    orders = sorted(set(available_orders(params.get("prior_scale", "cpu"))) | {params["k"]})
    controls = {
        "t": _slider("float", params["t"], 0.0, 1.0, 0.02, "diffusion time t"),
        "k": _dropdown(orders, params["k"], "k"),
        "seed": _slider("int", params["seed"], 0, 9, 1, "noise seed"),
    }
    fixed = {name: value for name, value in params.items() if name not in controls}
    return Panel(plot_diffusion, controls, fixed, "Diffusion explorer: noising and denoising a Lorenz trajectory")


# --------------------------------------------------------------------------------------------------
# The Gaussian-guidance explorer


@lru_cache(maxsize=16)
def _gaussian_posterior(method, gamma, limit, zeta, sigma_y, n, L, samples, steps, corrections, seed):
    chain = LinearGaussian.rotation()
    m, C = chain.moments(L)
    prior = VPSDE(GaussianEps(m, C, (L, chain.D)), (L, chain.D))
    A = compose(every(n), select(0))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        truth = chain.trajectory(chain.prior(), L).float()
        y = observe(truth, A, sigma_y)
        x = assimilate(prior, y, A, sigma_y, method=method, gamma=gamma, limit=limit, zeta=zeta, iterations=len(y), steps=steps, corrections=corrections, tau=0.1, samples=samples)
    mean, cov = kalman_smoother(chain, y, torch.tensor([[1.0, 0.0]]), sigma_y, every=n, length=L)
    return truth, y, x.double(), mean, cov.diagonal(dim1=-2, dim2=-1).sqrt()


def plot_gaussian_guidance(
    method: str = "sda",
    gamma: float = 0.1,
    limit: bool = True,
    zeta: float = 1.0,
    sigma_y: float = 0.1,
    every: int = 4,
    L: int = 32,
    samples: int = 256,
    steps: int = 64,
    corrections: int = 1,
    seed: int = 0,
) -> Figure:
    r"""Posterior samples of a guidance (``"sda"``, ``"dps"``, ``"mmps"``) under the exact Gaussian prior
    of the damped-rotation chain (:meth:`~sda_lite.dynamics.LinearGaussian.rotation`), against its exact
    posterior (:func:`~sda_lite.baselines.kalman_smoother`), observing the first variable every ``every``
    states with noise ``sigma_y``. ``limit`` turns on SDA's step limiter (a departure from the paper, on
    by default here so that small :math:`\gamma` and :math:`\sigma_y` do not diverge). Read-outs: the RMS
    mean error in posterior standard deviations and the mean variance ratio (samples / exact)."""

    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    _check("every", every, 1, L - 1)
    _check("sigma_y", sigma_y, 1e-3, 10.0)
    _check("steps", steps, 1, MAX_STEPS)
    _check("samples", samples, 2, 4096)
    _check("corrections", corrections, 0, MAX_CORRECTIONS)
    truth, y, x, mean, sd = _gaussian_posterior(method, gamma, limit, zeta, sigma_y, every, L, samples, steps, corrections, seed)
    error = ((x.mean(0) - mean) / sd).square().mean().sqrt().item()
    ratio = (x.var(0) / sd**2).mean().item()
    truth, y, x, mean, sd = (z.numpy() for z in (truth, y, x, mean, sd))

    fig = Figure(figsize=(11, 3.3))
    axes = fig.subplots(1, 2, sharex=True)
    i = np.arange(L)
    for d, ax in enumerate(axes):
        plots.band(ax, i, mean[:, d], sd[:, d], plots.REFERENCE, "exact posterior (mean ± 2 std)")
        plots.band(ax, i, x[..., d].mean(0), x[..., d].std(0), plots.POSTERIOR, "samples (mean ± 2 std)")
        ax.plot(i, truth[:, d], color=plots.TRUTH, lw=1, label="truth")
        if d == 0:
            ax.plot(i[::every], y[:, 0], "o", ms=3, color=plots.OBS, label="observations")
        ax.set_xlabel("state index $i$")
        ax.set_ylabel(f"$x_{d + 1}$ (arbitrary units)")
        ax.set_ylim(mean[:, d].min() - 4 * sd[:, d].max(), mean[:, d].max() + 4 * sd[:, d].max())
    axes[0].legend(fontsize=7)
    setting = {"sda": f"γ = {gamma:.2g}" + (", step limiter" if limit else ""), "dps": f"ζ = {zeta:.2g}", "mmps": f"{len(y)} Krylov iterations"}[method]
    fig.suptitle(f"{method.upper()} ({setting}, C = {corrections}) vs exact: mean error {error:.2f} std, variance ratio {ratio:.2f}", fontsize=10)
    axes[0].set_title("observed variable", fontsize=9)
    axes[1].set_title("unobserved variable", fontsize=9)
    fig.tight_layout()
    return fig


def gaussian_panel(**defaults: Any) -> Panel:
    r"""The Gaussian-guidance explorer around :func:`plot_gaussian_guidance`."""

    params = {"method": "sda", "gamma": 0.1, "limit": True, "zeta": 1.0, "sigma_y": 0.1, "every": 4, "corrections": 1} | defaults
    controls = {
        "method": _dropdown(list(METHODS), params["method"], "method"),
        "gamma": _slider("log", params["gamma"], 1e-3, 10.0, 0.1, "γ (SDA)"),
        "limit": _checkbox(params["limit"], LIMITER),
        "zeta": _slider("log", params["zeta"], 0.1, 10.0, 0.1, "ζ (DPS)"),
        "sigma_y": _slider("log", params["sigma_y"], 0.01, 1.0, 0.1, "σ_y"),
        "every": _slider("int", params["every"], 1, 8, 1, "observation spacing"),
        "corrections": _slider("int", params["corrections"], 0, 4, 1, "corrections C"),
    }
    fixed = {name: value for name, value in params.items() if name not in controls}
    return Panel(plot_gaussian_guidance, controls, fixed, "Gaussian-guidance explorer: SDA, DPS and MMPS against the exact posterior")


# --------------------------------------------------------------------------------------------------
# The Kolmogorov scenario explorer


@lru_cache(maxsize=2)
def kolmogorov_truth(index: int = 0, scale_name: str = "ci") -> Tensor:
    r"""Test trajectory ``index`` of the Kolmogorov dataset of a scale (generated when missing),
    ``(L, 2, H, W)`` standardised velocities."""

    from sda_lite.data import load
    from sda_lite.kolmogorov import ensure_kolmogorov

    x = load(ensure_kolmogorov(scale=scale_name, progress=False), "test")
    if not 0 <= index < len(x):
        raise ValueError(f"index={index!r}: expected a test trajectory in [0, {len(x) - 1}]")
    return x[index]


@lru_cache(maxsize=2)
def kolmogorov_window_prior(scale_name: str = "ci") -> VPSDE:
    r"""The trained Kolmogorov window prior of a scale found by :func:`~sda_lite.train.checkpoint`
    (never trained here: train it with :func:`~sda_lite.kolmogorov.kolmogorov_prior`, else
    FileNotFoundError)."""

    config, schedule = load_configs("kolmogorov", scale_name)
    directory = checkpoint(f"kolmogorov_{scale(scale_name)}", config, schedule)
    if directory is None:
        raise FileNotFoundError(f"no trained kolmogorov_{scale(scale_name)} prior: train it first with sda_lite.kolmogorov.kolmogorov_prior({scale_name!r})")
    return load_prior(directory, config).eval()


@lru_cache(maxsize=8)
def _kolmogorov_posterior(name, overrides, index, seed, data_scale, prior_scale, samples, steps) -> Tensor:
    from sda_lite.scenarios import scenario

    x = kolmogorov_truth(index, data_scale)
    s = scenario(name, x, seed=seed, **dict(overrides))
    prior = prior_for_length(kolmogorov_window_prior(prior_scale), len(x))
    paper = sampling("kolmogorov", name)  # the paper's gamma, corrections and tau
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return assimilate(prior, s.y, s.A, s.std, gamma=paper["gamma"], steps=steps, corrections=paper["corrections"], tau=paper["tau"], samples=samples)


def _observed_images(s, x: Tensor, states: list[int]) -> tuple[list[Tensor], str]:
    r"""The observations of ``states`` as images (NaN where nothing is observed) and what they show."""

    from sda_lite.fields import vorticity
    from sda_lite.scenarios import annulus

    y, n, (H, W) = s.y, s.settings["every"], x.shape[-2:]
    if s.name in ("assimilation", "extrapolation"):
        return [vorticity(y[i // n]) for i in states], f"vorticity of the observed (coarsened) velocity, {y.shape[-2]}x{y.shape[-1]}"
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
    r"""An observation scenario of :mod:`sda_lite.scenarios` on Kolmogorov test trajectory ``index``:
    the true vorticity of (up to four of) the observed states, the observations as images, and, when
    ``samples > 0``, the vorticity of an SDA posterior sample (a trained prior is needed, see
    :func:`kolmogorov_window_prior`) with the residual :math:`\mathrm{std}(A(x) - y) / \sigma_y`.

    ``sigma_y`` overrides the scenario's noise; ``factor`` its coarsening factor (assimilation,
    extrapolation, saturation) or its pixel stride (sparse), and is ignored by the others.
    """

    from sda_lite.fields import vorticity
    from sda_lite.kolmogorov import plot_vorticity
    from sda_lite.scenarios import SCENARIOS
    from sda_lite.scenarios import scenario as make

    if scenario not in SCENARIOS:
        raise ValueError(f"scenario={scenario!r}: expected one of {SCENARIOS}")
    _check("samples", samples, 0, 4)
    _check("steps", steps, 1, MAX_STEPS)
    overrides = {}
    if sigma_y is not None:
        _check("sigma_y", sigma_y, 1e-3, 10.0)
        overrides["std"] = float(sigma_y)
    if factor is not None and scenario in ("assimilation", "extrapolation", "saturation"):
        overrides["factor"] = int(factor)
    elif factor is not None and scenario == "sparse":
        overrides["stride"] = int(factor)
    x = kolmogorov_truth(index, data_scale)
    s = make(scenario, x, seed=seed, **overrides)
    L = len(x)
    states = {"event": [L - 1], "loop": [0, L - 1]}.get(scenario, list(range(0, L, s.settings["every"]))[:4])
    observed, what = _observed_images(s, x, states)

    rows = 3 if samples > 0 else 2
    fig = Figure(figsize=(max(2.3 * len(states) + 1.2, 6), 2.4 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, len(states), squeeze=False)
    truth = vorticity(x[states])
    vmax = float(truth.abs().max())
    plot_vorticity(truth, axes=axes[0], titles=[f"truth, state {i}" for i in states], vmax=vmax, label="vorticity $\\omega$")
    o = torch.stack([torch.as_tensor(image, dtype=torch.float32) for image in observed])
    plot_vorticity(o, axes=axes[1, : len(o)], titles=[f"observed, state {i}" for i in states], vmax=float(o.nan_to_num().abs().max()) or 1.0, label="observed")
    for ax in axes[1, len(o) :]:
        ax.set_axis_off()
    title = f"scenario {scenario}: $\\sigma_y$ = {s.std:g}, " + ", ".join(f"{k} {v}" for k, v in s.settings.items() if k not in ("std",))
    title += f"\nsecond row: {what}"
    if samples > 0:
        post = _kolmogorov_posterior(scenario, tuple(sorted(overrides.items())), index, seed, data_scale, prior_scale, samples, steps)
        plot_vorticity(vorticity(post[0, states]), axes=axes[2], titles=[f"SDA sample, state {i}" for i in states], vmax=vmax, label="vorticity $\\omega$")
        title += f"\nSDA ({samples} samples, {steps} steps, the paper's γ, C and τ): residual std(A(x) - y) / $\\sigma_y$ = {s.residual(post):.2f}"
    fig.suptitle(title, fontsize=9)
    return fig


def kolmogorov_panel(**defaults: Any) -> Panel:
    r"""The Kolmogorov scenario explorer around :func:`plot_kolmogorov_scenario`: the scenario,
    :math:`\sigma_y`, the coarsening factor or pixel stride, and posterior samples (0: none)."""

    from sda_lite.scenarios import SCENARIOS

    params = {"scenario": "assimilation", "sigma_y": 0.1, "factor": 4, "samples": 0} | defaults
    controls = {
        "scenario": _dropdown(list(SCENARIOS), params["scenario"], "scenario"),
        "sigma_y": _slider("log", params["sigma_y"], 0.01, 1.0, 0.1, "σ_y"),
        "factor": _dropdown([1, 2, 4, 8], params["factor"], "coarsening / stride"),
        "samples": _slider("int", params["samples"], 0, 4, 1, "SDA samples"),
    }
    fixed = {name: value for name, value in params.items() if name not in controls}
    return Panel(plot_kolmogorov_scenario, controls, fixed, "Kolmogorov scenario explorer")
