r"""Observation operators :math:`A` and synthetic observations :math:`y = A(x) + \sigma_y z`.

An operator maps a batch of trajectories ``x: (*batch, L, D)`` (or ``(*batch, L, C, H, W)`` for fields)
to observations ``(*batch, ...)``. Operators are differentiable, print readably and compose:
``compose(A1, A2)`` applies ``A1`` then ``A2``, as does ``A2 @ A1``.

>>> A = compose(every(8), select(0))  # the first variable of every 8th state
>>> A
compose(every(8), select([0]))
>>> A(torch.randn(16, 65, 3)).shape
torch.Size([16, 9, 1])

Operators can also be written as data, a *spec* (JSON text or the equivalent Python list), read by
:func:`parse_spec` and built by :func:`from_spec`: ``[["every", 8], ["select", [0]]]`` is the
operator above. The grammar is given in :func:`parse_spec`. This module is generic: it imports no
dynamical system, and the spec steps that need one (``["scenario", ...]``) are built by a callable
that the caller passes in (``from_spec(spec, resolvers={"scenario": f})``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral

import torch
from torch import Tensor

from sda_lite.fields import coarsen as pool


def _integer(value: object) -> bool:
    r"""Whether ``value`` is an integer (Python's or NumPy's), and not a boolean."""

    return isinstance(value, Integral) and not isinstance(value, bool)


class Operator:
    r"""A named, differentiable observation operator :math:`x \mapsto A(x)`.

    Wraps any differentiable callable, e.g. a nonlinear one:

    >>> saturate = Operator(lambda x: x / (1 + x.abs()), "saturate")

    Arguments:
        f: The map from ``x: (*batch, ...)`` to observations ``(*batch, ...)``; it must act on every
            batch element independently.
        name: How the operator prints.
        linear: Whether ``f`` is linear (then its Jacobian-vector product is ``f`` itself).
    """

    def __init__(
        self, f: Callable[[Tensor], Tensor], name: str | None = None, linear: bool = False
    ):
        if not callable(f):
            raise ValueError(f"f={f!r}: expected a callable from trajectories to observations")
        self.f, self.name, self.linear = f, name or getattr(f, "__name__", "operator"), linear

    def __call__(self, x: Tensor) -> Tensor:
        return self.f(x)

    def __matmul__(self, other: Callable[[Tensor], Tensor]) -> Operator:
        return compose(other, self)

    def __rmatmul__(self, other: Callable[[Tensor], Tensor]) -> Operator:
        return compose(self, other)

    def __repr__(self) -> str:
        return self.name


def _as_operator(A: Callable[[Tensor], Tensor]) -> Operator:
    return A if isinstance(A, Operator) else Operator(A)


def compose(*operators: Callable[[Tensor], Tensor]) -> Operator:
    r"""The operator that applies ``operators`` in the order given: ``compose(A1, A2)(x) = A2(A1(x))``."""

    if not operators:
        raise ValueError("compose() got no operator: expected at least one")
    ops = [part for A in operators for part in getattr(_as_operator(A), "parts", [A])]
    ops = [_as_operator(A) for A in ops]

    def f(x: Tensor) -> Tensor:
        for A in ops:
            x = A(x)
        return x

    composed = Operator(
        f, f"compose({', '.join(map(repr, ops))})", linear=all(A.linear for A in ops)
    )
    composed.parts = ops
    return composed


def _axis_size(x: Tensor, dim: int, what: str) -> int:
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"{what}: axis {dim} outside x of shape {tuple(x.shape)}")
    return x.shape[dim]


def select(index: int | Sequence[int], dim: int = -1) -> Operator:
    r"""Keeps the variables ``index`` along axis ``dim`` (default the last, ``D``), keeping the axis.

    ``select([0, 2])``: ``(*batch, L, D) -> (*batch, L, 2)``.
    """

    given = index
    if isinstance(index, Tensor) and not index.is_floating_point() and index.dtype != torch.bool:
        index = index.tolist()
    index = [index] if _integer(index) else index
    if not isinstance(index, (list, tuple, range)) or not all(_integer(i) for i in index):
        raise ValueError(f"select: index={given!r}, expected an integer or a list of integers")
    index = [int(i) for i in index]
    if not index:
        raise ValueError("select() got no index: expected at least one variable")

    def f(x: Tensor) -> Tensor:
        size = _axis_size(x, dim, f"select({index})")
        bad = [i for i in index if not -size <= i < size]
        if bad:
            raise ValueError(
                f"select: index {bad} outside axis {dim} of size {size} (x of shape {tuple(x.shape)})"
            )
        return x.index_select(dim, torch.as_tensor(index, device=x.device) % size)

    return Operator(f, f"select({index})", linear=True)


def every(n: int, start: int = 0, dim: int = -2) -> Operator:
    r"""Keeps every ``n``-th state from ``start`` along the time axis ``dim`` (default ``-2``, ``L`` in
    ``(*batch, L, D)``; use ``dim=-4`` for fields ``(*batch, L, C, H, W)``).

    ``every(8)``: ``(*batch, 65, D) -> (*batch, 9, D)``.
    """

    if not _integer(n) or n < 1:
        raise ValueError(f"every: n={n!r}, expected an integer >= 1")
    if not _integer(start) or start < 0:
        raise ValueError(f"every: start={start!r}, expected an integer >= 0")

    def f(x: Tensor) -> Tensor:
        size = _axis_size(x, dim, f"every({n})")
        if start >= size:
            raise ValueError(
                f"every: start={start} outside axis {dim} of size {size} (x of shape {tuple(x.shape)})"
            )
        index = [slice(None)] * x.dim()
        index[dim] = slice(start, None, n)
        return x[tuple(index)]

    return Operator(f, f"every({n})" if start == 0 else f"every({n}, start={start})", linear=True)


def mask(m: Tensor) -> Operator:
    r"""Keeps the entries where the boolean mask ``m`` is true, ``m`` shaped like the trailing axes of
    ``x``: ``(*batch, *m.shape) -> (*batch, m.sum())``."""

    m = torch.as_tensor(m)
    if m.dtype != torch.bool:
        raise ValueError(f"mask: dtype {m.dtype}, expected a boolean tensor")

    def f(x: Tensor) -> Tensor:
        if x.shape[x.dim() - m.dim() :] != m.shape or x.dim() < m.dim():
            raise ValueError(
                f"mask of shape {tuple(m.shape)} does not match the trailing axes of x {tuple(x.shape)}"
            )
        return x[(...,) + (m.to(x.device),)]

    return Operator(f, f"mask({tuple(m.shape)}, {int(m.sum())} observed)", linear=True)


def coarsen(factor: int) -> Operator:
    r"""Average pooling by ``factor`` over the last two axes: ``(*batch, H, W) -> (*batch, H / r, W / r)``
    (:func:`sda_lite.fields.coarsen`, as an operator).

    Both ``H`` and ``W`` must be divisible by ``factor``.
    """

    if not _integer(factor) or factor < 1:
        raise ValueError(f"coarsen: factor={factor!r}, expected an integer >= 1")
    return Operator(lambda x: pool(x, factor), f"coarsen({factor})", linear=True)


def matrix(A: Callable[[Tensor], Tensor], shape: Sequence[int]) -> Tensor:
    r"""The dense matrix ``(M, prod(shape))`` of a linear operator acting on ``x: shape``, flattened
    row-major (for a trajectory ``(L, D)``, index ``i * D + d``). For small exact computations."""

    n = int(torch.Size(shape).numel())
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    return A(eye).reshape(n, -1).mT


def observe(
    x: Tensor,
    A: Callable[[Tensor], Tensor],
    std: float | Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Draws synthetic observations :math:`y = A(x^*) + \sigma_y z`, :math:`z \sim \mathcal{N}(0, I)`.

    Arguments:
        x: The ground truth ``(*batch, L, D)``.
        A: The observation operator.
        std: The noise standard deviation :math:`\sigma_y > 0`, a float or a tensor broadcastable to
            the observations.
        generator: The random generator of the noise.

    Returns:
        The observations ``y``, shaped like ``A(x)``.
    """

    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    if not bool(torch.all(std > 0)) or not bool(torch.all(torch.isfinite(std))):
        raise ValueError(f"std={std.tolist()}: expected finite positive noise standard deviations")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"x has {bad} non-finite value(s) out of {x.numel()}: expected a finite truth"
        )
    y = A(x)
    z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
    return y + std * z


