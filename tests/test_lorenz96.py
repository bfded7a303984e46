import math

import h5py
import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import sda_lite.lorenz96 as lorenz96
from sda_lite.baselines import Deterministic, gaspari_cohn
from sda_lite.io import load
from sda_lite.lorenz96 import (
    SCENARIOS,
    NoisyLorenz96,
    ensure_lorenz96,
    localisation,
    lorenz96_sizes,
    observer,
    periodic_distance,
)

TINY = dict(trajectories=20, length=8, spinup=10)


def l96(t, x, F=8.0):
    N = len(x)
    return np.array([(x[(i + 1) % N] - x[i - 2]) * x[i - 1] - x[i] + F for i in range(N)])


def test_vector_field_matches_the_loop_and_batches():
    chain = NoisyLorenz96(N=7, F=5.0)
    x = torch.randn(3, 4, 7, dtype=torch.float64)
    expected = np.stack([l96(0, xi, F=5.0) for xi in x.reshape(-1, 7).numpy()]).reshape(3, 4, 7)
    assert np.allclose(chain.f(x).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("N", [4, 10, 40])
def test_advection_conserves_energy(N):
    x = torch.randn(16, N, dtype=torch.float64)
    B = NoisyLorenz96.advection(x)
    assert (x * B).sum(-1).abs().max() < 1e-10 * x.square().sum(-1).max()
    # without damping and forcing, RK4 keeps the energy to O(dt^5) per step
    chain = NoisyLorenz96(N=N, F=0.0, dt=1e-3)
    chain.f = chain.advection
    y = x
    for _ in range(100):
        y = chain.rk4(y)
    energy = x.square().sum(-1)
    assert ((y.square().sum(-1) - energy).abs() / energy).max() < 1e-8


def test_rk4_is_fourth_order():
    x0 = NoisyLorenz96(N=12, spinup=200).prior(generator=torch.Generator().manual_seed(0))
    x0 = x0.double().numpy()

    def error(dt: float) -> float:
        chain, x = NoisyLorenz96(N=12, dt=dt), torch.tensor(x0)
        for _ in range(round(0.5 / dt)):
            x = chain.rk4(x)
        exact = solve_ivp(l96, (0, 0.5), x0, method="DOP853", rtol=1e-13, atol=1e-13).y[:, -1]
        return np.abs(x.numpy() - exact).max()

    e1, e2 = error(0.05), error(0.025)
    assert e1 < 1e-2 and 10 < e1 / e2 < 24  # global error O(dt^4): 2^4 = 16


def test_chain_api():
    chain = NoisyLorenz96(N=10, spinup=100)
    g = torch.Generator().manual_seed(0)
    x0 = chain.prior((256,), generator=g, dtype=torch.float64)
    assert x0.shape == (256, 10) and x0.dtype == torch.float64
    assert abs(x0.mean() - 2.3) < 0.3 and abs(x0.std() - 3.7) < 0.4  # on the attractor
    x = chain.trajectory(x0, 9, generator=g)
    assert x.shape == (256, 9, 10) and torch.equal(x[:, 0], x0)
    lp = chain.log_prob(x[:, :-1], x[:, 1:])
    assert lp.shape == (256, 8)
    # E[log N(w | 0, noise I)] = -N/2 log(2 pi noise) - N/2; 2048 values, std of the mean ~0.05
    expected = -5 * math.log(2 * math.pi * 0.05) - 5
    assert abs(lp.mean().item() - expected) < 0.25
    assert torch.allclose(chain.log_prob_trajectory(x), lp.sum(-1))
    # the prior is reproducible under a generator and float32 by default
    a = chain.prior((3,), generator=torch.Generator().manual_seed(1))
    b = chain.prior((3,), generator=torch.Generator().manual_seed(1))
    assert a.dtype == torch.float32 and torch.equal(a, b)
    # the noise-free version, for DAPPER's benchmark
    det = Deterministic(chain)
    assert torch.equal(det.transition(x0), chain.rk4(x0))


def test_standardisation_round_trip():
    x = torch.randn(5, 40) * 3 + 2
    assert torch.allclose(NoisyLorenz96.postprocess(NoisyLorenz96.preprocess(x)), x, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(N=3), "N=3"),
        (dict(N=10.0), "N=10.0"),
        (dict(dt=0.0), "dt=0.0"),
        (dict(noise=-1.0), "noise=-1.0"),
        (dict(spinup=-1), "spinup=-1"),
        (dict(F=float("nan")), "F=nan"),
    ],
)
def test_bad_chain_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoisyLorenz96(**kwargs)
    with pytest.raises(ValueError, match=r"expected a tensor shaped \(\*batch, 10\)"):
        NoisyLorenz96(N=10).rk4(torch.zeros(3, 9))


