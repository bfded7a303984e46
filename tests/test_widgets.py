import base64
import io
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

import sda_lite.train as T
from sda_lite import widgets as W
from sda_lite.train import build_prior, lorenz_configs

lorenz_window_prior = W.lorenz_window_prior  # the real lookup, before the fixture replaces it


@pytest.fixture(autouse=True)
def tiny(monkeypatch):
    r"""Untrained ci-sized priors instead of the checkpoints, and empty caches."""

    def fake(k, scale_name="cpu", train=True):
        torch.manual_seed(k)
        return build_prior(lorenz_configs("local", k, "ci")[0]).eval()

    monkeypatch.setattr(W, "lorenz_window_prior", fake)
    monkeypatch.setattr(W, "available_orders", lambda scale_name="cpu", orders=(1, 2, 3, 4): [1, 2])
    for f in (W._lorenz_posterior, W._lorenz_reference, W._gaussian_posterior):
        f.cache_clear()
    yield


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)


def titles(fig: Figure) -> str:
    return " ".join([ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""])


LORENZ = dict(steps=2, samples=4, particles=64)


@pytest.mark.parametrize(
    "params",
    [
        dict(scenario="lo"),
        dict(scenario="hi", method="mmps", corrections=2, k=1),
        dict(sigma_y=0.01, every=16, observed=(2,), method="dps", gamma=1e-3),
        dict(sigma_y=1.0, every=1, observed=(0, 1, 2), gamma=1.0, corrections=0, samples=8),
    ],
)
def test_plot_lorenz_posterior_corners(params):
    fig = W.plot_lorenz_posterior(**(LORENZ | params))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    text = titles(fig)
    assert "$W_1$ =" in text and "log p(y|x)" in text and "nan" not in text
    observed = params.get("observed", (0,))
    for d, ax in enumerate(fig.axes):
        has_obs = any(c.get_label() == "observations" for c in ax.containers)
        assert has_obs == (d in observed)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(scenario="mid"), "scenario"),
        (dict(method="enkf"), "method"),
        (dict(observed=()), "observed"),
        (dict(observed=(3,)), "observed"),
        (dict(steps=W.MAX_STEPS + 1), "steps"),
        (dict(samples=W.MAX_SAMPLES + 1), "samples"),
        (dict(corrections=-1), "corrections"),
    ],
)
def test_plot_lorenz_posterior_rejects_bad_values(params, match):
    with pytest.raises(ValueError, match=match):
        W.plot_lorenz_posterior(**(LORENZ | params))


def test_lorenz_posterior_is_deterministic():
    a = W._png(W.plot_lorenz_posterior(**LORENZ))
    W._lorenz_posterior.cache_clear()
    W._lorenz_reference.cache_clear()
    b = W._png(W.plot_lorenz_posterior(**LORENZ))
    assert np.array_equal(pixels(a), pixels(b))


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("k", [1, 2])
def test_plot_diffusion_corners(t, k):
    fig = W.plot_diffusion(t=t, k=k)
    assert len(fig.axes) == 3
    lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].get_lines()}
    assert set(lines) == {"noised $x(t)$", "clean $x$", r"denoised $\hat{x}$"}
    assert all(np.isfinite(v).all() for v in lines.values())
    if t == 0.0:  # no noise: x(0) = x up to eta
        assert np.abs(lines["noised $x(t)$"] - lines["clean $x$"]).max() < 0.05
    with pytest.raises(ValueError, match="t="):
        W.plot_diffusion(t=1.5)


GAUSS = dict(samples=64, steps=8, L=12)


@pytest.mark.parametrize(
    "params",
    [
        dict(method="sda", gamma=1e-3, sigma_y=0.01, every=1, corrections=0),
        dict(method="sda", gamma=10.0, sigma_y=1.0, every=8, corrections=4),
        dict(method="dps", zeta=0.1),
        dict(method="dps", zeta=10.0, every=1),
        dict(method="mmps", every=2),
    ],
)
def test_plot_gaussian_guidance_corners(params):
    fig = W.plot_gaussian_guidance(**(GAUSS | params))
    assert len(fig.axes) == 2
    assert params["method"].upper() in titles(fig) and "variance ratio" in titles(fig)


def test_gaussian_guidance_mmps_is_exact():
    W.plot_gaussian_guidance(method="mmps", samples=512, steps=32, L=12, every=4)
    truth, y, x, mean, sd = W._gaussian_posterior("mmps", 0.1, False, 1.0, 0.1, 4, 12, 512, 32, 1, 0)
    assert ((x.mean(0) - mean) / sd).square().mean().sqrt() < 0.2
    assert 0.7 < (x.var(0) / sd**2).mean() < 1.3


# --------------------------------------------------------------------------------------------------
# Panels: set the controls, look at the result (ipywidgets swallows exceptions in callbacks)


def test_panel_updates_caches_and_shows_errors():
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
    panel = W.Panel(plot, {"a": a}, fixed={"b": "y"})
    assert threads == [1] and torch.get_num_threads() == before  # one thread while drawing, restored
    first = panel.image.value
    assert calls == [(1, "y")] and pixels(first).shape[1] > 0
    a.value = 3
    assert calls[-1] == (3, "y") and pixels(panel.image.value).shape[1] > pixels(first).shape[1]
    a.value = 1  # back: from the cache
    assert len(calls) == 2 and panel.image.value == first
    a.value = -1
    assert "error" in panel.status.value and "a=-1" in panel.status.value
    with panel.hold():
        a.value = 2
        a.value = 0
    assert calls[-1] == (0, "y") and (2, "y") not in calls
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == panel.image.value


