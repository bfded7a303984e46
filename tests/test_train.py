r"""Tests of sda_lite.train: the loop, learning-rate schedules, checkpoints, resuming and priors."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from helpers import Interrupt, TinyEps, data, stop_after, tiny
from torch import Tensor, nn

import sda_lite.checkpoints as checkpoints
import sda_lite.priors as priors
import sda_lite.train as T
import sda_lite.training as training
from sda_lite.diffusion import VPSDE
from sda_lite.train import (
    check_config,
    ensure_prior,
    load_checkpoint,
    lr_factor,
    plot_history,
    read_config,
    save_checkpoint,
    train,
)


def weights(sde: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in sde.state_dict().items()}


def assert_same(a: dict[str, Tensor], b: dict[str, Tensor], atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol), k


def test_loss_falls():
    sde = tiny()
    history = train(
        sde, data(), epochs=30, batch_size=32, lr=1e-2, valid=data(64, seed=2), progress=False
    )
    assert len(history["train"]) == len(history["valid"]) == len(history["lr"]) == 30
    assert history["train"][-1] < 0.5 * history["train"][0]
    assert history["valid"][-1] < 0.5 * history["valid"][0]


def test_dataset_forms_agree():
    r"""A tensor, a Dataset of tensors and a Dataset of tuples give the same run."""

    x = data(64)
    runs = []
    for dataset in (x, torch.utils.data.TensorDataset(x), list(x)):
        sde = tiny()
        runs.append((train(sde, dataset, epochs=2, batch_size=16, progress=False), weights(sde)))
    for history, w in runs[1:]:
        assert history == runs[0][0]
        assert_same(w, runs[0][1])


def test_seed_isolates_caller_state():
    sde, x = tiny(), data(64)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    train(sde, x, epochs=1, batch_size=16, progress=False)
    assert torch.equal(torch.rand(3), before)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_lr_schedule_end_points(schedule):
    assert lr_factor(schedule, 0, 100) == 1
    assert lr_factor(schedule, 50, 100) == pytest.approx(0.5)
    assert lr_factor(schedule, 100, 100) == pytest.approx(0, abs=1e-12)
    assert lr_factor("constant", 100, 100) == 1
    # In a run the decay spans every step: the learning rate at the end of epoch e of E.
    history = train(
        tiny(), data(64), epochs=4, batch_size=16, lr=0.1, lr_schedule=schedule, progress=False
    )
    expected = [0.1 * lr_factor(schedule, 4 * (e + 1), 16) for e in range(4)]
    assert history["lr"] == pytest.approx(expected, abs=1e-12)
    assert history["lr"][-1] == pytest.approx(0, abs=1e-12)


def test_epoch_size():
    r"""An epoch of epoch_size samples is epoch_size // batch_size steps, cycling through the data."""

    seen = []

    class Record(VPSDE):
        def loss(self, x: Tensor) -> Tensor:
            seen.append(x)
            return super().loss(x)

    torch.manual_seed(0)
    sde, x = Record(TinyEps(), shape=(2,)), data(40)
    history = train(sde, x, epochs=2, batch_size=16, epoch_size=96, lr=0.1, progress=False)
    assert len(seen) == 12  # 2 epochs of 96 // 16 = 6 steps
    assert history["lr"] == pytest.approx([0.05, 0.0], abs=1e-12)
    first = torch.cat(seen[:5])  # 80 samples: two full permutations of the 40
    assert torch.equal(first[:40].sort(dim=0).values, x.sort(dim=0).values)
    assert torch.equal(first[40:].sort(dim=0).values, x.sort(dim=0).values)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(epochs=-1), ["epochs", "-1"]),
        (dict(epochs=0), ["epochs", "0"]),
        (dict(lr=0.0), ["lr", "0.0"]),
        (dict(lr=-1e-3), ["lr", "-0.001"]),
        (dict(lr_schedule="step"), ["schedule", "'step'", "linear"]),
        (dict(batch_size=65), ["batch_size", "65", "64"]),
        (dict(batch_size=0), ["batch_size", "0"]),
        (dict(weight_decay=-1.0), ["weight_decay", "-1.0"]),
        (dict(ema=1.5), ["ema", "1.5"]),
        (dict(every=0), ["every", "0"]),
        (dict(epoch_size=8), ["epoch_size", "8", "16"]),
    ],
)
def test_bad_input(kwargs, words):
    kwargs = {"epochs": 1, "batch_size": 16, **kwargs}
    with pytest.raises(ValueError) as error:
        train(tiny(), data(64), progress=False, **kwargs)
    for word in words:
        assert word in str(error.value)
    with pytest.raises(ValueError, match="'step'"):
        lr_factor("step", 0, 1)


