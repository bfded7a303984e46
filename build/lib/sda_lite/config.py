r"""The one scale switch, default devices and the data directory.

Every chapter and script sizes its work through :func:`scale` (or :func:`pick`), which reads the
environment variable ``SDA_SCALE``:

* ``ci``   -- the smallest sizes that still show each result (used by the tests);
* ``cpu``  -- the teaching scale, minutes per chapter on a laptop CPU (the default);
* ``full`` -- the paper's settings (GPU-hours); only ever chosen explicitly.

Whatever the scale, work runs on CUDA when it is available (:func:`device`). The sampling settings
of the paper's experiments (:math:`\gamma`, :math:`\zeta`, steps, corrections, :math:`\tau`) are read
once from ``sda_lite/configs/sampling.json`` by :func:`sampling`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TypeVar

import torch

SCALES = ("ci", "cpu", "full")
SAMPLING = Path(__file__).resolve().parent / "configs" / "sampling.json"
T = TypeVar("T")


def scale(name: str | None = None) -> str:
    r"""Returns the validated scale name: ``name`` if given, else ``$SDA_SCALE``, else ``"cpu"``."""

    if name is None:
        name = os.environ.get("SDA_SCALE", "cpu")
    name = name.strip().lower()
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}: expected one of {', '.join(SCALES)} (SDA_SCALE)")
    return name


def pick(*, ci: T, cpu: T, full: T, scale_name: str | None = None) -> T:
    r"""Returns the value that belongs to the current scale.

    Example:
        >>> n = pick(ci=64, cpu=512, full=1024)
    """

    return {"ci": ci, "cpu": cpu, "full": full}[scale(scale_name)]


def device() -> torch.device:
    r"""Returns CUDA when available, else the CPU (independently of the scale)."""

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def data_dir() -> Path:
    r"""Returns the directory of datasets and checkpoints, created if missing.

    ``$SDA_DATA`` when set; else the repository's ``data/`` when the package runs from a checkout;
    else ``~/.cache/sda_lite``.
    """

    if "SDA_DATA" in os.environ:
        path = Path(os.environ["SDA_DATA"])
    else:
        repo = Path(__file__).resolve().parents[1] / "data"
        path = repo if (repo / "README.md").exists() else Path.home() / ".cache" / "sda_lite"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sampling(experiment: str, scenario: str | None = None) -> dict:
    r"""The paper's sampling settings of an experiment: ``gamma`` (SDA), ``zeta`` (DPS), ``steps``,
    ``corrections`` and ``tau`` (:meth:`~sda_lite.diffusion.VPSDE.sample`), and ``source``, where in
    the paper's code (francois-rozet/sda) they are read. A ``scenario`` applies its own overrides
    (for Kolmogorov: 512 steps for ``saturation``, :math:`\gamma = 0.1` for ``loop``).

    Example:
        >>> sampling("kolmogorov", "loop")["gamma"]
        0.1
    """

    with open(SAMPLING) as f:
        settings = json.load(f)
    if experiment not in settings:
        raise ValueError(f"unknown experiment {experiment!r}: expected one of {sorted(settings)}")
    out = dict(settings[experiment])
    overrides = out.pop("scenarios", {})
    if scenario is not None:
        out.update(overrides.get(scenario, {}))
    return out
