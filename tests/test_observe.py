import pytest
import torch
from torch.nn import functional as F

from sda_lite.observe import Operator, coarsen, compose, every, mask, matrix, observe, select


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
    [select([0, 2]), every(3, start=1), mask(torch.arange(18).reshape(6, 3) % 4 == 0), compose(every(2), select(1)),
     Operator(lambda x: x / (1 + x.abs()), "saturate") @ every(2)],
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
