r"""Files written whole or not at all.

:func:`atomic` yields a temporary path next to the target and moves it over the target with
``os.replace`` only when the block succeeds, so that an interrupted write leaves either the previous
file or the complete new one, never a truncated file.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


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
