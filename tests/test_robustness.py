r"""Nothing silent: a table of bad inputs and faults, each ending in one clear error.

The command line must exit with code 2 and one line on stderr (no traceback), write nothing
non-finite and leave its inputs intact; the library must raise a ValueError that says what was
given and what was expected. Tiny sizes: a ci Lorenz dataset and a prior trained for one epoch.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from sda_lite import cli, metrics, observe, priors
from sda_lite.checkpoints import read_config, save_checkpoint
from sda_lite.guidance import MMPSGuidance, SDAGuidance, assimilate
from sda_lite.lorenz import NoisyLorenz63
from sda_lite.training import train

OP = '[["every", 4], ["select", [0]]]'
TINY = ["--set", "model.width=16", "--set", "train.epochs=1", "--set", "train.epoch_size=64"]


def quiet(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    r"""A directory with a dataset ``data.h5``, a checkpoint ``ck``, observations ``obs.h5``, a
    posterior ``post.h5`` and a metrics file ``metrics.json``, copied for each case."""

    root = tmp_path_factory.mktemp("robust")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDA_DATA", str(root / "data"))
        mp.setenv("SDA_SCALE", "ci")
        d = root / "base"
        d.mkdir()
        assert cli.main(["generate", "lorenz", "--no-progress"]) == 0
        shutil.copy(root / "data" / "lorenz_ci.h5", d / "data.h5")
        argv = ["train", "--config", "lorenz_local", "--k", "1", *TINY, "--no-progress"]
        assert cli.main([*argv, "--out", str(d / "ck")]) == 0
        argv = ["observe", "--data", str(d / "data.h5"), "--length", "17", "--operator", OP]
        assert cli.main([*argv, "--out", str(d / "obs.h5")]) == 0
        argv = ["assimilate", "--checkpoint", str(d / "ck"), "--observations", str(d / "obs.h5")]
        argv += ["--steps", "2", "--samples", "4", "--no-progress", "--out", str(d / "post.h5")]
        assert cli.main(argv) == 0
    (d / "metrics.json").write_text('{"metrics": {}}')
    return root


@pytest.fixture
def case(base, tmp_path, monkeypatch):
    r"""A fresh copy of the base files, as the working directory."""

    d = tmp_path / "case"
    shutil.copytree(base / "base", d)
    monkeypatch.chdir(d)
    monkeypatch.setenv("SDA_DATA", str(base / "data"))
    monkeypatch.setenv("SDA_SCALE", "ci")
    return d


def digest(path: Path) -> object:
    if path.is_dir():
        return {p.name: digest(p) for p in sorted(path.iterdir())}
    return hashlib.md5(path.read_bytes()).hexdigest() if path.exists() else None


def finite(path: Path) -> bool:
    if not path.is_file():
        return True
    if path.suffix == ".json":
        text = path.read_text()
        return not any(word in text for word in ("NaN", "Infinity"))
    with h5py.File(path) as f:
        return all(np.isfinite(f[k][...]).all() for k in f if f[k].dtype.kind == "f") and all(
            np.isfinite(v) for v in f.attrs.values() if isinstance(v, float)
        )


def edit_h5(path: Path, datasets: dict | None = None, attrs: dict | None = None) -> None:
    with h5py.File(path, "a") as f:
        for k, v in (datasets or {}).items():
            if k in f:
                del f[k]
            f.create_dataset(k, data=np.asarray(v))
        f.attrs.update(attrs or {})


def edit_config(d: Path, **fields) -> None:
    meta = json.loads((d / "ck" / "config.json").read_text())
    meta["model"].update(fields)
    (d / "ck" / "config.json").write_text(json.dumps(meta))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def fill_x(value: float):
    def setup(d: Path) -> None:
        with h5py.File(d / "post.h5") as f:
            x = f["x"][...]
        edit_h5(d / "post.h5", {"x": np.full_like(x, value)})

    return setup


def A(*extra: str, out: str = "new.h5") -> list[str]:
    return ["assimilate", "--checkpoint", "ck", "--observations", "obs.h5", "--steps", "4",
            "--samples", "2", "--no-progress", "--out", out, *extra]  # fmt: skip


def E(*extra: str, post: str = "post.h5", out: str = "m.json") -> list[str]:
    return ["evaluate", post, "--particles", "64", "--out", out, "--no-progress", *extra]


def O(*extra: str, out: str = "o.h5") -> list[str]:  # noqa: E743
    return ["observe", "--data", "data.h5", "--length", "17", "--operator", OP, "--out", out,
            *extra]  # fmt: skip


def T(*extra: str, out: str = "newck") -> list[str]:
    return ["train", "--config", "lorenz_local", "--k", "1", *TINY, "--no-progress", "--out", out,
            *extra]  # fmt: skip


def write(name: str, text: str | bytes):
    def setup(d: Path) -> None:
        path = d / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)

    return setup


def config_file(model: dict, schedule: dict | None = None):
    entry = {"model": model, "train": {"epochs": 1} if schedule is None else schedule}
    return write("cfg.json", json.dumps({"ci": entry}))


LOCAL = {"kind": "local", "features": 3, "k": 1, "width": 16}
TRAIN_CFG = ["train", "--config", "cfg.json", "--no-progress", "--out", "c2"]

# (id, argv, setup, expected words in the message, inputs that must stay intact)
CLI_CASES = [
    # 1. non-finite results are never written
    ("tau nan", A("--tau", "nan", "--corrections", "1"), None, "tau", ["obs.h5"]),
    ("tau inf", A("--tau", "inf"), None, "--tau inf", ["obs.h5"]),
    (
        "y 1e30",
        A(),
        lambda d: edit_h5(d / "obs.h5", {"y": np.full((5, 1), 1e30, "f4")}),
        "diverged",
        ["obs.h5"],
    ),  # fmt: skip
    (
        "y 1e30 mmps",
        A("--method", "mmps"),
        lambda d: edit_h5(d / "obs.h5", {"y": np.full((5, 1), 1e30, "f4")}),
        "diverged",
        ["obs.h5"],
    ),
    (
        "y nan",
        A(),
        lambda d: edit_h5(d / "obs.h5", {"y": np.full((5, 1), np.nan, "f4")}),
        "non-finite",
        ["obs.h5"],
    ),  # fmt: skip
    ("sigma nan", A("--sigma", "nan"), None, "--sigma", ["obs.h5"]),
    ("gamma -1", A("--gamma", "-1"), None, "--gamma", ["obs.h5"]),
    ("steps 0", A("--steps", "0"), None, "--steps 0", ["obs.h5"]),
    ("samples 0", A("--samples", "0"), None, "--samples 0", ["obs.h5"]),
    (
        "length attr 17.5",
        A(),
        lambda d: edit_h5(d / "obs.h5", attrs={"length": 17.5}),
        "'length'",
        ["obs.h5"],
    ),  # fmt: skip
    # 2. no perfect score for a broken posterior
    ("evaluate x nan", E(), fill_x(np.nan), "non-finite", ["post.h5"]),
    ("evaluate x inf", E(), fill_x(np.inf), "non-finite", ["post.h5"]),
    (
        "evaluate x nan residual",
        E(),
        lambda d: [fill_x(np.nan)(d), edit_h5(d / "post.h5", attrs={"system": "Other"})],
        "non-finite",
        ["post.h5"],
    ),  # fmt: skip
    ("evaluate x 1e30", E(), fill_x(1e30), "finite", ["post.h5"]),
    (
        "evaluate sigma inf",
        E(),
        lambda d: edit_h5(d / "post.h5", attrs={"sigma": np.inf}),
        "'sigma'",
        ["post.h5"],
    ),  # fmt: skip
    (
        "evaluate operator mismatch",
        E(),
        lambda d: edit_h5(d / "post.h5", attrs={"operator": '[["every", 3]]', "system": "Other"}),
        "y has shape",
        ["post.h5"],
    ),  # fmt: skip
    # 3. configurations
    ("set epohcs", T("--set", "train.epohcs=8"), None, "did you mean train.epochs", []),
    ("set widht", T("--set", "model.widht=32"), None, "did you mean model.width", []),
    ("set lr abc", T("--set", "train.lr=abc"), None, "'lr' is 'abc'", []),
    ("set lr nan", T("--set", "train.lr=NaN"), None, "'lr'", []),
    ("set epochs huge", T("--set", "train.epochs=10000000"), None, "[1, 1e+06]", []),
    ("set epochs 2.5", T("--set", "train.epochs=2.5"), None, "an integer", []),
    ("set bf16 3", T("--set", "train.bf16=3"), None, "true or false", []),
    ("set width huge", T("--set", "model.width=100000"), None, "[1, 4096]", []),
    ("set depth 1000", T("--set", "model.depth=1000"), None, "[1, 64]", []),
    ("set width 32.5", T("--set", "model.width=32.5"), None, "'width' is 32.5", []),
    ("set channels local", T("--set", "model.channels=[16]"), None, "unknown model field", []),
    ("set kind", T("--set", "model.kind=foo"), None, "'foo'", []),
    ("k 0", T("--k", "0"), None, "--k 0", []),
    ("config k str", TRAIN_CFG, config_file({**LOCAL, "k": "2"}), "'k' is '2'", ["cfg.json"]),
    ("config width float", TRAIN_CFG, config_file({**LOCAL, "width": 32.5}), "32.5", ["cfg.json"]),
    ("config model 3", TRAIN_CFG, config_file(3), "model", ["cfg.json"]),
    (
        "config typo",
        TRAIN_CFG,
        config_file({**LOCAL, "dpeth": 2}),
        "did you mean 'depth'",
        ["cfg.json"],
    ),  # fmt: skip
    ("config no epochs", TRAIN_CFG, config_file(LOCAL, {}), "'epochs'", ["cfg.json"]),
    (
        "config channels",
        TRAIN_CFG,
        config_file({"kind": "global", "features": 3, "window": 8, "channels": [5000]}),
        "[1, 2048]",
        ["cfg.json"],
    ),  # fmt: skip
    ("config empty", TRAIN_CFG, write("cfg.json", ""), "not valid JSON", ["cfg.json"]),
    # 4. corrupt checkpoints name the file
    (
        "truncated weights",
        A(),
        lambda d: truncate(d / "ck" / "weights.pt"),
        "weights.pt",
        ["obs.h5"],
    ),  # fmt: skip
    ("garbage weights", A(), write("ck/weights.pt", b"garbage"), "weights.pt", ["obs.h5"]),
    (
        "missing weights",
        A(),
        lambda d: (d / "ck" / "weights.pt").unlink(),
        "weights.pt",
        ["obs.h5"],
    ),  # fmt: skip
    ("sizes changed", A(), lambda d: edit_config(d, width=32), "do not match", ["obs.h5"]),
    ("model 3", A(), write("ck/config.json", '{"model": 3}'), "config.json", ["obs.h5"]),
    ("empty config", A(), write("ck/config.json", ""), "config.json", ["obs.h5"]),
    ("garbage config", A(), write("ck/config.json", "garbage{"), "--overwrite", ["obs.h5"]),
    ("width str", A(), lambda d: edit_config(d, width="16"), "'width'", ["obs.h5"]),
    (
        "resume truncated",
        T(out="ck"),
        lambda d: truncate(d / "ck" / "weights.pt"),
        "weights.pt",
        [],
    ),  # fmt: skip
    ("resume model 3", T(out="ck"), write("ck/config.json", '{"model": 3}'), "config.json", []),
    # 5. no input destroyed
    ("observe out = data", O(out="data.h5"), None, "inputs", ["data.h5"]),
    ("observe out = posterior", O(out="post.h5"), None, "posterior file", ["post.h5"]),
    ("observe out = metrics", O(out="metrics.json"), None, "a metrics file", ["metrics.json"]),
    ("assimilate out = obs", A(out="obs.h5"), None, "inputs", ["obs.h5"]),
    ("assimilate out = data", A(out="data.h5"), None, "dataset file", ["data.h5"]),
    ("assimilate out = weights", A(out="ck/weights.pt"), None, "another kind", ["ck"]),
    ("evaluate out = posterior", E(out="post.h5"), None, "inputs", ["post.h5"]),
    ("evaluate out = obs", E(out="obs.h5"), None, "observations file", ["obs.h5"]),
    ("evaluate out = dir", E(out="ck"), None, "directory", ["ck"]),
    ("train out = file", T(out="data.h5"), None, "is a file", ["data.h5"]),
    ("train out = data", T("--data", "data.h5", out="data.h5"), None, "input", ["data.h5"]),
    (
        "train out = user dir",
        T(out="mine"),
        lambda d: [(d / "mine").mkdir(), (d / "mine" / "notes.txt").write_text("mine")],
        "other files",
        ["mine"],
    ),  # fmt: skip
    (
        "generate over other file",
        ["generate", "lorenz", "--out", "gen", "--no-progress"],
        lambda d: [(d / "gen").mkdir(), (d / "gen" / "lorenz_ci.h5").write_text("notes")],
        "not a dataset",
        ["gen"],
    ),  # fmt: skip
    # 6. silent misuse
    ("observe length 0", O("--length", "0"), None, "--length 0", ["data.h5"]),
    ("observe every true", O("--operator", '[["every", true]]'), None, "n=True", ["data.h5"]),
    (
        "observe select 0.7",
        O("--operator", '[["select", [0.7]]]'),
        None,
        "index=[0.7]",
        ["data.h5"],
    ),  # fmt: skip
    (
        "observe select extra",
        O("--operator", '[["select", [0], 1.5]]'),
        None,
        "dim=1.5",
        ["data.h5"],
    ),  # fmt: skip
    (
        "observe unknown scenario",
        O("--operator", "nosuch"),
        None,
        "unknown scenario 'nosuch'",
        ["data.h5"],
    ),  # fmt: skip
    (
        "observe data nan",
        O(),
        lambda d: edit_h5(d / "data.h5", {"test": np.full((10, 33, 3), np.nan, "f4")}),
        "NaN",
        ["data.h5"],
    ),  # fmt: skip
    ("observe sigma 0", O("--sigma", "0"), None, "--sigma 0", ["data.h5"]),
    (
        "observe mask float",
        O("--operator", '[["mask"]]'),
        lambda d: edit_h5(d / "data.h5", {"mask": np.full((17, 3), 0.5, "f4")}),
        "boolean",
        ["data.h5"],
    ),  # fmt: skip
    ("evaluate particles 1", E("--particles", "1"), None, ">= 2", ["post.h5"]),
    ("evaluate particles 0", E("--particles", "0"), None, ">= 2", ["post.h5"]),
    (
        "generate trajectories 1",
        ["generate", "lorenz", "--trajectories", "1", "--out", "gen"],
        None,
        "--trajectories 1",
        [],
    ),  # fmt: skip
    (
        "train data nan",
        T("--data", "data.h5"),
        lambda d: edit_h5(d / "data.h5", {"train": np.full((8, 33, 3), np.nan, "f4")}),
        "NaN",
        ["data.h5"],
    ),  # fmt: skip
    (
        "train data 4 features",
        T("--data", "data.h5"),
        lambda d: edit_h5(d / "data.h5", {"train": np.zeros((8, 33, 4), "f4")}),
        "features",
        ["data.h5"],
    ),  # fmt: skip
]


@pytest.mark.parametrize(
    "argv, setup, match, inputs", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_cli_bad_input(case, capsys, argv, setup, match, inputs):
    if setup is not None:
        setup(case)
    before = {p: digest(case / p) for p in inputs}
    listing = set(os.listdir(case))
    code, _, err = quiet(capsys, argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"sda-lite {argv[0]}: error:") and match in lines[0], lines[0]
    assert {p: digest(case / p) for p in inputs} == before  # inputs intact
    new = set(os.listdir(case)) - listing
    assert not [p for p in new if p.startswith(".")], new  # nothing renamed out of sight
    assert all(finite(case / p) for p in new if (case / p).is_file())  # outputs finite


def test_train_overwrite_recovers_garbage_config(case, capsys):
    (case / "ck" / "config.json").write_text("garbage{")
    code, _, err = quiet(capsys, T("--overwrite", out="ck"))
    assert code == 0, err
    assert read_config(case / "ck")["progress"]["epoch"] == 1


def test_assimilate_recovers_interrupted_save(case, capsys):
    os.replace(case / "ck", case / ".ck.old")  # a save cut between its two renames
    code, _, err = quiet(capsys, A("--steps", "2"))
    assert code == 0, err
    assert (case / "ck" / "config.json").exists() and not (case / ".ck.old").exists()


def test_stale_temporaries_cleaned(case):
    stale = case / ".ck.tmp-999999999"  # no such process
    shutil.copytree(case / "ck", stale)
    assert read_config(case / "ck") is not None and not stale.exists()
    live = case / f".ck.tmp-{os.getppid()}"  # a running process: left alone
    live.mkdir()
    save_checkpoint(case / "other", {"v": 1}, {"w": torch.ones(1)})
    assert live.exists()


def test_no_progress_when_train_generates_the_dataset(case, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SDA_DATA", str(tmp_path / "fresh"))
    code, _, err = quiet(capsys, T())
    assert code == 0 and "Lorenz-63" not in err and "it/s" not in err, err


def test_dps_far_off_samples_are_reported(case, capsys):
    code, _, err = quiet(capsys, A("--method", "dps", "--zeta", "1e3", "--steps", "16"))
    assert code == 0 and "warning" in err and "10 times" in err, err
    assert finite(case / "new.h5")


def test_train_out_file_is_kept_with_overwrite_only(case, capsys):
    code, _, err = quiet(capsys, T(out="metrics.json"))
    assert code == 2 and not (case / ".metrics.json.old").exists()
    code, _, err = quiet(capsys, T("--overwrite", out="metrics.json"))
    assert code == 0 and (case / "metrics.json" / "config.json").exists(), err


# --------------------------------------------------------------------------------------------------
# The library

X = torch.randn(8, 17, 3, generator=torch.Generator().manual_seed(0))
NAN = X.clone().index_fill_(0, torch.tensor([0]), float("nan"))
INF = torch.full_like(X, float("inf"))
I = lambda x: x  # noqa: E731


def _prior(base):
    return priors.prior_for_length(priors.load_prior(base / "base" / "ck"), 17)


LIB_CASES = [
    ("w1 nan", lambda p: metrics.w1(NAN, X), "non-finite"),
    ("w1 inf", lambda p: metrics.w1(X, INF), "non-finite"),
    ("mmd nan", lambda p: metrics.mmd(NAN, X), "non-finite"),
    ("log_px nan", lambda p: metrics.log_px(NoisyLorenz63(), NAN), "non-finite"),
    ("log_py x inf", lambda p: metrics.log_py(INF, X[0], I, 0.1), "non-finite"),
    ("log_py y nan", lambda p: metrics.log_py(X, NAN[0], I, 0.1), "non-finite"),
    ("log_py std inf", lambda p: metrics.log_py(X, X[0], I, float("inf")), "std"),
    ("rmse nan", lambda p: metrics.rmse(NAN, X), "non-finite"),
    ("rmse truth inf", lambda p: metrics.rmse(X, INF), "non-finite"),
    ("spread nan", lambda p: metrics.spread(NAN), "non-finite"),
    (
        "std shape",
        lambda p: SDAGuidance(torch.zeros(5, 1), OPERATOR, torch.ones(3), p),
        "std has shape (3,)",
    ),  # fmt: skip
    (
        "std shape 9 vs 5",
        lambda p: SDAGuidance(torch.zeros(9, 1), EVERY2, torch.ones(5), p),
        "broadcastable",
    ),  # fmt: skip
    (
        "mmps std shape",
        lambda p: MMPSGuidance(torch.zeros(5, 1), OPERATOR, torch.ones(3), p),
        "std has shape",
    ),  # fmt: skip
    ("limit str", lambda p: SDAGuidance(torch.zeros(5, 1), OPERATOR, 0.1, p, limit="no"), "limit"),
    (
        "samples True",
        lambda p: assimilate(p, torch.zeros(5, 1), OPERATOR, 0.1, samples=True),
        "samples",
    ),  # fmt: skip
    (
        "y 1e30",
        lambda p: assimilate(
            p, torch.full((5, 1), 1e30), OPERATOR, 0.1, steps=4, samples=2, progress=False
        ),
        "diverged",
    ),  # fmt: skip
    (
        "tau nan",
        lambda p: assimilate(
            p, torch.zeros(5, 1), OPERATOR, 0.1, tau=float("nan"), corrections=1, progress=False
        ),
        "tau",
    ),  # fmt: skip
    ("spec every true", lambda p: observe.from_spec([["every", True]]), "n=True"),
    ("spec select 0.7", lambda p: observe.from_spec([["select", [0.7]]]), "index=[0.7]"),
    ("spec select true", lambda p: observe.parse_spec('[["select", true]]'), "index=True"),
    ("spec coarsen 2.0", lambda p: observe.parse_spec([["coarsen", 2.0]]), "factor=2.0"),
    ("spec every start", lambda p: observe.parse_spec([["every", 4, False]]), "start=False"),
    ("spec mask args", lambda p: observe.parse_spec([["mask", 1]]), "bad arguments"),
    ("config k str", lambda p: priors.build_prior({**LOCAL, "k": "2"}), "'k' is '2'"),
    ("config width float", lambda p: priors.build_prior({**LOCAL, "width": 32.5}), "32.5"),
    ("config width huge", lambda p: priors.build_prior({**LOCAL, "width": 10**6}), "4096"),
    ("config typo", lambda p: priors.build_prior({**LOCAL, "widht": 8}), "did you mean 'width'"),
    ("config bool", lambda p: priors.build_prior({**LOCAL, "k": True}), "'k' is True"),
    ("config eta", lambda p: priors.build_prior({**LOCAL, "eta": 2.0}), "'eta'"),
    (
        "config grid",
        lambda p: priors.build_prior(
            {"kind": "field", "features": 2, "k": 1, "grid": 6, "channels": [4, 8, 16]}
        ),
        "multiple of 4",
    ),  # fmt: skip
    (
        "train config typo",
        lambda p: priors.check_train_config({"epochs": 1, "bacth_size": 8}),
        "did you mean 'batch_size'",
    ),  # fmt: skip
    (
        "train epochs huge",
        lambda p: train(priors.build_prior(LOCAL), torch.zeros(8, 3, 3), epochs=10**9),
        "epochs",
    ),  # fmt: skip
    (
        "train seed",
        lambda p: train(
            priors.build_prior(LOCAL), torch.zeros(8, 3, 3), epochs=1, batch_size=4, seed=1.5
        ),
        "seed",
    ),  # fmt: skip
]
OPERATOR = observe.from_spec(OP)
EVERY2 = observe.from_spec('[["every", 2], ["select", [0]]]')


@pytest.mark.parametrize("call, match", [c[1:] for c in LIB_CASES], ids=[c[0] for c in LIB_CASES])
def test_library_bad_input(base, call, match):
    with pytest.raises(ValueError) as error:
        call(_prior(base))
    assert match in str(error.value), str(error.value)


@pytest.mark.parametrize(
    "fault, match",
    [
        (lambda d: truncate(d / "weights.pt"), "weights.pt"),
        (lambda d: (d / "config.json").write_text(""), "config.json"),
        (lambda d: (d / "config.json").write_text("[1]"), "config.json"),
        (lambda d: (d / "config.json").write_text('{"model": 3}'), "config.json"),
        (lambda d: (d / "weights.pt").unlink(), "weights.pt"),
        (lambda d: torch.save({"model": {"a": torch.zeros(1)}}, d / "weights.pt"), "match"),
    ],
    ids=["truncated", "empty config", "list config", "model 3", "no weights", "wrong weights"],
)
def test_load_prior_corrupt(base, tmp_path, fault, match):
    directory = tmp_path / "ck"
    shutil.copytree(base / "base" / "ck", directory)
    fault(directory)
    with pytest.raises(ValueError, match="retrain") as error:
        priors.load_prior(directory)
    assert match in str(error.value) and str(directory) in str(error.value)


def test_schema_matches_train():
    r"""The training schema lists exactly the keyword arguments of train() a config may set."""

    excluded = {"sde", "dataset", "valid", "directory", "config", "callback", "progress"}
    assert set(priors.TRAIN_SCHEMA) == set(inspect.signature(train).parameters) - excluded
    for family in priors.families():
        for scale in ("ci", "cpu", "full"):
            model, schedule = priors.load_configs(family, scale)  # the shipped ones are valid
            priors.check_model_config(model) or priors.check_train_config(schedule)
