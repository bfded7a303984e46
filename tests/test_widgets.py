r"""The interactive panels of sda_lite.widgets, against independent references.

The pure plotting functions are checked on what they draw (the data of their lines, bands and
images) against quantities computed here (the truth, the Kalman posterior, the noising formula);
the panels are checked to show exactly the figure of the pure function at their current settings.
Untrained ci-sized priors replace the checkpoints, so that the file runs in seconds.
"""

import base64
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import sda_lite.train as T
import sda_lite.widgets as W
from sda_lite import plots
from sda_lite.baselines import kalman_smoother
from sda_lite.dynamics import LinearGaussian
from sda_lite.train import build_prior, lorenz_configs
from sda_lite.widgets import diffusion, gaussian, kolmogorov, lorenz
from sda_lite.widgets.panel import Panel, figure_png

lorenz_window_prior = lorenz.lorenz_window_prior  # the real lookup, before the fixture replaces it

LORENZ = dict(steps=2, samples=4, particles=64)  # the smallest posterior: for the pure function
LORENZ_PANEL = dict(steps=8, samples=8, particles=64)  # the smallest the panel's sliders allow
GAUSS = dict(samples=64, steps=8, L=12)


def fake_prior(k, scale_name="cpu", train=True):
    torch.manual_seed(k)
    return build_prior(lorenz_configs("local", k, "ci")[0]).eval()


@pytest.fixture(autouse=True)
def tiny(monkeypatch):
    r"""Untrained ci-sized priors instead of the checkpoints (in each module that looks them up),
    and empty caches."""

    for module in (lorenz, diffusion):
        monkeypatch.setattr(module, "lorenz_window_prior", fake_prior)
        monkeypatch.setattr(module, "available_orders", lambda scale_name="cpu", orders=(): [1, 2])
    for f in (lorenz._lorenz_posterior, lorenz._lorenz_reference, gaussian._gaussian_posterior):
        f.cache_clear()
    yield


def shipped(monkeypatch, path):
    r"""Points the checkpoint lookup's shipped directory to ``path``, in the module that defines it."""

    monkeypatch.setattr(sys.modules[T.checkpoint.__module__], "SHIPPED", path)


def lines(ax: Axes) -> dict[str, np.ndarray]:
    r"""The y-data of the labelled lines of an axis, by label."""

    return {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()}