# --------------------------------------------------------------------------------------------------
# Operators as data: specs

SPEC_STEPS: tuple[str, ...] = ("every", "select", "mask", "coarsen", "scenario")
r"""The step names of a spec, in the order of the error messages."""

SPEC_RESOLVED: tuple[str, ...] = ("scenario",)
r"""The step names that :func:`from_spec` builds with a caller's resolver, not by itself."""

Resolver = Callable[[str, dict, tuple[int, ...] | None], Callable[[Tensor], Tensor]]
r"""``f(name, overrides, shape) -> operator``: builds the operator of
``["scenario", name, overrides]`` for trajectories of ``shape`` (None when :func:`from_spec` was
given no shape)."""

_SPEC_EXAMPLE = '[["every", 8], ["select", [0]]]'


def parse_spec(spec: str | list) -> list[list]:
    r"""The list of steps ``[[name, *args], ...]`` of an operator spec, checked.

    The grammar, with the steps applied in order (:func:`compose`)::

        spec := NAME                       a bare identifier: the scenario [["scenario", NAME]]
              | [step, step, ...]          a non-empty JSON list (text) or Python list
        step := [name, arg, ...] | name    a bare name is a step without arguments
        name := every | select | mask | coarsen | scenario

    The steps and their arguments:

    * ``["every", n]``, ``["every", n, start]``, ``["every", n, start, dim]``: :func:`every`;
    * ``["select", index]``, ``["select", index, dim]``: :func:`select`, ``index`` an int or list;
    * ``["mask"]`` (or just ``"mask"``): :func:`mask` of the tensor given to :func:`from_spec`;
    * ``["coarsen", factor]``: :func:`coarsen`;
    * ``["scenario", NAME]``, ``["scenario", NAME, {overrides}]``: a scenario of a dynamical system,
      built by the caller's resolver (see :func:`from_spec`); it must be the only step.

    >>> parse_spec('[["every", 8], ["select", [0]]]')
    [['every', 8], ['select', [0]]]
    >>> parse_spec(["mask"]), parse_spec("sparse")
    ([['mask']], [['scenario', 'sparse']])

    The names, the number of arguments and their types are checked here (integers are JSON
    integers, never booleans or fractions); their ranges when the operator is built, and those
    that depend on ``x`` (an index inside the axis) when it is applied.

    Raises:
        ValueError: When ``spec`` is not JSON, not a non-empty list, or has a step whose name is not
            one of :data:`SPEC_STEPS` or whose arguments do not fit it; the message quotes the spec
            or step given.
    """

    if isinstance(spec, str) and spec.strip().isidentifier():
        spec = [["scenario", spec.strip()]]  # a scenario by name
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as error:
            given = f"operator {spec!r} is not JSON ({error})"
            raise ValueError(f"{given}: expected e.g. '{_SPEC_EXAMPLE}'") from None
    if not isinstance(spec, list) or not spec:
        raise ValueError(
            f"operator {spec!r}: expected a non-empty JSON list of steps [name, *args]"
        )
    steps = [list(step) if isinstance(step, list) else [step] for step in spec]
    for step in steps:
        if not step or not isinstance(step[0], str) or step[0] not in SPEC_STEPS:
            raise ValueError(
                f"operator step {step!r}: expected [name, *args] with name in {SPEC_STEPS}"
            )
    for step in steps:
        if step[0] != "scenario":  # (a scenario's parts are checked by scenario_of)
            _check_args(step)
    return steps


