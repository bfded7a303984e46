r"""The one scale switch, default devices and the data directory.

Every chapter and script sizes its work through :func:`scale` (or :func:`pick`), which reads the
environment variable ``SDA_SCALE``:

* ``ci``   -- the smallest sizes that still show each result (used by the tests);
* ``cpu``  -- the teaching scale, minutes per chapter on a laptop CPU (the default);
* ``full`` -- the paper's settings (GPU-hours); only ever chosen explicitly.

Whatever the scale, work runs on CUDA when it is available (:func:`device`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import torch

SCALES = ("ci", "cpu", "full")
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
