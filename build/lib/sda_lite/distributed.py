r"""The few helpers of multi-process runs with ``torch.distributed``.

A run is distributed when a launcher such as ``torchrun --nproc_per_node N`` sets the environment
variables ``WORLD_SIZE`` (= N), ``RANK`` and ``LOCAL_RANK``; otherwise every helper behaves as for
one process (rank 0 of a world of 1) and nothing is initialised. :func:`setup` starts the process
group (``nccl`` on CUDA, ``gloo`` on CPU) and :func:`shard` gives each rank its slice of a global
batch, so that ``N`` processes together see exactly what one process would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def world() -> int:
    r"""The number of processes: ``$WORLD_SIZE`` (1 when not launched by torchrun)."""

    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    r"""The rank of this process in ``[0, world())``: ``$RANK`` (0 when not launched by torchrun)."""

    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    r"""Whether this process is rank 0, the one that writes files, logs and progress bars."""

    return rank() == 0


def active() -> bool:
    r"""Whether the process group is initialised (a run of more than one process)."""

    return dist.is_available() and dist.is_initialized()


def device() -> torch.device:
    r"""This process' device: ``cuda:$LOCAL_RANK`` when CUDA is available, else the CPU."""

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def setup(backend: str | None = None, timeout: float = 3600.0) -> bool:
    r"""Initialises the process group when launched with ``WORLD_SIZE > 1`` (idempotent).

    Arguments:
        backend: ``"nccl"`` or ``"gloo"`` (default ``nccl`` when CUDA is available, else ``gloo``).
        timeout: Seconds a collective may wait for the other ranks.

    Returns:
        Whether the run is distributed.
    """

    if world() <= 1:
        return False
    if not active():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend not in ("nccl", "gloo"):
            raise ValueError(f"backend={backend!r}: expected 'nccl' or 'gloo'")
        if backend == "nccl":
            torch.cuda.set_device(device())
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    return True


def teardown() -> None:
    r"""Destroys the process group if there is one."""

    if active():
        dist.destroy_process_group()


def barrier() -> None:
    r"""Waits for every rank (nothing to wait for in a single process)."""

    if active():
        dist.barrier()


def shard(index: T, r: int | None = None, n: int | None = None) -> T:
    r"""Rank ``r``'s contiguous slice of a global batch ``index`` (a tensor or a sequence of ``B``
    items), ``index[r B / n : (r + 1) B / n]``; ``B`` must be divisible by ``n``.

    >>> shard(list(range(8)), r=1, n=2)
    [4, 5, 6, 7]
    """

    r, n = rank() if r is None else r, world() if n is None else n
    B = len(index)
    if B % n:
        raise ValueError(
            f"a global batch of {B} items does not split over {n} processes: expected a multiple of {n}"
        )
    return index[r * B // n : (r + 1) * B // n]


def mean(value: float) -> float:
    r"""The mean of ``value`` over the ranks (``value`` itself in a single process)."""

    if not active():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return t.item() / world()


def gather(obj: Any) -> list[Any]:
    r"""The list of every rank's ``obj`` (``[obj]`` in a single process)."""

    if not active():
        return [obj]
    out: list[Any] = [None] * world()
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: T) -> T:
    r"""Rank 0's ``obj``, on every rank."""

    if not active():
        return obj
    out = [obj]
    dist.broadcast_object_list(out, src=0)
    return out[0]


def _collective_device() -> torch.device:
    return device() if dist.get_backend() == "nccl" else torch.device("cpu")


def ranges(N: int, n: int | None = None) -> Sequence[tuple[int, int]]:
    r"""Splits ``range(N)`` into ``n`` (default :func:`world`) contiguous, disjoint, near-equal
    ``(start, stop)`` ranges, one per rank."""

    n = world() if n is None else n
    return [(r * N // n, (r + 1) * N // n) for r in range(n)]
