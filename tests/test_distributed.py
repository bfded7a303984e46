r"""Tests of multi-process runs: sharding, two-process gloo training (launched by torch.distributed.run)
against one process, resuming across a change of the number of processes, and Kolmogorov
generation split over two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from sda_lite import distributed
from sda_lite.train import read_config, train
from sda_lite.training import _batches

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
from helpers import Interrupt, data, stop_after, tiny  # noqa: E402

KWARGS = dict(epochs=4, batch_size=32, lr=1e-2, ema=0.9, every=1, progress=False)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS.parent)}


def launch(*args: str, n: int = 2, cwd: Path | None = None) -> subprocess.Popen:
    r"""Starts ``python -m torch.distributed.run --nproc_per_node n ARGS`` on localhost."""

    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(n),
        *args,
    ]
    return subprocess.Popen(
        command, env=ENV, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    return output


WORKER = textwrap.dedent(
    """
    import json, shutil, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from sda_lite import distributed
    from sda_lite.cli import main
    from sda_lite.train import train
    from helpers import Interrupt, data, stop_after, tiny

    out, kwargs = Path(sys.argv[1]), {kwargs!r}
    kwargs["valid"] = data(64, seed=2)
    result = {{}}
    sde = tiny()
    result["straight"] = train(sde, data(256), directory=out / "straight", **kwargs)
    result["weights"] = sum(float(p.double().sum()) for p in sde.parameters())
    try:  # interrupted after epoch 2 (on every rank)
        train(tiny(), data(256), directory=out / "cut", callback=stop_after(2), **kwargs)
    except Interrupt:
        pass
    if distributed.is_main():
        shutil.copytree(out / "cut", out / "cut_for_one")
    distributed.barrier()
    result["resumed"] = train(tiny(seed=7), data(256), directory=out / "cut", **kwargs)
    result["from_one"] = train(tiny(), data(256), directory=out / "one_cut", **kwargs)
    (out / f"rank{{distributed.rank()}}.json").write_text(json.dumps(result))
    # the command line's train, on two processes (last: it ends the process group)
    sys.exit(main(["train", "--config", "lorenz_local", "--scale", "ci", "--data", str(out / "lorenz.h5"),
                   "--set", "model.width=16", "--set", "train.epochs=2", "--set", "train.epoch_size=64",
                   "--set", "train.batch_size=8", "--out", str(out / "cli"), "--no-progress"]))
    """
)


def test_shards_partition_the_global_batch():
    r"""The ranks' slices of each global batch are disjoint and together form the one-process batch."""

    x = torch.arange(40.0)[:, None]
    one = list(_batches(x, 8, torch.Generator().manual_seed(0), 64))
    ranks = [
        list(_batches(x, 8, torch.Generator().manual_seed(0), 64, rank=r, world=2))
        for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) == len(one) == 8
    for b, b0, b1 in zip(one, *ranks):
        assert b0.shape == b1.shape == (4, 1) and torch.equal(torch.cat([b0, b1]), b)
    assert distributed.shard(list(range(6)), 2, 3) == [4, 5]
    assert distributed.ranges(10, 3) == [(0, 3), (3, 6), (6, 10)]
    with pytest.raises(ValueError, match="batch of 6.*4 processes"):
        distributed.shard(list(range(6)), 0, 4)
    assert (
        distributed.world() == 1
        and distributed.rank() == 0
        and distributed.is_main()
        and not distributed.active()
    )