def test_checkpoint_round_trip(tmp_path):
    sde = tiny()
    history = train(
        sde, data(64), epochs=2, batch_size=16, directory=tmp_path / "ckpt", progress=False
    )
    meta, state = load_checkpoint(tmp_path / "ckpt")
    assert meta["progress"] == {"epoch": 2, "step": 8, "history": history}
    assert meta["train"]["epochs"] == 2 and meta["train"]["lr"] == 1e-3
    assert_same(state["model"], weights(sde), atol=0)
    assert set(state) == {"model", "optimizer", "scheduler", "ema", "rng"}
    json.dumps(meta)  # config.json is plain JSON


def test_mismatch_names_field(tmp_path):
    config = {"kind": "stand-in", "width": 16}
    train(
        tiny(), data(64), epochs=1, batch_size=16, directory=tmp_path, config=config, progress=False
    )
    with pytest.raises(ValueError, match=r"'width'.*16.*32"):
        train(
            tiny(),
            data(64),
            epochs=1,
            batch_size=16,
            directory=tmp_path,
            config={**config, "width": 32},
            progress=False,
        )
    with pytest.raises(ValueError, match=r"'lr'.*0\.001.*0\.01"):
        train(
            tiny(),
            data(64),
            epochs=1,
            batch_size=16,
            lr=1e-2,
            directory=tmp_path,
            config=config,
            progress=False,
        )
    with pytest.raises(ValueError, match=r"'depth'.*None.*3"):
        check_config({"width": 16}, {"width": 16, "depth": 3})
    check_config({"channels": (64,)}, {"channels": [64]})  # equal once in JSON


@pytest.mark.parametrize("every", [1, 2])
def test_resume_continues_identically(tmp_path, every):
    kwargs = dict(epochs=4, batch_size=16, lr=1e-2, valid=data(32, seed=2), ema=0.9, progress=False)
    straight = tiny()
    history = train(straight, data(64), **kwargs)

    # Interrupted after epoch 3; with every = 2 the last checkpoint is that of epoch 2.
    with pytest.raises(Interrupt):
        train(tiny(), data(64), directory=tmp_path, every=every, callback=stop_after(3), **kwargs)
    assert read_config(tmp_path)["progress"]["epoch"] == 3 // every * every

    resumed = tiny(seed=7)  # other initial weights: they are replaced by the checkpoint's
    torch.manual_seed(99)  # other caller state: the checkpoint's random state is used
    assert train(resumed, data(64), directory=tmp_path, every=every, **kwargs) == history
    assert_same(weights(resumed), weights(straight))


class Crash(VPSDE):
    r"""A VPSDE whose loss fails at its ``n``-th call (a crash in the middle of an epoch)."""

    def __init__(self, n: int):
        torch.manual_seed(0)
        super().__init__(TinyEps(), shape=(2,))
        self.n = n

    def loss(self, x: Tensor) -> Tensor:
        self.n -= 1
        if self.n == 0:
            raise RuntimeError("crash")
        return super().loss(x)


