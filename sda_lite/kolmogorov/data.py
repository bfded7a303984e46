r"""Kolmogorov-flow datasets: trajectories simulated in parallel, resumable, written atomically.

Each HDF5 file holds float32 ``train``, ``valid`` and ``test`` arrays shaped ``(N, L, 2, H, W)``,
raw velocities on jax-cfd's staggered grid, simulated on a finer grid and coarsened by averaging;
the settings are attributes of the file. Generation writes ``<file>.partial`` parts after every
batch of trajectories, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from sda_lite import distributed
from sda_lite.config import data_dir, pick
from sda_lite.config import scale as get_scale
from sda_lite.fields import coarsen
from sda_lite.io import atomic, matches, split_sizes
from sda_lite.kolmogorov.flow import KolmogorovFlow, _jax, _positive, _positive_int
from sda_lite.lock import exclusive

FORMAT = 1


def kolmogorov_sizes(scale_name: str | None = None) -> dict[str, int]:
    r"""The dataset sizes of a scale.

    ``size`` is the simulated grid, ``r`` the coarsening factor (stored grid ``size / r``),
    ``trajectories`` their number, ``burn`` the states dropped at the start of each trajectory
    (the initial state included) and ``length`` the states kept.

    * ci: 128 x 128 -> 32 x 32, 16 trajectories of 16 + 16 states (about 10 s on 2 CPU cores);
    * cpu: 128 x 128 -> 32 x 32, 64 trajectories of 32 + 64 states (about 2 minutes on 2 CPU cores);
    * full (the paper): 256 x 256 -> 64 x 64, 1024 trajectories of 64 + 64 states (about 2 minutes
      on an H200 GPU, 64 trajectories at a time; about 5 hours on 2 CPU cores).
    """

    return pick(
        ci=dict(size=128, r=4, trajectories=16, burn=16, length=16),
        cpu=dict(size=128, r=4, trajectories=64, burn=32, length=64),
        full=dict(size=256, r=4, trajectories=1024, burn=64, length=64),
        scale_name=get_scale(scale_name),
    )


def _settings(size, r, trajectories, burn, length, dt, reynolds, seed) -> dict:
    size, r, length = (
        _positive_int("size", size),
        _positive_int("r", r),
        _positive_int("length", length),
    )
    if size % r:
        raise ValueError(
            f"size={size} is not divisible by r={r}: expected a multiple of the coarsening factor"
        )
    if (
        isinstance(trajectories, bool)
        or not isinstance(trajectories, (int, np.integer))
        or trajectories < 10
    ):
        raise ValueError(
            f"trajectories={trajectories!r}: expected an integer >= 10 (for an 80/10/10 split)"
        )
    if isinstance(burn, bool) or not isinstance(burn, (int, np.integer)) or burn < 0:
        raise ValueError(f"burn={burn!r}: expected a non-negative integer")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: expected an integer")
    return dict(
        system="KolmogorovFlow",
        format=FORMAT,
        size=size,
        r=r,
        grid=size // r,
        trajectories=int(trajectories),
        burn=int(burn),
        length=length,
        dt=_positive("dt", dt),
        reynolds=_positive("reynolds", reynolds),
        seed=int(seed),
    )


def _matches(file: h5py.File, settings: dict) -> bool:
    return {k: file.attrs.get(k) for k in settings} == settings


def _part(path: Path, rank: int, world: int) -> Path:
    r"""The file where process ``rank`` of ``world`` accumulates its trajectories (``path.partial``
    for a single process)."""

    return path.with_name(
        f"{path.name}.partial" if world == 1 else f"{path.name}.part{rank}of{world}"
    )


def _resume(part: Path, settings: dict, start: int, stop: int) -> int:
    r"""The number of finished trajectories in ``part`` (which holds trajectories ``start`` to
    ``stop``); 0 (and the file removed) if unusable."""

    try:
        with h5py.File(part, "r") as file:
            g, n = settings["grid"], stop - start
            if _matches(file, {**settings, "start": start, "stop": stop}) and file["x"].shape == (
                n,
                settings["length"],
                2,
                g,
                g,
            ):
                return int(file.attrs["done"])
    except (OSError, KeyError, AttributeError, TypeError, ValueError):
        pass
    part.unlink(missing_ok=True)
    return 0


def _simulate(
    part: Path,
    settings: dict,
    start: int,
    stop: int,
    batch: int,
    progress: bool,
    desc: str = "Kolmogorov",
) -> None:
    r"""Simulates trajectories ``start`` to ``stop`` into ``part`` (dataset ``x``, attribute ``done``,
    flushed after each batch), continuing from the trajectories it already holds."""

    n, g, seed = stop - start, settings["grid"], settings["seed"]
    burn, length, r = settings["burn"], settings["length"], settings["r"]
    done = _resume(part, settings, start, stop)
    flow = KolmogorovFlow(
        size=settings["size"], dt=settings["dt"], reynolds=settings["reynolds"], chunk=batch
    )
    with h5py.File(part, "a" if done else "w") as file:
        if not done:
            file.attrs.update({**settings, "start": start, "stop": stop, "done": 0})
            file.create_dataset(
                "x",
                shape=(n, length, 2, g, g),
                dtype=np.float32,
                chunks=(1, length, 2, g, g) if n else None,
            )
        with tqdm(total=n, initial=done, desc=desc, unit="trajectory", disable=not progress) as bar:
            for i in range(done, n, batch):
                j = min(i + batch, n)
                seeds = [torch.Generator().manual_seed(seed + start + m) for m in range(i, j)]
                x = torch.cat([flow.prior((1,), generator=s) for s in seeds])
                x = flow.trajectory(x, burn + length)[:, burn:]
                file["x"][i:j] = coarsen(x, r).numpy()
                file.attrs["done"] = j
                file.flush()
                bar.update(j - i)


def _finalise(
    parts: list[tuple[Path, int, int]], path: Path, settings: dict, block: int = 64
) -> None:
    r"""Gathers the finished ``parts`` (file, start, stop), splits the trajectories into
    train/valid/test in a temporary file moved atomically to ``path``, then deletes the parts."""

    with atomic(path) as tmp, h5py.File(tmp, "w") as dst:
        dst.attrs.update(settings)
        sources = [(h5py.File(part, "r"), start, stop) for part, start, stop in parts]
        try:
            first = 0
            for split, n in split_sizes(settings["trajectories"]).items():
                shape = (n, *sources[0][0]["x"].shape[1:])
                out = dst.create_dataset(split, shape=shape, dtype=np.float32)
                for src, start, stop in sources:  # the part's trajectories in this split, by blocks
                    for i in range(max(start, first), min(stop, first + n), block):
                        j = min(i + block, stop, first + n)
                        out[i - first : j - first] = src["x"][i - start : j - start]
                first += n
        finally:
            for src, _, _ in sources:
                src.close()
    for part, _, _ in parts:
        part.unlink()


def generate_kolmogorov(
    path: str | Path,
    size: int,
    r: int,
    trajectories: int,
    burn: int,
    length: int,
    dt: float = 0.2,
    reynolds: float = 1000.0,
    seed: int = 0,
    batch: int = 1,
    progress: bool = True,
) -> Path:
    r"""Simulates a Kolmogorov dataset and writes it to ``path``, resuming an interrupted run.

    Trajectory ``n`` starts from :math:`x_1 \sim p(x_1)` drawn with ``torch.Generator().manual_seed(seed + n)``,
    runs ``burn + length`` states, keeps the last ``length``, coarsened by ``r``: the dataset is
    ``(N, length, 2, size / r, size / r)`` float32 (raw velocities, not standardised).

    Trajectories are simulated ``batch`` at a time and appended to ``path + ".partial"`` (dataset
    ``x``, attribute ``done``, flushed after each batch). A rerun with the same settings continues
    from ``done``, so an interruption costs at most one batch and the data are identical to an
    uninterrupted run (with the same ``batch``). Once complete, the trajectories are split 80/10/10
    into ``train``, ``valid`` and ``test`` in a temporary file that ``os.replace`` moves over ``path``:
    ``path`` never holds a partial file.

    **Several processes.** Launched by ``torchrun --nproc_per_node P`` (``WORLD_SIZE = P``), process
    ``p`` simulates its own contiguous range of trajectories into ``path + f".part{p}of{P}"`` (resumable
    in the same way, with the same ``P``); once all are done (a ``gloo`` barrier), rank 0 merges the
    parts into ``path``. Each trajectory depends only on its seed, so the file equals the
    one-process file (with ``batch=1``, or equal ``batch`` boundaries).
    """

    settings = _settings(size, r, trajectories, burn, length, dt, reynolds, seed)
    batch = _positive_int("batch", batch)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rank, world = (distributed.rank(), distributed.world()) if distributed.setup("gloo") else (0, 1)
    parts = [
        (_part(path, p, world), start, stop)
        for p, (start, stop) in enumerate(distributed.ranges(settings["trajectories"], world))
    ]
    part, start, stop = parts[rank]
    desc = "Kolmogorov" if world == 1 else f"Kolmogorov (process 0 of {world})"
    _simulate(part, settings, start, stop, batch, progress and rank == 0, desc)
    distributed.barrier()
    if rank == 0:
        _finalise(parts, path, settings)
    distributed.barrier()
    return path


def ensure_kolmogorov(
    path: str | Path | None = None,
    scale_name: str | None = None,
    *,
    size: int | None = None,
    r: int | None = None,
    trajectories: int | None = None,
    burn: int | None = None,
    length: int | None = None,
    dt: float = 0.2,
    reynolds: float = 1000.0,
    seed: int = 0,
    batch: int | None = None,
    progress: bool = True,
) -> Path:
    r"""Returns the path of a Kolmogorov dataset, generating (or resuming) it when missing, corrupt or mismatched.

    The file holds float32 datasets ``train``, ``valid`` and ``test`` shaped
    ``(N, length, 2, size / r, size / r)``; read one with :func:`sda_lite.data.load`. The settings
    are HDF5 attributes; a file whose attributes differ from those asked is regenerated.

    Arguments:
        path: The HDF5 file (default ``data_dir() / f"kolmogorov_{scale_name}.h5"``).
        scale_name: ``ci``, ``cpu`` or ``full`` (default ``$SDA_SCALE``), which sets the sizes of
            :func:`kolmogorov_sizes`; ``size``, ``r``, ``trajectories``, ``burn`` and ``length``
            override them.
        dt, reynolds: The flow's settings. seed: The seed of trajectory 0 (trajectory n uses seed + n).
        batch: Trajectories simulated at once (default: 1 on CPU, 64 on GPU).
    """

    scale_name = get_scale(scale_name)
    sizes = kolmogorov_sizes(scale_name)
    for name, value in (
        ("size", size),
        ("r", r),
        ("trajectories", trajectories),
        ("burn", burn),
        ("length", length),
    ):
        sizes[name] = sizes[name] if value is None else value
    settings = _settings(dt=dt, reynolds=reynolds, seed=seed, **sizes)
    path = Path(path) if path is not None else data_dir() / f"kolmogorov_{scale_name}.h5"
    # one process at a time generates it (torchrun ranks generate it together)
    with exclusive(path) if distributed.world() == 1 else nullcontext():
        if not matches(path, settings, (2, settings["grid"], settings["grid"])):
            if batch is None:
                batch = 64 if _jax().default_backend() != "cpu" else 1
            generate_kolmogorov(
                path, dt=dt, reynolds=reynolds, seed=seed, batch=batch, progress=progress, **sizes
            )
    return path
