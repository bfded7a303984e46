r"""Training, checkpoints and priors of earlier releases, at their old import path.

The training loop now lives in :mod:`sda_lite.training`, checkpoint files in
:mod:`sda_lite.checkpoints`, prior configs and the priors on disk in :mod:`sda_lite.priors`, the
Lorenz-63 recipes in :mod:`sda_lite.lorenz` and :func:`plot_history` in :mod:`sda_lite.plots`; this
module re-exports them for this release.
"""

from sda_lite.checkpoints import (  # noqa: F401
    CONFIG,
    SHIPPED,
    WEIGHTS,
    check_config,
    load_checkpoint,
    read_config,
    save_checkpoint,
)
from sda_lite.lorenz import lorenz_configs, lorenz_prior, lorenz_windows  # noqa: F401
from sda_lite.plots import plot_history  # noqa: F401
from sda_lite.priors import (  # noqa: F401
    CONFIGS,
    build_prior,
    ensure_prior,
    families,
    load_configs,
    load_prior,
    prior_for_length,
    train_prior,
)
from sda_lite.priors import find_checkpoint as checkpoint  # noqa: F401
from sda_lite.training import LR_SCHEDULES as SCHEDULES  # noqa: F401
from sda_lite.training import TRAIN_FIELDS, evaluate, lr_factor, train  # noqa: F401
