r"""Tests of the Kolmogorov flow (jax-cfd), its datasets and the torch helpers, on tiny grids."""

import math
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from helpers import files

from sda_lite.fields import coarsen, upsample, vorticity
from sda_lite.kolmogorov.data import (
    _settings,
    ensure_kolmogorov,
    generate_kolmogorov,
    kolmogorov_sizes,
)
from sda_lite.kolmogorov.flow import KolmogorovFlow, _jax

SIZE = 32  # simulated grid of the tests (11 inner steps per state)
TINY = dict(
    size=SIZE, r=4, trajectories=10, burn=2, length=3
)  # stored 8 x 8; batch=1 for exact resumes


@pytest.fixture(scope="module")
def flow():
    return KolmogorovFlow(size=SIZE)


def mac_divergence(x):
    r"""The discrete divergence of jax-cfd's staggered field, at cell centres."""

    h = 2 * math.pi / x.shape[-1]
    ux, uy = x[..., 0, :, :], x[..., 1, :, :]
    return (ux - ux.roll(1, dims=-2) + uy - uy.roll(1, dims=-1)) / h


def test_importing_does_not_import_jax():
    code = "import sys, sda_lite.kolmogorov, sda_lite.dynamics, sda_lite.data; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_class_from_dynamics():
    from sda_lite.dynamics import KolmogorovFlow as K

    assert K is KolmogorovFlow


def test_tree_map_alias(monkeypatch):
    jax = _jax()
    monkeypatch.delattr(jax, "tree_map", raising=False)
    assert _jax() is jax and jax.tree_map is jax.tree_util.tree_map
    assert jax.tree_map(lambda a: a + 1, {"a": 1}) == {"a": 2}

    sentinel = object()  # a present tree_map (older JAX) is left alone
    monkeypatch.setattr(jax, "tree_map", sentinel, raising=False)
    _jax()
    assert jax.tree_map is sentinel


def test_inner_steps():
    # Courant 0.5 at max velocity 5: dt = 0.5 (2 pi / n) / 5, steps = ceil(0.2 / dt)
    assert KolmogorovFlow(size=256).steps == 82
    assert KolmogorovFlow(size=128).steps == 41
    assert KolmogorovFlow(size=SIZE).steps == math.ceil(0.2 / (0.1 * 2 * math.pi / SIZE))


def test_bad_flow_settings():
    with pytest.raises(ValueError, match="size=0"):
        KolmogorovFlow(size=0)
    with pytest.raises(ValueError, match="dt=-0.2"):
        KolmogorovFlow(size=SIZE, dt=-0.2)


def test_prior(flow):
    x = flow.prior((3,), generator=torch.Generator().manual_seed(1))
    assert x.shape == (3, 2, SIZE, SIZE) and x.dtype == torch.float32
    assert torch.equal(x, flow.prior((3,), generator=torch.Generator().manual_seed(1)))
    assert not torch.equal(x[0], x[1])
    # filtered field: maximum speed 3, no mean flow, divergence-free
    speed = x.square().sum(dim=1).sqrt().flatten(1).amax(dim=1)
    assert torch.allclose(speed, torch.full((3,), 3.0), rtol=1e-4)
    assert x.mean(dim=(-2, -1)).abs().max() < 1e-4
    assert mac_divergence(x).abs().max() < 1e-3
    assert flow.prior(generator=torch.Generator().manual_seed(1)).shape == (2, SIZE, SIZE)


def test_trajectory(flow):
    x = flow.prior((2, 1), generator=torch.Generator().manual_seed(2))
    xs = flow.trajectory(x, 4)
    assert xs.shape == (2, 1, 4, 2, SIZE, SIZE)
    assert torch.equal(xs[..., 0, :, :, :], x)
    assert torch.equal(xs[..., 1, :, :, :], flow.transition(x))  # deterministic
    assert torch.isfinite(xs).all() and xs.abs().max() < 10
    assert not torch.allclose(xs[..., 3, :, :, :], x, atol=1e-2)
    # the projection keeps every state divergence-free on jax-cfd's staggered grid
    grad = (xs - xs.roll(1, dims=-1)).abs().max() * SIZE / (2 * math.pi)
    assert mac_divergence(xs).abs().max() < 1e-5 * grad


