import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from sda_lite import observe as observe_module
from sda_lite.observe import (
    SPEC_STEPS,
    Operator,
    coarsen,
    compose,
    every,
    from_spec,
    mask,
    matrix,
    observe,
    parse_spec,
    scenario_of,
    select,
)


def test_select_shapes_and_values():
    x = torch.randn(4, 65, 3)
    assert select(0)(x).shape == (4, 65, 1)
    assert torch.equal(select([0, 2])(x), x[..., [0, 2]])
    assert torch.equal(select(-1)(x), x[..., 2:])
    assert torch.equal(select(1, dim=-2)(x), x[:, 1:2])


def test_every_shapes_and_values():
    x = torch.randn(2, 65, 3)
    assert every(8)(x).shape == (2, 9, 3)
    assert torch.equal(every(8)(x), x[:, ::8])
    assert torch.equal(every(3, start=1)(x), x[:, 1::3])
    field = torch.randn(2, 10, 2, 4, 4)  # (*batch, L, C, H, W)
    assert torch.equal(every(4, dim=-4)(field), field[:, ::4])


def test_mask_keeps_the_true_entries():
    x = torch.randn(5, 6, 3)
    m = torch.rand(6, 3) < 0.4
    assert torch.equal(mask(m)(x), x[:, m])
    assert mask(m)(x).shape == (5, int(m.sum()))


def test_coarsen_is_average_pooling():
    x = torch.randn(2, 3, 2, 8, 12)
    y = coarsen(4)(x)
    assert y.shape == (2, 3, 2, 2, 3)
    assert torch.allclose(y, F.avg_pool2d(x.flatten(0, 1), 4).unflatten(0, (2, 3)), atol=1e-6)


def test_compose_order_matmul_and_repr():
    x = torch.randn(3, 17, 3)
    A = compose(every(4), select(2))
    assert torch.equal(A(x), x[:, ::4, 2:])
    assert torch.equal((select(2) @ every(4))(x), A(x))  # A2 @ A1 applies A1 first
    assert repr(A) == "compose(every(4), select([2]))"
    assert repr(select(0) @ A) == "compose(every(4), select([2]), select([0]))"
    assert A.linear and not compose(A, Operator(torch.tanh)).linear
    assert repr(Operator(torch.tanh, "tanh")) == "tanh"
    assert repr(coarsen(2)) == "coarsen(2)"


@pytest.mark.parametrize(
    "A",
    [
        select([0, 2]),
        every(3, start=1),
        mask(torch.arange(18).reshape(6, 3) % 4 == 0),
        compose(every(2), select(1)),
        Operator(lambda x: x / (1 + x.abs()), "saturate") @ every(2),
    ],
)
def test_operators_are_differentiable(A):
    x = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(A, (x,))


def test_coarsen_is_differentiable():
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(coarsen(2), (x,))


def test_matrix_of_a_linear_operator():
    A = compose(every(4), select(0))
    x = torch.randn(5, 13, 2, dtype=torch.float64)
    M = matrix(A, (13, 2))
    assert M.shape == (4, 26)
    assert torch.allclose(x.flatten(-2) @ M.mT, A(x).flatten(-2))


def test_observe_noise_statistics_and_seed():
    x = torch.randn(4096, 9, 3)
    A = compose(every(2), select(0))
    y = observe(x, A, 0.5, generator=torch.Generator().manual_seed(1))
    assert y.shape == (4096, 5, 1)
    assert torch.equal(y, observe(x, A, 0.5, generator=torch.Generator().manual_seed(1)))
    assert abs((y - A(x)).std().item() - 0.5) < 0.02
    std = torch.tensor([[0.1], [0.2], [0.3], [0.4], [0.5]])
    r = observe(x, A, std) - A(x)
    assert torch.allclose(r.std(dim=0), std, rtol=0.1)


