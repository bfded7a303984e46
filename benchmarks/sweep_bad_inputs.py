"""A sweep of bad inputs and faults: the command line (in-process) and library calls.

Each case runs in a fresh copy of a tiny `ci` set-up (a Lorenz-63 dataset, a checkpoint, an
observation file and a posterior) and is classified: a clear error (exit 2 / ValueError), a
traceback, accepted (exit 0), a non-finite output written, or an input lost. The goal: no traceback,
no non-finite output, no input lost, and only legal cases accepted. The regression tests of the
same faults are the table of ``tests/test_robustness.py``.

Usage (about 10 minutes on 2 cores):
    SWEEP_ROOT=/tmp/sweep python benchmarks/sweep_bad_inputs.py [-v]
"""

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import signal
import sys
import traceback
import warnings
from pathlib import Path

import h5py
import numpy as np
import torch


class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang("more than 30 s")


signal.signal(signal.SIGALRM, _alarm)
ROOT = Path(os.environ.get("SWEEP_ROOT", "/tmp/rb/sweep"))
shutil.rmtree(ROOT, ignore_errors=True)
ROOT.mkdir(parents=True)
os.environ["SDA_DATA"] = str(ROOT / "data")
os.environ["SDA_SCALE"] = "ci"
warnings.simplefilter("ignore")

from sda_lite import cli  # noqa: E402

TINY = ["--set", "model.width=16", "--set", "train.epochs=1", "--set", "train.epoch_size=64"]
OP = '[["every", 4], ["select", [0]]]'
VERBOSE = "-v" in sys.argv