def test_forcing_from_rest(flow):
    # From rest, the shear u_x(y) is not advected: du/dt = sin(4y) - (0.1 + 16 / Re) u
    x = flow.transition(torch.zeros(2, SIZE, SIZE))
    a = 0.1 + 16 / 1000
    y = (torch.arange(SIZE) + 0.5) * 2 * math.pi / SIZE  # u_x lives at y = (j + 1/2) h
    expected = (1 - math.exp(-a * 0.2)) / a * torch.sin(4 * y)
    assert torch.allclose(x[0], expected.expand(SIZE, SIZE), atol=1e-3)
    assert x[1].abs().max() < 1e-5


def test_flow_errors(flow):
    with pytest.raises(ValueError, match=r"\(5, 2, 16, 16\).*\(\*batch, 2, 32, 32\)"):
        flow.transition(torch.zeros(5, 2, 16, 16))
    with pytest.raises(ValueError, match="length=0"):
        flow.trajectory(torch.zeros(2, SIZE, SIZE), 0)
    with pytest.raises(NotImplementedError, match="deterministic"):
        flow.log_prob(torch.zeros(2, SIZE, SIZE), torch.zeros(2, SIZE, SIZE))


def test_vorticity_analytic():
    H, W = 16, 24  # axis -2 is x, axis -1 is y
    x = torch.arange(H, dtype=torch.float64)[:, None] * 2 * math.pi / H
    y = torch.arange(W, dtype=torch.float64)[None, :] * 2 * math.pi / W
    ux = torch.sin(3 * y) + 0 * x
    uy = torch.cos(2 * x) + torch.sin(x + y)
    u = torch.stack((ux, uy)).expand(3, 2, H, W)
    expected = -2 * torch.sin(2 * x) + torch.cos(x + y) - 3 * torch.cos(3 * y)
    w = vorticity(u)
    assert w.shape == (3, H, W) and w.dtype == torch.float64
    assert torch.allclose(w, expected.expand(3, H, W), atol=1e-10)
    with pytest.raises(ValueError, match=r"\(3, 16, 24\)"):
        vorticity(u[:, 0])


def test_coarsen():
    x = torch.randn(2, 3, 8, 12)
    y = coarsen(x, 4)
    assert y.shape == (2, 3, 2, 3)
    assert torch.allclose(y[1, 2, 1, 2], x[1, 2, 4:8, 8:12].mean())
    assert torch.allclose(y.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=1e-6)
    with pytest.raises(ValueError, match=r"8x12.*r=5"):
        coarsen(x, 5)
    with pytest.raises(ValueError, match="r=0"):
        coarsen(x, 0)


@pytest.mark.parametrize("r", [2, 3, 4])
def test_upsample(r):
    x = torch.randn(2, 5, 8, 6, dtype=torch.float64)
    y = upsample(x, r)
    assert y.shape == (2, 5, 8 * r, 6 * r)
    assert torch.allclose(y.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=1e-12)
    assert torch.allclose(upsample(torch.ones(4, 4), r), torch.ones(4 * r, 4 * r))


def test_upsample_is_centred_and_periodic():
    # coarse values at block centres, interpolated to fine cell centres, across the periodic seam
    n, r = 32, 4
    t = lambda m: (torch.arange(m, dtype=torch.float64) + 0.5) * 2 * math.pi / m
    f = lambda a, b: torch.cos(a[:, None]) * torch.sin(b[None, :] + 1)
    y = upsample(f(t(n), t(n)), r)
    assert (y - f(t(n * r), t(n * r))).abs().max() < 0.01
    assert coarsen(upsample(torch.eye(4), 2), 2).sum() == pytest.approx(4)