# The arguments of each step: (name, accepts, expected), in order; the first ``least`` are needed.
# Only the types are checked here: the ranges (n >= 1, ...) by the functions that build the steps.
_ARGS: dict[str, tuple[int, list[tuple[str, Callable[[object], bool], str]]]] = {
    "every": (1, [("n", _integer, "an integer"), ("start", _integer, "an integer"),
                  ("dim", _integer, "an integer axis")]),
    "select": (1, [("index", lambda v: _integer(v) or (isinstance(v, list)
                                                       and all(_integer(i) for i in v)),
                    "an integer or a list of integers"),
                   ("dim", _integer, "an integer axis")]),
    "coarsen": (1, [("factor", _integer, "an integer")]),
    "mask": (0, []),
}  # fmt: skip


def _check_args(step: list) -> None:
    r"""Raises a ValueError when the arguments of a spec step do not have the types and ranges of
    its function (booleans and non-integers are not integers: ``["every", true]`` is not
    ``every(1)``, ``["select", [0.7]]`` not ``select([0])``)."""

    name, *args = step
    least, params = _ARGS[name]
    if not least <= len(args) <= len(params):
        names = ", ".join(p[0] for p in params)
        raise ValueError(
            f"operator step {step!r}: bad arguments (expected {least} to {len(params)} "
            f"argument(s): {names or 'none'}, got {len(args)})"
        )
    for value, (arg, accepts, expected) in zip(args, params):
        if not accepts(value):
            raise ValueError(
                f"operator step {step!r}: bad arguments ({arg}={value!r}, expected {expected})"
            )


