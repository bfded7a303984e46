r"""The calibration explorer of sda_lite.widgets, against independent references.

The pure plotting function is checked on what it draws (its reliability curves, rank histogram and
spread-skill lines) against quantities computed here: the Kalman smoother's marginals for the
judges, the nominal levels for exact samples, the ordering of miscalibrated settings; the panel is
checked to show exactly the figure of the pure function at its current settings.
"""

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

import sda_lite.widgets as W
from sda_lite.baselines import kalman_smoother
from sda_lite.calibration import coverage
from sda_lite.linear import LinearGaussian
from sda_lite.widgets import calibration
from sda_lite.widgets.calibration import BINS, LEVELS
from sda_lite.widgets.panel import figure_png

SMALL = dict(L=12, sets=4, samples=15, draws=16, steps=16)


@pytest.fixture(autouse=True)
def empty_cache():
    calibration._calibration_run.cache_clear()
    yield


def curves(ax) -> dict[str, np.ndarray]:
    return {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()}


@pytest.mark.parametrize(
    "params, name, value",
    [
        (dict(method="enkf"), "method", "enkf"),
        (dict(every=12), "every", 12),
        (dict(sigma_y=0.0), "sigma_y", 0.0),
        (dict(steps=W.MAX_STEPS + 1), "steps", W.MAX_STEPS + 1),
        (dict(corrections=-1), "corrections", -1),
        (dict(iterations=0), "iterations", 0),
        (dict(samples=16), "samples", 16),
    ],
)
def test_bad_values_raise_naming_the_parameter(params, name, value):
    with pytest.raises(ValueError, match=rf"^{name}={re.escape(repr(value))}: expected "):
        W.plot_calibration(**(SMALL | params))


def test_the_judges_are_draws_of_the_kalman_posterior():
    y, x, exact, judges, mean, sd = calibration._calibration_run(
        "sda", 0.1, 1.0, 4, 0.1, 4, 12, 4, 15, 2000, 8, 0, 0
    )
    assert y.shape == (4, 3, 1)
    assert x.shape == exact.shape == (15, 4, 12, 2) and judges.shape == (2000, 4, 12, 2)
    H = torch.tensor([[1.0, 0.0]])
    m, P = kalman_smoother(LinearGaussian.rotation(), y, H, 0.1, every=4, length=12)
    s = P.diagonal(dim1=-2, dim2=-1).sqrt()  # (12, 2)
    np.testing.assert_allclose(mean, m, atol=1e-5)
    np.testing.assert_allclose(sd, s, rtol=1e-5)
    z = (judges.mean(0) - m) / s  # the mean of 2000 draws: within 4.5 / sqrt(2000) std
    assert z.abs().max() < 4.5 / np.sqrt(2000), z.abs().max()
    np.testing.assert_allclose(judges.std(0), s.expand(4, 12, 2), rtol=0.12)


def test_plot_calibration_draws_the_coverage_of_the_samples():
    fig = W.plot_calibration(method="mmps", **SMALL)
    rel, rank, state = fig.axes
    _, x, exact, judges, mean, sd = calibration._calibration_run(
        "mmps", 0.1, 1.0, 4, 0.1, 4, 12, 4, 15, 16, 16, 1, 0
    )
    drawn = curves(rel)
    expected = torch.stack([coverage(x, r, LEVELS) for r in judges]).mean(0).numpy()
    np.testing.assert_allclose(drawn["MMPS"], expected - np.array(LEVELS), atol=1e-12)
    # exact samples are calibrated: their coverage is the level, up to Monte Carlo noise
    assert np.abs(drawn["exact samples"]).max() < 0.1
    heights = [p.get_height() for p in rank.patches]
    assert len(heights) == BINS and np.isclose(np.mean(heights), 1.0)  # frequency / flat
    assert len(curves(state)["$x_1$"]) == 12
    assert "nan" not in fig._suptitle.get_text()


def test_a_small_gamma_covers_less_than_a_large_one():
    def cov90(gamma):
        fig = W.plot_calibration(gamma=gamma, **(SMALL | dict(sets=8, samples=31)))
        return curves(fig.axes[0])["SDA"][LEVELS.index(0.9)] + 0.9

    assert cov90(0.003) < cov90(3.0) - 0.03


def test_panel_shows_the_pure_figure_and_follows_its_controls():
    panel = W.calibration_panel(**SMALL)
    assert panel.image.value == figure_png(W.plot_calibration(**panel.params))
    panel.controls["method"].value = "dps"
    panel.controls["zeta"].value = 3.0
    assert panel.params["method"] == "dps" and panel.params["zeta"] == 3.0
    assert panel.image.value == figure_png(W.plot_calibration(**panel.params))
    assert "error" not in panel.status.value
    panel.controls["steps"].value = 8
    assert panel.image.value == figure_png(W.plot_calibration(**panel.params))
