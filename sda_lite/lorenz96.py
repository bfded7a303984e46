r"""Lorenz-96: a chaotic chain of any dimension, its datasets and observation scenarios.

.. math:: \dot{x}_i = (x_{i+1} - x_{i-2}) \, x_{i-1} - x_i + F, \quad i = 1, \dots, N,

indices modulo :math:`N` (a periodic ring of :math:`N` sites), forcing :math:`F = 8`, one RK4 step
per :math:`\Delta = 0.05` (DAPPER's and Sakov's setting, about 6 hours of weather) and transition
noise :math:`\mathcal{N}(0, \mathrm{noise} \, I)` as the Lorenz-63 chain has. The advection term
:math:`B(x)_i = (x_{i+1} - x_{i-2}) x_{i-1}` conserves the energy :math:`\frac{1}{2} \sum_i x_i^2`;
damping and forcing balance it on a chaotic attractor of mean about 2.3 and standard deviation
about 3.7 per site, nearly whatever :math:`N \geq 10`. Everything about this system lives here once:
:class:`NoisyLorenz96`, the datasets of each scale (:func:`ensure_lorenz96`), the observation
scenarios (:data:`SCENARIOS`, :func:`observer`), the spatial localisation of ensemble filters
(:func:`periodic_distance`, :func:`localisation`) and the trained prior (:func:`lorenz96_prior`).
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from sda_lite.baselines import Deterministic, Localisation, gaspari_cohn
from sda_lite.chain import NoisyRK4Chain, Shape
from sda_lite.config import data_dir, pick
from sda_lite.config import scale as get_scale
from sda_lite.diffusion import VPSDE
from sda_lite.io import atomic, check_integers, load, matches, write_splits
from sda_lite.lock import exclusive
from sda_lite.observe import Operator
from sda_lite.priors import ensure_prior, load_configs
from sda_lite.windows import TrajectoryWindows

FORMAT = 1  # the version of the dataset files


class NoisyLorenz96(NoisyRK4Chain):
    r"""The Lorenz-96 ring of ``N`` sites integrated by RK4, with Gaussian transition noise.

    .. math:: \dot{x}_i = (x_{i+1} - x_{i-2}) \, x_{i-1} - x_i + F \quad (\text{indices mod } N)

    One transition is one RK4 step of length :math:`\Delta` followed by noise,
    :math:`x_{i+1} = \mathrm{RK4}(x_i) + w`, :math:`w \sim \mathcal{N}(0, \mathrm{noise} \, I)`. The
    prior :math:`p(x_1)` is the law of the state after a spin-up: :math:`x_0 = F + 0.01 z`,
    :math:`z \sim \mathcal{N}(0, I)` (near the unstable fixed point :math:`x = F`), moved
    ``spinup`` noisy transitions onto the attractor (400 steps are 20 time units, DAPPER's burn-in).

    Arguments:
        N: The number of sites, ``N >= 4`` (the stencil reaches two sites back and one forward).
        F: The forcing (8 is chaotic, with about 13 positive Lyapunov exponents at ``N = 40``).
        dt: The time step :math:`\Delta > 0`.
        noise: The variance of the transition noise (default :math:`\Delta`, as Lorenz-63's).
        spinup: The number of noisy transitions that draw the prior, ``>= 0``.
    """

    MEAN = 2.3  # standardisation mean, the same at every site (F = 8)
    STD = 3.7  # standardisation scale (with the default noise)

    def __init__(
        self,
        N: int = 40,
        F: float = 8.0,
        dt: float = 0.05,
        noise: float | None = None,
        spinup: int = 400,
    ):
        if not isinstance(N, int) or isinstance(N, bool) or N < 4:
            raise ValueError(f"N={N!r}: expected an integer >= 4 sites")
        if not isinstance(F, (int, float)) or not math.isfinite(F):
            raise ValueError(f"F={F!r}: expected a finite forcing")
        if not isinstance(dt, (int, float)) or not dt > 0:
            raise ValueError(f"dt={dt!r}: expected a positive time step")
        noise = dt if noise is None else noise
        if not isinstance(noise, (int, float)) or not noise > 0:
            raise ValueError(f"noise={noise!r}: expected a positive transition noise variance")
        if not isinstance(spinup, int) or spinup < 0:
            raise ValueError(f"spinup={spinup!r}: expected an integer >= 0")

        self.D, self.N, self.F = N, N, float(F)
        self.dt, self.noise, self.spinup = float(dt), float(noise), spinup

    @staticmethod
    def advection(x: Tensor) -> Tensor:
        r"""The advection term :math:`B(x)_i = (x_{i+1} - x_{i-2}) \, x_{i-1}`, ``x: (*batch, N)``.

        It conserves energy, :math:`\sum_i x_i B(x)_i = 0`: the sum telescopes over the ring.
        """

        return (x.roll(-1, dims=-1) - x.roll(2, dims=-1)) * x.roll(1, dims=-1)

    def f(self, x: Tensor) -> Tensor:
        r"""The vector field :math:`\dot{x} = B(x) - x + F`, with ``x: (*batch, N)``."""

        return self.advection(x) - x + self.F

    def prior(
        self,
        shape: Shape = (),
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        r"""Samples :math:`x_1 \sim p(x_1)` by spin-up (in float64), shaped ``(*shape, N)``."""

        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        x = self.F + 0.01 * torch.randn(*shape, self.N, generator=generator, dtype=torch.float64)
        for _ in range(self.spinup):
            x = self.transition(x, generator=generator)
        return x.to(dtype or torch.get_default_dtype())

    @classmethod
    def preprocess(cls, x: Tensor) -> Tensor:
        r"""Standardises raw states: :math:`(x - 2.3) / 3.7` at every site."""

        return (x - cls.MEAN) / cls.STD

    @classmethod
    def postprocess(cls, x: Tensor) -> Tensor:
        r"""Inverse of :meth:`preprocess`: :math:`2.3 + 3.7 \, x`."""

        return cls.MEAN + cls.STD * x


# --------------------------------------------------------------------------------------------------
# Datasets: ``train``, ``valid`` and ``test`` splits ``(n, L, N)`` in float32, standardised by
# :meth:`NoisyLorenz96.preprocess`, the settings as HDF5 attributes.


def lorenz96_sizes(scale_name: str | None = None) -> dict[str, int]:
    r"""The dataset sizes of a scale: ``trajectories`` and ``length`` (states kept after the prior's
    spin-up).

    ci: 64 x 128; cpu: 512 x 256; full: 1024 x 1024 (the sizes of the paper's Lorenz-63 data).
    """

    return pick(
        ci=dict(trajectories=64, length=128),
        cpu=dict(trajectories=512, length=256),
        full=dict(trajectories=1024, length=1024),
        scale_name=get_scale(scale_name),
    )


def _settings(
    trajectories: int, length: int, N: int, F: float, dt: float, spinup: int, seed: int
) -> dict:
    check_integers(
        ("trajectories", trajectories, 10),
        ("length", length, 1),
        ("N", N, 4),
        ("spinup", spinup, 0),
    )
    for name, value in (("F", F), ("dt", dt)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name}={value!r}: expected a finite number")
    if not dt > 0:
        raise ValueError(f"dt={dt!r}: expected a positive time step")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed={seed!r}: expected an integer")
    return dict(
        system="NoisyLorenz96",
        format=FORMAT,
        trajectories=int(trajectories),
        length=int(length),
        N=int(N),
        F=float(F),
        dt=float(dt),
        noise=float(dt),
        spinup=int(spinup),
        seed=int(seed),
        standardised=True,
    )


def simulate_lorenz96(
    trajectories: int,
    length: int,
    N: int = 40,
    F: float = 8.0,
    dt: float = 0.05,
    spinup: int = 400,
    seed: int = 0,
    progress: bool = True,
) -> Tensor:
    r"""Simulates standardised Lorenz-96 trajectories, ``(trajectories, length, N)`` in float32.

    Starts from :math:`x_1 \sim p(x_1)` (``spinup`` transitions from near :math:`x = F`), then keeps
    ``length`` states. Integrates in float64 under ``torch.Generator().manual_seed(seed)``; the
    transition noise has variance ``dt``.
    """

    _settings(trajectories, length, N, F, dt, spinup, seed)
    chain = NoisyLorenz96(N=int(N), F=F, dt=dt, spinup=int(spinup))
    generator = torch.Generator().manual_seed(int(seed))
    x = chain.prior((int(trajectories),), generator=generator, dtype=torch.float64)
    xs = torch.empty(trajectories, length, N, dtype=torch.float64)
    for i in tqdm(range(length), desc="Lorenz-96", disable=not progress):
        if i > 0:
            x = chain.transition(x, generator=generator)
        xs[:, i] = x
    return chain.preprocess(xs).float()


def ensure_lorenz96(
    path: str | Path | None = None,
    scale_name: str | None = None,
    *,
    N: int = 40,
    trajectories: int | None = None,
    length: int | None = None,
    F: float = 8.0,
    dt: float = 0.05,
    spinup: int = 400,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    r"""Returns the path of a Lorenz-96 dataset, generating it when missing, corrupt or mismatched.

    The file is written whole or not at all (:func:`~sda_lite.io.atomic`) and holds its settings
    as attributes, which must all match for an existing file to be reused.

    Arguments:
        path: The HDF5 file (default ``data_dir() / f"lorenz96_N{N}_{scale_name}.h5"``).
        scale_name: ``ci``, ``cpu`` or ``full`` (default ``$SDA_SCALE``), which sets the sizes of
            :func:`lorenz96_sizes`; ``trajectories`` and ``length`` override them.
        N, F, dt, spinup: The chain (:class:`NoisyLorenz96`). seed: The seed of the simulation.
    """

    scale_name = get_scale(scale_name)
    sizes = lorenz96_sizes(scale_name)
    for name, value in (("trajectories", trajectories), ("length", length)):
        sizes[name] = sizes[name] if value is None else value
    settings = _settings(N=N, F=F, dt=dt, spinup=spinup, seed=seed, **sizes)
    path = Path(path) if path is not None else data_dir() / f"lorenz96_N{N}_{scale_name}.h5"
    with exclusive(path):
        if not matches(path, settings, (N,)):
            x = simulate_lorenz96(
                N=N, F=F, dt=dt, spinup=spinup, seed=seed, progress=progress, **sizes
            )
            with atomic(path) as tmp, h5py.File(tmp, "w") as file:
                write_splits(file, x, settings)
    return path


# --------------------------------------------------------------------------------------------------
# Observation scenarios, in raw units (divide ``std`` by ``NoisyLorenz96.STD`` for standardised data)

SCENARIOS = {  # every `stride`-th site from the first, every `every`-th state, noise `std`
    "full": {"stride": 1, "every": 1, "std": 1.0},  # Sakov et al. (2008), DAPPER's sakov2008
    "half": {"stride": 2, "every": 1, "std": 1.0},  # every other site
    "sparse": {"stride": 4, "every": 4, "std": 1.0},  # a quarter of the sites, every 0.2 time units
}


def observer(stride: int) -> Operator:
    r"""The operator that keeps every ``stride``-th site from the first along the last axis:
    ``(*batch, N) -> (*batch, ceil(N / stride))``, for one state or a trajectory ``(*batch, L, N)``."""

    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride={stride!r}: expected an integer >= 1")
    return Operator(lambda x: x[..., ::stride], f"sites(::{stride})", linear=True)


def periodic_distance(i: Tensor, j: Tensor, N: int) -> Tensor:
    r"""The distance :math:`\min(|i - j|, N - |i - j|)` between sites ``i`` and ``j`` of a ring of
    ``N``, broadcast: ``i: (*a)``, ``j: (*b)`` broadcastable -> float64."""

    d = (torch.as_tensor(i) - torch.as_tensor(j)).abs().remainder(N).double()
    return torch.minimum(d, N - d)


def localisation(N: int, stride: int, radius: float) -> Localisation:
    r"""The Gaspari-Cohn localisation of an ensemble filter on a ring of ``N`` sites observed by
    :func:`observer` (``stride``): tapers :math:`\rho(d / c)` of the periodic distances between
    sites and observed sites, ``xy: (N, M)``, ``yy: (M, M)``, with half-width ``c = radius``
    (zero beyond ``2 c`` sites; DAPPER's ``loc_rad = r`` is ``c = 1.82 r``)."""

    sites = torch.arange(N)
    observed = sites[::stride]
    return Localisation(
        gaspari_cohn(periodic_distance(sites[:, None], observed, N), radius),
        gaspari_cohn(periodic_distance(observed[:, None], observed, N), radius),
    )


def sakov2008(
    cycles: int = 1000, seed: int = 0
) -> tuple[Deterministic, Tensor, Tensor, torch.Generator]:
    r"""DAPPER's Lorenz-96 reference twin experiment (``dapper.mods.Lorenz96.sakov2008``, after
    Sakov & Oke, 2008): ``N = 40``, ``F = 8``, one RK4 step per ``dt = 0.05`` and *no* model
    noise; every site observed at every step with :math:`\sigma_y = 1`; truth and ensemble start
    from :math:`\mathcal{N}(e_1, 0.001 I)`. DAPPER scores the analysis RMSE of the ensemble mean
    averaged over the cycles after 20 time units (400 cycles): 0.22 for ``EnKF('PertObs', N=40,
    infl=1.06)``, 3.6 for climatology.

    Returns the chain, the truth ``(cycles + 1, 40)`` from state 0, the observations
    ``(cycles, 40)`` of states 1, 2, ... (float64) and the generator, seeded with ``seed``, that
    drew them (for the ensemble).
    """

    chain = Deterministic(NoisyLorenz96(N=40, dt=0.05))
    g = torch.Generator().manual_seed(seed)
    x0 = torch.eye(40, dtype=torch.float64)[0]
    x0 = x0 + math.sqrt(0.001) * torch.randn(40, generator=g, dtype=torch.float64)
    x = chain.trajectory(x0, cycles + 1)
    y = x[1:] + torch.randn(cycles, 40, generator=g, dtype=torch.float64)
    return chain, x, y, g


# --------------------------------------------------------------------------------------------------
# The prior: local in time (windows of 2k + 1 states) and in space (periodic convolutions)


def lorenz96_windows(window: int, N: int, scale_name: str | None = None) -> tuple[Dataset, Dataset]:
    r"""The training and validation :class:`~sda_lite.windows.TrajectoryWindows` ``(window, N)`` of
    the Lorenz-96 dataset of ring ``N`` at a scale (generated when missing): one random window per
    trajectory and epoch."""

    path = ensure_lorenz96(scale_name=scale_name, N=N)
    return tuple(TrajectoryWindows(load(path, split), window) for split in ("train", "valid"))


def lorenz96_prior(scale_name: str | None = None, progress: bool = True) -> VPSDE:
    r"""The trained Lorenz-96 window prior of a scale, loaded from ``data_dir() /
    f"lorenz96_local_{scale}"`` (or the shipped copy), or trained there.

    Its config, ``sda_lite/configs/lorenz96_local.json``, is a ``spacetime`` prior
    (:class:`~sda_lite.spacetime.SpaceTimeNet`) trained on windows of ``2k + 1`` states of the ring
    of ``features`` sites; :func:`~sda_lite.priors.prior_for_length` (``features=N``) samples
    trajectories ``(L, N)`` of any ring ``N``.
    """

    scale_name = get_scale(scale_name)
    config, train_config = load_configs("lorenz96_local", scale_name)
    window, N = 2 * config["k"] + 1, config["features"]
    return ensure_prior(
        f"lorenz96_local_{scale_name}",
        config,
        train_config,
        data=lambda: lorenz96_windows(window, N, scale_name),
        progress=progress,
    )
