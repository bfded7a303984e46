r"""Lorenz-63: the noisy chain of the paper, its datasets, observation scenarios and priors.

.. math:: \dot{x} = \big(\sigma (x_2 - x_1), \; x_1 (\rho - x_3) - x_2, \; x_1 x_2 - \beta x_3\big)

with :math:`(\sigma, \rho, \beta) = (10, 28, 8/3)`, one RK4 step per :math:`\Delta = 0.025` and transition
noise :math:`\mathcal{N}(0, \Delta I)`. Everything the book, the widgets, the command line and the
benchmarks need about this system lives here, once: :class:`NoisyLorenz63`, the datasets of each
scale (:func:`ensure_lorenz`), the paper's two observation scenarios (:data:`SCENARIOS`), the
initial particles of the filters (:func:`first_states`) and the prior recipe (:func:`lorenz_prior`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from sda_lite.chain import NoisyRK4Chain, Shape, _gaussian
from sda_lite.config import data_dir, pick
from sda_lite.config import scale as get_scale
from sda_lite.diffusion import VPSDE
from sda_lite.io import atomic, check_integers, load, matches, write_splits
from sda_lite.lock import exclusive
from sda_lite.priors import ensure_prior, load_configs
from sda_lite.windows import TrajectoryWindows

FORMAT = 1  # the version of the dataset files


class NoisyLorenz63(NoisyRK4Chain):
    r"""The Lorenz-63 system integrated by RK4, with Gaussian transition noise.

    .. math::
        \dot{x}_1 = \sigma (x_2 - x_1), \quad
        \dot{x}_2 = x_1 (\rho - x_3) - x_2, \quad
        \dot{x}_3 = x_1 x_2 - \beta x_3

    One transition is one RK4 step of length :math:`\Delta` followed by noise,
    :math:`x_{i+1} = \mathrm{RK4}(x_i) + w`, :math:`w \sim \mathcal{N}(0, \Delta I)`. The prior is
    :math:`\mathcal{N}((0, 0, 25), [[64, 50, 0], [50, 81, 0], [0, 0, 75]])`.

    Arguments:
        sigma, rho, beta: The parameters of the vector field.
        dt: The time step :math:`\Delta > 0`.
        noise: The variance of the transition noise (default :math:`\Delta`).
    """

    D = 3
    MEAN = (0.0, 0.0, 25.0)  # standardisation mean
    STD = (8.0, 9.0, 8.6)  # standardisation scale

    def __init__(
        self,
        sigma: float = 10.0,
        rho: float = 28.0,
        beta: float = 8 / 3,
        dt: float = 0.025,
        noise: float | None = None,
    ):
        if not dt > 0:
            raise ValueError(f"dt={dt!r}: expected a positive time step")
        noise = dt if noise is None else noise
        if not noise > 0:
            raise ValueError(f"noise={noise!r}: expected a positive transition noise variance")

        self.sigma, self.rho, self.beta = sigma, rho, beta
        self.dt, self.noise = dt, noise
        self.m0 = torch.tensor([0.0, 0.0, 25.0], dtype=torch.float64)
        self.P0 = torch.tensor(
            [[64.0, 50.0, 0.0], [50.0, 81.0, 0.0], [0.0, 0.0, 75.0]], dtype=torch.float64
        )

    def f(self, x: Tensor) -> Tensor:
        r"""The vector field :math:`\dot{x} = f(x)`, with ``x: (*batch, 3)``."""

        x1, x2, x3 = x.unbind(dim=-1)
        return torch.stack(
            (
                self.sigma * (x2 - x1),
                x1 * (self.rho - x3) - x2,
                x1 * x2 - self.beta * x3,
            ),
            dim=-1,
        )

    def prior(
        self,
        shape: Shape = (),
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        r"""Samples :math:`x_1 \sim \mathcal{N}(m_0, P_0)`, shaped ``(*shape, 3)``."""

        chol = torch.linalg.cholesky(self.P0)
        return _gaussian(self.m0, chol, shape, generator, dtype or torch.get_default_dtype())

    @classmethod
    def preprocess(cls, x: Tensor) -> Tensor:
        r"""Standardises raw states: :math:`(x - (0, 0, 25)) / (8, 9, 8.6)`."""

        return (x - x.new_tensor(cls.MEAN)) / x.new_tensor(cls.STD)

    @classmethod
    def postprocess(cls, x: Tensor) -> Tensor:
        r"""Inverse of :meth:`preprocess`: :math:`(0, 0, 25) + (8, 9, 8.6) \, x`."""

        return x.new_tensor(cls.MEAN) + x.new_tensor(cls.STD) * x


# --------------------------------------------------------------------------------------------------
# Datasets: ``train``, ``valid`` and ``test`` splits ``(N, L, 3)`` in float32, standardised by
# :meth:`NoisyLorenz63.preprocess`, the settings as HDF5 attributes.


def lorenz_sizes(scale_name: str | None = None) -> dict[str, int]:
    r"""The dataset sizes of a scale: ``trajectories``, ``length`` (kept states) and ``burn`` (burn-in steps).

    ci: 128 x 256 after 256 burn-in steps; cpu: 512 x 1024 after 512; full (the paper): 1024 x 1024 after 1024.
    """

    return pick(
        ci=dict(trajectories=128, length=256, burn=256),
        cpu=dict(trajectories=512, length=1024, burn=512),
        full=dict(trajectories=1024, length=1024, burn=1024),
        scale_name=get_scale(scale_name),
    )


def _settings(trajectories: int, length: int, burn: int, dt: float, seed: int) -> dict:
    check_integers(("trajectories", trajectories, 10), ("length", length, 1), ("burn", burn, 0))
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
        write_splits(file, x, settings)
    return Path(path)


def ensure_lorenz(
    path: str | Path | None = None,
    scale_name: str | None = None,
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
        path: The HDF5 file (default ``data_dir() / f"lorenz_{scale_name}.h5"``).
        scale_name: ``ci``, ``cpu`` or ``full`` (default ``$SDA_SCALE``), which sets the sizes of
            :func:`lorenz_sizes`; ``trajectories``, ``length`` and ``burn`` override them.
        dt: The time step. seed: The seed of the simulation.
    """

    scale_name = get_scale(scale_name)
    sizes = lorenz_sizes(scale_name)
    for name, value in (("trajectories", trajectories), ("length", length), ("burn", burn)):
        sizes[name] = sizes[name] if value is None else value
    settings = _settings(dt=dt, seed=seed, **sizes)
    path = Path(path) if path is not None else data_dir() / f"lorenz_{scale_name}.h5"
    with exclusive(path):
        if not matches(path, settings, (3,)):
            generate_lorenz(path, dt=dt, seed=seed, progress=progress, **sizes)
    return path


