r"""The Kolmogorov flow: a forced 2-D turbulent fluid simulated by jax-cfd, as a Markov chain.

The velocity :math:`u = (u_x, u_y)` of an incompressible fluid of density 1 on the periodic domain
:math:`[0, 2\pi]^2` follows the Navier-Stokes equations with Kolmogorov forcing

.. math:: \partial_t u + (u \cdot \nabla) u = -\nabla p + \frac{1}{Re} \nabla^2 u
    + \sin(4 y) \, e_x - 0.1 \, u, \qquad \nabla \cdot u = 0,

at Reynolds number :math:`Re = 1000`. One transition advances the flow by :math:`\Delta = 0.2` time
units in stable inner steps of jax-cfd's semi-implicit solver; the dynamics are deterministic, the
randomness lies in the initial state (a filtered random field). JAX is imported only when a
:class:`KolmogorovFlow` is built.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from sda_lite.chain import MarkovChain

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
    size,
    dt,
    reynolds,
    steps,
    forcing_wavenumber,
    forcing_magnitude,
    damping,
    initial_velocity,
    peak_wavenumber,
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
        self.grid = cfd.grids.Grid(
            (self.size, self.size), domain=((0, 2 * math.pi), (0, 2 * math.pi))
        )
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
        return np.concatenate(
            [np.asarray(fn(x[i : i + self.chunk])) for i in range(0, len(x), self.chunk)]
        )

    def _check(self, x: Tensor, name: str = "x") -> None:
        if not isinstance(x, Tensor) or x.ndim < 3 or tuple(x.shape[-3:]) != self.shape:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            expected = ", ".join(map(str, self.shape))
            raise ValueError(
                f"{name} has shape {shape}: expected a velocity field shaped (*batch, {expected})"
            )

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
