import h5py
import pytest
import torch
from helpers import files

import sda_lite.lorenz as lorenz
from sda_lite.io import load, split_sizes
from sda_lite.lorenz import NoisyLorenz63, ensure_lorenz, lorenz_sizes
from sda_lite.windows import TrajectoryWindows

TINY = dict(trajectories=20, length=16, burn=8, progress=False)


def test_split_sizes():
    assert split_sizes(1024) == {"train": 819, "valid": 102, "test": 103}
    assert split_sizes(10) == {"train": 8, "valid": 1, "test": 1}


def test_scales():
    assert lorenz_sizes("full") == dict(trajectories=1024, length=1024, burn=1024)
    assert lorenz_sizes("ci")["trajectories"] < lorenz_sizes("cpu")["trajectories"]
    with pytest.raises(ValueError, match="'huge'"):
        lorenz_sizes("huge")


def test_dataset_shapes_splits_and_attributes(tmp_path):
    path = ensure_lorenz(tmp_path / "l.h5", "ci", seed=3, **TINY)
    assert path == tmp_path / "l.h5"
    x = {s: load(path, s) for s in ("train", "valid", "test")}
    assert {s: tuple(v.shape) for s, v in x.items()} == {
        "train": (16, 16, 3),
        "valid": (2, 16, 3),
        "test": (2, 16, 3),
    }
    assert all(v.dtype == torch.float32 for v in x.values())
    with h5py.File(path) as f:
        assert f.attrs["trajectories"] == 20 and f.attrs["length"] == 16 and f.attrs["burn"] == 8
        assert (
            f.attrs["seed"] == 3 and f.attrs["dt"] == 0.025 and f.attrs["format"] == lorenz.FORMAT
        )
    # states are standardised, consecutive ones follow the noisy Lorenz transition
    chain = NoisyLorenz63()
    raw = NoisyLorenz63.postprocess(x["train"].double())
    lp = chain.log_prob(raw[:, :-1], raw[:, 1:])
    assert (
        abs(lp.mean().item() - (-1.5 * torch.log(torch.tensor(2 * torch.pi * 0.025)).item() - 1.5))
        < 0.3
    )
    assert x["train"].abs().mean() < 2
    # deterministic under the seed; the seed matters
    again = lorenz.simulate_lorenz(20, 16, 8, seed=3, progress=False)
    assert torch.equal(torch.cat([x["train"], x["valid"], x["test"]]), again)
    assert not torch.equal(again, lorenz.simulate_lorenz(20, 16, 8, seed=4, progress=False))


def test_default_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SDA_DATA", str(tmp_path))
    monkeypatch.setenv("SDA_SCALE", "ci")
    assert ensure_lorenz(**TINY) == tmp_path / "lorenz_ci.h5"


def test_valid_file_is_reused(tmp_path, monkeypatch):
    path = ensure_lorenz(tmp_path / "l.h5", "ci", **TINY)
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(
        lorenz, "simulate_lorenz", lambda *a, **k: pytest.fail("regenerated a valid file")
    )
    assert ensure_lorenz(path, "ci", **TINY) == path
    assert path.stat().st_mtime_ns == mtime


def test_mismatched_file_is_regenerated(tmp_path):
    path = ensure_lorenz(tmp_path / "l.h5", "ci", seed=0, **TINY)
    before = load(path)
    ensure_lorenz(path, "ci", seed=1, **TINY)
    with h5py.File(path) as f:
        assert f.attrs["seed"] == 1
    assert not torch.equal(before, load(path))
    ensure_lorenz(path, "ci", **{**TINY, "length": 12})
    assert load(path).shape == (16, 12, 3)


def test_corrupt_file_is_regenerated(tmp_path):
    path = tmp_path / "l.h5"
    path.write_bytes(b"not an hdf5 file")
    ensure_lorenz(path, "ci", **TINY)
    assert load(path, "test").shape == (2, 16, 3)
    # a valid HDF5 file missing a split
    with h5py.File(path, "a") as f:
        del f["valid"]
    ensure_lorenz(path, "ci", **TINY)
    assert load(path, "valid").shape == (2, 16, 3)