def test_dataset_round_trip(tmp_path, monkeypatch):
    path = ensure_lorenz96(tmp_path / "l96.h5", "ci", N=12, seed=3, progress=False, **TINY)
    with h5py.File(path) as f:
        assert f.attrs["system"] == "NoisyLorenz96" and f.attrs["N"] == 12
        assert f.attrs["seed"] == 3 and f.attrs["dt"] == 0.05 and f.attrs["F"] == 8.0
        assert f.attrs["format"] == lorenz96.FORMAT
    shapes = {s: load(path, s).shape for s in ("train", "valid", "test")}
    assert shapes == {"train": (16, 8, 12), "valid": (2, 8, 12), "test": (2, 8, 12)}
    x = torch.cat([load(path, s) for s in ("train", "valid", "test")])
    assert x.dtype == torch.float32
    again = lorenz96.simulate_lorenz96(N=12, seed=3, progress=False, **TINY)
    assert torch.equal(x, again)
    # a valid file is reused; a changed setting regenerates it
    monkeypatch.setattr(
        lorenz96, "simulate_lorenz96", lambda *a, **k: pytest.fail("regenerated a valid file")
    )
    assert ensure_lorenz96(path, "ci", N=12, seed=3, progress=False, **TINY) == path
    monkeypatch.undo()
    ensure_lorenz96(path, "ci", N=12, seed=4, progress=False, **TINY)
    assert not torch.equal(load(path, "train"), x[:16])
    ensure_lorenz96(path, "ci", N=16, seed=4, progress=False, **TINY)
    assert load(path, "train").shape == (16, 8, 16)


def test_default_path_and_sizes(tmp_path, monkeypatch):
    monkeypatch.setenv("SDA_DATA", str(tmp_path))
    monkeypatch.setenv("SDA_SCALE", "ci")
    assert ensure_lorenz96(N=10, progress=False, **TINY) == tmp_path / "lorenz96_N10_ci.h5"
    assert lorenz96_sizes("ci")["trajectories"] < lorenz96_sizes("cpu")["trajectories"]
    with pytest.raises(ValueError):
        lorenz96_sizes("huge")
    with pytest.raises(ValueError, match="trajectories=5"):
        ensure_lorenz96(tmp_path / "x.h5", N=10, trajectories=5, length=4)


def test_scenarios_and_observer():
    x = torch.arange(2 * 3 * 40.0).reshape(2, 3, 40)
    for name, s in SCENARIOS.items():
        y = observer(s["stride"])(x)
        assert y.shape == (2, 3, math.ceil(40 / s["stride"])), name
        assert torch.equal(y[..., 1], x[..., s["stride"]])
    with pytest.raises(ValueError, match="stride=0"):
        observer(0)


def test_periodic_distance_and_localisation():
    assert periodic_distance(torch.tensor(0), torch.tensor([1, 20, 39]), 40).tolist() == [1, 20, 1]
    loc = localisation(40, 2, radius=3.0)
    assert loc.xy.shape == (40, 20) and loc.yy.shape == (20, 20)
    assert torch.equal(loc.yy, loc.yy.mT) and (loc.yy.diagonal() == 1).all()
    assert loc.xy[0, 0] == 1 and loc.xy[39, 0] == loc.xy[1, 0] == gaspari_cohn(torch.tensor(1.0), 3)
    assert loc.xy[20, 0] == 0  # beyond 2 c = 6 sites
    # circulant: shifting the ring by two sites shifts the observations by one
    assert torch.equal(loc.xy.roll((2, 1), (0, 1)), loc.xy)


# --------------------------------------------------------------------------------------------------
# The space-time prior and DAPPER's reference experiment

SPACETIME = {"kind": "spacetime", "features": 12, "k": 1, "channels": 8, "blocks": 1}


def test_spacetime_prior_is_built_and_serves_any_ring():
    from sda_lite.priors import build_prior, prior_for_length
    from sda_lite.spacetime import SpaceTimeNet

    sde = build_prior(SPACETIME)
    assert isinstance(sde.eps, SpaceTimeNet) and sde.shape == (3, 12)
    assert sde.eps.k == 1 and sde.config == SPACETIME
    for N in (None, 12, 30):
        prior = prior_for_length(sde, 7, features=N)
        assert prior.shape == (7, N or 12)
        x = torch.randn(2, 7, N or 12)
        with torch.no_grad():
            assert prior.eps(x, 0.5).shape == x.shape
    # one ring of 30 sites = the ring of 10 repeated three times (periodic, local, shared weights)
    prior10, prior30 = prior_for_length(sde, 7, features=10), prior_for_length(sde, 7, features=30)
    x = torch.randn(2, 7, 10)
    with torch.no_grad():
        assert torch.allclose(
            prior30.eps(x.repeat(1, 1, 3), 0.3), prior10.eps(x, 0.3).repeat(1, 1, 3), atol=1e-5
        )


