r"""The Kolmogorov scenarios at their old import path: they now live in
:mod:`sda_lite.kolmogorov.scenarios`, re-exported here for this release."""

from sda_lite.kolmogorov.scenarios import (  # noqa: F401
    EVENT,
    PAPER_GRID,
    PAPER_STRIDES,
    SCENARIOS,
    Scenario,
    annulus,
    cell_vorticity,
    crop,
    operator,
    rollout,
    scenario,
)