def test_bad_inputs_name_both_sides():
    x = torch.randn(2, 16, 3)
    with pytest.raises(ValueError, match=r"index \[5\].*size 3"):
        select(5)(x)
    with pytest.raises(ValueError, match="start=20.*size 16"):
        every(2, start=20)(x)
    with pytest.raises(ValueError, match=r"mask of shape \(4, 3\).*\(2, 16, 3\)"):
        mask(torch.ones(4, 3, dtype=torch.bool))(x)
    with pytest.raises(ValueError, match="divisible by 3"):
        coarsen(3)(torch.randn(2, 8, 8))
    with pytest.raises(ValueError, match="n=0"):
        every(0)
    with pytest.raises(ValueError, match="boolean"):
        mask(torch.ones(3))
    with pytest.raises(ValueError, match="std"):
        observe(x, select(0), 0.0)
    with pytest.raises(ValueError, match="std"):
        observe(x, select(0), torch.tensor([0.1, -1.0]))


# --------------------------------------------------------------------------------------------------
# Specs: operators as data


def test_parse_spec_grammar():
    steps = [["every", 8], ["select", [0]]]
    assert parse_spec('[["every", 8], ["select", [0]]]') == steps
    assert parse_spec(steps) == steps and parse_spec(steps) is not steps
    assert parse_spec([["every", 2], "mask"]) == [["every", 2], ["mask"]]  # a bare name, no args
    assert parse_spec('["mask"]') == [["mask"]]
    assert parse_spec("  sparse ") == [["scenario", "sparse"]]  # a bare identifier: a scenario
    scenario = [["scenario", "sparse", {"stride": 4}]]
    assert parse_spec(json.dumps(scenario)) == scenario
    assert SPEC_STEPS == ("every", "select", "mask", "coarsen", "scenario")
    copy = parse_spec(steps)
    copy[0].append(1)
    assert steps[0] == ["every", 8]  # the steps are copies


@pytest.mark.parametrize(
    "spec, expected, shape",
    [
        ([["every", 8], ["select", [0]]], compose(every(8), select([0])), (4, 65, 3)),
        (
            [["every", 3, 1], ["select", [2, 0]]],
            compose(every(3, start=1), select([2, 0])),
            (2, 17, 3),
        ),
        ([["select", 1, -2]], compose(select(1, dim=-2)), (3, 6, 3)),  # one step: still compose
        ([["select", -1]], compose(select(-1)), (3, 6, 3)),
        (
            [["every", 2, 0, -4], ["coarsen", 2]],
            compose(every(2, dim=-4), coarsen(2)),
            (2, 5, 2, 8, 8),
        ),
        (
            [["coarsen", 4], ["select", [1], -3]],
            compose(coarsen(4), select([1], dim=-3)),
            (3, 2, 8, 8),
        ),
    ],
)
def test_spec_is_the_hand_composed_operator(spec, expected, shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    for given in (spec, json.dumps(spec)):  # a list and JSON text
        A = from_spec(given)
        assert isinstance(A, Operator) and A.linear
        assert torch.equal(A(x), expected(x)) and repr(A) == repr(expected)


def test_spec_with_a_mask():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 6, 3, generator=g)
    m = torch.rand(6, 3, generator=g) < 0.5
    assert torch.equal(from_spec([["mask"]], mask=m)(x), mask(m)(x))
    assert torch.equal(from_spec('["mask"]', mask=m)(x), x[:, m])
    m2 = torch.rand(3, 3, generator=g) < 0.5
    A = from_spec([["every", 2], "mask"], mask=m2.int())  # any 0/1 tensor
    expected = compose(every(2), mask(m2))
    assert torch.equal(A(x), expected(x)) and repr(A) == repr(expected)


def test_scenario_steps_go_to_the_resolver():
    calls = []

    def resolver(name: str, overrides: dict, shape: tuple[int, ...] | None) -> Operator:
        calls.append((name, overrides, shape))
        return select(0)

    resolvers = {"scenario": resolver}
    spec = '[["scenario", "sparse", {"stride": 4}]]'
    assert (
        repr(from_spec(spec, shape=torch.Size([5, 2, 8, 8]), resolvers=resolvers)) == "select([0])"
    )
    assert repr(from_spec("assimilation", resolvers=resolvers)) == "select([0])"
    assert calls == [("sparse", {"stride": 4}, (5, 2, 8, 8)), ("assimilation", {}, None)]
    assert type(calls[0][2]) is tuple
    B = from_spec("loop", resolvers={"scenario": lambda name, overrides, shape: torch.tanh})
    assert isinstance(B, Operator)  # a plain callable is wrapped
    x = torch.randn(3, 4)
    assert torch.equal(B(x), torch.tanh(x))


