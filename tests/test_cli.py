r"""Tests of the command line (sda_lite.cli): every sub-command end to end at ci size, --help, bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from sda_lite import cli
from sda_lite.train import read_config

COMMANDS = ("generate", "train", "observe", "assimilate", "evaluate")
TINY_TRAIN = ["--set", "model.width=16", "--set", "train.epochs=2", "--set", "train.epoch_size=256"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys, *argv: str, match: str) -> str:
    r"""Runs a command that must fail with exit code 2 and a single line naming ``match``."""

    code, _, err = run(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert (
        len(lines) == 1
        and "Traceback" not in err
        and lines[0].startswith(f"sda-lite {argv[0]}: error:")
    ), err
    assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    r"""A data directory with a ci Lorenz dataset and a tiny trained prior (shared by the tests)."""

    path = tmp_path_factory.mktemp("cli")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDA_DATA", str(path / "data"))
        assert cli.main(["generate", "lorenz", "--scale", "ci", "--no-progress"]) == 0
        assert (
            cli.main(
                [
                    "train",
                    "--config",
                    "lorenz_local",
                    "--scale",
                    "ci",
                    "--k",
                    "1",
                    *TINY_TRAIN,
                    "--no-progress",
                ]
            )
            == 0
        )
    return path


def test_help_lists_commands_with_defaults(capsys):
    result = subprocess.run(
        [sys.executable, "-m", "sda_lite", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0 and all(c in result.stdout for c in COMMANDS)
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit:
            cli.main([command, "--help"])
        assert exit.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: sda-lite {command}") and "--no-progress" in out
    with pytest.raises(SystemExit):
        cli.main(["assimilate", "--help"])
    out = capsys.readouterr().out
    assert "(default: 64)" in out and "(default: sda)" in out  # the defaults are shown


def test_end_to_end(workdir, capsys, monkeypatch):
    monkeypatch.setenv("SDA_DATA", str(workdir / "data"))
    checkpoint = workdir / "data" / "lorenz_local_k1_ci"  # where lorenz_prior() would look
    meta = read_config(checkpoint)
    assert (
        meta["model"]["k"] == 1 and meta["model"]["width"] == 16 and meta["progress"]["epoch"] == 2
    )

    dataset = workdir / "data" / "lorenz_ci.h5"
    obs, post, metrics = workdir / "obs.h5", workdir / "post.h5", workdir / "metrics.json"
    code, out, _ = run(
        capsys,
        "observe",
        "--data",
        str(dataset),
        "--length",
        "17",
        "--operator",
        '[["every", 4], ["select", [0]]]',
        "--sigma",
        "0.1",
        "--out",
        str(obs),
    )
    assert code == 0
    with h5py.File(obs) as f:
        assert (
            f["y"].shape == (5, 1)
            and f["truth"].shape == (17, 3)
            and f.attrs["sigma"] == 0.1
            and f.attrs["length"] == 17
        )

    code, out, _ = run(
        capsys,
        "assimilate",
        "--checkpoint",
        str(checkpoint),
        "--observations",
        str(obs),
        "--steps",
        "4",
        "--samples",
        "6",
        "--corrections",
        "1",
        "--out",
        str(post),
        "--no-progress",
    )
    assert code == 0, out
    with h5py.File(post) as f:
        assert f["x"].shape == (6, 17, 3) and np.isfinite(f["x"][...]).all()
        assert (
            f.attrs["method"] == "sda"
            and f.attrs["steps"] == 4
            and f.attrs["corrections"] == 1
            and f.attrs["gamma"] == 0.01
        )
        assert (
            json.loads(f.attrs["operator"]) == [["every", 4], ["select", [0]]]
            and f.attrs["system"] == "NoisyLorenz63"
        )

    code, out, _ = run(
        capsys, "evaluate", str(post), "--particles", "256", "--out", str(metrics), "--no-progress"
    )
    assert code == 0
    rows = json.loads(metrics.read_text())["metrics"]
    assert set(rows) == {"posterior", "particle filter"}
    assert {"W1 to filter", "log p(x2:L|x1)", "log p(y|x)", "RMSE to truth"} <= set(
        rows["posterior"]
    )
    assert all(np.isfinite(v) for row in rows.values() for v in row.values())
    assert "W1 to filter" in out and "particle filter" in out  # the printed table

    # Train again: the finished checkpoint is loaded, not retrained.
    code, out, _ = run(
        capsys,
        "train",
        "--config",
        "lorenz_local",
        "--scale",
        "ci",
        "--k",
        "1",
        *TINY_TRAIN,
        "--no-progress",
    )
    assert code == 0 and "2 epochs" in out
    assert (
        sorted(p.name for p in workdir.iterdir() if p.name.startswith(".")) == []
    )  # no temporary left


def test_evaluate_residuals(tmp_path, capsys):
    r"""Without a particle filter reference (e.g. Kolmogorov), evaluate reports std(A(x) - y) / sigma."""

    g = torch.Generator().manual_seed(0)
    truth = torch.randn(3, 2, 8, 8, generator=g)
    y = cli.operator([["coarsen", 2]])(truth) + 0.1 * torch.randn(3, 2, 4, 4, generator=g)
    x = truth + 0.01 * torch.randn(5, 3, 2, 8, 8, generator=g)
    cli.write_h5(
        tmp_path / "post.h5",
        {"x": x, "y": y, "truth": truth},
        {"operator": [["coarsen", 2]], "sigma": 0.1, "system": "KolmogorovFlow"},
    )
    code, out, _ = run(
        capsys, "evaluate", str(tmp_path / "post.h5"), "--out", str(tmp_path / "m.json")
    )
    assert code == 0 and "residual std/sigma" in out
    rows = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert rows["posterior"]["residual std/sigma"] == pytest.approx(1.0, abs=0.2)
    assert rows["truth"]["residual std/sigma"] == pytest.approx(1.0, abs=0.2)


def test_bad_inputs(workdir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SDA_DATA", str(workdir / "data"))
    checkpoint = str(workdir / "data" / "lorenz_local_k1_ci")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not HDF5")
    obs = tmp_path / "obs.h5"
    cli.write_h5(
        obs,
        {"y": torch.zeros(5, 1)},
        {"operator": [["every", 4], ["select", [0]]], "sigma": 0.1, "length": 17},
    )
    out = str(tmp_path / "post.h5")

    fails(
        capsys,
        "assimilate",
        "--checkpoint",
        str(tmp_path / "none"),
        "--observations",
        str(obs),
        "--out",
        out,
        match="no checkpoint",
    )
    fails(
        capsys,
        "assimilate",
        "--checkpoint",
        checkpoint,
        "--observations",
        str(garbage),
        "--out",
        out,
        match="not a readable HDF5",
    )
    fails(
        capsys,
        "assimilate",
        "--checkpoint",
        checkpoint,
        "--observations",
        str(tmp_path / "missing.h5"),
        "--out",
        out,
        match="not found",
    )
    fails(
        capsys,
        "assimilate",
        "--checkpoint",
        checkpoint,
        "--observations",
        str(obs),
        "--operator",
        "[every 4]",
        "--out",
        out,
        match="not JSON",
    )
    fails(
        capsys,
        "assimilate",
        "--checkpoint",
        checkpoint,
        "--observations",
        str(obs),
        "--operator",
        '[["rotate", 2]]',
        "--out",
        out,
        match="'rotate'",
    )
    fails(
        capsys,
        "assimilate",
        "--checkpoint",
        checkpoint,
        "--observations",
        str(obs),
        "--operator",
        '[["select", [5]]]',
        "--out",
        out,
        match="does not apply",
    )
    fails(capsys, "evaluate", str(obs), "--out", str(tmp_path / "m.json"), match="no dataset 'x'")
    fails(capsys, "observe", "--data", str(garbage), "--out", out, match="not a readable HDF5")
    fails(
        capsys,
        "train",
        "--config",
        "lorenz_locale",
        match="unknown configuration family 'lorenz_locale'",
    )
    (tmp_path / "broken.json").write_text('{"ci": {"model": ')
    fails(
        capsys,
        "train",
        "--config",
        str(tmp_path / "broken.json"),
        "--scale",
        "ci",
        match="not valid JSON",
    )
    fails(capsys, "train", "--config", "lorenz_local", "--scale", "huge", match="'huge'")
    fails(
        capsys,
        "train",
        "--config",
        "lorenz_local",
        "--scale",
        "ci",
        "--set",
        "epochs=3",
        match="model.FIELD=VALUE",
    )
    # An inconsistent configuration: the checkpoint was trained with width 16.
    line = fails(
        capsys,
        "train",
        "--config",
        "lorenz_local",
        "--scale",
        "ci",
        "--k",
        "1",
        *TINY_TRAIN,
        "--set",
        "model.width=32",
        match="'width'",
    )
    assert "--overwrite" in line
    assert not os.path.exists(out) and sorted(p.name for p in tmp_path.iterdir()) == [
        "broken.json",
        "garbage.h5",
        "obs.h5",
    ]

    # A failure while sampling leaves no output, not even a temporary file.
    monkeypatch.setattr(
        "sda_lite.guidance.assimilate",
        lambda *a, **k: (_ for _ in ()).throw(ValueError("diverged")),
    )
    fails(
        capsys,
        "assimilate",
        "--checkpoint",
        checkpoint,
        "--observations",
        str(obs),
        "--out",
        out,
        match="diverged",
    )
    assert not os.path.exists(out)


def test_atomic_keeps_previous_file(tmp_path):
    path = tmp_path / "result.json"
    cli.write_json(path, {"v": 1})
    with pytest.raises(RuntimeError):
        with cli.atomic(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert json.loads(path.read_text()) == {"v": 1} and [p.name for p in tmp_path.iterdir()] == [
        "result.json"
    ]


def test_operator_spec():
    A = cli.operator('[["every", 8], ["select", [0, 2]]]')
    assert (
        A(torch.randn(4, 65, 3)).shape == (4, 9, 2)
        and repr(A) == "compose(every(8), select([0, 2]))"
    )
    m = torch.zeros(5, 3, dtype=torch.bool)
    m[0, 1] = True
    assert cli.operator([["mask"]], mask=m)(torch.randn(2, 5, 3)).shape == (2, 1)
    with pytest.raises(ValueError, match="mask"):
        cli.operator([["mask"]])
    with pytest.raises(ValueError, match="bad arguments"):
        cli.operator([["every", 1, 2, 3, 4]])


def test_kolmogorov_scenario_end_to_end(tmp_path, capsys):
    r"""A field prior trained from a configuration file on a (fake, random) Kolmogorov dataset, a
    scenario's observations, assimilation and residual statistics: no JAX needed."""

    g = torch.Generator().manual_seed(0)
    cli.write_h5(
        tmp_path / "k.h5",
        {
            s: torch.randn(n, 6, 2, 8, 8, generator=g)
            for s, n in (("train", 8), ("valid", 1), ("test", 1))
        },
        {"system": "KolmogorovFlow"},
    )
    model = {
        "kind": "field",
        "features": 2,
        "k": 1,
        "grid": 8,
        "channels": [4],
        "blocks": 1,
        "embedding": 8,
        "forcing": 4,
    }
    (tmp_path / "tiny.json").write_text(
        json.dumps({"ci": {"model": model, "train": {"epochs": 1, "batch_size": 4}}})
    )
    assert (
        run(
            capsys,
            "train",
            "--config",
            str(tmp_path / "tiny.json"),
            "--scale",
            "ci",
            "--data",
            str(tmp_path / "k.h5"),
            "--out",
            str(tmp_path / "ck"),
            "--no-progress",
        )[0]
        == 0
    )
    assert (
        run(
            capsys,
            "observe",
            "--data",
            str(tmp_path / "k.h5"),
            "--length",
            "5",
            "--operator",
            "assimilation",
            "--out",
            str(tmp_path / "obs.h5"),
        )[0]
        == 0
    )
    with h5py.File(tmp_path / "obs.h5") as f:
        assert f.attrs["sigma"] == 0.1 and json.loads(f.attrs["operator"]) == [
            ["scenario", "assimilation"]
        ]
    code, _, err = run(
        capsys,
        "assimilate",
        "--checkpoint",
        str(tmp_path / "ck"),
        "--observations",
        str(tmp_path / "obs.h5"),
        "--steps",
        "2",
        "--samples",
        "2",
        "--out",
        str(tmp_path / "post.h5"),
        "--no-progress",
    )
    assert code == 0, err
    code, out, _ = run(
        capsys, "evaluate", str(tmp_path / "post.h5"), "--out", str(tmp_path / "m.json")
    )
    assert code == 0 and "residual std/sigma" in out
    rows = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert rows["truth"]["residual std/sigma"] == pytest.approx(
        1.0, abs=0.5
    )  # y = A(truth) + sigma z
    assert np.isfinite(rows["posterior"]["residual std/sigma"])


def test_train_a_spacetime_prior_on_lorenz96_windows(tmp_path, capsys, monkeypatch):
    r"""`train --config lorenz96_local` trains on Lorenz-96 windows of the ring of its config."""

    monkeypatch.setenv("SDA_DATA", str(tmp_path))
    tiny = ["--set", "model.channels=8", "--set", "train.epochs=1", "--set", "train.epoch_size=32"]
    code, out, err = run(
        capsys, "train", "--config", "lorenz96_local", "--scale", "ci", "--k", "1", *tiny,
        "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    meta = read_config(tmp_path / "lorenz96_local_ci")
    assert meta["model"]["kind"] == "spacetime" and meta["model"]["k"] == 1
    assert (tmp_path / "lorenz96_N40_ci.h5").is_file()