def test_resume_after_crash_mid_epoch(tmp_path):
    straight = tiny()
    history = train(straight, data(64), epochs=3, batch_size=16, progress=False)
    with pytest.raises(RuntimeError, match="crash"):
        train(
            Crash(n=10),
            data(64),
            epochs=3,
            batch_size=16,
            directory=tmp_path,
            every=1,
            progress=False,
        )
    assert read_config(tmp_path)["progress"]["epoch"] == 2  # 4 steps per epoch: crashed in epoch 3
    resumed = Crash(n=-1)
    assert (
        train(
            resumed, data(64), epochs=3, batch_size=16, directory=tmp_path, every=1, progress=False
        )
        == history
    )
    assert_same(weights(resumed), weights(straight))


def test_finished_checkpoint_is_not_retrained(tmp_path):
    sde = tiny()
    history = train(sde, data(64), epochs=2, batch_size=16, directory=tmp_path, progress=False)
    again = tiny(seed=3)
    assert (
        train(again, data(64), epochs=2, batch_size=16, directory=tmp_path, progress=False)
        == history
    )
    assert_same(weights(again), weights(sde))


def test_atomic_write(tmp_path, monkeypatch):
    directory = tmp_path / "ckpt"
    sde = tiny()
    train(sde, data(64), epochs=1, batch_size=16, directory=directory, progress=False)
    before = weights(sde)
    meta = read_config(directory)

    def broken_save(obj, path):  # writes half a file, then fails
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(directory, {"model": None}, {"model": {}})
    with pytest.raises(OSError, match="disk full"):
        train(
            tiny(seed=5),
            data(64),
            epochs=2,
            batch_size=16,
            directory=tmp_path / "new",
            progress=False,
        )
    monkeypatch.undo()

    assert read_config(directory) == meta
    assert_same(load_checkpoint(directory)[1]["model"], before, atol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt"
    ]  # no temporary left, no partial "new"


def test_interrupted_swap_recovers_previous(tmp_path, monkeypatch):
    r"""A crash between moving the old checkpoint aside and moving the new one in."""

    directory = tmp_path / "ckpt"
    save_checkpoint(directory, {"v": 1}, {"w": torch.ones(2)})
    replace = checkpoints.os.replace

    def second_fails(src, dst):
        if str(dst) == str(directory):
            raise OSError("power cut")
        return replace(src, dst)

    monkeypatch.setattr(checkpoints.os, "replace", second_fails)
    with pytest.raises(OSError, match="power cut"):
        save_checkpoint(directory, {"v": 2}, {"w": torch.zeros(2)})
    monkeypatch.undo()
    assert not directory.exists()
    assert read_config(directory) == {"v": 1}  # recovered
    assert torch.equal(load_checkpoint(directory)[1]["w"], torch.ones(2))


def test_plot_history():
    fig = plot_history({"train": [1.0, 0.5, 0.3], "valid": [1.1, 0.6, 0.4], "lr": [1, 1, 1]})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and len(ax.lines) == 2 and ax.get_xlabel() == "epoch"
    fig = plot_history({"train": [1.0, 0.5], "valid": [None, None]})
    assert len(fig.axes[0].lines) == 1


LOCAL = {"kind": "local", "features": 2, "k": 1, "width": 8, "depth": 1, "embedding": 4}
GLOBAL = {
    "kind": "global",
    "features": 2,
    "window": 8,
    "channels": [8],
    "blocks": 1,
    "embedding": 4,
}


def test_build_prior():
    from sda_lite.score import GlobalScoreNet, LocalScoreNet

    local, glob = T.build_prior(LOCAL), T.build_prior(GLOBAL)
    assert isinstance(local.eps, LocalScoreNet) and local.shape == (3, 2) and local.config == LOCAL
    assert isinstance(glob.eps, GlobalScoreNet) and glob.shape == (8, 2)
    assert local.alpha == "cos" and local.eta == 1e-3
    lin = T.build_prior({**LOCAL, "alpha": "lin", "eta": 1e-2})
    assert lin.alpha == lin.eps.schedule.alpha == "lin" and lin.eta == lin.eps.schedule.eta == 1e-2
    for sde in (local, glob):
        x = torch.randn(4, *sde.shape)
        assert sde.loss(x).isfinite()
    with pytest.raises(ValueError, match="'cnn'"):
        T.build_prior({**LOCAL, "kind": "cnn"})
    with pytest.raises(ValueError, match="'k'"):
        T.build_prior({key: value for key, value in LOCAL.items() if key != "k"})