def test_lorenz_panel_callbacks():
    panel = W.lorenz_panel(**LORENZ)
    assert "figure in" in panel.status.value, panel.status.value
    first = panel.image.value
    panel.controls["method"].value = "dps"
    assert "figure in" in panel.status.value and panel.image.value != first
    scenario = panel.widget.children[1].children[0]
    scenario.value = "hi"  # a preset sets three controls, one figure
    assert panel.controls["every"].value == 1 and panel.controls["sigma_y"].value == pytest.approx(0.25)
    assert panel.params["every"] == 1 and "figure in" in panel.status.value
    panel.controls["observed"].value = ()
    assert "error" in panel.status.value and "observed" in panel.status.value
    panel.controls["observed"].value = (0, 2)
    assert "figure in" in panel.status.value


def test_diffusion_and_gaussian_panels_callbacks():
    panel = W.diffusion_panel()
    first = panel.image.value
    panel.controls["t"].value = 0.9
    assert "figure in" in panel.status.value and panel.image.value != first
    panel.controls["k"].value = 1
    assert "figure in" in panel.status.value

    panel = W.gaussian_panel(**GAUSS)
    first = panel.image.value
    for method in ("dps", "mmps", "sda"):
        panel.controls["method"].value = method
        assert "figure in" in panel.status.value, panel.status.value
    panel.controls["every"].value = 8
    panel.controls["sigma_y"].value = 1.0
    assert "figure in" in panel.status.value and panel.image.value != first


# --------------------------------------------------------------------------------------------------
# Checkpoints


def test_lorenz_checkpoint_finds_the_shipped_prior(tmp_path, monkeypatch):
    r"""The lookup itself (order, matching) is tested with sda_lite.train.checkpoint in test_train.py."""

    monkeypatch.setenv("SDA_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(T, "SHIPPED", tmp_path / "shipped")
    assert W.lorenz_checkpoint(1, "ci") is None
    config, schedule = lorenz_configs("local", 1, "ci")
    trained = {"ema": None, "bf16": False, "seed": 0, **schedule}  # as train() records it
    meta = {"model": config, "train": trained, "progress": {"epoch": schedule["epochs"], "step": 0, "history": {}}}
    shipped = tmp_path / "shipped" / "lorenz_local_k1_ci"
    shipped.mkdir(parents=True)
    (shipped / "config.json").write_text(json.dumps(meta))
    assert W.lorenz_checkpoint(1, "ci") == shipped


@pytest.mark.skipif(not (T.SHIPPED / "lorenz_local_k2_cpu").exists(), reason="no shipped checkpoint")
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
    r"""A random 8-state trajectory on the 32 x 32 grid instead of the dataset, an untrained ci prior."""

    from sda_lite.train import load_configs

    x = torch.randn(8, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(W, "kolmogorov_truth", lambda index=0, scale_name="ci": x)
    torch.manual_seed(0)
    prior = build_prior(load_configs("kolmogorov", "ci")[0]).eval()
    monkeypatch.setattr(W, "kolmogorov_window_prior", lambda scale_name="ci": prior)
    W._kolmogorov_posterior.cache_clear()
    return x


@pytest.mark.parametrize(
    "params",
    [
        dict(scenario="assimilation", factor=1, sigma_y=0.01),
        dict(scenario="assimilation", factor=8, sigma_y=1.0),
        dict(scenario="extrapolation", factor=8),
        dict(scenario="saturation", factor=2),
        dict(scenario="sparse", factor=1),
        dict(scenario="sparse", factor=8, sigma_y=1.0),
        dict(scenario="event", factor=8),
        dict(scenario="loop"),
    ],
)
def test_plot_kolmogorov_scenario_corners(flow, params):
    fig = W.plot_kolmogorov_scenario(**params)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) >= 2  # truth and observations
    assert all(np.isfinite(np.ma.filled(a, 0.0)).any() for a in images)
    title = fig._suptitle.get_text()
    assert params["scenario"] in title
    if "sigma_y" in params:
        assert f"= {params['sigma_y']:g}," in title
    if params["scenario"] == "sparse":
        assert f"stride {params['factor']}" in title


def test_plot_kolmogorov_scenario_samples_and_errors(flow):
    fig = W.plot_kolmogorov_scenario("assimilation", samples=1, steps=2)
    assert "residual" in fig._suptitle.get_text()
    assert sum(1 for ax in fig.axes if ax.images) == 6  # three rows of the two observed states, 0 and 4
    with pytest.raises(ValueError, match="scenario"):
        W.plot_kolmogorov_scenario("tornado")
    with pytest.raises(ValueError, match="samples"):
        W.plot_kolmogorov_scenario(samples=5)


def test_kolmogorov_panel_callbacks(flow):
    panel = W.kolmogorov_panel()
    assert "figure in" in panel.status.value, panel.status.value
    first = panel.image.value
    for name in ("sparse", "event", "loop", "saturation"):
        panel.controls["scenario"].value = name
        assert "figure in" in panel.status.value, (name, panel.status.value)
    panel.controls["factor"].value = 8
    panel.controls["sigma_y"].value = 0.5
    assert "figure in" in panel.status.value and panel.image.value != first


def test_kolmogorov_prior_is_never_trained_here(tmp_path, monkeypatch):
    monkeypatch.setenv("SDA_DATA", str(tmp_path))
    monkeypatch.setattr(T, "SHIPPED", tmp_path / "shipped")
    W.kolmogorov_window_prior.cache_clear()
    with pytest.raises(FileNotFoundError, match="kolmogorov_prior"):
        W.kolmogorov_window_prior("ci")