def test_two_processes_match_one(tmp_path):
    from sda_lite.data import generate_lorenz

    generate_lorenz(tmp_path / "lorenz.h5", trajectories=10, length=16, burn=8, progress=False)
    kwargs = {**KWARGS, "valid": data(64, seed=2)}
    with pytest.raises(
        Interrupt
    ):  # a one-process checkpoint after epoch 2, resumed on two processes
        train(tiny(), data(256), directory=tmp_path / "one_cut", callback=stop_after(2), **kwargs)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER.format(tests=str(TESTS), kwargs=KWARGS))
    process = launch(str(worker), str(tmp_path))

    one = train(tiny(), data(256), **kwargs)  # meanwhile, the one-process reference
    finish(process)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    two = results[0]["straight"]

    # Same schedule, same epochs; losses equal in distribution (each rank draws its own noise).
    assert two["lr"] == one["lr"] and len(two["train"]) == 4
    assert two["valid"] == pytest.approx(one["valid"], rel=0.1)
    assert two["train"] == pytest.approx(one["train"], rel=0.2)
    assert two["valid"][-1] < 0.7 * two["valid"][0]
    assert results[0] == {
        **results[1],
        "weights": results[0]["weights"],
    }  # every rank has the same history...
    assert results[0]["weights"] == pytest.approx(results[1]["weights"], abs=1e-9)  # ...and weights

    # Resuming with the same number of processes continues exactly.
    assert results[0]["resumed"] == two
    # Resuming across a change of N: the first epochs are the checkpoint's, the rest match.
    assert results[0]["from_one"]["train"][:2] == one["train"][:2]
    assert results[0]["from_one"]["valid"] == pytest.approx(one["valid"], rel=0.1)
    assert read_config(tmp_path / "cut_for_one")["progress"]["epoch"] == 2
    back = train(tiny(seed=3), data(256), directory=tmp_path / "cut_for_one", **kwargs)
    assert back["train"][:2] == two["train"][:2] and back["lr"] == one["lr"]
    assert back["valid"] == pytest.approx(one["valid"], rel=0.1)

    # Only rank 0 wrote: one checkpoint per run, no temporary directory left behind.
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "cli",
        "cut",
        "cut_for_one",
        "one_cut",
        "straight",
    ]
    assert read_config(tmp_path / "cli")["progress"]["epoch"] == 2


def test_kolmogorov_generation_on_two_processes(tmp_path, monkeypatch):
    pytest.importorskip("jax_cfd")
    from sda_lite.kolmogorov import KolmogorovFlow, generate_kolmogorov

    sizes = dict(size=32, r=4, trajectories=10, burn=1, length=2)
    args = [
        "generate",
        "kolmogorov",
        "--scale",
        "ci",
        *(a for k, v in sizes.items() for a in ("--coarsen" if k == "r" else f"--{k}", str(v))),
        "--no-progress",
    ]
    process = launch("-m", "sda_lite", *args, "--out", str(tmp_path / "two"))
    reference = read(
        generate_kolmogorov(tmp_path / "one.h5", progress=False, **sizes)
    )  # meanwhile, one process

    # The same split, process by process in this one: rank 1 of 2, interrupted after 2 of its 5
    # trajectories, resumes from its part file; rank 0 then simulates its own and merges.
    path, calls = tmp_path / "k.h5", []
    trajectory = KolmogorovFlow.trajectory

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt("simulated interruption")
        return trajectory(*args, **kwargs)

    monkeypatch.setattr(distributed, "setup", lambda *args, **kwargs: True)
    monkeypatch.setattr(distributed, "world", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(KolmogorovFlow, "trajectory", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_kolmogorov(path, progress=False, **sizes)
    with h5py.File(tmp_path / "k.h5.part1of2") as part:
        assert part.attrs["done"] == 2 and (part.attrs["start"], part.attrs["stop"]) == (5, 10)
    calls.clear()
    monkeypatch.setattr(
        KolmogorovFlow, "trajectory", lambda *a, **k: calls.append(1) or trajectory(*a, **k)
    )
    generate_kolmogorov(path, progress=False, **sizes)
    assert len(calls) == 3 and not path.exists()  # resumed; rank 1 does not merge
    monkeypatch.setattr(distributed, "rank", lambda: 0)
    generate_kolmogorov(path, progress=False, **sizes)
    assert len(calls) == 8 and read(path) == reference
    assert not list(tmp_path.glob("k.h5.*"))  # the parts are merged and gone

    finish(process)  # two processes launched by torchrun give the same file
    assert [p.name for p in (tmp_path / "two").iterdir()] == ["kolmogorov_ci.h5"]
    assert read(tmp_path / "two" / "kolmogorov_ci.h5") == reference


class read(dict):
    r"""The splits and attributes of a dataset file, comparable with ``==`` (arrays compared exactly)."""

    def __init__(self, path: Path):
        with h5py.File(path) as f:
            super().__init__(
                {**{s: f[s][...] for s in ("train", "valid", "test")}, "attrs": dict(f.attrs)}
            )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, dict)
            and self.keys() == other.keys()
            and all(
                np.array_equal(self[k], other[k]) if k != "attrs" else self[k] == other[k]
                for k in self
            )
        )