def test_prior_for_length():
    sde = T.build_prior(LOCAL)
    prior = T.prior_for_length(sde, 10)
    assert prior.shape == (10, 2) and prior.eps.net is sde.eps and prior.eps.k == 1
    assert prior.sample((2,), steps=2).shape == (2, 10, 2)
    x, t = torch.randn(5, 3, 2), torch.rand(5)
    assert torch.allclose(T.prior_for_length(sde, 3).eps(x, t), sde.eps(x, t))  # one window: itself
    with pytest.raises(ValueError, match="L=2"):
        T.prior_for_length(sde, 2)
    glob = T.prior_for_length(T.build_prior(GLOBAL), 16)
    assert glob.shape == (16, 2) and glob.eps(torch.randn(3, 16, 2), torch.rand(3)).shape == (
        3,
        16,
        2,
    )


def test_ensure_prior(tmp_path, monkeypatch):
    monkeypatch.setenv("SDA_DATA", str(tmp_path))
    calls = []

    def windows():
        calls.append(1)
        return torch.randn(64, 3, 2, generator=torch.Generator().manual_seed(0))

    schedule = {"epochs": 2, "batch_size": 16}
    first = ensure_prior("tiny", LOCAL, schedule, data=windows, progress=False)
    assert len(calls) == 1 and (tmp_path / "tiny" / "config.json").exists()
    second = ensure_prior("tiny", LOCAL, schedule, data=windows, progress=False)
    assert len(calls) == 1  # loaded, not retrained
    assert_same(weights(second), weights(first), atol=0)
    torch.manual_seed(5)  # the caller's random state does not matter
    with pytest.warns(UserWarning, match="'epochs'.*2.*3"):
        third = ensure_prior("tiny", LOCAL, {**schedule, "epochs": 3}, data=windows, progress=False)
    assert len(calls) == 2 and read_config(tmp_path / "tiny")["progress"]["epoch"] == 3
    with pytest.raises(ValueError, match="'width'.*8.*16"):
        T.load_prior(tmp_path / "tiny", {**LOCAL, "width": 16})
    assert_same(weights(T.load_prior(tmp_path / "tiny")), weights(third), atol=0)


