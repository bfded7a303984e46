r"""Files: written whole or not at all, and datasets that know the settings they were made with.

:func:`atomic` yields a temporary path next to the target and moves it over the target with
``os.replace`` only when the block succeeds, so that an interrupted write leaves either the previous
file or the complete new one, never a truncated file.

A dataset file (HDF5) holds the splits ``train``, ``valid`` and ``test`` of ``N`` trajectories,
80/10/10 by trajectory (:func:`split_sizes`), and the settings that made it as attributes, so that
:func:`matches` can tell whether an existing file is the one asked for.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor

SPLITS = ("train", "valid", "test")


@contextmanager
def atomic(path: str | Path) -> Iterator[Path]:
    r"""Yields a temporary path next to ``path``, moved over ``path`` when the block succeeds and
    deleted when it fails: ``path`` is either the previous file or the complete new one."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates private files
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_json(path: str | Path, obj: Any) -> Path:
    r"""Writes ``obj`` as indented JSON to ``path``, atomically."""

    with atomic(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1) + "\n")
    return Path(path)


def check_integers(*fields: tuple[str, Any, int]) -> None:
    r"""Raises a ValueError naming the first ``(name, value, low)`` whose value is not an integer
    ``>= low`` (the sizes of a dataset's settings)."""

    for name, value, low in fields:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name}={value!r}: expected an integer >= {low}")


def split_sizes(N: int) -> dict[str, int]:
    r"""The 80/10/10 split of ``N`` trajectories, e.g. 1024 -> 819 / 102 / 103."""

    a, b = int(0.8 * N), int(0.9 * N)
    return {"train": a, "valid": b - a, "test": N - b}


def write_splits(file: h5py.File, x: Tensor, settings: dict) -> None:
    r"""Writes the splits of ``x: (N, ...)`` (:func:`split_sizes`) and the ``settings`` as attributes
    into an open HDF5 file."""

    file.attrs.update(settings)
    start = 0
    for split, n in split_sizes(len(x)).items():
        file.create_dataset(split, data=x[start : start + n].numpy())
        start += n


def matches(path: str | Path, settings: dict, state: tuple[int, ...]) -> bool:
    r"""Whether ``path`` is a readable dataset file with exactly these ``settings`` (attributes) and
    splits shaped ``(n, settings["length"], *state)``."""

    try:
        with h5py.File(path, "r") as file:
            if {k: file.attrs.get(k) for k in settings} != settings:
                return False
            sizes = split_sizes(settings["trajectories"])
            return all(file[s].shape == (n, settings["length"], *state) for s, n in sizes.items())
    except (OSError, KeyError, AttributeError, TypeError, ValueError):
        return False


def load(path: str | Path, split: str = "train") -> Tensor:
    r"""Loads one split of a dataset file: ``(N, L, *state)`` as stored (float32)."""

    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    with h5py.File(path, "r") as file:
        return torch.from_numpy(file[split][...])