def quiet(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------ fixtures (built once)
BASE = ROOT / "base"
BASE.mkdir()
assert quiet(["generate", "lorenz", "--no-progress"])[0] == 0
DATA = ROOT / "data" / "lorenz_ci.h5"
code, _, err = quiet(
    [
        "train",
        "--config",
        "lorenz_local",
        "--k",
        "1",
        *TINY,
        "--no-progress",
        "--out",
        str(BASE / "ck"),
    ]
)
assert code == 0, err
code, _, err = quiet(
    [
        "observe",
        "--data",
        str(DATA),
        "--length",
        "17",
        "--operator",
        OP,
        "--out",
        str(BASE / "obs.h5"),
    ]
)
assert code == 0, err
code, _, err = quiet(
    [
        "assimilate",
        "--checkpoint",
        str(BASE / "ck"),
        "--observations",
        str(BASE / "obs.h5"),
        "--steps",
        "4",
        "--samples",
        "4",
        "--out",
        str(BASE / "post.h5"),
        "--no-progress",
    ]
)
assert code == 0, err
shutil.copy(DATA, BASE / "data.h5")
(BASE / "metrics.json").write_text('{"metrics": {}}')


def h5edit(path, datasets=None, attrs=None, drop=()):
    with h5py.File(path, "a") as f:
        for k, v in (datasets or {}).items():
            if k in f:
                del f[k]
            f.create_dataset(k, data=np.asarray(v))
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        for k in drop:
            if k in f:
                del f[k]
            elif k in f.attrs:
                del f.attrs[k]


def y_of(path):
    with h5py.File(path) as f:
        return f["y"][...]


def x_of(path):
    with h5py.File(path) as f:
        return f["x"][...]


def digest(path):
    path = Path(path)
    if path.is_dir():
        return {p.name: digest(p) for p in sorted(path.iterdir())}
    if not path.exists():
        return None
    return hashlib.md5(path.read_bytes()).hexdigest()


def finite_file(path):
    path = Path(path)
    if not path.exists() or path.is_dir():
        return True
    if path.suffix == ".json":
        try:
            obj = json.loads(path.read_text(), parse_constant=lambda c: float(c))
        except Exception:
            return False

        def ok(o):
            if isinstance(o, float):
                return math.isfinite(o)
            if isinstance(o, dict):
                return all(ok(v) for v in o.values())
            if isinstance(o, list):
                return all(ok(v) for v in o)
            return True

        return ok(obj)
    try:
        with h5py.File(path) as f:
            for k in f:
                a = f[k][...]
                if a.dtype.kind == "f" and not np.isfinite(a).all():
                    return False
    except OSError:
        return True
    return True


CASES = []


def case(name, argv, setup=None, inputs=(), outputs=()):
    CASES.append((name, argv, setup, inputs, outputs))


# paths inside each case directory
def A(*extra, obs="obs.h5", ck="ck", out="post.h5"):
    return [
        "assimilate",
        "--checkpoint",
        ck,
        "--observations",
        obs,
        "--steps",
        "4",
        "--samples",
        "2",
        "--no-progress",
        "--out",
        out,
        *extra,
    ]


def E(*extra, post="post.h5", out="m.json"):
    return ["evaluate", post, "--particles", "64", "--no-progress", "--out", out, *extra]


def O(*extra, data="data.h5", out="o.h5"):  # noqa: E743
    return ["observe", "--data", data, "--length", "17", "--operator", OP, "--out", out, *extra]


def T(*extra, out="newck"):
    return [
        "train",
        "--config",
        "lorenz_local",
        "--k",
        "1",
        *TINY,
        "--no-progress",
        "--out",
        out,
        *extra,
    ]


# ---- assimilate
for opt, values in {
    "--tau": ["nan", "inf", "-inf", "-1", "0", "1e30"],
    "--gamma": ["nan", "inf", "-1", "1e30"],
    "--zeta": ["nan", "inf", "0", "-1", "1e3"],
    "--steps": ["0", "-1"],
    "--corrections": ["-1"],
    "--samples": ["0", "-1"],
    "--iterations": ["0", "-2"],
    "--sigma": ["0", "-1", "nan", "inf", "1e-30", "1e30"],
    "--length": ["0", "-1", "2", "1000", "65.7"],
}.items():
    for v in values:
        method = ["--method", "dps"] if opt == "--zeta" else []
        method = ["--method", "mmps"] if opt == "--iterations" else method
        case(
            f"assimilate {opt} {v}",
            A(opt, v, *method),
            inputs=["obs.h5", "ck"],
            outputs=["post.h5"],
        )
for method in ("sda", "dps", "mmps"):
    for v in ("nan", "inf", "1e30", "-1e30", "1e20"):

        def setup(d, v=v):
            h5edit(d / "obs.h5", {"y": np.full((5, 1), float(v), dtype=np.float32)})

        case(
            f"assimilate {method} y={v}",
            A("--method", method),
            setup,
            ["obs.h5", "ck"],
            ["post.h5"],
        )
case(
    "assimilate corrections 1 tau nan",
    A("--corrections", "1", "--tau", "nan"),
    inputs=["obs.h5"],
    outputs=["post.h5"],
)
case(
    "assimilate corrections 2 tau 1e6",
    A("--corrections", "2", "--tau", "1e6"),
    inputs=["obs.h5"],
    outputs=["post.h5"],
)
case(
    "assimilate gamma 0 sigma 1e-6",
    A("--gamma", "0", "--sigma", "1e-6", "--steps", "16"),
    inputs=["obs.h5"],
    outputs=["post.h5"],
)
case(
    "assimilate y wrong shape",
    A(),
    lambda d: h5edit(d / "obs.h5", {"y": np.zeros((3, 2))}),
    ["obs.h5"],
    ["post.h5"],
)
case(
    "assimilate y 3d",
    A(),
    lambda d: h5edit(d / "obs.h5", {"y": np.zeros((2, 5, 1, 1))}),
    ["obs.h5"],
    ["post.h5"],
)
case(
    "assimilate y int",
    A(),
    lambda d: h5edit(d / "obs.h5", {"y": np.zeros((5, 1), int)}),
    ["obs.h5"],
    ["post.h5"],
)
case(
    "assimilate y string",
    A(),
    lambda d: h5edit(d / "obs.h5", {"y": np.array([b"a"])}),
    ["obs.h5"],
    ["post.h5"],
)
case(
    "assimilate y scalar",
    A(),
    lambda d: h5edit(d / "obs.h5", {"y": np.float32(1)}),
    ["obs.h5"],
    ["post.h5"],
)
for attr in ("operator", "sigma", "length"):
    case(
        f"assimilate no attr {attr}",
        A(),
        lambda d, a=attr: h5edit(d / "obs.h5", drop=[a]),
        ["obs.h5"],
        ["post.h5"],
    )
for attr, val in (
    ("sigma", "abc"),
    ("sigma", -1.0),
    ("sigma", np.nan),
    ("length", 0),
    ("length", -3),
    ("length", 17.5),
    ("length", "x"),
    ("operator", "[[1]]"),
    ("operator", "garbage"),
    ("operator", 5),
    ("length", True),
    ("sigma", np.inf),
):
    case(
        f"assimilate attr {attr}={val!r}",
        A(),
        lambda d, a=attr, v=val: h5edit(d / "obs.h5", attrs={a: v}),
        ["obs.h5"],
        ["post.h5"],
    )
for spec in (
    '[["every", true]]',
    '[["select", [0.7]]]',
    '[["every", 0]]',
    '[["every", 2.5]]',
    '[["select", []]]',
    '[["select", [5]]]',
    '[["select", "a"]]',
    '[["coarsen", 2]]',
    "assimilation",
    "nosuchscenario",
    "[]",
    '""',
    "[[]]",
    '[["mask"]]',
    '[["every", 4, -1]]',
    '[["every", 4, 0, 5]]',
    '[["select", [0], 7]]',
    '{"a": 1}',
    '[["scenario", "sparse", 3]]',
    '[["every", 4], ["select", [true]]]',
    '[["every", "4"]]',
    '[["select", [null]]]',
    '[["every", 1e400]]',
    '[["every", NaN]]',
    '[["select", [0]], ["scenario", "sparse"]]',
    '[["every", 4, 0, -2]]',
):
    case(
        f"assimilate --operator {spec}",
        A("--operator", spec),
        inputs=["obs.h5", "ck"],
        outputs=["post.h5"],
    )
# checkpoints
ckfaults = {
    "missing": lambda d: shutil.rmtree(d / "ck"),
    "empty dir": lambda d: [shutil.rmtree(d / "ck"), (d / "ck").mkdir()],
    "garbage config": lambda d: (d / "ck" / "config.json").write_text("garbage{"),
    "empty config": lambda d: (d / "ck" / "config.json").write_text(""),
    "model 3": lambda d: (d / "ck" / "config.json").write_text('{"model": 3}'),
    "config list": lambda d: (d / "ck" / "config.json").write_text("[1, 2]"),
    "config binary": lambda d: (d / "ck" / "config.json").write_bytes(b"\xff\xfe\x00"),
    "width changed": lambda d: edit_config(d, width=32),
    "k changed": lambda d: edit_config(d, k=2),
    "kind changed": lambda d: edit_config(d, kind="global"),
    "kind bogus": lambda d: edit_config(d, kind="bogus"),
    "width str": lambda d: edit_config(d, width="16"),
    "features 0": lambda d: edit_config(d, features=0),
    "no features": lambda d: edit_config(d, features=None),
    "truncated weights": lambda d: truncate(d / "ck" / "weights.pt"),
    "empty weights": lambda d: (d / "ck" / "weights.pt").write_bytes(b""),
    "garbage weights": lambda d: (d / "ck" / "weights.pt").write_bytes(b"garbage" * 100),
    "missing weights": lambda d: (d / "ck" / "weights.pt").unlink(),
    "weights dict wrong": lambda d: torch.save({"x": 1}, d / "ck" / "weights.pt"),
    "weights model wrong": lambda d: torch.save(
        {"model": {"a": torch.zeros(2)}}, d / "ck" / "weights.pt"
    ),
    "nan weights": lambda d: nan_weights(d),
    "only .old": lambda d: os.replace(d / "ck", d / ".ck.old"),
    "checkpoint is file": lambda d: [shutil.rmtree(d / "ck"), (d / "ck").write_text("x")],
    "config is dir": lambda d: [
        (d / "ck" / "config.json").unlink(),
        (d / "ck" / "config.json").mkdir(),
    ],
}


def edit_config(d, **fields):
    p = d / "ck" / "config.json"
    meta = json.loads(p.read_text())
    for k, v in fields.items():
        if v is None:
            meta["model"].pop(k)
        else:
            meta["model"][k] = v
    p.write_text(json.dumps(meta))


def truncate(p):
    b = p.read_bytes()
    p.write_bytes(b[: len(b) // 2])


def nan_weights(d):
    s = torch.load(d / "ck" / "weights.pt", weights_only=True)
    for k in ("model", "ema"):
        if s.get(k):
            for v in s[k].values():
                if v.is_floating_point():
                    v.fill_(float("nan"))
    torch.save(s, d / "ck" / "weights.pt")


for name, fault in ckfaults.items():
    case(f"assimilate checkpoint {name}", A(), fault, ["obs.h5"], ["post.h5"])
# files
case("assimilate --out = observations", A(out="obs.h5"), inputs=["obs.h5"])
case("assimilate --out = data.h5", A(out="data.h5"), inputs=["data.h5"])
case("assimilate --out = weights", A(out="ck/weights.pt"), inputs=["ck"])
case("assimilate --out = config", A(out="ck/config.json"), inputs=["ck"])
case("assimilate --out = metrics", A(out="metrics.json"), inputs=["metrics.json"])
case("assimilate --out = dir", A(out="ck"), inputs=["ck"])
case(
    "assimilate --out in missing dir",
    A(out="nodir/sub/p.h5"),
    inputs=["obs.h5"],
    outputs=["nodir/sub/p.h5"],
)
case("assimilate obs garbage", A(), lambda d: (d / "obs.h5").write_text("x"), ["obs.h5"])
case("assimilate obs = dir", A(obs="ck"), inputs=["ck"])
case("assimilate obs = data", A(obs="data.h5"), inputs=["data.h5"])
case("assimilate obs = post", A(obs="post.h5", out="p2.h5"), inputs=["post.h5"], outputs=["p2.h5"])
case("assimilate method bogus", A("--method", "bogus"))
case("assimilate precision bogus", A("--precision", "fp8"))
case(
    "assimilate dps zeta 1e3 steps 16",
    A("--method", "dps", "--zeta", "1e3", "--steps", "16"),
    inputs=["obs.h5"],
    outputs=["post.h5"],
)

# ---- evaluate
for v in ("nan", "inf", "-inf", "1e30", "partial nan"):

    def setup(d, v=v):
        x = x_of(d / "post.h5")
        if v == "partial nan":
            x[0, 0, 0] = np.nan
        else:
            x[...] = float(v)
        h5edit(d / "post.h5", {"x": x})

    case(f"evaluate x={v}", E(), setup, ["post.h5"], ["m.json"])
    case(
        f"evaluate x={v} residual",
        E(),
        lambda d, s=setup: [s(d), h5edit(d / "post.h5", attrs={"system": "Other"})],
        ["post.h5"],
        ["m.json"],
    )
for v in ("nan", "inf"):
    case(
        f"evaluate y={v}",
        E(),
        lambda d, v=v: h5edit(d / "post.h5", {"y": np.full((5, 1), float(v), np.float32)}),
        ["post.h5"],
        ["m.json"],
    )
    case(
        f"evaluate truth={v}",
        E(),
        lambda d, v=v: h5edit(d / "post.h5", {"truth": np.full((17, 3), float(v), np.float32)}),
        ["post.h5"],
        ["m.json"],
    )
for p in ("1", "0", "-1", "2"):
    case(f"evaluate --particles {p}", E("--particles", p), inputs=["post.h5"], outputs=["m.json"])
for attr, val in (
    ("sigma", np.nan),
    ("sigma", 0.0),
    ("sigma", -1.0),
    ("sigma", "abc"),
    ("sigma", np.inf),
    ("operator", "garbage"),
    ("operator", '[["mask"]]'),
    ("operator", '[["coarsen", 2]]'),
    ("operator", '[["every", true]]'),
    ("operator", '[["select", [7]]]'),
    ("system", "Bogus"),
    ("operator", "[]"),
    ("operator", '[["every", 3], ["select", [0]]]'),
):
    case(
        f"evaluate attr {attr}={val!r}",
        E(),
        lambda d, a=attr, v=val: h5edit(d / "post.h5", attrs={a: v}),
        ["post.h5"],
        ["m.json"],
    )
    case(
        f"evaluate residual attr {attr}={val!r}",
        E(),
        lambda d, a=attr, v=val: h5edit(
            d / "post.h5", attrs={a: v, "system": "Other"} if a != "system" else {a: v}
        ),
        ["post.h5"],
        ["m.json"],
    )
case(
    "evaluate no attrs",
    E(),
    lambda d: h5edit(d / "post.h5", drop=["operator", "sigma"]),
    ["post.h5"],
    ["m.json"],
)
case(
    "evaluate x 2d",
    E(),
    lambda d: h5edit(d / "post.h5", {"x": np.zeros((17, 3), "f4")}),
    ["post.h5"],
    ["m.json"],
)
case(
    "evaluate x wrong L",
    E(),
    lambda d: h5edit(d / "post.h5", {"x": np.zeros((2, 9, 3), "f4")}),
    ["post.h5"],
    ["m.json"],
)
case(
    "evaluate x wrong D",
    E(),
    lambda d: h5edit(d / "post.h5", {"x": np.zeros((2, 17, 4), "f4")}),
    ["post.h5"],
    ["m.json"],
)
case(
    "evaluate x 0 samples",
    E(),
    lambda d: h5edit(d / "post.h5", {"x": np.zeros((0, 17, 3), "f4")}),
    ["post.h5"],
    ["m.json"],
)
case(
    "evaluate x 1 sample",
    E(),
    lambda d: h5edit(d / "post.h5", {"x": np.zeros((1, 17, 3), "f4")}),
    ["post.h5"],
    ["m.json"],
)
case(
    "evaluate y wrong",
    E(),
    lambda d: h5edit(d / "post.h5", {"y": np.zeros((3, 1), "f4")}),
    ["post.h5"],
    ["m.json"],
)
case(
    "evaluate truth wrong",
    E(),
    lambda d: h5edit(d / "post.h5", {"truth": np.zeros((3, 1), "f4")}),
    ["post.h5"],
    ["m.json"],
)
case("evaluate --out = posterior", E(out="post.h5"), inputs=["post.h5"])
case("evaluate --out = obs", E(out="obs.h5"), inputs=["obs.h5", "post.h5"])
case("evaluate --out = config", E(out="ck/config.json"), inputs=["ck", "post.h5"])
case("evaluate --out = dir", E(out="ck"), inputs=["ck", "post.h5"])
case(
    "evaluate --out = metrics (same kind)",
    E(out="metrics.json"),
    inputs=["post.h5"],
    outputs=["metrics.json"],
)
case("evaluate obs file", E(post="obs.h5"), inputs=["obs.h5"], outputs=["m.json"])
case("evaluate data file", E(post="data.h5"), inputs=["data.h5"], outputs=["m.json"])
case("evaluate garbage", E(), lambda d: (d / "post.h5").write_text("x"), ["post.h5"], ["m.json"])
case("evaluate missing", E(post="none.h5"), outputs=["m.json"])

# ---- observe
for opt, v in (
    ("--length", "0"),
    ("--length", "-1"),
    ("--length", "65.7"),
    ("--length", "100000"),
    ("--index", "-1"),
    ("--index", "100000"),
    ("--start", "-1"),
    ("--start", "100000"),
    ("--sigma", "0"),
    ("--sigma", "-1"),
    ("--sigma", "nan"),
    ("--sigma", "inf"),
    ("--sigma", "1e300"),
    ("--seed", "-1"),
    ("--split", "bogus"),
    ("--start", "60"),
):
    case(f"observe {opt} {v}", O(opt, v), inputs=["data.h5"], outputs=["o.h5"])
for spec in (
    '[["every", true]]',
    '[["select", [0.7]]]',
    '[["every", 0]]',
    '[["every", 2.5]]',
    '[["select", []]]',
    '[["select", [5]]]',
    '[["select", "a"]]',
    '[["coarsen", 2]]',
    "assimilation",
    "nosuchscenario",
    "[]",
    "[[]]",
    '[["mask"]]',
    '[["every", 4, -1]]',
    '[["every", 4, 0, 5]]',
    '[["select", [0], 7]]',
    '{"a": 1}',
    '[["select", true]]',
    '[["scenario", "sparse", 3]]',
    '[["every", 4], ["select", [true]]]',
    '[["every", "4"]]',
    '[["select", [null]]]',
    '[["every", 1e400]]',
    '[["coarsen", true]]',
    '[["select", [0], 1.5]]',
    '[["every", 4, false]]',
    '[["scenario", "sparse", {"stride": 0}]]',
    '[["scenario", 3]]',
):
    case(f"observe --operator {spec}", O("--operator", spec), inputs=["data.h5"], outputs=["o.h5"])
case("observe --out = data", O(out="data.h5"), inputs=["data.h5"])
case("observe --out = post", O(out="post.h5"), inputs=["post.h5", "data.h5"])
case("observe --out = metrics", O(out="metrics.json"), inputs=["metrics.json"])
case("observe --out = weights", O(out="ck/weights.pt"), inputs=["ck"])
case("observe --out = dir", O(out="ck"), inputs=["ck"])
case("observe --out = obs (same kind)", O(out="obs.h5"), inputs=["data.h5"], outputs=["obs.h5"])
case(
    "observe data nan",
    O(),
    lambda d: h5edit(d / "data.h5", {"test": np.full((10, 33, 3), np.nan, "f4")}),
    ["data.h5"],
    ["o.h5"],
)
case(
    "observe data inf",
    O(),
    lambda d: h5edit(d / "data.h5", {"test": np.full((10, 33, 3), np.inf, "f4")}),
    ["data.h5"],
    ["o.h5"],
)
case(
    "observe data 1e30",
    O(),
    lambda d: h5edit(d / "data.h5", {"test": np.full((10, 33, 3), 1e30, "f4")}),
    ["data.h5"],
    ["o.h5"],
)
case(
    "observe data int",
    O(),
    lambda d: h5edit(d / "data.h5", {"test": np.zeros((10, 33, 3), int)}),
    ["data.h5"],
    ["o.h5"],
)
case(
    "observe data 1d",
    O(),
    lambda d: h5edit(d / "data.h5", {"test": np.zeros(10, "f4")}),
    ["data.h5"],
    ["o.h5"],
)
case(
    "observe data empty",
    O(),
    lambda d: h5edit(d / "data.h5", {"test": np.zeros((0, 33, 3), "f4")}),
    ["data.h5"],
    ["o.h5"],
)
case(
    "observe data strings",
    O(),
    lambda d: h5edit(d / "data.h5", {"test": np.array([b"ab"])}),
    ["data.h5"],
    ["o.h5"],
)
case(
    "observe no test split",
    O(),
    lambda d: h5edit(d / "data.h5", drop=["test"]),
    ["data.h5"],
    ["o.h5"],
)
case("observe garbage data", O(), lambda d: (d / "data.h5").write_text("x"), ["data.h5"], ["o.h5"])
case("observe data = obs", O(data="obs.h5"), inputs=["obs.h5"], outputs=["o.h5"])
case("observe data = dir", O(data="ck"), inputs=["ck"], outputs=["o.h5"])
case(
    "observe mask bad",
    O("--operator", '[["mask"]]'),
    lambda d: h5edit(d / "data.h5", {"mask": np.ones((2, 2), bool)}),
    ["data.h5"],
    ["o.h5"],
)
case(
    "observe mask float",
    O("--operator", '[["mask"]]'),
    lambda d: h5edit(d / "data.h5", {"mask": np.ones((17, 3), "f4") * 0.5}),
    ["data.h5"],
    ["o.h5"],
)
case(
    "observe mask empty",
    O("--operator", '[["mask"]]'),
    lambda d: h5edit(d / "data.h5", {"mask": np.zeros((17, 3), bool)}),
    ["data.h5"],
    ["o.h5"],
)

# ---- train
for s in (
    "train.epohcs=8",
    "model.widht=32",
    "train.lr=abc",
    "train.lr=-1",
    "train.lr=NaN",
    "train.lr=Infinity",
    "train.lr=1e9",
    "train.epochs=0",
    "train.epochs=-3",
    "train.epochs=1000000000",
    "train.epochs=2.5",
    "train.epochs=true",
    "train.epochs=null",
    "train.batch_size=0",
    "train.batch_size=100000",
    "train.batch_size=2.0",
    "train.ema=1.5",
    "train.ema=0",
    "train.ema=true",
    "train.lr_schedule=foo",
    "train.lr_schedule=3",
    "train.weight_decay=-1",
    "train.epoch_size=1",
    "train.epoch_size=-5",
    "train.seed=abc",
    "train.seed=-1",
    "train.seed=1.5",
    "train.bf16=3",
    "train.bf16=yes",
    "train.every=0",
    "train.dataset=5",
    "model.width=0",
    "model.width=-1",
    "model.width=100000",
    "model.width=32.5",
    "model.width=true",
    'model.width="16"',
    "model.depth=0",
    "model.depth=1000",
    "model.k=0",
    "model.k=-1",
    "model.k=2.5",
    "model.k=1000",
    "model.embedding=0",
    "model.embedding=3",
    "model.alpha=foo",
    "model.alpha=3",
    "model.eta=-1",
    "model.eta=NaN",
    "model.eta=2",
    "model.kind=foo",
    "model.kind=3",
    "model.features=0",
    "model.features=4",
    "model.features=2",
    "model.channels=[16]",
    "model.window=4",
    "model.grid=8",
    "foo",
    "model.=3",
    ".x=1",
    "model.width",
    "train.callback=1",
    "train.progress=false",
    'train.directory="x"',
    "model.kind=global",
    "model.kind=field",
    "train.epochs=[1]",
    "model.width={}",
):
    case(f"train --set {s}", T("--set", s), outputs=["newck"])
for k in ("0", "-1", "1000", "1.5"):
    case(f"train --k {k}", T("--k", k), outputs=["newck"])
case("train --k on global", ["train", "--config", "lorenz_global", "--k", "1", "--out", "g"])
G = [
    "train",
    "--config",
    "lorenz_global",
    "--set",
    "train.epochs=1",
    "--set",
    "train.epoch_size=64",
    "--no-progress",
    "--out",
    "g",
]
for s in (
    "model.channels=[0]",
    "model.channels=16",
    "model.channels=[]",
    "model.channels=[5000]",
    "model.channels=[16.5]",
    "model.blocks=0",
    "model.blocks=-1",
    "model.blocks=[1, 2]",
    "model.window=0",
    "model.window=1000",
    "model.window=2",
    "model.kernel_size=0",
    "model.kernel_size=2",
    "model.width=16",
    "model.k=1",
    "model.blocks=100",
):
    case(f"train global --set {s}", G + ["--set", s], outputs=["g"])
cfgs = {
    "k str": {
        "ci": {
            "model": {"kind": "local", "features": 3, "k": "2", "width": 16},
            "train": {"epochs": 1},
        }
    },
    "width float": {
        "ci": {
            "model": {"kind": "local", "features": 3, "k": 1, "width": 32.5},
            "train": {"epochs": 1},
        }
    },
    "model 3": {"ci": {"model": 3, "train": {"epochs": 1}}},
    "train list": {"ci": {"model": {"kind": "local", "features": 3, "k": 1}, "train": [1]}},
    "no features": {"ci": {"model": {"kind": "local", "k": 1}, "train": {"epochs": 1}}},
    "no kind": {"ci": {"model": {"features": 3, "k": 1}, "train": {"epochs": 1}}},
    "no k": {"ci": {"model": {"kind": "local", "features": 3}, "train": {"epochs": 1}}},
    "no epochs": {
        "ci": {"model": {"kind": "local", "features": 3, "k": 1, "width": 16}, "train": {}}
    },
    "epochs str": {
        "ci": {"model": {"kind": "local", "features": 3, "k": 1}, "train": {"epochs": "8"}}
    },
    "train typo": {
        "ci": {
            "model": {"kind": "local", "features": 3, "k": 1},
            "train": {"epochs": 1, "bacth_size": 8},
        }
    },
    "model typo": {
        "ci": {
            "model": {"kind": "local", "features": 3, "k": 1, "dpeth": 2},
            "train": {"epochs": 1},
        }
    },
    "list top": [1, 2],
    "scale not dict": {"ci": 5},
    "no ci": {"cpu": {"model": {}, "train": {}}},
    "huge width": {
        "ci": {
            "model": {"kind": "local", "features": 3, "k": 1, "width": 10**9},
            "train": {"epochs": 1},
        }
    },
    "huge epochs": {
        "ci": {
            "model": {"kind": "local", "features": 3, "k": 1, "width": 16},
            "train": {"epochs": 10**12},
        }
    },
    "nan lr": {
        "ci": {
            "model": {"kind": "local", "features": 3, "k": 1, "width": 16},
            "train": {"epochs": 1, "lr": float("nan")},
        }
    },
    "global no window": {
        "ci": {"model": {"kind": "global", "features": 3}, "train": {"epochs": 1}}
    },
    "field no grid": {
        "ci": {"model": {"kind": "field", "features": 2, "k": 1}, "train": {"epochs": 1}}
    },
    "bool k": {
        "ci": {"model": {"kind": "local", "features": 3, "k": True}, "train": {"epochs": 1}}
    },
}
for name, cfg in cfgs.items():
    case(
        f"train config {name}",
        ["train", "--config", "cfg.json", "--no-progress", "--out", "c2"],
        lambda d, c=cfg: (d / "cfg.json").write_text(json.dumps(c)),
        ["cfg.json"],
        ["c2"],
    )
case(
    "train config empty",
    ["train", "--config", "cfg.json", "--out", "c2"],
    lambda d: (d / "cfg.json").write_text(""),
    ["cfg.json"],
)
case(
    "train config binary",
    ["train", "--config", "cfg.json", "--out", "c2"],
    lambda d: (d / "cfg.json").write_bytes(b"\xff\xfe"),
    ["cfg.json"],
)
case(
    "train config dir",
    ["train", "--config", "ck.json", "--out", "c2"],
    lambda d: (d / "ck.json").mkdir(),
)
case("train --out existing.h5", T(out="data.h5"), inputs=["data.h5"])
case("train --out existing.json", T(out="metrics.json"), inputs=["metrics.json"])
case("train --out obs", T(out="obs.h5"), inputs=["obs.h5"])
case(
    "train --out user dir",
    T(out="userdir"),
    lambda d: [(d / "userdir").mkdir(), (d / "userdir" / "notes.txt").write_text("mine")],
    ["userdir"],
)
case("train --out = --data", T("--data", "data.h5", out="data.h5"), inputs=["data.h5"])
case("train --data garbage", T("--data", "obs.h5"), inputs=["obs.h5"], outputs=["newck"])
case("train --data missing", T("--data", "none.h5"), outputs=["newck"])
case(
    "train --data nan",
    T("--data", "data.h5"),
    lambda d: h5edit(d / "data.h5", {"train": np.full((8, 33, 3), np.nan, "f4")}),
    ["data.h5"],
    ["newck"],
)
case(
    "train --data 4 features",
    T("--data", "data.h5"),
    lambda d: h5edit(d / "data.h5", {"train": np.zeros((8, 33, 4), "f4")}),
    ["data.h5"],
    ["newck"],
)
case(
    "train --data too short",
    T("--data", "data.h5"),
    lambda d: h5edit(d / "data.h5", {"train": np.zeros((8, 2, 3), "f4")}),
    ["data.h5"],
    ["newck"],
)
case(
    "train --data 1 traj",
    T("--data", "data.h5", "--set", "train.batch_size=4"),
    lambda d: h5edit(d / "data.h5", {"train": np.zeros((1, 33, 3), "f4")}),
    ["data.h5"],
    ["newck"],
)
for name, fault in ckfaults.items():
    case(f"train resume checkpoint {name}", T(out="ck"), fault, outputs=["ck"])
for name in (
    "garbage config",
    "empty config",
    "model 3",
    "truncated weights",
    "width changed",
    "only .old",
    "checkpoint is file",
    "missing weights",
    "config is dir",
):
    case(
        f"train --overwrite checkpoint {name}",
        T("--overwrite", out="ck"),
        ckfaults[name],
        outputs=["ck"],
    )
case(
    "train stale tmp",
    T(out="ck"),
    lambda d: [shutil.copytree(d / "ck", d / ".ck.tmp-999999")],
    outputs=["ck"],
)

# ---- generate
for opt, v in (
    ("--trajectories", "0"),
    ("--trajectories", "-1"),
    ("--trajectories", "1"),
    ("--length", "0"),
    ("--length", "-5"),
    ("--burn", "-1"),
    ("--length", "1"),
    ("--trajectories", "3"),
    ("--scale", "huge"),
):
    case(
        f"generate lorenz {opt} {v}",
        ["generate", "lorenz", opt, v, "--out", "gen", "--no-progress"],
        outputs=["gen/lorenz_ci.h5"],
    )
for opt, v in (
    ("--size", "0"),
    ("--size", "-1"),
    ("--coarsen", "0"),
    ("--trajectories", "0"),
    ("--length", "0"),
    ("--batch", "0"),
    ("--coarsen", "-2"),
    ("--size", "7"),
    ("--batch", "-1"),
):
    case(
        f"generate kolmogorov {opt} {v}",
        [
            "generate",
            "kolmogorov",
            opt,
            v,
            "--out",
            "gen",
            "--no-progress",
            "--trajectories",
            "0" if opt != "--trajectories" else "0",
        ],
        outputs=["gen/kolmogorov_ci.h5"],
    )
case("generate --out = file", ["generate", "lorenz", "--out", "data.h5"], inputs=["data.h5"])
case(
    "generate garbage at target",
    ["generate", "lorenz", "--out", "gen", "--no-progress"],
    lambda d: [(d / "gen").mkdir(), (d / "gen" / "lorenz_ci.h5").write_text("my notes")],
    ["gen/lorenz_ci.h5"],
)


# ------------------------------------------------------------------ run
def run_cli():
    counts = dict(clear=0, traceback=0, accepted=0, nonfinite=0, lost=0, unclear=0, hang=0)
    report = []
    for i, (name, argv, setup, inputs, outputs) in enumerate(CASES):
        d = ROOT / f"c{i}"
        shutil.copytree(BASE, d)
        cwd = os.getcwd()
        os.chdir(d)
        try:
            if setup:
                setup(d)
            before = {p: digest(d / p) for p in inputs}
            listing = set(os.listdir(d))
            print(i, name, file=sys.__stderr__, flush=True)
            signal.alarm(30)
            try:
                code, out, err = quiet(argv)
                tb = None
            except Exception:
                code, err, tb = None, "", traceback.format_exc()
            signal.alarm(0)
            if tb is not None and "Hang" in tb:
                kind = "hang"
            elif tb is not None or "Traceback" in err:
                kind = "traceback"
            elif code == 0:
                kind = "accepted"
            elif code == 2 and (len(err.strip().splitlines()) == 1 or "error: argument" in err):
                kind = "clear"
            else:
                kind = "unclear"
            counts[kind] += 1
            lost = [p for p in inputs if digest(d / p) != before[p]]
            bad = [p for p in outputs if not finite_file(d / p)]
            bad += [
                p for p in lost if (d / p).suffix in (".h5", ".json") and not finite_file(d / p)
            ]
            if bad:
                counts["nonfinite"] += 1
            hidden = [p for p in set(os.listdir(d)) - listing if p.startswith(".")]
            if lost or hidden:
                counts["lost"] += 1
            msg = (tb or err).strip().splitlines()[-1:] if (tb or err) else [""]
            report.append((kind, name, code, msg[0][:150], bad, lost + hidden))
        finally:
            os.chdir(cwd)
            shutil.rmtree(d, ignore_errors=True)
    return counts, report


# ------------------------------------------------------------------ library
LIB = []


def lib(name, f):
    LIB.append((name, f))


def run_lib():
    counts = dict(clear=0, traceback=0, accepted=0, nonfinite=0, lost=0)
    report = []
    for name, f in LIB:
        print(name, file=sys.__stderr__, flush=True)
        signal.alarm(30)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                r = f()
            kind = "accepted"
            msg = " ".join(repr(r).split())[:100]
            vals = r if isinstance(r, (tuple, list)) else [r]
            for v in vals:
                if (
                    isinstance(v, torch.Tensor)
                    and v.is_floating_point()
                    and not bool(torch.isfinite(v).all())
                ):
                    counts["nonfinite"] += 1
                    msg = "NONFINITE " + msg
                    break
                if isinstance(v, float) and not math.isfinite(v):
                    counts["nonfinite"] += 1
                    msg = "NONFINITE " + msg
                    break
        except ValueError as e:
            kind, msg = "clear", str(e)[:150]
        except Exception as e:
            kind, msg = "traceback", f"{type(e).__name__}: {str(e)[:150]}"
        signal.alarm(0)
        counts[kind] += 1
        report.append((kind, name, None, msg, [], []))
    return counts, report


from sda_lite import checkpoints, guidance, metrics, observe, priors, training  # noqa: E402
from sda_lite.lorenz import NoisyLorenz63  # noqa: E402

torch.manual_seed(0)
nan, inf = float("nan"), float("inf")
X = torch.randn(8, 17, 3)
Y = torch.randn(8, 17, 3)
chain = NoisyLorenz63()
for bad in (nan, inf, -inf):
    Xb = X.clone()
    Xb[0, 0, 0] = bad
    lib(f"w1 x {bad}", lambda Xb=Xb: metrics.w1(Xb, Y))
    lib(f"w1 y {bad}", lambda Xb=Xb: metrics.w1(Y, Xb))
    lib(f"w1 all {bad}", lambda b=bad: metrics.w1(torch.full_like(X, b), Y))
    lib(f"mmd x {bad}", lambda Xb=Xb: metrics.mmd(Xb, Y))
    lib(f"log_px {bad}", lambda Xb=Xb: metrics.log_px(chain, Xb))
    lib(f"log_py x {bad}", lambda Xb=Xb: metrics.log_py(Xb, Y[0], lambda x: x, 0.1))
    lib(f"log_py y {bad}", lambda Xb=Xb: metrics.log_py(Y, Xb[0], lambda x: x, 0.1))
    lib(f"log_py std {bad}", lambda b=bad: metrics.log_py(Y, X[0], lambda x: x, b))
    lib(f"rmse x {bad}", lambda Xb=Xb: metrics.rmse(Xb, Y))
    lib(f"rmse truth {bad}", lambda Xb=Xb: metrics.rmse(Y, Xb))
    lib(f"spread {bad}", lambda Xb=Xb: metrics.spread(Xb))
lib("w1 list", lambda: metrics.w1([1, 2], Y))
lib("rmse list", lambda: metrics.rmse([1.0], Y))
lib("rmse shapes", lambda: metrics.rmse(torch.zeros(3), torch.zeros(4)))
lib("log_px int", lambda: metrics.log_px(chain, torch.zeros(2, 5, 3, dtype=torch.int64)))
lib("mmd bandwidth nan", lambda: metrics.mmd(X, Y, bandwidth=nan))

prior = priors.prior_for_length(priors.load_prior(BASE / "ck"), 17)
A_ = observe.compose(observe.every(4), observe.select(0))
y9 = torch.zeros(5, 1)
lib(
    "SDAGuidance std (5,) vs y (9,1)",
    lambda: guidance.SDAGuidance(
        torch.zeros(9, 1), lambda x: x[..., ::2, :1], torch.ones(5), prior
    ),
)
lib("SDAGuidance std (3,) vs y (5,1)", lambda: guidance.SDAGuidance(y9, A_, torch.ones(3), prior))
lib("SDAGuidance std (5,1,1)", lambda: guidance.SDAGuidance(y9, A_, torch.ones(5, 1, 1), prior))
lib("MMPSGuidance std (3,)", lambda: guidance.MMPSGuidance(y9, A_, torch.ones(3), prior))
lib("SDAGuidance std nan", lambda: guidance.SDAGuidance(y9, A_, nan, prior))
lib("SDAGuidance gamma nan", lambda: guidance.SDAGuidance(y9, A_, 0.1, prior, gamma=nan))
lib("SDAGuidance limit str", lambda: guidance.SDAGuidance(y9, A_, 0.1, prior, limit="no"))
lib("DPS zeta inf", lambda: guidance.DPSGuidance(y9, A_, prior, zeta=inf))
lib("MMPS iterations True", lambda: guidance.MMPSGuidance(y9, A_, 0.1, prior, iterations=True))
lib("MMPS iterations 2.5", lambda: guidance.MMPSGuidance(y9, A_, 0.1, prior, iterations=2.5))
kw = dict(steps=4, samples=2, progress=False)
for k, v in (
    ("tau", nan),
    ("tau", inf),
    ("tau", -1.0),
    ("tau", 1e30),
    ("steps", 0),
    ("steps", 2.5),
    ("samples", 0),
    ("samples", True),
    ("samples", 2.5),
    ("corrections", -1),
    ("gamma", nan),
    ("zeta", nan),
    ("method", "foo"),
    ("precision", "fp8"),
    ("iterations", 0),
):
    lib(
        f"assimilate {k}={v}",
        lambda k=k, v=v: guidance.assimilate(
            prior,
            y9,
            A_,
            0.1,
            **{**kw, "corrections": 1, k: v},
            **({"method": "dps"} if k == "zeta" else {}),
        ),
    )
for m in ("sda", "dps", "mmps"):
    for v in (1e30, 1e20, -1e30):
        lib(
            f"assimilate {m} y={v}",
            lambda m=m, v=v: guidance.assimilate(
                prior, torch.full((5, 1), v), A_, 0.1, method=m, **kw
            ),
        )
    lib(
        f"assimilate {m} std 1e-30",
        lambda m=m: guidance.assimilate(prior, y9, A_, 1e-30, method=m, **kw),
    )
lib("assimilate y nan", lambda: guidance.assimilate(prior, torch.full((5, 1), nan), A_, 0.1, **kw))
lib(
    "VPSDE.sample tau nan",
    lambda: prior.sample((2,), steps=2, corrections=1, tau=nan, progress=False),
)
lib("VPSDE.sample steps 0", lambda: prior.sample((2,), steps=0, progress=False))

specs = (
    [["every", True]],
    [["select", [0.7]]],
    [["select", True]],
    [["every", 2.5]],
    [["coarsen", True]],
    [["coarsen", 0]],
    [["every", 4, True]],
    [["select", [0], 1.5]],
    [["select", [True]]],
    [["every", 4, 0, True]],
    [["coarsen", 2.0]],
    [["select", 0.0]],
    [["every", None]],
    [["select", [None]]],
    [["select", "0"]],
    [["every", 1e400]],
    [["select", [[0]]]],
    [["scenario", "foo"]],
    "foo",
    [["mask"]],
    [["every", 4], 3],
)
for s in specs:
    lib(f"from_spec {s}", lambda s=s: observe.from_spec(s)(X))
lib("every(True)", lambda: observe.every(True))
lib("select(True)", lambda: observe.select(True))
lib("select(0.7)", lambda: observe.select(0.7))
lib("select([0.7])", lambda: observe.select([0.7]))
lib("coarsen(True)", lambda: observe.coarsen(True))
lib("observe std nan", lambda: observe.observe(X, A_, nan))
lib("observe x nan", lambda: observe.observe(torch.full_like(X, nan), A_, 0.1))

base_cfg = {"kind": "local", "features": 3, "k": 1, "width": 16}
for k, v in (
    ("k", "2"),
    ("width", 32.5),
    ("width", 0),
    ("width", 10**6),
    ("depth", 0),
    ("depth", 1000),
    ("widht", 32),
    ("kind", "foo"),
    ("features", 0),
    ("features", True),
    ("alpha", "foo"),
    ("eta", nan),
    ("eta", -1),
    ("embedding", 0),
    ("k", True),
    ("k", -1),
    ("channels", [16]),
    ("width", None),
):
    lib(f"build_prior {k}={v!r}", lambda k=k, v=v: priors.build_prior({**base_cfg, k: v}))
gcfg = {"kind": "global", "features": 3, "window": 8, "channels": [8], "blocks": 1}
for k, v in (
    ("channels", [0]),
    ("channels", 16),
    ("channels", []),
    ("blocks", 0),
    ("window", 0),
    ("kernel_size", 0),
    ("channels", [10**5]),
):
    lib(f"build_prior global {k}={v!r}", lambda k=k, v=v: priors.build_prior({**gcfg, k: v}))
lib("build_prior list", lambda: priors.build_prior([1]))
lib("prior_for_length 0", lambda: priors.prior_for_length(priors.load_prior(BASE / "ck"), 0))
lib("prior_for_length 2.5", lambda: priors.prior_for_length(priors.load_prior(BASE / "ck"), 2.5))


def corrupt_and_load(fault, loader):
    d = ROOT / "libck"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    shutil.copytree(BASE / "ck", d / "ck")
    fault(d)
    return loader(d / "ck")


for name, fault in ckfaults.items():
    lib(f"load_prior {name}", lambda f=fault: corrupt_and_load(f, priors.load_prior))
for name in ("garbage config", "empty config", "model 3", "truncated weights", "config list"):
    lib(
        f"load_checkpoint {name}",
        lambda f=ckfaults[name]: corrupt_and_load(f, checkpoints.load_checkpoint),
    )
    lib(
        f"read_config {name}", lambda f=ckfaults[name]: corrupt_and_load(f, checkpoints.read_config)
    )
for k, v in (
    ("epochs", True),
    ("epochs", 0),
    ("lr", nan),
    ("batch_size", 0),
    ("ema", 1.0),
    ("bf16", "yes"),
    ("seed", "a"),
    ("epochs", 10**9),
    ("lr_schedule", 3),
):
    lib(
        f"train {k}={v!r}",
        lambda k=k, v=v: training.train(
            priors.build_prior(base_cfg),
            torch.randn(32, 3, 3),
            **{"epochs": 1, "batch_size": 8, "progress": False, k: v},
        ),
    )


def load_cfg(cfg):
    p = ROOT / "lc.json"
    p.write_text(json.dumps(cfg))
    return priors.load_configs(str(p), "ci")


for name, cfg in cfgs.items():
    lib(f"load_configs {name}", lambda c=cfg: load_cfg(c))


if __name__ == "__main__":
    cc, cr = run_cli()
    lc, lr = run_lib()
    for kind, name, code, msg, bad, lost in cr + lr:
        if VERBOSE or kind in ("traceback", "unclear", "accepted") or bad or lost:
            print(
                f"[{kind}] {name} (code {code}): {msg} {'NONFINITE ' + str(bad) if bad else ''}"
                f"{'LOST ' + str(lost) if lost else ''}"
            )
    print(f"CLI cases: {len(cr)}", cc)
    print(f"library cases: {len(lr)}", lc)