def windows() -> Tensor:
    return torch.randn(64, 3, 2, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    r"""An empty data_dir() and a shipped directory holding the finished checkpoint "tiny" (2 epochs)."""

    monkeypatch.setenv("SDA_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(priors, "SHIPPED", tmp_path / "shipped")
    T.train_prior(
        tmp_path / "shipped" / "tiny",
        LOCAL,
        {"epochs": 2, "batch_size": 16},
        data=windows,
        progress=False,
    )
    return tmp_path / "shipped" / "tiny"


def test_checkpoint_lookup(shipped, tmp_path):
    schedule = {"epochs": 2, "batch_size": 16}
    local = tmp_path / "data" / "tiny"
    assert T.checkpoint("none", LOCAL, schedule) is None
    assert T.checkpoint("tiny", LOCAL, schedule) == shipped  # data_dir() has none
    assert T.checkpoint("tiny", {**LOCAL, "width": 16}, schedule) is None  # another model
    assert T.checkpoint("tiny", LOCAL, {**schedule, "epochs": 3}) is None  # another training
    assert (
        T.checkpoint("tiny", LOCAL, {**schedule, "lr": 1e-2}) is None
    )  # train()'s default lr 1e-3 was used
    assert (
        T.checkpoint("tiny", LOCAL, {**schedule, "lr": 1e-3, "every": 5}) == shipped
    )  # every changes nothing
    shutil.copytree(shipped, local)
    assert T.checkpoint("tiny", LOCAL, schedule) == local  # the local one wins
    meta = read_config(local)
    for changed in (
        {"model": {**LOCAL, "width": 16}},
        {"progress": {**meta["progress"], "epoch": 1}},
    ):
        (local / "config.json").write_text(json.dumps(meta | changed))
        assert (
            T.checkpoint("tiny", LOCAL, schedule) == shipped
        )  # a mismatched or unfinished local one is skipped


def test_ensure_prior_loads_shipped(shipped, tmp_path):
    schedule, calls = {"epochs": 2, "batch_size": 16}, []

    def counted():
        calls.append(1)
        return windows()

    prior = ensure_prior("tiny", LOCAL, schedule, data=counted, progress=False)
    assert not calls and not (tmp_path / "data" / "tiny").exists()  # neither trained nor copied
    assert_same(weights(prior), weights(T.load_prior(shipped)), atol=0)
    shutil.copytree(shipped, tmp_path / "data" / "tiny")
    meta = read_config(shipped)
    (tmp_path / "data" / "tiny" / "config.json").write_text(
        json.dumps(meta | {"model": {**LOCAL, "width": 16}})
    )
    with pytest.warns(UserWarning, match="'width'.*16.*8"):
        ensure_prior(
            "tiny", LOCAL, schedule, data=counted, progress=False
        )  # the mismatched local one is replaced...
    assert not calls and not (tmp_path / "data" / "tiny").exists()  # ... by the shipped one
    ensure_prior("tiny", LOCAL, {**schedule, "epochs": 3}, data=counted, progress=False)
    assert (
        len(calls) == 1 and read_config(tmp_path / "data" / "tiny")["progress"]["epoch"] == 3
    )  # no match: trained


def test_trajectory_windows_batches():
    r"""Training fetches TrajectoryWindows in batches: each item is still a window of trajectory i mod N."""

    from sda_lite.data import TrajectoryWindows

    x = torch.arange(4 * 10 * 2.0).reshape(4, 10, 2)
    windows = TrajectoryWindows(x, window=3, length=8)
    for batch in training._batches(windows, 4, torch.Generator().manual_seed(0), size=16):
        assert batch.shape == (4, 3, 2)
        for w in batch:
            n, i = divmod(int(w[0, 0].item()) // 2, 10)
            assert i <= 7 and torch.equal(w, x[n, i : i + 3])


def test_ema_and_bf16(tmp_path):
    sde = tiny()
    history = train(
        sde,
        data(64),
        epochs=2,
        batch_size=16,
        lr=1e-2,
        ema=0.5,
        bf16=True,
        directory=tmp_path,
        progress=False,
    )
    assert all(math.isfinite(v) for v in history["train"])
    _, state = load_checkpoint(tmp_path)
    assert_same(weights(sde), state["ema"], atol=0)  # the returned module holds the average
    assert any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])


def test_load_configs(tmp_path):
    model, schedule = T.load_configs("lorenz_local", "full")
    assert model == {
        "kind": "local",
        "features": 3,
        "k": 2,
        "embedding": 32,
        "alpha": "cos",
        "eta": 1e-3,
        "width": 256,
        "depth": 5,
    }
    assert schedule == {
        "weight_decay": 1e-3,
        "lr_schedule": "linear",
        "epochs": 4096,
        "epoch_size": None,
        "batch_size": 64,
        "lr": 1e-3,
    }
    assert {"lorenz_local", "lorenz_global"} <= set(T.families())
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"ci": {"model": LOCAL, "train": {"epochs": 2}}}))
    assert T.load_configs(str(path), "ci") == (LOCAL, {"epochs": 2})
    with pytest.raises(ValueError, match="'lorenz'.*lorenz_local"):
        T.load_configs("lorenz", "ci")
    with pytest.raises(ValueError, match="no scale 'cpu'.*\\['ci'\\]"):
        T.load_configs(str(path), "cpu")
    with pytest.raises(ValueError, match="'huge'"):
        T.load_configs("lorenz_local", "huge")
    with pytest.raises(ValueError, match="not found"):
        T.load_configs(str(tmp_path / "none.json"), "ci")
    for text, words in [
        ("{", "not valid JSON"),
        ('{"ci": {"model": {}}}', "'model' and 'train'"),
        ('{"ci": {"model": {}, "train": {"epochs": 2, "lr_decay": 1}}}', "'lr_decay'"),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError, match=words):
            T.load_configs(str(path), "ci")


