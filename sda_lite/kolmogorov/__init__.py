r"""Kolmogorov flow: the system of the paper's second experiment, one module per concept.

* :mod:`~sda_lite.kolmogorov.flow`: :class:`KolmogorovFlow`, the jax-cfd simulator as a Markov chain;
* :mod:`~sda_lite.kolmogorov.data`: the datasets of each scale, simulated in parallel, resumable;
* :mod:`~sda_lite.kolmogorov.prior`: the prior's dataset, windows, their statistics (the Gaussian
  part) and the prior recipe;
* :mod:`~sda_lite.kolmogorov.scenarios`: the paper's six observation scenarios and the forward
  checks (rollout, one-step error);
* :mod:`~sda_lite.kolmogorov.plots`: vorticity figures.

Layout of a state ``x: (*batch, 2, H, W)``: channel 0 is :math:`u_x`, channel 1 is :math:`u_y`; axis
``-2`` is :math:`x` and axis ``-1`` is :math:`y` (jax-cfd's ``indexing="ij"``), with
:math:`x_i = 2 \pi i / H`. The values are jax-cfd's own **staggered** (MAC) arrays, returned
unchanged so that a transition loses nothing: :math:`u_x[i, j]` lives on the face
:math:`((i + 1) h, (j + \frac{1}{2}) h)` and :math:`u_y[i, j]` on :math:`((i + \frac{1}{2}) h, (j + 1) h)`,
where they are exactly divergence-free in the discrete sense. Datasets average blocks of
:math:`r \times r` cells (:func:`~sda_lite.fields.coarsen`), after which both components sit within
:math:`\frac{1}{2 r}` of a coarse cell's centre. Trajectories are ``(*batch, L, 2, H, W)``: batch
first, time second. The field operations (vorticity, coarsening, spectra) are generic, in
:mod:`sda_lite.fields`, and re-exported here. JAX is imported only when a :class:`KolmogorovFlow` is
built.
"""

from sda_lite.fields import coarsen, energy_spectrum, upsample, vorticity  # noqa: F401
from sda_lite.io import split_sizes  # noqa: F401
from sda_lite.kolmogorov.data import (
    FORMAT,
    ensure_kolmogorov,
    generate_kolmogorov,
    kolmogorov_sizes,
)  # noqa: F401
from sda_lite.kolmogorov.flow import KolmogorovFlow, _jax  # noqa: F401
from sda_lite.kolmogorov.plots import plot_vorticity  # noqa: F401
from sda_lite.kolmogorov.prior import (  # noqa: F401
    field_statistics,
    gaussian_only,
    gaussian_part,
    kolmogorov_prior,
    kolmogorov_windows,
    prior_data,
    prior_windows,
    window_statistics,
)
from sda_lite.windows import FieldWindows  # noqa: F401

__all__ = [
    "FORMAT",
    "FieldWindows",
    "KolmogorovFlow",
    "coarsen",
    "energy_spectrum",
    "ensure_kolmogorov",
    "field_statistics",
    "gaussian_only",
    "gaussian_part",
    "generate_kolmogorov",
    "kolmogorov_prior",
    "kolmogorov_sizes",
    "kolmogorov_windows",
    "plot_vorticity",
    "prior_data",
    "prior_windows",
    "split_sizes",
    "upsample",
    "vorticity",
    "window_statistics",
]
