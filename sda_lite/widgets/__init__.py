r"""Interactive panels: pure plotting functions with ipywidgets controls around them.

Each explorer is a pure, seeded ``plot_...(**params) -> Figure`` (the same parameters give the same
figure, from a script, a test or a widget) and a ``..._panel(**defaults) -> Panel`` that puts
controls around it, live in JupyterLab, with a PNG of the figure for the HTML book.

* :mod:`~sda_lite.widgets.panel` -- :class:`Panel`, the controls' helpers and the shared limits;
* :mod:`~sda_lite.widgets.diffusion` -- noising and denoising a Lorenz trajectory
  (:func:`diffusion_panel`);
* :mod:`~sda_lite.widgets.gaussian` -- SDA, DPS and MMPS against the exact Kalman posterior
  (:func:`gaussian_panel`);
* :mod:`~sda_lite.widgets.calibration` -- their calibration judged by exact posterior draws
  (:func:`calibration_panel`);
* :mod:`~sda_lite.widgets.lorenz` -- Lorenz-63 posteriors against the particle filter, and the
  trained Lorenz priors (:func:`lorenz_panel`, :func:`lorenz_window_prior`);
* :mod:`~sda_lite.widgets.kolmogorov` -- the observation scenarios on a Kolmogorov-flow trajectory
  (:func:`kolmogorov_panel`).

The names below are re-exported from those modules; to replace one (e.g. a prior in a test),
patch it in the module that uses it.
"""

from sda_lite.widgets.calibration import calibration_panel, plot_calibration
from sda_lite.widgets.diffusion import diffusion_panel, plot_diffusion
from sda_lite.widgets.gaussian import gaussian_panel, plot_gaussian_guidance
from sda_lite.widgets.kolmogorov import (
    kolmogorov_panel,
    kolmogorov_truth,
    kolmogorov_window_prior,
    plot_kolmogorov_scenario,
)
from sda_lite.widgets.lorenz import (
    CHAIN,
    L_LORENZ,
    LORENZ_SAMPLING,
    LORENZ_SCENARIOS,
    available_orders,
    lorenz_checkpoint,
    lorenz_panel,
    lorenz_truth,
    lorenz_window_prior,
    plot_lorenz_posterior,
)
from sda_lite.widgets.panel import (
    LIMITER,
    MAX_CORRECTIONS,
    MAX_SAMPLES,
    MAX_STEPS,
    METHODS,
    Panel,
    figure_png,
)

__all__ = [
    "CHAIN",
    "LIMITER",
    "LORENZ_SAMPLING",
    "LORENZ_SCENARIOS",
    "L_LORENZ",
    "MAX_CORRECTIONS",
    "MAX_SAMPLES",
    "MAX_STEPS",
    "METHODS",
    "Panel",
    "available_orders",
    "calibration_panel",
    "diffusion_panel",
    "figure_png",
    "gaussian_panel",
    "kolmogorov_panel",
    "kolmogorov_truth",
    "kolmogorov_window_prior",
    "lorenz_checkpoint",
    "lorenz_panel",
    "lorenz_truth",
    "lorenz_window_prior",
    "plot_calibration",
    "plot_diffusion",
    "plot_gaussian_guidance",
    "plot_kolmogorov_scenario",
    "plot_lorenz_posterior",
]