def test_lorenz_configs_match_checkpoints(tmp_path, monkeypatch):
    r"""The checkpoints shipped with the package (``T.SHIPPED``) were trained with the configs that the
    files give today, so that on a fresh clone (an empty data_dir()) the lookup finds them instead of
    training."""

    model, schedule = T.load_configs("lorenz_local", "ci")
    assert T.lorenz_configs("local", 3, "ci") == ({**model, "k": 3}, schedule)
    assert T.lorenz_configs("global", 3, "ci") == T.load_configs("lorenz_global", "ci")
    with pytest.raises(ValueError, match="'mlp'"):
        T.lorenz_configs("mlp")
    monkeypatch.setenv("SDA_DATA", str(tmp_path))  # a fresh clone: nothing trained locally
    shipped = sorted(path.parent for path in T.SHIPPED.glob("lorenz_*/config.json"))
    assert {f"lorenz_local_k{k}_cpu" for k in (1, 2, 4)} <= {d.name for d in shipped}
    for directory in shipped:  # lorenz_local_k{k}_{scale} or lorenz_global_{scale}
        kind, *rest = directory.name.removeprefix("lorenz_").split("_")
        k = int(rest[0].removeprefix("k")) if kind == "local" else 2
        model, schedule = T.lorenz_configs(kind, k, rest[-1])
        meta = read_config(directory)
        assert meta["model"] == model, directory
        assert {key: meta["train"][key] for key in schedule} == schedule, directory
        assert meta["progress"]["epoch"] == schedule["epochs"], directory  # finished
        assert T.checkpoint(directory.name, model, schedule) == directory


def test_loading_a_prior_leaves_the_random_state_alone(shipped, tmp_path):
    r"""What follows a load draws the same numbers whether the checkpoint is shipped or local (a
    local one is verified once more), so a fresh data directory gives the developer's figures."""

    schedule = {"epochs": 2, "batch_size": 16}
    torch.manual_seed(0)
    ensure_prior("tiny", LOCAL, schedule, data=windows, progress=False)  # the shipped one
    from_shipped = torch.rand(4)
    shutil.copytree(shipped, tmp_path / "data" / "tiny")
    torch.manual_seed(0)
    ensure_prior("tiny", LOCAL, schedule, data=windows, progress=False)  # the local copy
    assert torch.equal(torch.rand(4), from_shipped)
    torch.manual_seed(0)
    T.load_prior(shipped)
    assert torch.equal(torch.rand(4), from_shipped)


CONCURRENT = r"""
import sys, torch
import sda_lite.priors as priors
train_prior = priors.train_prior
def counted(*args, **kwargs):
    print("TRAINED", flush=True)
    return train_prior(*args, **kwargs)
priors.train_prior = counted
data = torch.randn(64, 3, 2, generator=torch.Generator().manual_seed(0))
config = {"kind": "local", "features": 2, "k": 1, "width": 8, "depth": 1}
sde = priors.ensure_prior("shared", config, {"epochs": 40, "batch_size": 16}, data=data,
                          progress=False)
print("SUM", sum(float(v.double().sum()) for v in sde.state_dict().values()))
"""


def test_two_processes_asking_for_one_prior_train_it_once(tmp_path):
    r"""Two processes that ensure the same prior at once (two notebooks, or chapters executed in
    parallel): one trains, the other waits for the lock and loads the finished checkpoint."""

    import os
    import subprocess
    import sys

    env = {**os.environ, "SDA_DATA": str(tmp_path), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    assert sum(out.count("TRAINED") for out, _ in outs) == 1, outs
    sums = {line for out, _ in outs for line in out.splitlines() if line.startswith("SUM")}
    assert len(sums) == 1, sums  # the same weights
    assert read_config(tmp_path / "shared")["progress"]["epoch"] == 40