def band(ax: Axes, index: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The lower and upper edges of the ``index``-th band (``fill_between``) of an axis, by x."""

    vertices = ax.collections[index].get_paths()[0].vertices
    xs = np.unique(vertices[:, 0])
    low = np.array([vertices[vertices[:, 0] == x, 1].min() for x in xs])
    high = np.array([vertices[vertices[:, 0] == x, 1].max() for x in xs])
    return low, high


def shows(panel: Panel, plot, **changes) -> bool:
    r"""Whether the panel shows the figure of the pure function at its parameters (and ``changes``)."""

    return panel.image.value == figure_png(plot(**(panel.params | changes)))


# --------------------------------------------------------------------------------------------------
# Bad values: a ValueError naming the parameter and the value given, and what was expected


@pytest.mark.parametrize(
    "plot, params, name, value",
    [
        (W.plot_lorenz_posterior, dict(scenario="mid"), "scenario", "mid"),
        (W.plot_lorenz_posterior, dict(method="enkf"), "method", "enkf"),
        (W.plot_lorenz_posterior, dict(observed=()), "observed", ()),
        (W.plot_lorenz_posterior, dict(observed=(3,)), "observed", (3,)),
        (W.plot_lorenz_posterior, dict(sigma_y=0.0), "sigma_y", 0.0),
        (W.plot_lorenz_posterior, dict(every=33), "every", 33),
        (W.plot_lorenz_posterior, dict(steps=W.MAX_STEPS + 1), "steps", W.MAX_STEPS + 1),
        (W.plot_lorenz_posterior, dict(samples=W.MAX_SAMPLES + 1), "samples", W.MAX_SAMPLES + 1),
        (W.plot_lorenz_posterior, dict(corrections=-1), "corrections", -1),
        (W.plot_diffusion, dict(t=1.5), "t", 1.5),
        (W.plot_gaussian_guidance, dict(method="enkf"), "method", "enkf"),
        (W.plot_gaussian_guidance, dict(every=12), "every", 12),
        (W.plot_gaussian_guidance, dict(sigma_y=20.0), "sigma_y", 20.0),
        (W.plot_gaussian_guidance, dict(corrections=W.MAX_CORRECTIONS + 1), "corrections", 9),
        (W.plot_kolmogorov_scenario, dict(scenario="tornado"), "scenario", "tornado"),
        (W.plot_kolmogorov_scenario, dict(samples=5), "samples", 5),
        (W.plot_kolmogorov_scenario, dict(steps=0), "steps", 0),
        (W.plot_kolmogorov_scenario, dict(sigma_y=0.0), "sigma_y", 0.0),
    ],
)
def test_bad_values_raise_naming_the_parameter(plot, params, name, value):
    defaults = {W.plot_lorenz_posterior: LORENZ, W.plot_gaussian_guidance: GAUSS}.get(plot, {})
    with pytest.raises(ValueError, match=rf"^{name}={re.escape(repr(value))}: expected "):
        plot(**(defaults | params))


# --------------------------------------------------------------------------------------------------
# Lorenz-63


@pytest.mark.parametrize(
    "params, every, observed",
    [
        (dict(scenario="lo"), 8, (0,)),
        (dict(scenario="hi", method="mmps", corrections=2, k=1), 1, (0,)),
        (dict(sigma_y=0.01, every=16, observed=(2,), method="dps", gamma=1e-3), 16, (2,)),
        (dict(sigma_y=1.0, every=1, observed=(2, 0, 1), corrections=0, samples=8), 1, (0, 1, 2)),
    ],
)
def test_plot_lorenz_posterior_draws_truth_observations_and_samples(params, every, observed):
    fig = W.plot_lorenz_posterior(**(LORENZ | params))
    truth = W.lorenz_truth(0).numpy()
    sigma_y = params.get("sigma_y", W.LORENZ_SCENARIOS[params.get("scenario", "lo")]["sigma_y"])
    assert len(fig.axes) == 3
    for d, ax in enumerate(fig.axes):
        drawn = lines(ax)
        np.testing.assert_allclose(drawn["truth"], truth[:, d])
        samples = [
            line.get_ydata() for line in ax.get_lines() if line.get_color() == plots.POSTERIOR
        ]
        assert len(samples) == min(16, (LORENZ | params)["samples"]) and np.isfinite(samples).all()
        marks = [c for c in ax.containers if c.get_label() == "observations"]
        assert len(marks) == (d in observed)
        if marks:  # y = x* + noise, at every `every`-th state, in raw units
            t, y = marks[0].lines[0].get_data()
            np.testing.assert_array_equal(t, np.arange(W.L_LORENZ)[::every])
            assert np.abs(y - truth[::every, d]).max() < 5 * sigma_y * W.CHAIN.STD[d]
    assert "nan" not in fig.axes[0].get_title()


def test_plot_lorenz_posterior_is_deterministic():
    first = figure_png(W.plot_lorenz_posterior(**LORENZ))
    lorenz._lorenz_posterior.cache_clear()
    lorenz._lorenz_reference.cache_clear()
    assert figure_png(W.plot_lorenz_posterior(**LORENZ)) == first


def test_lorenz_panel_shows_the_pure_figure_and_redraws_on_changes():
    panel = W.lorenz_panel(**LORENZ_PANEL)
    assert panel.params == LORENZ_PANEL | {
        "sigma_y": 0.05,
        "every": 8,
        "observed": (0,),
        "k": 2,
        "method": "sda",
        "gamma": W.LORENZ_SAMPLING["gamma"],
        "limit": True,
        "corrections": 1,
    }
    assert panel.controls["limit"].description == "step limiter (not in the paper)"
    assert shows(panel, W.plot_lorenz_posterior)
    first = panel.image.value

    panel.controls["method"].value = "dps"
    assert panel.params["method"] == "dps" and shows(panel, W.plot_lorenz_posterior)
    assert panel.image.value != first

    calls = []
    plot, panel.plot = panel.plot, lambda **params: calls.append(params) or plot(**params)
    scenario = panel.widget.children[1].children[0]
    scenario.value = "hi"  # a preset sets three controls: one figure
    assert len(calls) == 1 and calls[0]["every"] == 1 and calls[0]["sigma_y"] == pytest.approx(0.25)
    assert shows(panel, W.plot_lorenz_posterior)

    shown = panel.image.value
    panel.controls["observed"].value = ()  # an error: shown, and the figure stays
    with pytest.raises(ValueError) as error:
        W.plot_lorenz_posterior(**panel.params)
    assert str(error.value) in panel.status.value and panel.image.value == shown
    panel.controls["observed"].value = (0, 2)
    assert shows(panel, W.plot_lorenz_posterior) and panel.image.value != shown


# --------------------------------------------------------------------------------------------------
# Diffusion


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0])
def test_plot_diffusion_noises_as_mu_x_plus_sigma_z(t):
    fig = W.plot_diffusion(t=t, k=1)
    prior = fake_prior(1)
    mu, sigma = prior.mu(t).item(), prior.sigma(t).item()
    x = W.CHAIN.preprocess(W.lorenz_truth(0)).float().numpy()
    drawn = [lines(ax) for ax in fig.axes]
    assert len(drawn) == 3 and set(drawn[0]) == {
        "noised $x(t)$",
        "clean $x$",
        r"denoised $\hat{x}$",
    }
    clean = np.stack([d["clean $x$"] for d in drawn], -1)
    noised = np.stack([d["noised $x(t)$"] for d in drawn], -1)
    denoised = np.stack([d[r"denoised $\hat{x}$"] for d in drawn], -1)
    np.testing.assert_allclose(clean, x, rtol=1e-6)
    z = (noised - mu * clean) / sigma  # 195 standard normal draws
    assert abs(z.mean()) < 0.3 and 0.75 < z.std() < 1.25
    assert np.isfinite(denoised).all()


def test_diffusion_panel_shows_the_pure_figure_and_redraws_on_changes():
    panel = W.diffusion_panel()
    assert panel.params == {"t": 0.3, "k": 2, "seed": 0}
    assert shows(panel, W.plot_diffusion)
    first = panel.image.value
    panel.controls["t"].value = 0.9
    assert (
        panel.params["t"] == 0.9 and shows(panel, W.plot_diffusion) and panel.image.value != first
    )
    panel.controls["k"].value = 1
    assert shows(panel, W.plot_diffusion)


# --------------------------------------------------------------------------------------------------
# Gaussian guidance


def test_gaussian_mmps_matches_the_kalman_posterior():
    r"""The exact posterior drawn is the Kalman smoother's of the observations drawn, and MMPS's
    samples match it in mean and variance."""

    sigma_y, every, L = 0.1, 4, 12
    fig = W.plot_gaussian_guidance("mmps", samples=512, steps=32, L=L, every=every, sigma_y=sigma_y)
    observed = fig.axes[0]
    y = lines(observed)["observations"]
    np.testing.assert_array_equal(
        [line.get_xdata() for line in observed.get_lines() if line.get_label() == "observations"][
            0
        ],
        np.arange(L)[::every],
    )
    H = torch.tensor([[1.0, 0.0]])
    chain = LinearGaussian.rotation()
    mean, cov = kalman_smoother(chain, torch.tensor(y)[:, None], H, sigma_y, every, L)
    mean, sd = mean.numpy(), cov.diagonal(dim1=-2, dim2=-1).sqrt().numpy()
    for d, ax in enumerate(fig.axes):
        drawn = lines(ax)
        exact = drawn["exact posterior (mean ± 2 std)"]
        np.testing.assert_allclose(exact, mean[:, d], rtol=1e-4, atol=1e-6)
        low, high = band(ax, 0)
        np.testing.assert_allclose((high - low) / 4, sd[:, d], rtol=1e-4, atol=1e-6)
        samples_mean = drawn["samples (mean ± 2 std)"]
        low, high = band(ax, 1)
        samples_sd = (high - low) / 4
        assert np.sqrt(np.mean(((samples_mean - mean[:, d]) / sd[:, d]) ** 2)) < 0.25
        assert 0.7 < np.mean(samples_sd**2 / sd[:, d] ** 2) < 1.3


@pytest.mark.parametrize(
    "params",
    [
        dict(method="sda", gamma=1e-3, sigma_y=0.01, every=1, corrections=0),
        dict(method="sda", gamma=10.0, sigma_y=1.0, every=8, corrections=4, limit=False),
        dict(method="dps", zeta=0.1),
        dict(method="dps", zeta=10.0, every=1),
    ],
)
def test_plot_gaussian_guidance_draws_the_exact_posterior_whatever_the_method(params):
    fig = W.plot_gaussian_guidance(**(GAUSS | params))
    reference = W.plot_gaussian_guidance(**(GAUSS | params | dict(method="mmps")))
    for ax, ref in zip(fig.axes, reference.axes, strict=True):
        drawn, exact = lines(ax), lines(ref)
        for label in ("exact posterior (mean ± 2 std)", "truth", "observations"):
            if label in exact:
                np.testing.assert_array_equal(drawn[label], exact[label])
        assert np.isfinite(drawn["samples (mean ± 2 std)"]).all()
    assert len(lines(fig.axes[0])["observations"]) == len(
        range(0, GAUSS["L"], params.get("every", 4))
    )


def test_gaussian_panel_shows_the_pure_figure_and_redraws_on_changes():
    panel = W.gaussian_panel(**GAUSS)
    assert panel.params == GAUSS | {
        "method": "sda",
        "gamma": 0.1,
        "limit": True,
        "zeta": 1.0,
        "sigma_y": 0.1,
        "every": 4,
        "corrections": 1,
    }
    assert panel.controls["limit"].description == "step limiter (not in the paper)"
    assert shows(panel, W.plot_gaussian_guidance)
    first = panel.image.value
    for method in ("dps", "mmps"):
        panel.controls["method"].value = method
        assert panel.params["method"] == method and shows(panel, W.plot_gaussian_guidance)
    with panel.hold():
        panel.controls["every"].value = 8
        panel.controls["sigma_y"].value = 1.0
    assert shows(panel, W.plot_gaussian_guidance) and panel.image.value != first


# --------------------------------------------------------------------------------------------------
# The panel itself


def test_panel_draws_caches_holds_and_shows_errors():
    calls, threads = [], []

    def plot(a=1, b="x"):
        calls.append((a, b))
        threads.append(torch.get_num_threads())
        if a < 0:
            raise ValueError(f"a={a}: expected >= 0")
        fig = Figure(figsize=(1 + a, 1))
        fig.add_subplot().set_title(b)
        return fig

    import ipywidgets as widgets

    a = widgets.IntSlider(value=1, min=-1, max=3)
    before = torch.get_num_threads()
    panel = Panel(plot, {"a": a}, fixed={"b": "y"})
    assert (
        threads == [1] and torch.get_num_threads() == before
    )  # one thread while drawing, restored
    assert calls == [(1, "y")] and panel.image.value == figure_png(plot(1, "y"))
    first, calls[:] = panel.image.value, []
    a.value = 3
    assert calls == [(3, "y")] and panel.image.value == figure_png(plot(3, "y"))
    calls[:] = []
    a.value = 1  # back: from the cache
    assert calls == [] and panel.image.value == first
    a.value = -1  # an error: shown (ipywidgets would swallow it), and the figure stays
    assert "ValueError: a=-1: expected >= 0" in panel.status.value and panel.image.value == first
    calls[:] = []
    with panel.hold():  # one figure for several changes
        a.value = 2
        a.value = 0
    assert calls == [(0, "y")] and panel.image.value == figure_png(plot(0, "y"))
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == panel.image.value


# --------------------------------------------------------------------------------------------------
# Checkpoints


def test_lorenz_checkpoint_finds_the_shipped_prior(tmp_path, monkeypatch):
    r"""The lookup itself (order, matching) is tested with the checkpoint lookup's own tests."""

    monkeypatch.setenv("SDA_DATA", str(tmp_path / "data"))
    shipped(monkeypatch, tmp_path / "shipped")
    assert W.lorenz_checkpoint(1, "ci") is None
    config, schedule = lorenz_configs("local", 1, "ci")
    trained = {"ema": None, "bf16": False, "seed": 0, **schedule}  # as train() records it
    progress = {"epoch": schedule["epochs"], "step": 0, "history": {}}
    meta = {"model": config, "train": trained, "progress": progress}
    directory = tmp_path / "shipped" / "lorenz_local_k1_ci"
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(meta))
    assert W.lorenz_checkpoint(1, "ci") == directory