def test_sizes():
    for scale in ("ci", "cpu", "full"):
        s = kolmogorov_sizes(scale)
        assert s["size"] % s["r"] == 0 and (s["size"] // s["r"]) % 8 == 0
    assert kolmogorov_sizes("full") == dict(size=256, r=4, trajectories=1024, burn=64, length=64)


def test_bad_dataset_settings():
    with pytest.raises(ValueError, match=r"size=30.*r=4"):
        _settings(30, 4, 10, 2, 3, 0.2, 1000.0, 0)
    with pytest.raises(ValueError, match="size=0"):
        _settings(0, 4, 10, 2, 3, 0.2, 1000.0, 0)
    with pytest.raises(ValueError, match="length=-1"):
        _settings(32, 4, 10, 2, -1, 0.2, 1000.0, 0)
    with pytest.raises(ValueError, match="trajectories=3"):
        _settings(32, 4, 3, 2, 3, 0.2, 1000.0, 0)
    with pytest.raises(ValueError, match=r"size=30.*r=4"):
        ensure_kolmogorov("unused.h5", "ci", size=30, r=4)


def read(path):
    with h5py.File(path, "r") as file:
        return {s: file[s][...] for s in ("train", "valid", "test")}, dict(file.attrs)


def test_dataset(tmp_path, flow, monkeypatch):
    path = ensure_kolmogorov(tmp_path / "k.h5", "ci", seed=5, progress=False, batch=1, **TINY)
    assert files(tmp_path) == ["k.h5"]  # no partial or temporary left
    data, attrs = read(path)
    assert {s: x.shape for s, x in data.items()} == {
        "train": (8, 3, 2, 8, 8),
        "valid": (1, 3, 2, 8, 8),
        "test": (1, 3, 2, 8, 8),
    }
    assert attrs["seed"] == 5 and attrs["grid"] == 8 and attrs["system"] == "KolmogorovFlow"

    # trajectory n starts from the prior under seed + n, drops `burn` states, is coarsened by r
    x = flow.prior((1,), generator=torch.Generator().manual_seed(5 + 9))
    x = coarsen(flow.trajectory(x, 5)[:, 2:], 4)
    np.testing.assert_allclose(data["test"], x.numpy(), atol=1e-6)

    # a matching file is reused; a mismatched one is regenerated
    calls = []
    original = KolmogorovFlow.trajectory
    monkeypatch.setattr(
        KolmogorovFlow, "trajectory", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    ensure_kolmogorov(path, "ci", seed=5, progress=False, batch=1, **TINY)
    assert calls == []
    ensure_kolmogorov(path, "ci", seed=6, progress=False, batch=1, **TINY)
    assert len(calls) == 10 and read(path)[1]["seed"] == 6


def test_resume_after_interruption(tmp_path, monkeypatch):
    reference = read(generate_kolmogorov(tmp_path / "ref.h5", progress=False, batch=1, **TINY))[0]

    path = tmp_path / "k.h5"
    path.write_bytes(b"not an HDF5 file")  # a corrupt dataset is regenerated...
    calls = []
    original = KolmogorovFlow.trajectory

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > 4:
            raise KeyboardInterrupt("simulated interruption")
        return original(*args, **kwargs)

    monkeypatch.setattr(KolmogorovFlow, "trajectory", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_kolmogorov(path, "ci", progress=False, batch=1, **TINY)
    assert path.read_bytes() == b"not an HDF5 file"  # ...and never replaced by a partial one
    with h5py.File(tmp_path / "k.h5.partial", "r") as file:
        assert file.attrs["done"] == 4

    calls.clear()
    monkeypatch.setattr(
        KolmogorovFlow, "trajectory", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    ensure_kolmogorov(path, "ci", progress=False, batch=1, **TINY)
    assert len(calls) == 6  # the 4 finished trajectories are not recomputed
    data = read(path)[0]
    assert all(np.array_equal(data[s], reference[s]) for s in reference)
    assert not (tmp_path / "k.h5.partial").exists()


def test_mismatched_partial_is_restarted(tmp_path):
    partial = tmp_path / "k.h5.partial"
    with h5py.File(partial, "w") as file:
        file.attrs.update(
            _settings(**{**TINY, "trajectories": 12}, dt=0.2, reynolds=1000.0, seed=0), done=3
        )
        file.create_dataset("x", data=np.full((12, 3, 2, 8, 8), 7.0, dtype=np.float32))
    data = read(generate_kolmogorov(tmp_path / "k.h5", progress=False, batch=1, **TINY))[0]
    assert not partial.exists() and not any((data[s] == 7.0).all() for s in data)


# Spectrum, windows and the 2-D window prior


def test_energy_spectrum():
    from sda_lite.kolmogorov import energy_spectrum

    t = torch.arange(16, dtype=torch.float64) * 2 * math.pi / 16
    u = torch.stack(
        (torch.sin(3 * t)[None, :].expand(16, 16), torch.zeros(16, 16))
    )  # energy 1/4 at |k| = 3
    k, E = energy_spectrum(u[None].expand(4, 2, 16, 16))
    assert k.tolist() == list(range(9)) and E.dtype == torch.float64
    assert E[3].item() == pytest.approx(0.25) and E.sum().item() == pytest.approx(0.25)
    x = torch.randn(3, 2, 16, 16, dtype=torch.float64)  # Parseval, but for the corners |k| > 8
    assert (
        energy_spectrum(x)[1].sum()
        < 0.5 * x.square().sum(1).mean()
        < energy_spectrum(x)[1].sum() / 0.7
    )
    with pytest.raises(ValueError, match=r"\(3, 16, 16\)"):
        energy_spectrum(x[:, 0])


def test_field_windows():
    from sda_lite.kolmogorov import FieldWindows

    x = torch.randn(4, 10, 2, 8, 8)
    w = FieldWindows(x, 5, generator=torch.Generator().manual_seed(0))
    assert len(w) == 4 and w[1].shape == (5, 2, 8, 8)
    items = w.__getitems__([0, 3])
    assert [v.shape for v in items] == [(5, 2, 8, 8)] * 2
    assert any(torch.equal(items[1], x[3, s : s + 5]) for s in range(6))
    with pytest.raises(ValueError, match=r"\(4, 10, 128\)"):
        FieldWindows(x.flatten(2), 5)


FIELD = {
    "kind": "field",
    "features": 2,
    "k": 1,
    "grid": 16,
    "channels": [4, 8],
    "blocks": 1,
    "embedding": 4,
}


def test_field_prior_shapes_and_periodicity():
    from helpers import randomise

    from sda_lite.score import FieldScoreNet
    from sda_lite.train import build_prior, prior_for_length

    sde = build_prior(FIELD)
    assert isinstance(sde.eps, FieldScoreNet) and sde.shape == (3, 2, 16, 16)
    net = randomise(build_prior(FIELD).eps).double()
    x = torch.randn(5, 3, 2, 16, 16, dtype=torch.float64)
    t = torch.rand(5, dtype=torch.float64)
    eps = net(x, t)
    assert eps.shape == x.shape and torch.isfinite(eps).all()
    # circular padding: equivariant to periodic shifts by the total stride (2) along x; along y the
    # forcing channel sin(4y) (period 4 cells here) breaks the symmetry of a shift by 2
    shifted = net(x.roll(2, dims=-2), t)
    assert torch.allclose(shifted, eps.roll(2, dims=-2), atol=1e-10)
    assert not torch.allclose(
        net(x.roll(2, dims=-1), t), eps.roll(2, dims=-1), atol=1e-6
    )  # sin(4y) breaks it
    # v-parametrisation: a fresh network predicts sigma_t x (exact for standard Gaussian data)
    fresh = build_prior(FIELD)
    assert torch.allclose(fresh.eps(x.float(), 0.5), fresh.sigma(0.5) * x.float(), atol=1e-6)

    prior = prior_for_length(sde, 6)
    assert prior.shape == (6, 2, 16, 16) and prior.eps.dim == -4
    assert prior.sample((2,), steps=2).shape == (2, 6, 2, 16, 16)
    with pytest.raises(ValueError, match="L=2"):
        prior_for_length(sde, 2)
    with pytest.raises(ValueError, match=r"windows of shape \(\*batch, 3, 2, H, W\)"):
        net(x[:, :2], t)
    with pytest.raises(ValueError, match="'grid'"):
        build_prior({k: v for k, v in FIELD.items() if k != "grid"})


def test_field_prior_trains_on_windows():
    from sda_lite.kolmogorov import FieldWindows
    from sda_lite.train import build_prior, train

    sde = build_prior(FIELD)
    data = FieldWindows(torch.randn(10, 6, 2, 16, 16), 3)
    history = train(sde, data, epochs=2, batch_size=2, epoch_size=2, progress=False)
    assert len(history["train"]) == 2 and all(math.isfinite(v) for v in history["train"])


def test_configs():
    from sda_lite.train import build_prior, load_configs

    for scale in ("ci", "cpu", "full"):
        model, schedule = load_configs("kolmogorov", scale)
        assert model["kind"] == "field" and model["k"] == 2 and model["forcing"] == 4
        assert model["grid"] == kolmogorov_sizes(scale)["size"] // kolmogorov_sizes(scale)["r"]
        if scale != "full":  # (without the Gaussian part, which reads the dataset of the scale)
            model.pop("gaussian")
            assert build_prior(model).shape == (5, 2, model["grid"], model["grid"])
    model, schedule = load_configs("kolmogorov", "full")  # the paper's
    assert model["channels"] == [96, 192, 384] and model["blocks"] == 3 and model["embedding"] == 64
    assert schedule == {
        "weight_decay": 1e-3,
        "lr_schedule": "linear",
        "epochs": 4096,
        "epoch_size": None,
        "batch_size": 32,
        "lr": 2e-4,
    }


def test_gaussian_part_is_the_exact_predictor_of_a_stationary_gaussian():
    from sda_lite.kolmogorov import field_statistics
    from sda_lite.score import FieldScoreNet, GaussianEps

    g, k, w = 4, 1, 3
    x = torch.randn(6, 10, 2, g, g, dtype=torch.float64).cumsum(1) + torch.linspace(
        0, 1, g
    )  # correlated in time
    mean, cov = field_statistics(x, k)
    assert mean.shape == (2, g, g) and cov.shape == (2, g, g, w, w)
    assert torch.allclose(cov, cov.mT) and torch.linalg.eigvalsh(cov).min() > -1e-9

    def C(
        v,
    ):  # the stationary covariance operator on windows (*, w, 2, g, g): per mode, across the window
        d = torch.fft.fft2(v, norm="ortho").movedim(-4, -1)
        d = (cov.to(d.dtype) @ d[..., None])[..., 0]
        return torch.fft.ifft2(d.movedim(-1, -4), norm="ortho").real

    n = w * 2 * g * g
    dense = C(torch.eye(n, dtype=torch.float64).reshape(n, w, 2, g, g)).reshape(n, n)
    exact = GaussianEps(mean.expand(w, 2, g, g), dense, shape=(w, 2, g, g))
    net = FieldScoreNet(2, k, channels=[4, 8], blocks=1, embedding=4, grid=g).double()
    net.fit(mean, cov)
    z = torch.randn(5, w, 2, g, g, dtype=torch.float64)
    t = torch.rand(5, dtype=torch.float64)
    assert torch.allclose(
        net(z, t), exact(z, t), atol=1e-8
    )  # F = 0: eps is the Gaussian part alone
    with pytest.raises(ValueError, match="expected mean"):
        net.fit(mean[0], cov)


def test_gaussian_only_keeps_the_statistics_and_drops_the_network():
    from sda_lite.kolmogorov import field_statistics, gaussian_only
    from sda_lite.priors import build_prior

    config = {**FIELD, "grid": 8}
    prior = build_prior(config)
    mean, cov = field_statistics(torch.randn(4, 6, 2, 8, 8).cumsum(1), config["k"])
    prior.eps.fit(mean, cov)
    for p in prior.eps.unet.parameters():  # a "trained" network: F_phi != 0
        p.data.normal_(0, 0.1)
    gaussian = gaussian_only(prior)
    x, t = torch.randn(3, 3, 2, 8, 8), torch.rand(3)
    assert torch.allclose(gaussian.eps(x, t), prior.eps.gaussian(x, t), atol=1e-5)
    assert not torch.allclose(prior.eps(x, t), gaussian.eps(x, t), atol=1e-3)
    with pytest.raises(ValueError, match="Gaussian part"):
        gaussian_only(build_prior({"kind": "local", "features": 3, "k": 1}))


def test_prior_data_is_the_dataset_of_the_scale_or_its_own(tmp_path, monkeypatch):
    import json

    import sda_lite.kolmogorov.prior as prior_module

    calls = []
    monkeypatch.setattr(
        prior_module, "ensure_kolmogorov", lambda *a, **kw: calls.append((a, kw)) or "file"
    )
    monkeypatch.setattr(prior_module, "data_dir", lambda: tmp_path)
    configs = tmp_path / "configs"
    configs.mkdir()
    entry = {"model": {}, "train": {}}
    (configs / "kolmogorov.json").write_text(
        json.dumps({"ci": entry, "cpu": {**entry, "data": {"trajectories": 512, "seed": 7}},
                    "full": {**entry, "data": {"frames": 3}}})
    )  # fmt: skip
    monkeypatch.setattr(prior_module, "CONFIGS", configs)
    assert prior_module.prior_data("ci") == "file" and calls[-1][1]["scale_name"] == "ci"
    prior_module.prior_data("cpu", progress=False)
    (path, scale), kw = calls[-1]
    assert path == tmp_path / "kolmogorov_cpu_prior.h5" and scale == "cpu"
    assert kw == {"progress": False, "trajectories": 512, "seed": 7}
    with pytest.raises(ValueError, match="'frames'"):
        prior_module.prior_data("full")


def test_the_prior_never_trains_on_the_truths_of_its_scale():
    import json

    from sda_lite.priors import CONFIGS

    for scale, entry in json.loads((CONFIGS / "kolmogorov.json").read_text()).items():
        seed = entry.get("data", {}).get("seed", 0)
        n = kolmogorov_sizes(scale)["trajectories"]
        assert seed == 0 or seed >= n, scale  # other seeds than those of the scale's dataset


def test_the_shipped_cpu_prior_loads_without_data(tmp_path, monkeypatch):
    r"""At ``cpu`` scale the book loads the shipped prior: no dataset generated, nothing trained, and
    its Gaussian part (the statistics of its training data) comes with the checkpoint."""

    import sda_lite.kolmogorov.prior as prior_module
    from sda_lite.checkpoints import SHIPPED

    def no_data(*args, **kwargs):
        raise AssertionError("loading the shipped prior must not need a dataset")

    monkeypatch.setenv("SDA_DATA", str(tmp_path))
    monkeypatch.setattr(prior_module, "ensure_kolmogorov", no_data)
    prior = prior_module.kolmogorov_prior("cpu", progress=False)
    assert not any(tmp_path.iterdir())  # nothing written
    assert prior.eps.lam.std() > 0 and prior.eps.mean.abs().max() > 0  # a fitted Gaussian part
    size = sum(f.stat().st_size for f in (SHIPPED / "kolmogorov_cpu").iterdir())
    assert size <= 5 * 2**20, size  # shipped without its optimiser state
