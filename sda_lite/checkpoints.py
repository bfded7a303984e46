r"""Checkpoints: a directory with ``config.json`` and ``weights.pt``, written atomically.

``config.json`` holds the model config, the training config and the progress (epoch, step,
history); ``weights.pt`` the model, optimiser, scheduler, EMA and random states (tensors only, read
back with ``torch.load(weights_only=True)``). A save writes a temporary sibling directory first and
swaps it into place, so an interruption never leaves a half-written checkpoint; :func:`read_config`
recovers the previous one if a save was interrupted between its two renames.

Small finished checkpoints travel with the package, in ``sda_lite/shipped/`` (:data:`SHIPPED`):
the priors that the book and the widgets fall back to when the data directory has none.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

CONFIG, WEIGHTS = "config.json", "weights.pt"
SHIPPED = Path(__file__).resolve().parent / "shipped"  # package data: sda_lite/shipped/<name>/


def jsonable(x: Any) -> Any:
    r"""``x`` as it reads back from JSON (tuples become lists), so that configs compare equal."""

    return json.loads(json.dumps(x))


def _moved(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")


def read_config(directory: str | Path) -> dict[str, Any] | None:
    r"""The ``config.json`` of a checkpoint, or None when there is none.

    Recovers the previous checkpoint if a save was interrupted between its two renames.
    """

    directory = Path(directory)
    if not (directory / CONFIG).exists() and (_moved(directory) / CONFIG).exists():
        os.replace(_moved(directory), directory)
    if not (directory / CONFIG).exists():
        return None
    with open(directory / CONFIG) as f:
        meta = json.load(f)
    if (
        isinstance(meta, dict)
        and isinstance(meta.get("train"), dict)
        and "schedule" in meta["train"]
    ):
        meta["train"]["lr_schedule"] = meta["train"].pop(
            "schedule"
        )  # the name of releases before 0.2
    return meta


def check_config(
    stored: dict[str, Any] | None, given: dict[str, Any] | None, what: str = "config"
) -> None:
    r"""Raises a ValueError naming the first field where ``given`` differs from ``stored``."""

    stored, given = jsonable(stored or {}), jsonable(given or {})
    for key in sorted(set(stored) | set(given)):
        if stored.get(key) != given.get(key):
            raise ValueError(
                f"checkpoint {what} field {key!r} differs: the checkpoint has {stored.get(key)!r}, "
                f"the given {what} has {given.get(key)!r}"
            )


def save_checkpoint(directory: str | Path, meta: dict[str, Any], state: dict[str, Any]) -> None:
    r"""Writes ``meta`` to ``directory/config.json`` and ``state`` to ``directory/weights.pt``, atomically.

    Both files are written into a temporary sibling directory, which then replaces ``directory``
    (the previous checkpoint is moved aside first and deleted last), so a failure at any point
    leaves either the previous or the new checkpoint in place, never a mixture.
    """

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        torch.save(state, tmp / WEIGHTS)
        with open(tmp / CONFIG, "w") as f:
            json.dump(meta, f, indent=1)
        old = _moved(directory)
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_checkpoint(directory: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    r"""Reads a checkpoint: ``(meta, state)``; ``state`` is loaded with ``torch.load(weights_only=True)``."""

    directory = Path(directory)
    meta = read_config(directory)
    if meta is None:
        raise FileNotFoundError(f"no checkpoint in {directory} (expected {CONFIG} and {WEIGHTS})")
    state = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    return meta, state