def test_interrupted_write_keeps_previous_file(tmp_path, monkeypatch):
    path = ensure_lorenz(tmp_path / "l.h5", "ci", seed=0, **TINY)
    before = load(path)
    original = h5py.File.create_dataset

    def create_dataset(self, name, *args, **kwargs):
        if name == "valid":  # after train was written
            raise KeyboardInterrupt
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.File, "create_dataset", create_dataset)
    with pytest.raises(KeyboardInterrupt):
        ensure_lorenz(path, "ci", seed=1, **TINY)
    assert files(tmp_path) == ["l.h5"]
    assert torch.equal(load(path), before)
    monkeypatch.undo()
    # and a new file interrupted leaves nothing at all
    monkeypatch.setattr(
        lorenz, "write_splits", lambda *a: (_ for _ in ()).throw(RuntimeError("disk full"))
    )
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_lorenz(tmp_path / "new.h5", "ci", **TINY)
    assert files(tmp_path) == ["l.h5"]


def test_trajectory_windows():
    x = torch.arange(5 * 10 * 3, dtype=torch.float32).reshape(5, 10, 3)
    ds = TrajectoryWindows(x, 4, generator=torch.Generator().manual_seed(0))
    assert len(ds) == 5
    starts = set()
    for i in range(len(ds)):
        for _ in range(20):
            w = ds[i]
            assert w.shape == (4, 3)
            start = int(w[0, 0] - x[i, 0, 0]) // 3
            assert torch.equal(w, x[i, start : start + 4])  # consecutive states of trajectory i
            starts.add(start)
    assert starts == set(range(7))  # every start 0..L-w is drawn
    assert len(TrajectoryWindows(x, 10, length=100)) == 100
    assert torch.equal(TrajectoryWindows(x, 10)[2], x[2])
    loader = torch.utils.data.DataLoader(TrajectoryWindows(x, 3, length=8), batch_size=4)
    assert next(iter(loader)).shape == (4, 3, 3)


def test_bad_inputs(tmp_path):
    x = torch.zeros(5, 10, 3)
    with pytest.raises(ValueError, match="window=11"):
        TrajectoryWindows(x, 11)
    with pytest.raises(ValueError, match="window=0"):
        TrajectoryWindows(x, 0)
    with pytest.raises(ValueError, match=r"\(N, L, D\)"):
        TrajectoryWindows(torch.zeros(10, 3), 2)
    with pytest.raises(ValueError, match="'tiny'"):
        ensure_lorenz(tmp_path / "a.h5", "tiny")
    with pytest.raises(ValueError, match="dt=-0.1"):
        ensure_lorenz(tmp_path / "a.h5", "ci", dt=-0.1, **TINY)
    with pytest.raises(ValueError, match="trajectories=2"):
        ensure_lorenz(tmp_path / "a.h5", "ci", **{**TINY, "trajectories": 2})
    with pytest.raises(ValueError, match="burn=-1"):
        ensure_lorenz(tmp_path / "a.h5", "ci", **{**TINY, "burn": -1})
    assert list(tmp_path.iterdir()) == []  # nothing written on error
    path = ensure_lorenz(tmp_path / "a.h5", "ci", **TINY)
    with pytest.raises(ValueError, match="split='training'"):
        load(path, "training")


def test_exclusive_makes_processes_take_turns(tmp_path):
    r"""While one process holds the lock of a path, another cannot take it; afterwards it can."""

    import subprocess
    import sys

    from sda_lite.lock import exclusive

    target = tmp_path / "data.h5"
    probe = (
        "import fcntl, sys; f = open(sys.argv[1], 'w')\n"
        "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
        "except BlockingIOError:\n    print('held')\n"
    )
    lock = tmp_path / ".data.h5.lock"

    def state():
        return subprocess.run(
            [sys.executable, "-c", probe, str(lock)], capture_output=True, text=True
        ).stdout.strip()

    with exclusive(target):
        assert lock.exists() and state() == "held"
    assert state() == "free" and not target.exists()
