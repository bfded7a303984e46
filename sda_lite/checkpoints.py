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


RECOVER = "retrain it with 'sda-lite train --overwrite --out {directory}' or delete {directory}"


def _recover(directory: Path) -> str:
    return RECOVER.format(directory=directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def clean_stale(directory: str | Path) -> list[Path]:
    r"""Deletes the temporary siblings ``.NAME.tmp-PID`` of a checkpoint ``directory`` left by
    saves whose process no longer runs (interrupted by a crash or a kill); returns them."""

    directory = Path(directory)
    removed = []
    for tmp in directory.parent.glob(f".{directory.name}.tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


class NoCheckpoint(FileNotFoundError, ValueError):
    r"""There is no checkpoint where one was expected: a FileNotFoundError and a ValueError."""


def read_config(directory: str | Path) -> dict[str, Any] | None:
    r"""The ``config.json`` of a checkpoint, or None when there is none.

    Recovers the previous checkpoint if a save was interrupted between its two renames, and
    deletes the temporary directories of interrupted saves (:func:`clean_stale`).

    Raises:
        ValueError: When ``directory`` is a file, or its ``config.json`` is unreadable or not a
            JSON mapping; the message names the file and how to recover.
    """

    directory = Path(directory)
    old = _moved(directory)
    if not (directory / CONFIG).exists() and (old / CONFIG).is_file():
        try:
            os.replace(old, directory)  # the save was interrupted between its two renames
        except OSError:
            pass  # a non-empty directory is in the way: leave both as they are
    if directory.parent.is_dir():
        clean_stale(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(
            f"checkpoint {str(directory)!r} is a file: expected a checkpoint directory with "
            f"{CONFIG} and {WEIGHTS}"
        )
    path = directory / CONFIG
    if not path.exists():
        return None
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"checkpoint file {str(path)!r} is unreadable or not JSON ({error}): "
            f"{_recover(directory)}"
        ) from None
    if not isinstance(meta, dict):
        raise ValueError(
            f"checkpoint file {str(path)!r} holds {type(meta).__name__} {meta!r:.40}: expected a "
            f"mapping with 'model', 'train' and 'progress'; {_recover(directory)}"
        )
    if isinstance(meta.get("train"), dict) and "schedule" in meta["train"]:
        meta["train"]["lr_schedule"] = meta["train"].pop("schedule")  # the name before 0.2
    return meta


def check_meta(meta: dict[str, Any], directory: str | Path) -> None:
    r"""Raises a ValueError, naming the file and how to recover, when the ``config.json`` ``meta``
    of a trained prior's checkpoint lacks its parts: ``model`` and ``train`` mappings and a
    ``progress`` mapping with an integer ``epoch`` and a ``history`` of lists."""

    path = Path(directory) / CONFIG
    progress = meta.get("progress")
    problems = [
        f"'{key}' is {meta.get(key)!r:.40}, expected a mapping"
        for key in ("model", "train", "progress")
        if not isinstance(meta.get(key), dict)
    ]
    if not problems:
        epoch, history = progress.get("epoch"), progress.get("history")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            problems.append(f"progress 'epoch' is {epoch!r}, expected an integer >= 0")
        elif not isinstance(history, dict) or not all(
            isinstance(v, list) for v in history.values()
        ):
            problems.append(f"progress 'history' is {history!r:.40}, expected lists per metric")
        elif not isinstance(meta["train"].get("epochs"), int):
            problems.append(f"train 'epochs' is {meta['train'].get('epochs')!r}, expected an int")
    if problems:
        raise ValueError(
            f"checkpoint file {str(path)!r} is not a prior's checkpoint: {problems[0]}; "
            f"{_recover(Path(directory))}"
        )


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
    if directory.exists() and not directory.is_dir():
        raise ValueError(
            f"checkpoint {str(directory)!r} is a file: expected a checkpoint directory (the file "
            "is left as it is)"
        )
    weights = state.get("model") if isinstance(state, dict) else None
    if isinstance(weights, dict) and not all(
        bool(torch.isfinite(v).all())
        for v in weights.values()
        if isinstance(v, torch.Tensor) and v.is_floating_point()
    ):
        epoch = meta.get("progress", {}).get("epoch") if isinstance(meta, dict) else None
        raise ValueError(
            f"training diverged: the weights at epoch {epoch} are NaN or inf, not saved to "
            f"{directory} (the previous checkpoint, if any, is kept): expected finite weights; try "
            "a smaller learning rate"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(directory)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        torch.save(state, tmp / WEIGHTS)
        with open(tmp / CONFIG, "w") as f:
            json.dump(meta, f, indent=1)
        old = _moved(directory)
        shutil.rmtree(old, ignore_errors=True)
        if old.is_file():
            old.unlink()
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_checkpoint(directory: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    r"""Reads a checkpoint: ``(meta, state)``; ``state`` is loaded with ``torch.load(weights_only=True)``.

    Raises:
        NoCheckpoint: When there is no checkpoint (no ``config.json``) in ``directory``: a
            FileNotFoundError and a ValueError.
        ValueError: When ``config.json`` or ``weights.pt`` is missing, unreadable, truncated or not
            a mapping (:func:`read_config`); the message names the file and how to recover.
    """

    directory = Path(directory)
    meta = read_config(directory)
    if meta is None:
        raise NoCheckpoint(
            f"no checkpoint in {directory} (expected {CONFIG} and {WEIGHTS}): train one with "
            "'sda-lite train' or pass the directory of one"
        )
    path = directory / WEIGHTS
    if not path.is_file():
        raise ValueError(
            f"checkpoint file {str(path)!r} is missing (the checkpoint has {CONFIG} but no "
            f"weights): {_recover(directory)}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickle or I/O errors: all mean a corrupt file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"checkpoint file {str(path)!r} is corrupt or truncated ({reason}): "
            f"{_recover(directory)}"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(
            f"checkpoint file {str(path)!r} holds {type(state).__name__}: expected a mapping of "
            f"states; {_recover(directory)}"
        )
    return meta, state
