r"""Processes that would make the same file take turns.

Two notebooks open at once, or two chapters executed in parallel, may ask for the same dataset or
the same trained prior. :func:`exclusive` serialises them: the first makes the file, the second
waits, then finds it made. The lock is advisory (``flock``), on a lock file beside the target, and
is released when the block ends or the process dies, so an interrupted run never leaves it held.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    r"""Holds an exclusive lock on ``path`` (a dataset file or a checkpoint directory) between
    processes: an advisory ``flock`` on the lock file ``.<name>.lock`` beside it, released when the
    block ends or the process dies. Callers check whether the file is there (and right) *inside*
    the block, and make it only if not. Without ``fcntl`` (Windows) it does not lock."""

    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
