r"""Kolmogorov flow: a forced 2-D turbulent fluid simulated by jax-cfd, its datasets, plots and its
diffusion prior over windows of states.

The velocity :math:`u = (u_x, u_y)` of an incompressible fluid of density 1 on the periodic domain
:math:`[0, 2\pi]^2` follows the Navier-Stokes equations with Kolmogorov forcing

.. math:: \partial_t u + (u \cdot \nabla) u = -\nabla p + \frac{1}{Re} \nabla^2 u
    + \sin(4 y) \, e_x - 0.1 \, u, \qquad \nabla \cdot u = 0,

at Reynolds number :math:`Re = 1000`. One transition of the chain advances the flow by
:math:`\Delta = 0.2` time units in stable inner steps of jax-cfd's semi-implicit solver; the
dynamics are deterministic, the randomness lies in the initial state (a filtered random field).

Layout of a state ``x: (*batch, 2, H, W)``: channel 0 is :math:`u_x`, channel 1 is :math:`u_y`; axis
``-2`` is :math:`x` and axis ``-1`` is :math:`y` (jax-cfd's ``indexing="ij"``), with
:math:`x_i = 2 \pi i / H`. The values are jax-cfd's own **staggered** (MAC) arrays, returned
unchanged so that a transition loses nothing: :math:`u_x[i, j]` lives on the face
:math:`((i + 1) h, (j + \frac{1}{2}) h)` and :math:`u_y[i, j]` on :math:`((i + \frac{1}{2}) h, (j + 1) h)`,
where they are exactly divergence-free in the discrete sense
:math:`(u_x[i, j] - u_x[i - 1, j] + u_y[i, j] - u_y[i, j - 1]) / h = 0`. Datasets average blocks of
:math:`r \times r` cells (:func:`coarsen`), after which both components sit within
:math:`\frac{1}{2 r}` of a coarse cell's centre; :func:`vorticity` treats its input as
cell-centred. Trajectories are ``(*batch, L, 2, H, W)``: batch first, time second.

JAX is imported only when a :class:`KolmogorovFlow` is built. The field operations :func:`vorticity`,
:func:`coarsen`, :func:`upsample` and :func:`energy_spectrum` live in :mod:`sda_lite.fields` (pure
torch) and are re-exported here. The prior (:func:`kolmogorov_prior`) is a
:class:`~sda_lite.score.FieldScoreNet` of order ``k = 2`` trained on :func:`kolmogorov_windows`; the
observation scenarios of the paper are in :mod:`sda_lite.scenarios`.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from sda_lite import distributed
from sda_lite.config import data_dir, pick, scale as get_scale
from sda_lite.data import TrajectoryWindows, load
from sda_lite.diffusion import VPSDE
from sda_lite.dynamics import MarkovChain
from sda_lite.fields import coarsen, energy_spectrum, upsample, vorticity  # noqa: F401 (re-exported)

FORMAT = 1
Shape = tuple[int, ...] | torch.Size


def _jax():
    r"""Imports and returns ``jax``, made ready for jax-cfd 0.2.1.

    jax-cfd 0.2.1 calls ``jax.tree_map``, which JAX removed in 0.6: alias it to
    ``jax.tree_util.tree_map`` when missing (a present one is left alone). Also asks JAX not to
    preallocate most of a GPU's memory, which PyTorch shares (unless ``XLA_PYTHON_CLIENT_PREALLOCATE``
    is already set).
    """

    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    if not hasattr(jax, "tree_map"):
        jax.tree_map = jax.tree_util.tree_map
    return jax


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive integer")
    return int(value)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
        raise ValueError(f"{name}={value!r}: expected a positive number")
    return float(value)


@functools.lru_cache(maxsize=8)
def _functions(
    size, dt, reynolds, steps, forcing_wavenumber, forcing_magnitude, damping, initial_velocity, peak_wavenumber
):
    r"""Builds jax-cfd's prior and transition, jitted and vmapped over a leading batch axis.

    Memoised, so that flows with equal settings share JAX's compiled code (compiling takes seconds).
    """

    jax = _jax()
    import jax.numpy as jnp
    import jax_cfd.base as cfd

    grid = cfd.grids.Grid((size, size), domain=((0, 2 * math.pi), (0, 2 * math.pi)))
    bc = cfd.boundaries.periodic_boundary_conditions(2)
    forcing = cfd.forcings.simple_turbulence_forcing(
        grid=grid,
        constant_magnitude=forcing_magnitude,
        constant_wavenumber=forcing_wavenumber,
        linear_coefficient=-damping,
        forcing_type="kolmogorov",
    )
    step = cfd.equations.semi_implicit_navier_stokes(
        density=1.0, viscosity=1 / reynolds, dt=dt / steps, grid=grid, forcing=forcing
    )
    step = cfd.funcutils.repeated(step, steps=steps)

    def prior(key):
        v = cfd.initial_conditions.filtered_velocity_field(
            key, grid, maximum_velocity=initial_velocity, peak_wavenumber=peak_wavenumber
        )
        return jnp.stack([u.data for u in v])

    def transition(x):
        v = cfd.initial_conditions.wrap_variables(tuple(x), grid, (bc, bc))
        return jnp.stack([u.data for u in step(v)])

    return jax.jit(jax.vmap(prior)), jax.jit(jax.vmap(transition))


class KolmogorovFlow(MarkovChain):
    r"""The Kolmogorov flow on :math:`[0, 2 \pi]^2` as a deterministic Markov chain, simulated by jax-cfd.

    The prior :math:`p(x_1)` is jax-cfd's ``filtered_velocity_field``: white noise filtered to a
    log-normal spectrum peaking at wavenumber ``peak_wavenumber``, projected onto divergence-free
    fields and scaled to a maximum speed ``initial_velocity``. A transition integrates the
    Navier-Stokes equations (module docstring) for :math:`\Delta` = ``dt`` time units in
    ``steps`` semi-implicit steps of length :math:`\Delta / \text{steps}`, where, as in the paper's
    code, ``steps`` :math:`= \lceil \Delta / \delta \rceil` and :math:`\delta` is jax-cfd's
    ``stable_time_step`` for a maximum velocity ``max_velocity`` and Courant number ``courant``
    (82 steps at 256 x 256, 41 at 128 x 128).

    States are ``(*batch, 2, size, size)`` float32 tensors on jax-cfd's staggered grid (module
    docstring). The batch is flattened and simulated ``chunk`` states at a time under ``jax.vmap``
    (default: one at a time on CPU, where batching does not pay, 64 at a time on a GPU).

    Arguments:
        size: The grid size ``H = W``.
        dt: The time :math:`\Delta` between states.
        reynolds: The Reynolds number :math:`Re` (the viscosity is :math:`1 / Re`).
        forcing_wavenumber, forcing_magnitude: The forcing :math:`a \sin(k y) e_x`.
        damping: The linear drag :math:`-c u` (coefficient ``c = 0.1``).
        initial_velocity, peak_wavenumber: The prior's maximum speed and spectral peak.
        max_velocity, courant: The bounds that set the stable inner time step.
        chunk: The number of states simulated at once (``None``: 1 on CPU, 64 on GPU).
    """

    def __init__(
        self,
        size: int = 256,
        dt: float = 0.2,
        reynolds: float = 1000.0,
        *,
        forcing_wavenumber: int = 4,
        forcing_magnitude: float = 1.0,
        damping: float = 0.1,
        initial_velocity: float = 3.0,
        peak_wavenumber: float = 4.0,
        max_velocity: float = 5.0,
        courant: float = 0.5,
        chunk: int | None = None,
    ):
        self.size = _positive_int("size", size)
        self.dt = _positive("dt", dt)
        self.reynolds = _positive("reynolds", reynolds)
        self.forcing_wavenumber = _positive_int("forcing_wavenumber", forcing_wavenumber)
        self.forcing_magnitude = float(forcing_magnitude)
        if isinstance(damping, bool) or not isinstance(damping, (int, float)) or damping < 0:
            raise ValueError(f"damping={damping!r}: expected a non-negative drag coefficient")
        self.damping = float(damping)
        self.initial_velocity = _positive("initial_velocity", initial_velocity)
        self.peak_wavenumber = _positive("peak_wavenumber", peak_wavenumber)
        self.max_velocity = _positive("max_velocity", max_velocity)
        self.courant = _positive("courant", courant)

        self.shape = (2, self.size, self.size)
        self.D = math.prod(self.shape)

        jax = _jax()
        import jax_cfd.base as cfd

        self._jax = jax
        self.grid = cfd.grids.Grid((self.size, self.size), domain=((0, 2 * math.pi), (0, 2 * math.pi)))
        stable = cfd.equations.stable_time_step(
            max_velocity=self.max_velocity,
            max_courant_number=self.courant,
            viscosity=1 / self.reynolds,
            grid=self.grid,
        )
        self.steps = max(1, math.ceil(self.dt / stable - 1e-9))
        on_gpu = jax.default_backend() != "cpu"
        self.chunk = _positive_int("chunk", chunk) if chunk is not None else (64 if on_gpu else 1)
        self._prior_fn = self._transition_fn = None

    def __repr__(self) -> str:
        return f"KolmogorovFlow(size={self.size}, dt={self.dt}, reynolds={self.reynolds}, steps={self.steps})"

    def _compile(self) -> None:
        r"""Fetches the jitted, vmapped prior and transition of jax-cfd (built once per setting)."""

        if self._transition_fn is None:
            self._prior_fn, self._transition_fn = _functions(
                self.size,
                self.dt,
                self.reynolds,
                self.steps,
                self.forcing_wavenumber,
                self.forcing_magnitude,
                self.damping,
                self.initial_velocity,
                self.peak_wavenumber,
            )

    def _chunked(self, fn, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return x
        return np.concatenate([np.asarray(fn(x[i : i + self.chunk])) for i in range(0, len(x), self.chunk)])

    def _check(self, x: Tensor, name: str = "x") -> None:
        if not isinstance(x, Tensor) or x.ndim < 3 or tuple(x.shape[-3:]) != self.shape:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            expected = ", ".join(map(str, self.shape))
            raise ValueError(f"{name} has shape {shape}: expected a velocity field shaped (*batch, {expected})")

    def prior(self, shape: Shape = (), generator: torch.Generator | None = None) -> Tensor:
        r"""Samples :math:`x_1 \sim p(x_1)`, shaped ``(*shape, 2, size, size)``.

        Each field gets its own JAX key, seeded by an integer drawn from ``generator`` (else torch's
        global generator), so ``torch.manual_seed`` makes the draw reproducible.
        """

        shape = tuple(shape)
        seeds = torch.randint(0, 2**31 - 1, (max(1, math.prod(shape)),), generator=generator)
        self._compile()
        keys = self._jax.vmap(self._jax.random.PRNGKey)(seeds.numpy().astype(np.uint32))
        x = self._chunked(self._prior_fn, keys)[: math.prod(shape)]
        return torch.from_numpy(x).reshape(*shape, *self.shape)

    def transition(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r"""Returns :math:`x_{i+1}`, the flow ``x: (*batch, 2, size, size)`` advanced by :math:`\Delta`.

        The dynamics are deterministic: ``generator`` is accepted for the interface and unused.
        """

        self._check(x)
        self._compile()
        y = x.detach().cpu().to(torch.float32).reshape(-1, *self.shape).numpy()
        y = self._chunked(self._transition_fn, y)
        return torch.from_numpy(y).reshape(x.shape).to(device=x.device, dtype=x.dtype)

    def trajectory(
        self,
        x: Tensor,
        length: int,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Tensor:
        r"""Returns :math:`x_{1:L}` from :math:`x_1 = x`, shaped ``(*batch, L, 2, size, size)``."""

        self._check(x)
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length={length!r}: expected an integer >= 1")
        xs = [x]
        for _ in tqdm(range(length - 1), desc="Kolmogorov", disable=not progress):
            xs.append(self.transition(xs[-1]))
        return torch.stack(xs, dim=-4)

    def log_prob(self, x_prev: Tensor, x_next: Tensor) -> Tensor:
        r"""Not available: the transition is deterministic, so :math:`p(x_{i+1} \mid x_i)` is a Dirac."""

        raise NotImplementedError(
            "KolmogorovFlow has deterministic transitions (a Dirac density): log_prob is undefined"
        )


def plot_vorticity(
    w: Tensor,
    axes=None,
    titles: list[str] | None = None,
    vmax: float | None = None,
    label: str = "vorticity $\\omega$",
    colorbar: bool = True,
):
    r"""Draws vorticity fields ``w: (n, H, W)`` side by side, :math:`x` down and :math:`y` across
    (matplotlib's image convention), on a shared diverging colour scale; returns the figure.

    Arguments:
        w: The fields (a single ``(H, W)`` field is accepted).
        axes: ``n`` axes to draw on (default: a new row of panels).
        titles: One title per panel.
        vmax: The colour range :math:`[-v, v]` (default: the largest absolute value).
        label: The colour bar's label.
        colorbar: Whether to draw the colour bar.
    """

    import matplotlib.pyplot as plt

    w = torch.as_tensor(w).detach().cpu().float()
    w = w[None] if w.ndim == 2 else w
    if w.ndim != 3:
        raise ValueError(f"w has shape {tuple(w.shape)}: expected vorticity fields shaped (n, H, W)")
    if axes is None:
        _, axes = plt.subplots(1, len(w), figsize=(2.2 * len(w) + 0.8, 2.4), squeeze=False, constrained_layout=True)
        axes = axes[0]
    vmax = float(w.abs().max()) if vmax is None else vmax
    for i, (ax, field) in enumerate(zip(axes, w)):
        image = ax.imshow(field.numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if colorbar:
        axes[0].figure.colorbar(image, ax=list(axes), shrink=0.8, label=label)
    return axes[0].figure


# Datasets


def kolmogorov_sizes(scale: str | None = None) -> dict[str, int]:
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
        scale_name=get_scale(scale),
    )


def split_sizes(N: int) -> dict[str, int]:
    r"""The 80/10/10 split of ``N`` trajectories, e.g. 1024 -> 819 / 102 / 103."""

    a, b = int(0.8 * N), int(0.9 * N)
    return {"train": a, "valid": b - a, "test": N - b}


def _settings(size, r, trajectories, burn, length, dt, reynolds, seed) -> dict:
    size, r, length = _positive_int("size", size), _positive_int("r", r), _positive_int("length", length)
    if size % r:
        raise ValueError(f"size={size} is not divisible by r={r}: expected a multiple of the coarsening factor")
    if isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer)) or trajectories < 10:
        raise ValueError(f"trajectories={trajectories!r}: expected an integer >= 10 (for an 80/10/10 split)")
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


def _valid(path: Path, settings: dict) -> bool:
    r"""Whether ``path`` is a readable dataset with exactly these settings and shapes."""

    try:
        with h5py.File(path, "r") as file:
            g = settings["grid"]
            sizes = split_sizes(settings["trajectories"])
            return _matches(file, settings) and all(
                file[s].shape == (n, settings["length"], 2, g, g) for s, n in sizes.items()
            )
    except (OSError, KeyError, AttributeError, TypeError, ValueError):
        return False


def _part(path: Path, rank: int, world: int) -> Path:
    r"""The file where process ``rank`` of ``world`` accumulates its trajectories (``path.partial``
    for a single process)."""

    return path.with_name(f"{path.name}.partial" if world == 1 else f"{path.name}.part{rank}of{world}")


def _resume(part: Path, settings: dict, start: int, stop: int) -> int:
    r"""The number of finished trajectories in ``part`` (which holds trajectories ``start`` to
    ``stop``); 0 (and the file removed) if unusable."""

    try:
        with h5py.File(part, "r") as file:
            g, n = settings["grid"], stop - start
            if _matches(file, {**settings, "start": start, "stop": stop}) and file["x"].shape == (n, settings["length"], 2, g, g):
                return int(file.attrs["done"])
    except (OSError, KeyError, AttributeError, TypeError, ValueError):
        pass
    part.unlink(missing_ok=True)
    return 0


def _simulate(part: Path, settings: dict, start: int, stop: int, batch: int, progress: bool, desc: str = "Kolmogorov") -> None:
    r"""Simulates trajectories ``start`` to ``stop`` into ``part`` (dataset ``x``, attribute ``done``,
    flushed after each batch), continuing from the trajectories it already holds."""

    n, g, seed = stop - start, settings["grid"], settings["seed"]
    burn, length, r = settings["burn"], settings["length"], settings["r"]
    done = _resume(part, settings, start, stop)
    flow = KolmogorovFlow(size=settings["size"], dt=settings["dt"], reynolds=settings["reynolds"], chunk=batch)
    with h5py.File(part, "a" if done else "w") as file:
        if not done:
            file.attrs.update({**settings, "start": start, "stop": stop, "done": 0})
            file.create_dataset("x", shape=(n, length, 2, g, g), dtype=np.float32, chunks=(1, length, 2, g, g) if n else None)
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


def _finalise(parts: list[tuple[Path, int, int]], path: Path, settings: dict, block: int = 64) -> None:
    r"""Gathers the finished ``parts`` (file, start, stop), splits the trajectories into
    train/valid/test in a temporary file moved atomically to ``path``, then deletes the parts."""

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # created with the usual permissions
    try:
        with h5py.File(tmp, "w") as dst:
            dst.attrs.update(settings)
            sources = [(h5py.File(part, "r"), start, stop) for part, start, stop in parts]
            try:
                first = 0
                for split, n in split_sizes(settings["trajectories"]).items():
                    out = dst.create_dataset(split, shape=(n, *sources[0][0]["x"].shape[1:]), dtype=np.float32)
                    for src, start, stop in sources:  # the part's trajectories in this split, block by block
                        for i in range(max(start, first), min(stop, first + n), block):
                            j = min(i + block, stop, first + n)
                            out[i - first : j - first] = src["x"][i - start : j - start]
                    first += n
            finally:
                for src, _, _ in sources:
                    src.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    parts = [(_part(path, p, world), start, stop) for p, (start, stop) in enumerate(distributed.ranges(settings["trajectories"], world))]
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
    scale: str | None = None,
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
        path: The HDF5 file (default ``data_dir() / f"kolmogorov_{scale}.h5"``).
        scale: ``ci``, ``cpu`` or ``full`` (default ``$SDA_SCALE``), which sets the sizes of
            :func:`kolmogorov_sizes`; ``size``, ``r``, ``trajectories``, ``burn`` and ``length``
            override them.
        dt, reynolds: The flow's settings. seed: The seed of trajectory 0 (trajectory n uses seed + n).
        batch: Trajectories simulated at once (default: 1 on CPU, 64 on GPU).
    """

    scale = get_scale(scale)
    sizes = kolmogorov_sizes(scale)
    for name, value in (("size", size), ("r", r), ("trajectories", trajectories), ("burn", burn), ("length", length)):
        sizes[name] = sizes[name] if value is None else value
    settings = _settings(dt=dt, reynolds=reynolds, seed=seed, **sizes)
    path = Path(path) if path is not None else data_dir() / f"kolmogorov_{scale}.h5"
    if not _valid(path, settings):
        if batch is None:
            batch = 64 if _jax().default_backend() != "cpu" else 1
        generate_kolmogorov(path, dt=dt, reynolds=reynolds, seed=seed, batch=batch, progress=progress, **sizes)
    return path


# Prior


class FieldWindows(TrajectoryWindows):
    r"""Random windows of ``window`` consecutive fields: :class:`~sda_lite.data.TrajectoryWindows`
    over trajectories ``x: (N, L, C, H, W)``, with items shaped ``(window, C, H, W)``."""

    def __init__(self, x: Tensor, window: int, length: int | None = None, generator: torch.Generator | None = None):
        if not isinstance(x, Tensor) or x.ndim != 5:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x has shape {shape}: expected field trajectories shaped (N, L, C, H, W)")
        super().__init__(x.flatten(2), window, length, generator)
        self.state = x.shape[2:]

    def __getitem__(self, i: int) -> Tensor:
        return super().__getitem__(i).unflatten(-1, self.state)

    def __getitems__(self, indices: list[int]) -> list[Tensor]:
        return [w.unflatten(-1, self.state) for w in super().__getitems__(indices)]


def kolmogorov_windows(scale_name: str | None = None, k: int = 2) -> tuple[FieldWindows, FieldWindows]:
    r"""The training and validation windows of ``2k + 1`` states of the Kolmogorov dataset of a scale
    (generated when missing): one random window per trajectory and epoch, ``(2k + 1, 2, H, W)``.

    The velocities are used as they are: the flow's statistics put their standard deviation close
    to 1 (0.97 and 0.93 for :math:`u_x` and :math:`u_y` at ``cpu`` scale) and their mean at 0, so the
    data are already standardised (the paper does the same).
    """

    path = ensure_kolmogorov(scale=scale_name)
    return FieldWindows(load(path, "train"), 2 * k + 1), FieldWindows(load(path, "valid"), 2 * k + 1)


@functools.lru_cache(maxsize=4)
def window_statistics(scale_name: str | None = None, k: int = 2) -> tuple[Tensor, Tensor]:
    r"""The mean and the stationary covariance of the windows of the Kolmogorov dataset of a scale:
    the Gaussian part of a :class:`~sda_lite.score.FieldScoreNet`.

    With :math:`m = \mathbb{E}[x_i]` the mean field (over trajectories and time) and
    :math:`\hat{d}_i(\kappa)` the orthonormal 2-D Fourier coefficients of :math:`x_i - m`, the
    covariance of mode :math:`\kappa` across a window is

    .. math:: C_\kappa[a, b] = \mathbb{E}\big[\mathrm{Re}\, \hat{d}_{i + a}(\kappa) \overline{\hat{d}_{i + b}(\kappa)}\big],
        \quad 0 \le a, b \le 2k,

    averaged over all windows of the training split: the energy spectrum on its diagonal, the
    time correlation of each scale off it.

    Returns:
        ``mean: (2, H, W)`` and ``cov: (2, H, W, 2k + 1, 2k + 1)``, float64.
    """

    return field_statistics(load(ensure_kolmogorov(scale=scale_name), "train"), k)


def field_statistics(x: Tensor, k: int = 2) -> tuple[Tensor, Tensor]:
    r"""The statistics of :func:`window_statistics` for trajectories ``x: (N, L, C, H, W)``:
    ``mean: (C, H, W)`` and ``cov: (C, H, W, 2k + 1, 2k + 1)``, float64."""

    if not isinstance(x, Tensor) or x.ndim != 5 or x.shape[1] < 2 * k + 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x has shape {shape}: expected trajectories (N, L, C, H, W) with L >= 2k + 1 = {2 * k + 1}")
    x = x.double()
    mean = x.mean(dim=(0, 1))
    d = torch.fft.fft2(x - mean, norm="ortho").unfold(1, 2 * k + 1, 1)  # (N, L - 2k, 2, H, W, 2k+1)
    cov = torch.einsum("nlchwa,nlchwb->chwab", d.real, d.real) + torch.einsum("nlchwa,nlchwb->chwab", d.imag, d.imag)
    return mean, cov / (d.shape[0] * d.shape[1])


def kolmogorov_prior(scale_name: str | None = None, progress: bool = True) -> VPSDE:
    r"""The trained Kolmogorov window prior of a scale: a :class:`~sda_lite.score.FieldScoreNet` of
    order ``k = 2`` over windows ``(5, 2, H, W)``, configured by ``sda_lite/configs/kolmogorov.json``
    (:func:`~sda_lite.train.load_configs`), loaded from ``data_dir() / f"kolmogorov_{scale}"`` or
    trained there on :func:`kolmogorov_windows` (:func:`~sda_lite.train.ensure_prior`).

    Use :func:`~sda_lite.train.prior_for_length` to sample trajectories ``(L, 2, H, W)`` from it.
    Training skips the per-epoch validation loss (1024 windows per evaluation, more than a ``ci``
    epoch trains on); the validation windows of :func:`kolmogorov_windows` serve the chapters.
    """

    from sda_lite.train import ensure_prior, load_configs  # train imports matplotlib: only when needed

    scale_name = get_scale(scale_name)
    config, schedule = load_configs("kolmogorov", scale_name)
    data = lambda: kolmogorov_windows(scale_name, config["k"])[0]  # noqa: E731
    return ensure_prior(f"kolmogorov_{scale_name}", config, schedule, data=data, progress=progress)
