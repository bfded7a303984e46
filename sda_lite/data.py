r"""Lorenz-63 datasets in HDF5, written atomically, and random windows of trajectories.

A dataset file holds three datasets ``train``, ``valid`` and ``test``, shaped ``(N, L, 3)`` in
float32, split 80/10/10 by trajectory. States are stored **standardised** by
:meth:`NoisyLorenz63.preprocess`; :meth:`NoisyLorenz63.postprocess` returns them to raw units.
The settings (sizes, seed, dt, format version) are HDF5 attributes of the file, so that
:func:`ensure_lorenz` can tell whether an existing file is the one asked for.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from sda_lite.config import data_dir, pick, scale as get_scale
from sda_lite.dynamics import NoisyLorenz63
from sda_lite.io import atomic

FORMAT = 1
SPLITS = ("train", "valid", "test")


def lorenz_sizes(scale: str | None = None) -> dict[str, int]:
    r"""The dataset sizes of a scale: ``trajectories``, ``length`` (kept states) and ``burn`` (burn-in steps).

    ci: 128 x 256 after 256 burn-in steps; cpu: 512 x 1024 after 512; full (the paper): 1024 x 1024 after 1024.
    """

    return pick(
        ci=dict(trajectories=128, length=256, burn=256),
        cpu=dict(trajectories=512, length=1024, burn=512),
        full=dict(trajectories=1024, length=1024, burn=1024),
        scale_name=get_scale(scale),
    )


def split_sizes(N: int) -> dict[str, int]:
    r"""The 80/10/10 split of ``N`` trajectories, e.g. 1024 -> 819 / 102 / 103."""

    a, b = int(0.8 * N), int(0.9 * N)
    return {"train": a, "valid": b - a, "test": N - b}


def _settings(trajectories: int, length: int, burn: int, dt: float, seed: int) -> dict:
    for name, value, low in (("trajectories", trajectories, 10), ("length", length, 1), ("burn", burn, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name}={value!r}: expected an integer >= {low}")
    if not isinstance(dt, (int, float)) or not dt > 0:
        raise ValueError(f"dt={dt!r}: expected a positive time step")
    if not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: expected an integer")
    return dict(
        system="NoisyLorenz63",
        format=FORMAT,
        trajectories=int(trajectories),
        length=int(length),
        burn=int(burn),
        dt=float(dt),
        seed=int(seed),
        standardised=True,
    )


def simulate_lorenz(
    trajectories: int,
    length: int,
    burn: int,
    dt: float = 0.025,
    seed: int = 0,
    progress: bool = True,
) -> Tensor:
    r"""Simulates standardised Lorenz-63 trajectories, ``(trajectories, length, 3)`` in float32.

    Starts from :math:`x_1 \sim p(x_1)`, discards ``burn`` transitions (to reach the attractor),
    then keeps ``length`` states. Integrates in float64 under ``torch.Generator().manual_seed(seed)``.
    """

    _settings(trajectories, length, burn, dt, seed)
    chain = NoisyLorenz63(dt=dt)
    generator = torch.Generator().manual_seed(seed)
    x = chain.prior((trajectories,), generator=generator, dtype=torch.float64)
    xs = torch.empty(trajectories, length, 3, dtype=torch.float64)
    for i in tqdm(range(burn + length), desc="Lorenz-63", disable=not progress):
        if i > 0:
            x = chain.transition(x, generator=generator)
        if i >= burn:
            xs[:, i - burn] = x
    return chain.preprocess(xs).float()


def _write(file: h5py.File, x: Tensor, settings: dict) -> None:
    r"""Writes the splits of ``x: (N, L, 3)`` and the settings into an open HDF5 file."""

    file.attrs.update(settings)
    start = 0
    for split, n in split_sizes(len(x)).items():
        file.create_dataset(split, data=x[start : start + n].numpy())
        start += n


def generate_lorenz(
    path: str | Path,
    trajectories: int,
    length: int,
    burn: int,
    dt: float = 0.025,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    r"""Simulates a Lorenz-63 dataset and writes it atomically to ``path``.

    The file is written to a temporary file in the same directory, then moved over ``path`` by
    ``os.replace``: an interrupted run leaves any previous file intact and no partial file behind.
    """

    settings = _settings(trajectories, length, burn, dt, seed)
    x = simulate_lorenz(trajectories, length, burn, dt, seed, progress)
    with atomic(path) as tmp, h5py.File(tmp, "w") as file:
        _write(file, x, settings)
    return Path(path)


def _valid(path: Path, settings: dict) -> bool:
    r"""Whether ``path`` is a readable dataset with exactly these settings and shapes."""

    try:
        with h5py.File(path, "r") as file:
            if {k: file.attrs.get(k) for k in settings} != settings:
                return False
            sizes = split_sizes(settings["trajectories"])
            return all(file[s].shape == (n, settings["length"], 3) for s, n in sizes.items())
    except (OSError, KeyError, AttributeError, TypeError, ValueError):
        return False


def ensure_lorenz(
    path: str | Path | None = None,
    scale: str | None = None,
    *,
    trajectories: int | None = None,
    length: int | None = None,
    burn: int | None = None,
    dt: float = 0.025,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    r"""Returns the path of a Lorenz-63 dataset, generating it when missing, corrupt or mismatched.

    Arguments:
        path: The HDF5 file (default ``data_dir() / f"lorenz_{scale}.h5"``).
        scale: ``ci``, ``cpu`` or ``full`` (default ``$SDA_SCALE``), which sets the sizes of
            :func:`lorenz_sizes`; ``trajectories``, ``length`` and ``burn`` override them.
        dt: The time step. seed: The seed of the simulation.
    """

    scale = get_scale(scale)
    sizes = lorenz_sizes(scale)
    for name, value in (("trajectories", trajectories), ("length", length), ("burn", burn)):
        sizes[name] = sizes[name] if value is None else value
    settings = _settings(dt=dt, seed=seed, **sizes)
    path = Path(path) if path is not None else data_dir() / f"lorenz_{scale}.h5"
    if not _valid(path, settings):
        generate_lorenz(path, dt=dt, seed=seed, progress=progress, **sizes)
    return path


def load(path: str | Path, split: str = "train") -> Tensor:
    r"""Loads one split of a dataset file: standardised states ``(N, L, 3)`` in float32."""

    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    with h5py.File(path, "r") as file:
        return torch.from_numpy(file[split][...])


class TrajectoryWindows(Dataset):
    r"""Random windows of ``window`` consecutive states from a set of trajectories.

    Item ``i`` is a window of trajectory ``i mod N`` at a start drawn uniformly in
    :math:`\{0, \dots, L - w\}` (from ``generator``, else torch's global generator).

    Arguments:
        x: The trajectories, ``(N, L, D)``.
        window: The window length ``w``, with ``1 <= w <= L``.
        length: The number of items of an epoch (default ``N``: each trajectory once).

    Items are shaped ``(w, D)``.
    """

    def __init__(self, x: Tensor, window: int, length: int | None = None, generator: torch.Generator | None = None):
        if not isinstance(x, Tensor) or x.ndim != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x has shape {shape}: expected trajectories shaped (N, L, D)")
        N, L, _ = x.shape
        if not isinstance(window, int) or not 1 <= window <= L:
            raise ValueError(f"window={window!r}: expected an integer in [1, {L}] (trajectories have L={L} states)")
        if length is not None and (not isinstance(length, int) or length < 1):
            raise ValueError(f"length={length!r}: expected an integer >= 1")
        self.x, self.window, self.generator = x, window, generator
        self.length = N if length is None else length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Tensor:
        if not -self.length <= i < self.length:
            raise IndexError(f"index {i} out of range for {self.length} items")
        x = self.x[i % len(self.x)]
        start = torch.randint(0, x.shape[0] - self.window + 1, (), generator=self.generator).item()
        return x[start : start + self.window]

    def __getitems__(self, indices: list[int]) -> list[Tensor]:
        r"""The items ``indices`` at once (one random start each), drawn in one vectorised call: a
        faster equivalent of ``[self[i] for i in indices]`` that ``torch.utils.data.DataLoader`` and
        :func:`sda_lite.train.train` use."""

        i = torch.as_tensor(indices, dtype=torch.long)
        if i.numel() and not (-self.length <= i.min() and i.max() < self.length):
            raise IndexError(f"indices in [{i.min()}, {i.max()}] out of range for {self.length} items")
        N, L, _ = self.x.shape
        start = torch.randint(0, L - self.window + 1, i.shape, generator=self.generator)
        return list(self.x[(i % N)[:, None], start[:, None] + torch.arange(self.window)].unbind(0))