# --------------------------------------------------------------------------------------------------
# The paper's observation scenarios and the filters' initial particles

L = 65  # states of an assimilation window, as in the paper
SCENARIOS = {  # the first standardised variable, every `every`-th state, noise `std`
    "lo": {"every": 8, "std": 0.05},  # low frequency, low noise: 9 precise observations
    "hi": {"every": 1, "std": 0.25},  # high frequency, high noise: 65 noisy observations
}


def first_states(chain: NoisyLorenz63, N: int, generator: torch.Generator | None = None) -> Tensor:
    r"""``N`` initial particles ``(N, 3)`` (raw units, float64): draws of the prior :math:`p(x_1)`
    moved ``L - 1 = 64`` noisy steps towards the attractor, as the datasets' trajectories are."""

    x = chain.prior((N,), generator=generator, dtype=torch.float64)
    return chain.trajectory(x, L, generator=generator)[:, -1]


# --------------------------------------------------------------------------------------------------
# Priors


def lorenz_windows(window: int, scale_name: str | None = None) -> tuple[Dataset, Dataset]:
    r"""The training and validation :class:`~sda_lite.windows.TrajectoryWindows` of the standardised
    Lorenz-63 dataset of a scale (generated when missing): one random window of ``window`` states
    per trajectory and epoch."""

    path = ensure_lorenz(scale_name=scale_name)
    return TrajectoryWindows(load(path, "train"), window), TrajectoryWindows(
        load(path, "valid"), window
    )


def lorenz_configs(
    kind: str = "local", k: int = 2, scale_name: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    r"""The model and training configs of the Lorenz-63 prior of a scale.

    ``full`` is the paper's: a residual MLP of width 256, depth 5 and time embedding 32 over windows
    of ``2k+1`` states (``kind="local"``), or a 1-D U-Net over 32-state windows with channels (64,)
    and 3 blocks (``kind="global"``); AdamW, lr 1e-3, weight decay 1e-3, linear decay, batch 64,
    4096 epochs of one window per training trajectory (819 windows, 12 steps). ``cpu`` (width 128,
    depth 3; 8192 steps of 256 windows, lr 2e-3) and ``ci`` (width 64, depth 2; 1024 steps of 64
    windows, lr 2e-3) train in minutes and seconds on a CPU, with epochs of a fixed number of windows.
    The configs are read from ``sda_lite/configs/lorenz_{kind}.json`` (:func:`load_configs`), whose
    local prior has ``k = 2``, replaced by ``k``.
    """

    if kind not in ("local", "global"):
        raise ValueError(f"unknown prior kind {kind!r}: expected 'local' or 'global'")
    config, schedule = load_configs(f"lorenz_{kind}", scale_name)
    if kind == "local":
        config["k"] = k
    return config, schedule


def lorenz_prior(
    kind: str = "local", k: int = 2, scale_name: str | None = None, progress: bool = True
) -> VPSDE:
    r"""The trained Lorenz-63 window prior of a scale (:func:`lorenz_configs`), loaded from
    ``data_dir() / f"lorenz_{kind}_k{k}_{scale}"`` (``lorenz_global_{scale}``) or trained there.

    Use :func:`~sda_lite.priors.prior_for_length` to sample trajectories of any length from it.
    """

    scale_name = get_scale(scale_name)
    config, schedule = lorenz_configs(kind, k, scale_name)
    name = f"lorenz_local_k{k}_{scale_name}" if kind == "local" else f"lorenz_global_{scale_name}"
    window = 2 * k + 1 if kind == "local" else config["window"]
    return ensure_prior(
        name, config, schedule, data=lambda: lorenz_windows(window, scale_name), progress=progress
    )