def test_scenario_of():
    assert scenario_of("assimilation") == ("assimilation", {})
    assert scenario_of([["scenario", "sparse", {"stride": 4}]]) == ("sparse", {"stride": 4})
    assert scenario_of('[["every", 8], ["select", [0]]]') is None
    overrides = {"stride": 4}
    scenario_of([["scenario", "sparse", overrides]])[1]["stride"] = 2
    assert overrides == {"stride": 4}  # a copy


NAMES = r"\('every', 'select', 'mask', 'coarsen', 'scenario'\)"
SINGLE = r"a scenario is a single step \['scenario', NAME\] or \['scenario', NAME, \{overrides\}\]"


@pytest.mark.parametrize(
    "spec, given, expected",
    [
        (
            "[every 4]",
            r"operator '\[every 4\]' is not JSON",
            r"expected e\.g\. '\[\[\"every\", 8\]",
        ),
        ("[]", r"operator \[\]", "expected a non-empty JSON list of steps"),
        ('{"every": 8}', r"operator \{'every': 8\}", "expected a non-empty JSON list of steps"),
        (42, "operator 42", "expected a non-empty JSON list of steps"),
        ([["rotate", 2]], r"operator step \['rotate', 2\]", rf"expected .* with name in {NAMES}"),
        ([[]], r"operator step \[\]", r"expected \[name, \*args\]"),
        (["every", 8], r"operator step \[8\]", r"expected \[name, \*args\]"),  # flat: 8 is a step
        (
            [["scenario", "sparse"], ["every", 2]],
            r"operator \[\['scenario', 'sparse'\], \[",
            SINGLE,
        ),
        ([["scenario", "sparse", 4]], r"operator \[\['scenario', 'sparse', 4\]\]", SINGLE),
        ([["scenario"]], r"operator \[\['scenario'\]\]", SINGLE),
    ],
)
def test_malformed_specs_name_what_was_given_and_expected(spec, given, expected):
    resolvers = {"scenario": lambda *args: select(0)}
    for parse in (scenario_of, lambda s: from_spec(s, resolvers=resolvers)):
        with pytest.raises(ValueError, match=f"{given}.*{expected}"):
            parse(spec)


def test_bad_spec_arguments_and_missing_parts():
    with pytest.raises(ValueError, match=r"operator step \['every', 1, 2, 3, 4\]: bad arguments"):
        from_spec([["every", 1, 2, 3, 4]])
    with pytest.raises(ValueError, match="every: n=0, expected an integer >= 1"):
        from_spec([["every", 0]])
    no_mask = r"\['mask'\].*expected from_spec\(spec, mask=m\).*given mask=None"
    with pytest.raises(ValueError, match=no_mask):
        from_spec([["every", 2], ["mask"]])
    no_resolver = r"needs a resolver, expected .*\{'scenario': f\}.*given resolvers for \[\]"
    with pytest.raises(ValueError, match=no_resolver):
        from_spec("assimilation")
    unknown = r"resolvers for \['mask'\]: expected resolvers only for \['scenario'\]"
    with pytest.raises(ValueError, match=unknown):
        from_spec([["every", 2]], resolvers={"mask": lambda *args: select(0)})


FORBIDDEN = (
    "sda_lite.kolmogorov",
    "sda_lite.scenarios",
    "sda_lite.dynamics",
    "sda_lite.data",
    "sda_lite.train",
    "sda_lite.lorenz",
    "sda_lite.linear",
)  # the dynamical systems


def test_observe_is_generic():
    r"""sda_lite.observe imports no dynamical system, not even lazily, nor h5py."""

    tree = ast.parse(Path(observe_module.__file__).read_text())
    nodes = list(ast.walk(tree))
    imported = [a.name for node in nodes if isinstance(node, ast.Import) for a in node.names]
    imported += [node.module or "" for node in nodes if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.startswith(FORBIDDEN)], imported
    modules = (*FORBIDDEN, "h5py")
    code = f"import sys, sda_lite.observe; assert not [m for m in {modules!r} if m in sys.modules]"
    subprocess.run([sys.executable, "-c", code], check=True)
