r"""Datasets and windows of earlier releases, at their old import path.

The generic parts now live in :mod:`sda_lite.io` (:func:`load`, :func:`split_sizes`) and
:mod:`sda_lite.windows` (:class:`TrajectoryWindows`), the Lorenz-63 datasets in
:mod:`sda_lite.lorenz` (:func:`ensure_lorenz`, ...); this module re-exports them for this release.
"""

from sda_lite.io import SPLITS, load, split_sizes  # noqa: F401
from sda_lite.lorenz import FORMAT, ensure_lorenz, generate_lorenz, lorenz_sizes, simulate_lorenz  # noqa: F401
from sda_lite.windows import FieldWindows, TrajectoryWindows  # noqa: F401