def scenario_of(spec: str | list) -> tuple[str, dict] | None:
    r"""``(name, overrides)`` when the spec is a scenario, ``["scenario", name]`` or
    ``["scenario", name, {overrides}]`` (see :func:`parse_spec`), else None.

    >>> scenario_of("assimilation"), scenario_of('[["scenario", "sparse", {"stride": 4}]]')
    (('assimilation', {}), ('sparse', {'stride': 4}))
    >>> scenario_of([["every", 8]]) is None
    True

    Raises:
        ValueError: When the spec is malformed (:func:`parse_spec`), or has a scenario step that is
            not the only step or whose overrides are not a dict.
    """

    steps = parse_spec(spec)
    if not any(step[0] == "scenario" for step in steps):
        return None
    single = len(steps) == 1 and len(steps[0]) in (2, 3)
    if not single or (len(steps[0]) == 3 and not isinstance(steps[0][2], dict)):
        raise ValueError(
            f"operator {steps}: a scenario is a single step ['scenario', NAME] or "
            "['scenario', NAME, {overrides}]"
        )
    return steps[0][1], dict(steps[0][2]) if len(steps[0]) == 3 else {}


_BUILDERS: dict[str, Callable[..., Operator]] = {
    "every": every,
    "select": select,
    "coarsen": coarsen,
}


def _step_operator(step: list, m: Tensor | None) -> Operator:
    r"""The operator of a step ``[name, *args]`` other than a scenario; ``m``: the mask or None."""

    name, *args = step
    if name == "mask":
        if m is None:
            raise ValueError(
                "operator step ['mask'] needs a mask: expected from_spec(spec, mask=m) with m a "
                "boolean tensor, given mask=None"
            )
        return mask(torch.as_tensor(m).bool())
    try:
        return _BUILDERS[name](*args)
    except TypeError as error:
        raise ValueError(f"operator step {[name, *args]!r}: bad arguments ({error})") from None


def from_spec(
    spec: str | list,
    mask: Tensor | None = None,
    shape: Sequence[int] | None = None,
    resolvers: Mapping[str, Resolver] | None = None,
) -> Operator:
    r"""The operator of a spec (grammar in :func:`parse_spec`): ``compose`` of its steps.

    >>> from_spec('[["every", 8], ["select", [0]]]')
    compose(every(8), select([0]))

    Arguments:
        spec: JSON text or a list of steps.
        mask: The boolean tensor of the ``["mask"]`` steps, shaped like the trailing axes of ``x``.
        shape: The shape of the trajectories the operator acts on, passed to the resolvers.
        resolvers: The builders of the steps this generic module cannot build, keyed by name (one
            of :data:`SPEC_RESOLVED`): ``{"scenario": f}`` with ``f(name, overrides, shape)``
            returning the operator of ``["scenario", name, overrides]`` (:data:`Resolver`).

    Raises:
        ValueError: When the spec is malformed (:func:`parse_spec`), a step's arguments do not fit
            its function, a ``["mask"]`` step has no ``mask``, or a scenario has no resolver.
    """

    resolvers = dict(resolvers or {})
    unknown = sorted(set(resolvers) - set(SPEC_RESOLVED))
    if unknown:
        raise ValueError(
            f"resolvers for {unknown}: expected resolvers only for {list(SPEC_RESOLVED)}"
        )
    found = scenario_of(spec)
    if found is not None:
        if "scenario" not in resolvers:
            raise ValueError(
                f"operator {parse_spec(spec)}: a scenario needs a resolver, expected "
                "from_spec(spec, resolvers={'scenario': f}), "
                f"given resolvers for {sorted(resolvers)}"
            )
        A = resolvers["scenario"](found[0], found[1], None if shape is None else tuple(shape))
        return _as_operator(A)
    return compose(*(_step_operator(step, mask) for step in parse_spec(spec)))
