import pytest
import torch
from helpers import randomise
from hypothesis import given, settings
from hypothesis import strategies as st

from sda_lite.nets import ResMLP, TimeEmbedding, UNet


@pytest.mark.parametrize("shape", [(), (5,), (4, 3)])
def test_time_embedding_shapes(shape):
    emb = TimeEmbedding(24)
    assert emb(torch.rand(shape)).shape == (*shape, 24)
    assert emb(0.5).shape == (24,)


def test_time_embedding_separates_times():
    emb = randomise(TimeEmbedding(8))
    y = emb(torch.tensor([0.0, 0.5, 1.0]))
    assert (y[0] - y[1]).abs().max() > 1e-3 and (y[1] - y[2]).abs().max() > 1e-3


def test_res_mlp_shapes_and_broadcast():
    net = randomise(ResMLP(6, 4, width=32, depth=3, mod_features=8))
    x, y = torch.randn(5, 2, 6), torch.randn(8)
    assert net(x, y).shape == (5, 2, 4)
    assert torch.allclose(net(x, y), net(x, y.expand(5, 2, 8)), atol=1e-5)  # same up to rounding
    assert net(torch.randn(6), torch.randn(3, 8)).shape == (3, 4)
    assert ResMLP(6, 4, width=16, depth=0)(x).shape == (5, 2, 4)


@pytest.mark.parametrize("grad", [False, True])
def test_res_mlp_shared_modulation_path_matches_the_general_one(grad):
    r"""One ``y`` for all rows (the folded, and without autograd in-place, path) computes what
    the per-row path computes, values and input gradients, and leaves its inputs unchanged."""

    torch.manual_seed(0)
    net = randomise(ResMLP(6, 4, width=32, depth=3, mod_features=8))
    x, y = torch.randn(7, 6), torch.randn(8)
    x0 = x.clone()
    with torch.set_grad_enabled(grad):
        xs = x.clone().requires_grad_(grad)
        shared, general = net(xs, y), net(xs, y.expand(7, 8))
    assert torch.allclose(shared, general, atol=1e-5) and torch.equal(x, x0)
    assert shared.requires_grad == grad
    if grad:
        v = torch.randn(7, 4)
        (a,) = torch.autograd.grad(shared, xs, v, retain_graph=True)
        (b,) = torch.autograd.grad(general, xs, v)
        assert torch.allclose(a, b, atol=1e-5)
        shared.square().sum().backward()  # the parameters too, through the folded weights
        assert all(p.grad is not None for p in net.parameters())


def test_res_mlp_shared_modulation_under_autocast():
    r"""Under bfloat16 autocast a shared ``y`` runs (the per-row path) and stays close to float32."""

    net = randomise(ResMLP(6, 4, width=32, depth=2, mod_features=8))
    x, y = torch.randn(5, 6), torch.randn(8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = net(x, y)
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), net(x, y), rtol=0.1, atol=0.1)


def test_res_mlp_modulation_changes_output():
    net = randomise(ResMLP(3, 3, width=16, depth=2, mod_features=4))
    x = torch.randn(7, 3)
    assert not torch.allclose(net(x, torch.zeros(4)), net(x, torch.ones(4)))


def test_fresh_networks_predict_zero():
    assert (ResMLP(3, 5, 16, 2, 4)(torch.randn(2, 3), torch.randn(2, 4)) == 0).all()
    assert (
        UNet(2, 3, 4, (8, 16), 1, spatial=1)(torch.randn(2, 2, 8), torch.randn(2, 4)) == 0
    ).all()


def test_res_mlp_bad_input():
    net = ResMLP(3, 3, 16, 2, mod_features=4)
    with pytest.raises(ValueError, match="y of shape"):
        net(torch.randn(3))
    with pytest.raises(ValueError, match="y of shape"):
        net(torch.randn(3), torch.randn(5))
    with pytest.raises(ValueError, match="width"):
        ResMLP(3, 3, width=0)


@pytest.mark.parametrize("spatial, space", [(1, (16,)), (2, (8, 12))])
@pytest.mark.parametrize("circular", [False, True])
@pytest.mark.parametrize("channels, blocks", [((8,), 2), ((8, 16), (1, 2)), ((4, 8, 16), 1)])
def test_unet_shapes(spatial, space, circular, channels, blocks):
    net = randomise(UNet(3, 2, 6, channels, blocks, spatial=spatial, circular=circular))
    x = torch.randn(4, 3, *space)
    assert net(x, torch.randn(4, 6)).shape == (4, 2, *space)
    assert net(x[None], torch.randn(6)).shape == (
        1,
        4,
        2,
        *space,
    )  # several batch dims, broadcast y
    assert UNet(3, 3, 0, channels, blocks, spatial=spatial)(x).shape == x.shape  # no modulation


def test_unet_kernel_size_and_context_channel():
    net = randomise(UNet(11, 10, 8, (8, 16), 1, kernel_size=5, spatial=2, circular=True))
    assert net(torch.randn(2, 11, 8, 8), torch.randn(2, 8)).shape == (2, 10, 8, 8)


def test_unet_bad_input():
    net = UNet(3, 3, 4, (8, 16, 32), 1, spatial=2)
    with pytest.raises(ValueError, match="divisible by the total stride 4"):
        net(torch.randn(1, 3, 8, 6), torch.randn(1, 4))
    with pytest.raises(ValueError, match="expected x of shape"):
        net(torch.randn(1, 2, 8, 8), torch.randn(1, 4))
    with pytest.raises(ValueError, match="spatial must be 1 or 2"):
        UNet(3, 3, spatial=3)
    with pytest.raises(ValueError, match="kernel_size"):
        UNet(3, 3, kernel_size=4)
    with pytest.raises(ValueError, match="per level"):
        UNet(3, 3, channels=(8, 16), blocks=(1, 2, 3))


@settings(max_examples=12, deadline=None)
@given(
    spatial=st.sampled_from([1, 2]),
    levels=st.integers(1, 3),
    shifts=st.lists(st.integers(-3, 3), min_size=2, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_circular_unet_is_equivariant_to_periodic_shifts(spatial, levels, shifts, seed):
    channels = (4, 6, 8)[:levels]
    net = randomise(UNet(2, 3, 5, channels, 1, spatial=spatial, circular=True), seed)
    stride = 2 ** (levels - 1)
    dims = tuple(range(-spatial, 0))
    shift = tuple(s * stride for s in shifts[:spatial])
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 2, *(4 * stride,) * spatial, generator=generator)
    y = torch.randn(2, 5, generator=generator)
    out = net(torch.roll(x, shift, dims), y)
    assert torch.allclose(out, torch.roll(net(x, y), shift, dims), atol=1e-5)


def test_zero_padded_unet_is_not_shift_equivariant():
    net = randomise(UNet(2, 2, 0, (4, 8), 1, spatial=1, circular=False))
    x = torch.randn(1, 2, 16)
    assert not torch.allclose(net(torch.roll(x, 2, -1)), torch.roll(net(x), 2, -1), atol=1e-3)
