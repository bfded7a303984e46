r"""The paper's six observation scenarios of the Kolmogorov flow, on the grid of any scale.

Each scenario is an observation operator :math:`A`, a noise level :math:`\sigma_y` and observations
:math:`y = A(x^*) + \sigma_y z` of a true trajectory :math:`x^*` (or fixed values, for the event and
the loop). Trajectories are velocity fields ``x: (*batch, L, 2, H, W)`` as stored in the datasets of
:mod:`sda_lite.kolmogorov`, whose values are already standardised (unit standard deviation): ``A``
acts on them directly, the same for the prior's samples and the truth.

Sizes and units are those of the paper's code (francois-rozet/sda,
``experiments/kolmogorov/figures.ipynb``) on its ``64 x 64`` grid, scaled to ``H``: coarsening
factors keep the same observed grids (8 x 8, 16 x 16), crops and pixel strides the same fraction
of the field. Velocities are the datasets' raw units, as in the paper. Vorticity is the paper's
**per grid cell**: central differences (:func:`~sda_lite.fields.vorticity` with
``scheme="central"``, the paper's ``torch.gradient`` scheme) times the cell size :math:`2\pi / n` of
the paper's ``n x n`` grid (:func:`cell_vorticity`): ``n = 16`` for saturation, computed on the
coarsened velocity exactly as the paper does at every scale, and ``n = 64`` for the event. The
library keeps the **physical sign**, :math:`\omega = \partial_x u_y - \partial_y u_x`; the paper's code
returns :math:`-\omega`. Hence the event asks for :math:`h\omega = -0.6` on the ring (the paper's
+0.6 of :math:`-h\omega`), and the saturation observes :math:`-1` times the paper's values
(:math:`w / (1 + |w|)` is odd, so the information is the same).

===============  ==================================================================  ===========
name             observation (paper, 64 x 64)                                         sigma_y
===============  ==================================================================  ===========
assimilation     every 4th state, velocity coarsened by 8 (to 8 x 8)                  0.1
extrapolation    every 3rd state, velocity coarsened by 4 (16 x 16), central 8 x 8     0.01
saturation       every 3rd state, w / (1 + abs(w)) of the vorticity per cell of the    0.05
                 velocity coarsened to 16 x 16, central 12 x 12
sparse           every state, velocity at every ``stride``-th pixel (2, 4, 8 or 16)    0.1
event            vorticity per cell of the last state equals -0.6 on the annulus       0.2
                 0.4 < r^2 < 0.6 (r in [-1, 1])
loop             x_1 - x_L = 0                                                        0.01
===============  ==================================================================  ===========

>>> s = scenario("assimilation", x_true)       # x_true: (L, 2, H, W)
>>> x = assimilate(prior, s.y, s.A, s.std)     # posterior samples (n, L, 2, H, W)
>>> s.residual(x)                              # std(A(x) - y) / sigma_y, about 1 for a good fit
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sda_lite.fields import coarsen as pool
from sda_lite.fields import upsample, vorticity
from sda_lite.kolmogorov.data import kolmogorov_sizes
from sda_lite.kolmogorov.flow import KolmogorovFlow
from sda_lite.observe import Operator, coarsen, compose, every, mask, observe

SCENARIOS = ("assimilation", "extrapolation", "saturation", "sparse", "event", "loop")
PAPER_GRID = 64  # the stored grid of the paper, on which the scenarios' sizes are given
PAPER_STRIDES = (2, 4, 8, 16)  # the sparse scenario's pixel strides in the paper's figure (64 x 64)
EVENT = (
    -0.6
)  # the event's vorticity per cell of the 64 x 64 grid, physical sign (the paper: +0.6 of -h w)


@dataclass
class Scenario:
    r"""An observation scenario: ``y = A(x) + std * z`` for trajectories ``x: (*batch, L, 2, H, W)``.

    Attributes:
        name: One of :data:`SCENARIOS`.
        A: The observation operator, ``(*batch, L, 2, H, W) -> (*batch, *obs)``, differentiable.
        y: The observations ``(*obs)``.
        std: The observation noise :math:`\sigma_y`.
        settings: The sizes used (factor, crop, states, ...), for titles and reports.
    """

    name: str
    A: Callable[[Tensor], Tensor]
    y: Tensor
    std: float
    settings: dict = field(default_factory=dict)

    def residual(self, x: Tensor) -> float:
        r"""The residual statistic :math:`\mathrm{std}(A(x) - y) / \sigma_y` over all samples and
        observations of ``x: (*batch, L, 2, H, W)``: about 1 when the samples explain ``y`` to the
        noise level, much larger when they miss it."""

        with torch.no_grad():
            r = self.A(x) - self.y.to(x)
        return float(r.std() / self.std)


def cell_vorticity(x: Tensor, cells: int) -> Tensor:
    r"""The vorticity per cell of a ``cells x cells`` grid, the paper's unit:
    :math:`h \omega` with :math:`h = 2 \pi / \mathrm{cells}`, :math:`\omega` by central differences:
    ``(*batch, 2, H, W) -> (*batch, H, W)``. Linear.

    With ``cells = H`` it is the paper code's ``KolmogorovFlow.vorticity`` (``torch.gradient`` with
    unit spacing on a circularly padded grid) with the physical sign, i.e. :math:`-1` times it.
    """

    return vorticity(x, "central") * (2 * math.pi / cells)


def crop(size: int, grid: int) -> Operator:
    r"""The central ``size x size`` crop of a ``grid x grid`` field: ``(*, grid, grid) -> (*, size, size)``."""

    if not isinstance(size, int) or not 1 <= size <= grid:
        raise ValueError(
            f"crop: size={size!r} is outside the {grid}x{grid} field: expected an integer in [1, {grid}]"
        )
    a = (grid - size) // 2

    def f(x: Tensor) -> Tensor:
        if x.shape[-2:] != (grid, grid):
            raise ValueError(f"crop: x has shape {tuple(x.shape)}, expected (*, {grid}, {grid})")
        return x[..., a : a + size, a : a + size]

    return Operator(f, f"crop({size} of {grid})", linear=True)


def annulus(grid: int, inner: float = 0.4, outer: float = 0.6) -> Tensor:
    r"""The boolean ``(grid, grid)`` mask of :math:`inner < r^2 < outer`, with coordinates in :math:`[-1, 1]`."""

    u = torch.linspace(-1, 1, grid)
    r2 = u[:, None] ** 2 + u**2
    return (inner < r2) & (r2 < outer)


def _grid(x: Tensor) -> tuple[int, int]:
    if not isinstance(x, Tensor) or x.ndim < 4 or x.shape[-3] != 2 or x.shape[-1] != x.shape[-2]:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"x_true has shape {shape}: expected a trajectory of square velocity fields (*batch, L, 2, H, H)"
        )
    return x.shape[-4], x.shape[-1]


def operator(name: str, grid: int, length: int, **overrides) -> tuple[Operator, float, dict]:
    r"""The operator :math:`A`, the noise :math:`\sigma_y` and the settings of scenario ``name`` for
    trajectories of ``length`` states on a ``grid x grid`` grid.

    Overrides: ``std`` (all), ``every`` (states, where the scenario skips some), ``factor``
    (coarsening; assimilation, extrapolation, saturation), ``crop`` (extrapolation, saturation),
    ``stride`` (sparse).
    """

    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}: expected one of {', '.join(SCENARIOS)}")
    std = {
        "assimilation": 0.1,
        "extrapolation": 0.01,
        "saturation": 0.05,
        "sparse": 0.1,
        "event": 0.2,
        "loop": 0.01,
    }[name]
    std = overrides.pop("std", std)
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not std > 0:
        raise ValueError(f"std={std!r}: expected a positive noise level")
    s: dict = {}
    n = overrides.pop(
        "every", {"assimilation": 4, "extrapolation": 3, "saturation": 3}.get(name, 1)
    )

    if name in ("assimilation", "extrapolation", "saturation"):
        paper = {"assimilation": 8, "extrapolation": 4, "saturation": 4}[name]
        s["factor"] = overrides.pop(
            "factor", max(1, paper * grid // PAPER_GRID)
        )  # the paper's, scaled
        if not isinstance(s["factor"], int) or s["factor"] < 1 or grid % s["factor"]:
            raise ValueError(
                f"{name}: the {grid}x{grid} grid is not divisible by the coarsening factor {s['factor']!r}"
            )
        coarse = grid // s["factor"]
        parts = [every(n, dim=-4), coarsen(s["factor"])]
        if name == "saturation":  # the vorticity of the coarsened velocity, per coarse cell
            parts.append(
                Operator(
                    lambda v: cell_vorticity(v, coarse),
                    f"vorticity(per cell of {coarse}x{coarse})",
                    linear=True,
                )
            )
        if name != "assimilation":
            s["crop"] = overrides.pop(
                "crop", max(1, coarse * {"extrapolation": 8, "saturation": 12}[name] // 16)
            )
            parts.append(crop(s["crop"], coarse))
        if name == "saturation":
            parts.append(Operator(lambda w: w / (1 + w.abs()), "saturate"))
        A = compose(*parts)
    elif name == "sparse":
        s["stride"] = overrides.pop("stride", max(1, grid // 16))
        if not isinstance(s["stride"], int) or not 1 <= s["stride"] <= grid:
            raise ValueError(f"sparse: stride={s['stride']!r}, expected an integer in [1, {grid}]")
        m = torch.zeros(grid, grid, dtype=torch.bool)
        m[:: s["stride"], :: s["stride"]] = True
        s["paper_stride"] = (
            s["stride"] * PAPER_GRID / grid
        )  # the same spacing on the paper's 64 x 64 grid
        A = compose(every(n, dim=-4), mask(m))
    elif name == "event":
        s["pixels"] = int(annulus(grid).sum())
        last = Operator(lambda x: x.select(-4, -1), "last", linear=True)
        per_cell = Operator(
            lambda v: cell_vorticity(v, PAPER_GRID),
            f"vorticity(per cell of {PAPER_GRID}x{PAPER_GRID})",
            linear=True,
        )
        A = compose(last, per_cell, mask(annulus(grid)))
    else:  # loop
        if length < 2:
            raise ValueError(
                f"loop: a trajectory of length {length} has no distinct first and last states"
            )
        A = Operator(lambda x: x.select(-4, 0) - x.select(-4, -1), "x_1 - x_L", linear=True)
    if overrides:
        raise ValueError(f"{name}: unknown override(s) {sorted(overrides)}")
    s.update(every=n, std=std)
    return A, float(std), s


def scenario(
    name: str,
    x_true: Tensor,
    scale_name: str | None = None,
    seed: int = 0,
    y: Tensor | None = None,
    **overrides,
) -> Scenario:
    r"""Scenario ``name`` (one of :data:`SCENARIOS`) for the true trajectory ``x_true: (L, 2, H, W)``.

    The observations are :math:`y = A(x^*) + \sigma_y z` with :math:`z` drawn from ``seed``, except
    for ``event`` (:math:`y =` :data:`EVENT` :math:`= -0.6` on the annulus) and ``loop``
    (:math:`y = 0`); pass ``y`` to use your own (checked against the shape of :math:`A(x^*)`).
    ``scale_name`` is accepted for symmetry with the rest of the library: the sizes follow the
    grid of ``x_true``. See :func:`operator` for the overrides.
    """

    length, grid = _grid(x_true)
    A, std, settings = operator(name, grid, length, **overrides)
    with torch.no_grad():
        clean = A(x_true)
    if y is not None:
        y = torch.as_tensor(y, dtype=x_true.dtype)
        if y.shape != clean.shape:
            raise ValueError(
                f"{name}: y has shape {tuple(y.shape)}, expected the shape of A(x_true), {tuple(clean.shape)}"
            )
    elif name == "event":
        y = torch.full_like(clean, EVENT)
    elif name == "loop":
        y = torch.zeros_like(clean)
    else:
        y = observe(clean, lambda v: v, std, generator=torch.Generator().manual_seed(seed))
    return Scenario(name, A, y, std, settings)


def _simulator(grid: int, scale_name: str | None) -> tuple[KolmogorovFlow, int]:
    r"""The flow on the simulation grid of the scale, and its ratio ``r`` to a ``grid x grid``."""

    size = kolmogorov_sizes(scale_name)["size"]
    if size % grid:
        raise ValueError(
            f"the simulation grid {size} is not a multiple of the {grid}x{grid} trajectory grid"
        )
    return KolmogorovFlow(size=size), size // grid


def rollout(x: Tensor, scale_name: str | None = None, progress: bool = False) -> Tensor:
    r"""Simulates forward from the first state of ``x: (*batch, L, 2, H, W)`` with jax-cfd: the
    physical-consistency check of a sampled trajectory.

    The first state is upsampled (:func:`~sda_lite.kolmogorov.upsample`) to the simulation grid of
    the scale (:func:`~sda_lite.kolmogorov.kolmogorov_sizes`), advanced ``L - 1`` times by the
    flow (whose first pressure projection makes it divergence-free) and coarsened back:
    the result ``(*batch, L, 2, H, W)`` is what the dynamics make of the sample's start.
    """

    length, grid = _grid(x)
    flow, r = _simulator(grid, scale_name)
    x1 = upsample(x.select(-4, 0).detach().cpu().float(), r)
    return pool(flow.trajectory(x1, length, progress=progress), r).to(x)


def step_error(x: Tensor, scale_name: str | None = None) -> Tensor:
    r"""The one-step consistency error of trajectories ``x: (*batch, L, 2, H, W)`` with the flow.

    Each state but the last is upsampled to the simulation grid of the scale, advanced one step
    :math:`\Delta` by jax-cfd and coarsened back, :math:`\Phi(x_i)`, then compared with the next
    state:

    .. math:: e_i = \operatorname{rms}\big(\Phi(x_i) - x_{i + 1}\big), \quad i = 1, \dots, L - 1,

    the root mean square over the velocity field. Data trajectories have a small but nonzero
    error (the coarse state does not hold the fine one); a sampled trajectory is as physical as
    the data when its error is of the same size. Divide by the data's one-step change
    :math:`\operatorname{rms}(x_{i + 1} - x_i)` for a unit.

    Returns:
        ``e: (*batch, L - 1)``, on the device and in the dtype of ``x``.
    """

    length, grid = _grid(x)
    if length < 2:
        raise ValueError(f"x has {length} state: expected trajectories of L >= 2 states")
    flow, r = _simulator(grid, scale_name)
    now = x.narrow(-4, 0, length - 1).detach().cpu().float()
    following = pool(flow.transition(upsample(now, r)), r).to(x)
    return (following - x.narrow(-4, 1, length - 1)).square().mean((-3, -2, -1)).sqrt()