@pytest.mark.skipif(
    not (T.SHIPPED / "lorenz_local_k2_cpu").exists(), reason="no shipped checkpoint"
)
def test_shipped_checkpoints_load_and_are_small():
    for directory in T.SHIPPED.iterdir():
        if directory.is_dir():
            assert sum(f.stat().st_size for f in directory.iterdir()) <= 5 * 2**20, directory
    prior = lorenz_window_prior.__wrapped__(2, "cpu", train=False)
    x = torch.randn(4, *prior.shape)
    assert torch.isfinite(prior.denoise(x, 0.5)).all()


# --------------------------------------------------------------------------------------------------
# Kolmogorov


@pytest.fixture
def flow(monkeypatch):
    r"""A random 8-state trajectory on the 32 x 32 grid instead of the dataset, an untrained ci
    prior."""

    from sda_lite.train import load_configs

    x = torch.randn(8, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(kolmogorov, "kolmogorov_truth", lambda index=0, scale_name="ci": x)
    torch.manual_seed(0)
    prior = build_prior(load_configs("kolmogorov", "ci")[0]).eval()
    monkeypatch.setattr(kolmogorov, "kolmogorov_window_prior", lambda scale_name="ci": prior)
    kolmogorov._kolmogorov_posterior.cache_clear()
    return x


def image_rows(fig: Figure) -> dict[str, dict[int, np.ndarray]]:
    r"""The images of a Kolmogorov figure by kind (``truth``, ``observed``, ``SDA sample``) and state,
    read from the axes' titles."""

    rows: dict[str, dict[int, np.ndarray]] = {}
    for ax in fig.axes:
        if ax.images:
            kind, state = ax.get_title().rsplit(", state ", 1)
            rows.setdefault(kind, {})[int(state)] = np.ma.filled(ax.images[0].get_array(), np.nan)
    return rows


@pytest.mark.parametrize(
    "params, states",
    [
        (dict(scenario="assimilation", factor=1, sigma_y=0.01), [0, 4]),
        (dict(scenario="assimilation", factor=8, sigma_y=1.0), [0, 4]),
        (dict(scenario="extrapolation", factor=8), None),
        (dict(scenario="saturation", factor=2), None),
        (dict(scenario="sparse", factor=1), None),
        (dict(scenario="sparse", factor=8, sigma_y=1.0), None),
        (dict(scenario="event", factor=8), [7]),
        (dict(scenario="loop"), [0, 7]),
    ],
)
def test_plot_kolmogorov_scenario_draws_the_truth_and_the_observations(flow, params, states):
    from sda_lite.fields import vorticity

    rows = image_rows(W.plot_kolmogorov_scenario(**params))
    assert set(rows) == {"truth", "observed"}
    if states is not None:
        assert sorted(rows["truth"]) == states
    for i, image in rows["truth"].items():
        np.testing.assert_allclose(image, vorticity(flow[i]).numpy(), rtol=1e-5, atol=1e-5)
    assert all(np.isfinite(image).any() for image in rows["observed"].values())
    if params["scenario"] == "sparse":  # observed at every r-th pixel only
        r = params["factor"]
        for image in rows["observed"].values():
            mask = np.zeros((32, 32), dtype=bool)
            mask[::r, ::r] = True
            assert np.isfinite(image[mask]).all() and not np.isfinite(image[~mask]).any()


def test_plot_kolmogorov_scenario_draws_posterior_samples(flow):
    rows = image_rows(W.plot_kolmogorov_scenario("assimilation", samples=1, steps=2))
    assert set(rows) == {"truth", "observed", "SDA sample"}
    assert sorted(rows["SDA sample"]) == sorted(rows["truth"])
    assert all(np.isfinite(image).all() for image in rows["SDA sample"].values())


def test_kolmogorov_panel_shows_the_pure_figure_and_redraws_on_changes(flow):
    panel = W.kolmogorov_panel()
    assert panel.params == {"scenario": "assimilation", "sigma_y": 0.1, "factor": 4, "samples": 0}
    assert shows(panel, W.plot_kolmogorov_scenario)
    first = panel.image.value
    for name in ("sparse", "loop"):
        panel.controls["scenario"].value = name
        assert panel.params["scenario"] == name and shows(panel, W.plot_kolmogorov_scenario)
    panel.controls["factor"].value = 8
    assert panel.params["factor"] == 8 and shows(panel, W.plot_kolmogorov_scenario)
    assert panel.image.value != first


def test_kolmogorov_prior_is_never_trained_here(tmp_path, monkeypatch):
    monkeypatch.setenv("SDA_DATA", str(tmp_path))
    shipped(monkeypatch, tmp_path / "shipped")
    W.kolmogorov_window_prior.cache_clear()
    with pytest.raises(FileNotFoundError, match="kolmogorov_prior"):
        W.kolmogorov_window_prior("ci")