@pytest.mark.parametrize(
    "change, match",
    [
        ({"channels": [8, 16]}, "channels"),
        ({"k": 0}, "'k'"),
        ({"window": 5}, "unknown field 'window'"),
        ({"kind": "spacetim"}, "spacetime"),
    ],
)
def test_bad_spacetime_configs(change, match):
    from sda_lite.priors import build_prior

    with pytest.raises(ValueError, match=match):
        build_prior({**SPACETIME, **change})


def test_only_a_spacetime_prior_takes_another_ring():
    from sda_lite.priors import build_prior, prior_for_length

    local = build_prior({"kind": "local", "features": 3, "k": 1, "width": 8, "depth": 1})
    assert prior_for_length(local, 5, features=3).shape == (5, 3)
    with pytest.raises(ValueError, match="only a 'spacetime' prior"):
        prior_for_length(local, 5, features=4)
    with pytest.raises(ValueError, match="features=0"):
        prior_for_length(build_prior(SPACETIME), 5, features=0)


def test_the_shipped_configs_are_spacetime_priors_of_every_scale():
    from sda_lite.priors import build_prior, families, load_configs

    assert "lorenz96_local" in families()
    for scale in ("ci", "cpu", "full"):
        model, train = load_configs("lorenz96_local", scale)
        assert model["kind"] == "spacetime" and model["features"] == 40
        assert build_prior(model).shape == (2 * model["k"] + 1, 40)
        assert lorenz96_sizes(scale)["trajectories"] * 0.8 >= train["batch_size"]


def test_lorenz96_prior_trains_on_its_windows_and_loads_again(tmp_path, monkeypatch):
    r"""The recipe end to end with a tiny training config: windows (2k + 1, 40) of the dataset of
    the scale, a checkpoint in the data directory, found finished the second time."""

    import sda_lite.priors as priors

    monkeypatch.setenv("SDA_DATA", str(tmp_path))
    tiny = ({**SPACETIME, "features": 40}, {"epochs": 1, "epoch_size": 32, "batch_size": 16})
    monkeypatch.setattr(lorenz96, "load_configs", lambda family, scale: tiny)
    sde = lorenz96.lorenz96_prior("ci", progress=False)
    assert sde.shape == (3, 40) and (tmp_path / "lorenz96_local_ci" / "config.json").is_file()
    assert (tmp_path / "lorenz96_N40_ci.h5").is_file()
    monkeypatch.setattr(priors, "train", lambda *a, **k: pytest.fail("trained again"))
    again = lorenz96.lorenz96_prior("ci", progress=False)
    assert all(
        torch.equal(a, b) for a, b in zip(sde.state_dict().values(), again.state_dict().values())
    )


def test_sakov2008_is_dappers_twin_experiment():
    chain, x, y, g = lorenz96.sakov2008(cycles=50, seed=3)
    assert isinstance(chain, Deterministic) and chain.D == 40
    assert x.shape == (51, 40) and y.shape == (50, 40) and x.dtype == torch.float64
    assert (x[0] - torch.eye(40, dtype=torch.float64)[0]).abs().max() < 0.2  # N(e_1, 0.001 I)
    assert torch.allclose(x[1:], chain.transition(x[:-1]))  # no model noise
    assert 0.7 < (y - x[1:]).std() < 1.3  # R = I
    again = lorenz96.sakov2008(cycles=50, seed=3)
    assert torch.equal(again[1], x) and torch.equal(again[2], y)


def test_the_cpu_prior_is_shipped_and_found(tmp_path, monkeypatch):
    from sda_lite.checkpoints import SHIPPED
    from sda_lite.priors import find_checkpoint, load_configs

    monkeypatch.setenv("SDA_DATA", str(tmp_path))  # no local checkpoint
    config, train = load_configs("lorenz96_local", "cpu")
    assert find_checkpoint("lorenz96_local_cpu", config, train) == SHIPPED / "lorenz96_local_cpu"
    monkeypatch.setattr(lorenz96, "ensure_lorenz96", lambda *a, **k: pytest.fail("trained"))
    sde = lorenz96.lorenz96_prior("cpu", progress=False)
    assert sde.config == config and not any(tmp_path.iterdir())
