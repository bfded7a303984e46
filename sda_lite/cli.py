r"""The command line: ``python -m sda_lite`` (or ``sda-lite``) generate / train / observe / assimilate / evaluate.

Each sub-command is a thin layer over the library: it parses files and options, calls the
functions the book uses, and writes its result atomically (a temporary file moved into place by
``os.replace``), so a failure leaves nothing half-written. Bad input (a missing or malformed file,
a missing checkpoint, an inconsistent configuration) ends with one line on stderr and exit code 2.

Observation operators are given as JSON lists of steps applied in order, each ``[name, *args]``
with the names and arguments of :mod:`sda_lite.observe` (the grammar is in
:func:`sda_lite.observe.parse_spec`): ``[["every", 8], ["select", [0]]]`` is
``compose(every(8), select([0]))``; ``["mask"]`` reads the boolean dataset ``mask`` of the
observation file; ``["coarsen", 4]`` averages 4 x 4 blocks; ``[["scenario", "assimilation"]]`` (or
just ``assimilation``) is a Kolmogorov scenario of :mod:`sda_lite.scenarios`, with optional overrides
``[["scenario", "sparse", {"stride": 4}]]``.

``train`` run under ``torchrun --nproc_per_node N -m sda_lite train ...`` trains on N processes
(:func:`sda_lite.train.train`); ``generate kolmogorov`` under torchrun splits the trajectories
over the processes (:func:`sda_lite.kolmogorov.generate_kolmogorov`).
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor

from sda_lite import distributed, observe
from sda_lite.config import data_dir
from sda_lite.config import scale as get_scale
from sda_lite.io import atomic, load, write_json
from sda_lite.observe import Operator, Resolver, from_spec, parse_spec, scenario_of

METHODS = ("sda", "dps", "mmps")
DEFAULT_OPERATOR = '[["every", 8], ["select", [0]]]'


def _shows_no_default(action: argparse.Action) -> bool:
    r"""Whether the help of ``action`` gets no ``(default: ...)``: its help already says the
    default, or there is none worth showing (None, a flag, an empty list, suppressed)."""

    default = action.default
    return (
        "default" in (action.help or "")
        or default is None
        or isinstance(default, bool)
        or default == []
        or default is argparse.SUPPRESS
    )


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    r"""Shows the default of every option that has one (and whose help does not already say it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if _shows_no_default(action):
            return action.help or ""
        return super()._get_help_string(action)


# --------------------------------------------------------------------------------------------------
# Files


def read_h5(
    path: str | Path, names: Sequence[str], optional: Sequence[str] = ()
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    r"""Reads the datasets ``names`` (required) and ``optional`` of an HDF5 file, and its
    attributes.

    The datasets must be numeric (or boolean) arrays; a missing file, a directory, a file that is
    not HDF5 or a dataset of strings is a ValueError naming the file."""

    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"{str(path)!r} is a directory: expected an HDF5 file with dataset(s) {list(names)}"
        )
    if not path.is_file():
        raise ValueError(
            f"file {str(path)!r} not found: expected an HDF5 file with dataset(s) {list(names)}"
        )
    try:
        with h5py.File(path, "r") as f:
            missing = [n for n in names if n not in f]
            if missing:
                raise ValueError(f"{str(path)!r} has no dataset {missing[0]!r}: it has {sorted(f)}")
            wanted = [n for n in [*names, *optional] if n in f]
            data = {}
            for n in wanted:
                if not isinstance(f[n], h5py.Dataset) or f[n].dtype.kind not in "biuf":
                    raise ValueError(
                        f"{str(path)!r}: {n!r} is not a numeric dataset ({f[n]}): expected an "
                        "array of numbers"
                    )
                data[n] = torch.from_numpy(np.asarray(f[n][...]))
            attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in f.attrs.items()}
    except OSError as error:
        raise ValueError(f"{str(path)!r} is not a readable HDF5 file ({error})") from None
    return data, attrs


def _check_finite_output(data: dict[str, Any], what: str) -> None:
    r"""Raises a ValueError when a result about to be written has NaN or infinite values: nothing
    non-finite is ever written as a result."""

    for name, value in data.items():
        if isinstance(value, (Tensor, np.ndarray)):
            array = value.numpy() if isinstance(value, Tensor) else value
            if array.dtype.kind in "fc":
                bad = int((~np.isfinite(array)).sum())
                if bad:
                    raise ValueError(
                        f"{what} {name!r} has {bad} non-finite value(s) (NaN or inf) out of "
                        f"{array.size}: nothing was written"
                    )
        elif isinstance(value, float) and not np.isfinite(value):
            raise ValueError(
                f"{what} {name!r} is {value}: expected a finite value, nothing written"
            )


def write_h5(path: str | Path, data: dict[str, Tensor | np.ndarray], attrs: dict[str, Any]) -> Path:
    r"""Writes datasets and attributes (None values skipped, dicts and lists as JSON) atomically;
    a non-finite floating-point dataset or attribute is a ValueError, and nothing is written."""

    _check_finite_output(data, "dataset")
    _check_finite_output(attrs, "attribute")
    with atomic(path) as tmp, h5py.File(tmp, "w") as f:
        for name, value in data.items():
            f.create_dataset(name, data=value.numpy() if isinstance(value, Tensor) else value)
        for key, value in attrs.items():
            if value is not None:
                is_json = isinstance(value, (dict, list, tuple))
                f.attrs[key] = json.dumps(value) if is_json else value
    return Path(path)


def file_kind(path: str | Path) -> str:
    r"""What an existing file is: ``"dataset"`` (splits train, valid, test), ``"observations"``
    (y, no x), ``"posterior"`` (x and y), ``"metrics"`` (JSON with ``metrics``), ``"checkpoint"``
    (a directory with ``config.json``), ``"directory"``, or ``"other"``."""

    path = Path(path)
    if path.is_dir():
        return "checkpoint" if (path / "config.json").exists() else "directory"
    if path.suffix == ".json":
        try:
            obj = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            return "other"
        return "metrics" if isinstance(obj, dict) and "metrics" in obj else "other"
    try:
        with h5py.File(path, "r") as f:
            names = set(f)
    except (OSError, ValueError):
        return "other"
    if {"train", "valid", "test"} <= names:
        return "dataset"
    if {"x", "y"} <= names:
        return "posterior"
    return "observations" if "y" in names else "other"


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _same(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or Path(a).samefile(b)
    except OSError:
        return False


def check_out(
    out: str | Path, kind: str, inputs: Sequence[str | Path | None], overwrite: bool
) -> None:
    r"""Raises a ValueError when writing the result of kind ``kind`` to ``out`` would destroy a file
    the user may need: one of the command's ``inputs``, a directory, or a file of another kind
    (:func:`file_kind`); ``overwrite`` (``--overwrite``) allows the files, never a directory."""

    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a directory: expected the path of a {kind} file")
    if not out.exists() or overwrite:
        return
    for given in inputs:
        if given is not None and _same(out, given):
            raise ValueError(
                f"--out {str(out)!r} is one of this command's inputs: expected another path "
                "(or pass --overwrite to replace it)"
            )
    found = file_kind(out)
    if found != kind:
        what = "a file of another kind" if found == "other" else f"{_a(found)} {found} file"
        raise ValueError(
            f"--out {str(out)!r} exists and is {what}, not {_a(kind)} {kind} file: expected a "
            "new path "
            "(or pass --overwrite to replace it)"
        )


# --------------------------------------------------------------------------------------------------
# Operators: the specs of sda_lite.observe, with the Kolmogorov scenarios as "scenario" steps


def _check_scenario(name: str) -> None:
    r"""Raises a ValueError when ``name`` is not a Kolmogorov scenario (before any shape check, so
    that a typo is not reported as a shape error)."""

    from sda_lite.kolmogorov.scenarios import SCENARIOS

    if name not in SCENARIOS:
        raise ValueError(
            f"unknown scenario {name!r}: expected one of {', '.join(SCENARIOS)} (Kolmogorov "
            f"flow), or a JSON list of steps such as '{DEFAULT_OPERATOR}'"
        )


def resolve_scenario(name: str, overrides: dict, shape: tuple[int, ...] | None) -> Operator:
    r"""The operator of the Kolmogorov scenario ``name`` (:func:`sda_lite.scenarios.operator`, with
    ``overrides``) for trajectories of velocity fields ``shape = (L, 2, H, W)``: the CLI's resolver
    of the spec steps ``["scenario", name, {overrides}]`` (:func:`sda_lite.observe.from_spec`)."""

    from sda_lite.kolmogorov.scenarios import operator as scenario_operator

    _check_scenario(name)
    if not isinstance(overrides, dict):
        raise ValueError(f"scenario {name!r} overrides {overrides!r}: expected a JSON object")
    if shape is None or len(shape) != 4:
        raise ValueError(
            f"scenario {name!r} acts on velocity fields (L, 2, H, W), "
            f"not on trajectories {tuple(shape or ())}"
        )
    return scenario_operator(name, shape[-1], shape[0], **overrides)[0]


RESOLVERS: dict[str, Resolver] = {"scenario": resolve_scenario}
r"""The resolvers the CLI gives :func:`sda_lite.observe.from_spec`: the Kolmogorov scenarios."""


def operator(
    spec: str | list, mask: Tensor | None = None, shape: Sequence[int] | None = None
) -> Operator:
    r"""The operator of a spec (:func:`sda_lite.observe.from_spec` with :data:`RESOLVERS`); a
    scenario needs the ``shape`` ``(L, 2, H, W)`` of the trajectories, a ``["mask"]`` step the
    ``mask`` dataset of the observation file."""

    steps = parse_spec(spec)
    names = [step[0] for step in steps]
    if "mask" in names and mask is None and scenario_of(steps) is None:
        before = steps[: names.index("mask")]
        if before:
            from_spec(before)  # the steps are built in order: one of these may fail first
        raise ValueError(
            "operator step ['mask'] needs a boolean dataset 'mask' in the observation file"
        )
    return from_spec(spec, mask=mask, shape=shape, resolvers=RESOLVERS)


# --------------------------------------------------------------------------------------------------
# generate


def _sizes(args: argparse.Namespace, names: Sequence[str]) -> dict[str, int]:
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def _check_generate(args: argparse.Namespace, path: Path, sizes: dict[str, int]) -> None:
    r"""Checks the sizes of ``generate`` (trajectories >= 10, so that each split has one, length
    >= 2, burn >= 0, and the Kolmogorov grid sizes >= 1) and that ``path``, when it exists, is a
    dataset (else ``--overwrite`` is needed)."""

    out = path.parent
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file: expected a directory for the dataset")
    least = {"trajectories": 10, "length": 2, "burn": 0, "size": 1, "r": 1}
    flags = {"r": "--coarsen"}
    for name, value in sizes.items():
        if value < least[name]:
            flag = flags.get(name, f"--{name}")
            why = " (so that each of the 80/10/10 splits has one)" if name == "trajectories" else ""
            raise ValueError(f"{flag} {value}: expected an integer >= {least[name]}{why}")
    if path.exists() and not args.overwrite and file_kind(path) != "dataset":
        raise ValueError(
            f"{str(path)!r} exists and is not a dataset file: expected a dataset to keep or "
            "replace (pass --overwrite to replace it)"
        )


def cmd_generate(args: argparse.Namespace) -> None:
    scale = get_scale(args.scale)
    out = Path(args.out) if args.out else data_dir()
    if args.system == "lorenz":
        from sda_lite.lorenz import ensure_lorenz

        sizes = _sizes(args, ("trajectories", "length", "burn"))
        path = out / f"lorenz_{scale}.h5"
        _check_generate(args, path, sizes)
        if distributed.is_main():  # seconds of work: one process does it
            ensure_lorenz(path, scale, seed=args.seed, progress=args.progress, **sizes)
    else:
        from sda_lite.kolmogorov.data import ensure_kolmogorov

        sizes = _sizes(args, ("size", "r", "trajectories", "burn", "length"))
        _check_generate(args, out / f"kolmogorov_{scale}.h5", sizes)
        if args.batch is not None and args.batch < 1:
            raise ValueError(f"--batch {args.batch}: expected an integer >= 1")
        path = ensure_kolmogorov(
            out / f"kolmogorov_{scale}.h5",
            scale,
            seed=args.seed,
            batch=args.batch,
            progress=args.progress,
            **sizes,
        )
    if distributed.is_main():
        print(path)


# --------------------------------------------------------------------------------------------------
# train


def _override(model: dict, schedule: dict, settings: Sequence[str]) -> None:
    r"""Applies the ``--set PART.FIELD=VALUE`` settings to the model or the training schedule,
    each checked against the schema (:data:`sda_lite.priors.MODEL_SCHEMA`,
    :data:`sda_lite.priors.TRAIN_SCHEMA`): an unknown field (with the closest known one), a wrong
    type or a value out of range is a ValueError naming the setting."""

    from sda_lite.priors import MODEL_SCHEMA, TRAIN_SCHEMA, check_model_config, check_train_config

    for item in settings:
        key, sep, value = item.partition("=")
        part, _, field = key.partition(".")
        if not sep or part not in ("model", "train") or not field:
            raise ValueError(f"--set {item!r}: expected model.FIELD=VALUE or train.FIELD=VALUE")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # a plain string
        config = model if part == "model" else schedule
        schema = TRAIN_SCHEMA if part == "train" else MODEL_SCHEMA.get(model.get("kind"), {})
        if field not in schema and not (part == "model" and field == "kind"):
            close = difflib.get_close_matches(field, sorted(schema), n=1)
            hint = f" (did you mean {part}.{close[0]}?)" if close else ""
            raise ValueError(
                f"--set {item!r}: unknown {part} field {field!r}{hint}: expected one of "
                f"{sorted(schema)}"
            )
        config[field] = value
        try:
            if part == "model":
                check_model_config(model)
            else:
                check_train_config(schedule)
        except ValueError as error:
            raise ValueError(f"--set {item!r}: {error}") from None


def _set_order(model: dict, k: int | None) -> None:
    r"""Sets the window half-width ``k`` (``--k``) of a local prior; None keeps the configuration's."""

    from sda_lite.priors import MODEL_SCHEMA

    if k is None:
        return
    if model.get("kind") not in ("local", "field", "spacetime"):
        raise ValueError(
            f"--k {k}: only local priors have a window half-width k, this one is {model.get('kind')!r}"
        )
    field = MODEL_SCHEMA[model["kind"]]["k"]
    if not field.accepts(k):
        raise ValueError(f"--k {k}: expected {field.expected()}")
    model["k"] = k


def _checkpoint_dir(out: str | None, model: dict, family: str, scale: str) -> Path:
    r"""The checkpoint directory: ``--out``, else the data directory's, named as the book does."""

    if out:
        return Path(out)
    if "k" in model and family == "lorenz_local":
        return data_dir() / f"lorenz_local_k{model['k']}_{scale}"  # where lorenz_prior() looks
    return data_dir() / f"{family}_{scale}"


def train_data(model: dict, scale: str, path: str | None, progress: bool = True) -> Any:
    r"""The training and validation windows of a prior: for a ``field`` prior, windows of ``2k+1``
    velocity fields of the dataset the Kolmogorov prior of the scale trains on
    (:func:`sda_lite.kolmogorov.prior.prior_data`); for a ``spacetime`` prior, Lorenz-96 windows
    of its ring (:func:`sda_lite.lorenz96.lorenz96_windows`); otherwise Lorenz-63 windows of
    ``2k+1`` (or ``window``) states (:func:`sda_lite.lorenz.lorenz_windows`); from the dataset
    file ``path`` (splits ``train`` and ``valid``) when given."""

    from sda_lite.lorenz import lorenz_windows
    from sda_lite.windows import FieldWindows, TrajectoryWindows

    field = model.get("kind") == "field"
    window = model["window"] if "window" in model else 2 * model.get("k", 0) + 1
    if path is None:  # the dataset of the scale, generated first (with or without a bar)
        if field:  # the prior's own dataset, generated split over the ranks
            from sda_lite.kolmogorov.prior import prior_data

            file = prior_data(scale, progress=progress)
            return tuple(FieldWindows(load(file, split), window) for split in ("train", "valid"))
        if model.get("kind") == "spacetime":
            from sda_lite.lorenz96 import ensure_lorenz96, lorenz96_windows

            if distributed.is_main():
                ensure_lorenz96(scale_name=scale, N=model["features"], progress=progress)
            distributed.barrier()
            return lorenz96_windows(window, model["features"], scale)
        from sda_lite.lorenz import ensure_lorenz

        if distributed.is_main():
            ensure_lorenz(scale_name=scale, progress=progress)
        distributed.barrier()
        return lorenz_windows(window, scale)
    data, _ = read_h5(path, ("train", "valid"))
    state = (model["features"], model["grid"], model["grid"]) if field else (model["features"],)
    for split in ("train", "valid"):
        x = data[split]
        if x.ndim != 2 + len(state) or tuple(x.shape[2:]) != state or len(x) < 1:
            raise ValueError(
                f"{str(path)!r}: split {split!r} has shape {tuple(x.shape)}: expected trajectories "
                f"(N >= 1, L, {', '.join(map(str, state))}) for the model's features"
            )
        if x.shape[1] < window:
            raise ValueError(
                f"{str(path)!r}: split {split!r} has trajectories of {x.shape[1]} states: expected "
                f"at least the window of {window} states"
            )
        if not bool(torch.isfinite(x.float()).all()):
            raise ValueError(
                f"{str(path)!r}: split {split!r} has NaN or infinite values: expected finite data"
            )
        data[split] = x.float()
    Windows = FieldWindows if field else TrajectoryWindows
    return Windows(data["train"], window), Windows(data["valid"], window)


def _training_summary(out: Path, history: dict) -> str:
    r"""The line printed after training: epochs, final training (and validation) loss."""

    valid = history["valid"][-1]
    line = f"{out}: {len(history['train'])} epochs, final loss {history['train'][-1]:.4f}"
    return line + (f", validation {valid:.4f}" if valid is not None else "")


def _looks_like_checkpoint(path: Path) -> bool:
    r"""Whether ``path`` is a directory that holds (or held) a checkpoint: ``config.json`` or
    ``weights.pt``, or nothing at all."""

    return path.is_dir() and (
        not any(path.iterdir()) or (path / "config.json").exists() or (path / "weights.pt").exists()
    )


def _check_train_out(out: Path, args: argparse.Namespace) -> None:
    r"""Checks the checkpoint directory ``--out`` before training: never one of the inputs, never a
    directory of other files, and a file only with ``--overwrite`` (:func:`_clear_out`)."""

    inputs = [p for p in (args.data, args.config) if p is not None and Path(p).exists()]
    for given in inputs:
        if _same(out, given) or Path(given).resolve().is_relative_to(out.resolve()):
            raise ValueError(
                f"--out {str(out)!r} holds this command's input {str(given)!r}: expected another "
                "checkpoint directory"
            )
    if out.exists() and not out.is_dir() and not args.overwrite:
        raise ValueError(
            f"--out {str(out)!r} is a file, not a checkpoint directory: expected a directory "
            "(or pass --overwrite to replace the file)"
        )
    if out.is_dir() and not _looks_like_checkpoint(out):
        raise ValueError(
            f"--out {str(out)!r} is a directory of other files (no config.json): expected a "
            "checkpoint directory or a new path; nothing was changed"
        )


def _clear_out(out: Path) -> None:
    r"""``--overwrite``: removes the file at ``out``, or the checkpoint there (corrupt or not) and
    the ``.old`` copy and temporaries of an interrupted save; never a directory of other files."""

    from sda_lite.checkpoints import clean_stale

    if out.exists() and not out.is_dir():
        out.unlink()
    for path in (out, out.with_name(f".{out.name}.old")):
        if _looks_like_checkpoint(path):
            shutil.rmtree(path)
    clean_stale(out)


def cmd_train(args: argparse.Namespace) -> None:
    from sda_lite.kolmogorov.prior import gaussian_part
    from sda_lite.priors import check_model_config, check_train_config, load_configs, train_prior

    scale = get_scale(args.scale)
    model, schedule = load_configs(args.config, scale)
    _set_order(model, args.k)
    _override(model, schedule, args.set)
    check_model_config(model)
    check_train_config(schedule)
    out = _checkpoint_dir(args.out, model, Path(args.config).stem, scale)
    distributed.setup()  # under torchrun: join the process group now, so that the ranks wait for rank 0 here
    _check_train_out(out, args)  # every rank: all fail together
    distributed.barrier()
    if args.overwrite and distributed.is_main():
        _clear_out(out)
    distributed.barrier()
    try:
        windows = partial(train_data, model, scale, args.data, args.progress)  # read when needed
        history = train_prior(
            out, model, schedule, windows, progress=args.progress, prepare=gaussian_part(model)
        )
    except ValueError as error:
        if "differs" in str(error):
            raise ValueError(
                f"{error} (checkpoint {out}; pass --overwrite to retrain from scratch)"
            ) from None
        raise
    if distributed.is_main():
        print(_training_summary(out, history))


# --------------------------------------------------------------------------------------------------
# observe


def _trajectory(data: dict[str, Tensor], args: argparse.Namespace) -> Tensor:
    r"""The states ``--start`` to ``--start + --length`` of trajectory ``--index`` of the split
    ``--split`` of the dataset."""

    x = data[args.split]
    if not 0 <= args.index < len(x):
        raise ValueError(
            f"--index {args.index}: expected a trajectory in [0, {len(x)}) of split {args.split!r}"
        )
    if x.ndim < 3 or len(x) < 1:
        raise ValueError(
            f"{str(args.data)!r}: split {args.split!r} has shape {tuple(x.shape)}: expected "
            "trajectories (N >= 1, L, *state)"
        )
    x = x[args.index]
    length = x.shape[0] if args.length is None else args.length
    if not 1 <= length <= x.shape[0]:
        raise ValueError(
            f"--length {length}: expected an integer in [1, {x.shape[0]}], the states of the "
            "trajectories"
        )
    if args.start < 0:
        raise ValueError(f"--start {args.start}: expected an integer >= 0")
    x = x[args.start : args.start + length]
    if len(x) < length:
        raise ValueError(
            f"--start {args.start} + --length {length} exceeds the "
            f"{data[args.split].shape[1]} states"
        )
    return x


def _draw(
    spec: str, x: Tensor, mask: Tensor | None, sigma: float | None, seed: int
) -> tuple[Operator, Tensor, float]:
    r"""``(A, y, sigma)``: the operator of ``spec`` and observations ``y = A(x) + sigma z`` drawn
    from ``seed``; a scenario draws (or fixes) its own, with its own ``sigma`` unless one is given,
    other operators have ``sigma = 0.05`` unless given."""

    found = scenario_of(spec)
    if found is not None:  # the scenario draws (or fixes) its own observations
        from sda_lite.kolmogorov.scenarios import scenario

        _check_scenario(found[0])
        overrides = found[1] | ({"std": sigma} if sigma is not None else {})
        s = scenario(found[0], x, seed=seed, **overrides)
        return s.A, s.y, s.std
    A, sigma = operator(spec, mask=mask, shape=x.shape), 0.05 if sigma is None else sigma
    y = observe.observe(x, A, sigma, generator=torch.Generator().manual_seed(seed))
    return A, y, sigma


def _check_mask(data: dict[str, Tensor], path: str) -> None:
    r"""The ``mask`` dataset of a file, when present, must be boolean and select something."""

    if "mask" in data:
        m = data["mask"]
        if m.dtype != torch.bool:
            raise ValueError(
                f"{str(path)!r}: dataset 'mask' has dtype {m.dtype}: expected a boolean mask"
            )
        if not bool(m.any()):
            raise ValueError(f"{str(path)!r}: dataset 'mask' selects nothing: expected some true")


def _positive_finite(flag: str, value: float | None) -> None:
    if value is not None and not (np.isfinite(value) and value > 0):
        raise ValueError(f"{flag} {value}: expected a finite number > 0")


def cmd_observe(args: argparse.Namespace) -> None:
    _positive_finite("--sigma", args.sigma)
    check_out(args.out, "observations", [args.data], args.overwrite)
    data, attrs = read_h5(args.data, (args.split,), ("mask",))
    _check_mask(data, args.data)
    x = _trajectory(data, args)
    if not x.is_floating_point():
        x = x.float()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{str(args.data)!r}: trajectory {args.index} of split {args.split!r} has NaN or "
            "infinite states: expected finite data"
        )
    A, y, sigma = _draw(args.operator, x, data.get("mask"), args.sigma, args.seed)
    settings = {"operator": json.dumps(parse_spec(args.operator)), "sigma": sigma, "length": len(x),
                "system": attrs.get("system", ""), "source": str(args.data), "split": args.split,
                "index": args.index, "seed": args.seed}  # fmt: skip
    datasets = {"y": y, "truth": x, **({"mask": data["mask"]} if "mask" in data else {})}
    write_h5(args.out, datasets, settings)
    print(f"{args.out}: y {tuple(y.shape)} = {A!r}(x) + {sigma} z")


# --------------------------------------------------------------------------------------------------
# assimilate

SAMPLER_SETTINGS = (
    "method",
    "gamma",
    "limit",
    "zeta",
    "iterations",
    "steps",
    "corrections",
    "tau",
    "samples",
    "precision",
    "seed",
)


def _observation_settings(
    args: argparse.Namespace, attrs: dict[str, Any]
) -> tuple[str | list, float, int]:
    r"""``(spec, sigma, length)``: the options ``--operator``, ``--sigma`` and ``--length``, else
    the attributes of the observation file; the spec is checked (:func:`parse_spec`)."""

    spec = args.operator if args.operator is not None else attrs.get("operator")
    sigma = args.sigma if args.sigma is not None else attrs.get("sigma")
    length = args.length if args.length is not None else attrs.get("length")
    for name, value in (("--operator", spec), ("--sigma", sigma), ("--length", length)):
        if value is None:
            raise ValueError(
                f"{name} is not given and {str(args.observations)!r} has no attribute "
                f"{name[2:]!r}: expected one or the other"
            )
        source = name if getattr(args, name[2:]) is not None else f"attribute {name[2:]!r}"
        if name == "--sigma" and (
            isinstance(value, (bool, str, bytes))
            or not isinstance(value, (int, float))
            or not (np.isfinite(value) and value > 0)
        ):
            raise ValueError(f"{source} is {value!r}: expected a finite noise std > 0")
        if name == "--length" and (
            isinstance(value, (bool, str, bytes))
            or not isinstance(value, (int, np.integer))
            or not 1 <= value <= 10**6
        ):
            raise ValueError(f"{source} is {value!r}: expected an integer number of states >= 1")
        if name == "--operator" and not isinstance(value, (str, list)):
            raise ValueError(f"{source} is {value!r}: expected a JSON operator spec")
    parse_spec(spec)
    return spec, float(sigma), int(length)


def _checked_operator(spec: str | list, mask: Tensor | None, prior: Any) -> Operator:
    r"""The operator of ``spec``, checked on a zero trajectory of the ``prior``'s shape."""

    A = operator(spec, mask=mask, shape=prior.shape)
    try:
        A(torch.zeros(1, *prior.shape, device=prior.device))
    except (ValueError, RuntimeError, IndexError) as error:
        raise ValueError(
            f"operator {spec} does not apply to trajectories {tuple(prior.shape)} of the prior "
            f"({error})"
        ) from None
    return A


def cmd_assimilate(args: argparse.Namespace) -> None:
    from sda_lite.checkpoints import read_config
    from sda_lite.guidance import assimilate
    from sda_lite.priors import load_prior, prior_for_length

    check_out(args.out, "posterior", [args.observations], args.overwrite)
    counts = (("--steps", args.steps, 1), ("--corrections", args.corrections, 0),
              ("--samples", args.samples, 1), ("--iterations", args.iterations, 1))  # fmt: skip
    for flag, value, least in counts:
        if value < least:
            raise ValueError(f"{flag} {value}: expected an integer >= {least}")
    for flag, value in (("--tau", args.tau), ("--zeta", args.zeta)):
        _positive_finite(flag, value)
    if not (np.isfinite(args.gamma) and args.gamma >= 0):
        raise ValueError(f"--gamma {args.gamma}: expected a finite number >= 0")
    data, attrs = read_h5(args.observations, ("y",), ("mask", "truth"))
    spec, sigma, length = _observation_settings(args, attrs)
    if read_config(args.checkpoint) is None:  # (recovers an interrupted save)
        raise ValueError(
            f"no checkpoint in {args.checkpoint!r} (expected config.json and weights.pt): "
            "train one with 'sda-lite train'"
        )
    _check_mask(data, args.observations)
    y = data["y"]
    if not y.is_floating_point():
        y = y.float()
    if not bool(torch.isfinite(y).all()):
        bad = int((~torch.isfinite(y)).sum())
        raise ValueError(
            f"{str(args.observations)!r}: y has {bad} non-finite value(s) (NaN or inf) out of "
            f"{y.numel()}: expected finite observations"
        )
    prior = prior_for_length(load_prior(args.checkpoint), length)
    A = _checked_operator(spec, data.get("mask"), prior)
    torch.manual_seed(args.seed)
    x = assimilate(
        prior,
        y,
        A,
        sigma,
        method=args.method,
        gamma=args.gamma,
        limit=args.limit,
        zeta=args.zeta,
        iterations=args.iterations,
        steps=args.steps,
        corrections=args.corrections,
        tau=args.tau,
        samples=args.samples,
        precision=args.precision,
        progress=args.progress,
    )
    settings = {k: getattr(args, k) for k in SAMPLER_SETTINGS}
    settings |= {"checkpoint": str(args.checkpoint), "observations": str(args.observations),
                 "operator": json.dumps(parse_spec(spec)), "sigma": float(sigma),
                 "length": int(length), "system": attrs.get("system", "")}  # fmt: skip
    kept = {k: v for k, v in data.items() if k in ("y", "truth", "mask")}
    x = x.float().cpu()
    _check_finite_output({"x": x}, "posterior")  # (float32 may overflow where float64 did not)
    _warn_range(x, y, data.get("truth"), args)
    write_h5(args.out, {"x": x, **kept}, settings)
    print(f"{args.out}: {args.samples} posterior sample(s) {tuple(x.shape)} by {args.method}")


def _warn_range(x: Tensor, y: Tensor, truth: Tensor | None, args: argparse.Namespace) -> None:
    r"""Warns on stderr when posterior samples leave 10 times the range of typical values: the
    prior's (standardised data, of order 1), the observations' and the truth's, whichever is
    widest; such samples are finite but far from anything the prior or the data support."""

    scale = max(1.0, y.abs().max().item() if y.numel() else 0.0)
    if truth is not None and truth.numel() and bool(torch.isfinite(truth).all()):
        scale = max(scale, truth.abs().max().item())
    top = x.abs().max().item()
    if top > 10 * scale:
        tuning = {"sda": "a larger --gamma or --limit", "dps": "a smaller --zeta",
                  "mmps": "more --iterations"}[args.method]  # fmt: skip
        print(
            f"sda-lite assimilate: warning: posterior samples reach |x| = {top:.3g}, more than "
            f"10 times the typical values (|x| <= {scale:.3g} for the prior, y and the truth): "
            f"the sampler is probably unstable with these settings (try {tuning}, or more --steps)",
            file=sys.stderr,
        )


# --------------------------------------------------------------------------------------------------
# evaluate


def _filter_steps(spec: list) -> tuple[int, list]:
    r"""``(n, per_state)`` of a spec ``every(n)`` followed by ``select`` steps (``n = 1`` without
    ``every``), as the particle filter needs them: it observes every ``n``-th state by the steps
    ``per_state``."""

    n = spec[0][1] if spec[0][0] == "every" and len(spec[0]) == 2 else 1
    per_state = spec[1:] if spec[0][0] == "every" else spec
    bad_every = spec[0][0] == "every" and len(spec[0]) > 2
    if bad_every or any(step[0] != "select" or len(step) > 2 for step in per_state):
        raise ValueError(
            f"operator {spec}: the particle filter reference needs every(n) followed by "
            "select steps"
        )
    return n, per_state


def lorenz_metrics(
    x: Tensor, y: Tensor, spec: list, sigma: float, truth: Tensor | None, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    r"""W1, log p(x_{2:L} | x_1), log p(y | x) and RMSE of Lorenz-63 posterior samples ``x: (S, L, 3)``
    (standardised) and of a bootstrap particle filter on the same observations."""

    from sda_lite.baselines import particle_filter
    from sda_lite.lorenz import NoisyLorenz63, first_states
    from sda_lite.metrics import log_px, log_py, rmse, w1

    n, per_state = _filter_steps(spec)
    chain = NoisyLorenz63()
    A = operator(spec)
    A_state = operator(per_state) if per_state else (lambda s: s)
    L = x.shape[-2]
    g = torch.Generator().manual_seed(args.seed)
    pf = particle_filter(
        chain,
        y,
        lambda s: A_state(chain.preprocess(s)),
        sigma,
        every=n,
        length=L,
        x0=first_states(chain, args.particles, g),
        samples=len(x),
        generator=g,
        progress=args.progress,
    ).float()
    raw = {"posterior": chain.postprocess(x.double()), "particle filter": pf.double()}
    rows = {}
    for name, r in raw.items():
        z = chain.preprocess(r)
        rows[name] = (
            {"W1 to filter": w1(r, raw["particle filter"])} if name != "particle filter" else {}
        )
        rows[name] |= {
            "log p(x2:L|x1)": log_px(chain, r).item(),
            "log p(y|x)": log_py(z, y, A, sigma).item(),
            "residual std/sigma": residual(z, y, A, sigma),
        }
        if truth is not None:
            rows[name]["RMSE to truth"] = rmse(r.mean(0), chain.postprocess(truth.double())).item()
    return rows


def residual(x: Tensor, y: Tensor, A: Callable[[Tensor], Tensor], sigma: float) -> float:
    r""":math:`\mathrm{std}(A(x) - y) / \sigma_y` over all samples ``x: (S, ...)`` and observations
    (about 1 for a good fit): :meth:`sda_lite.scenarios.Scenario.residual`."""

    from sda_lite.kolmogorov.scenarios import Scenario

    return Scenario("observations", A, y, sigma).residual(x)


def residual_metrics(
    x: Tensor, y: Tensor, spec: list, sigma: float, data: dict[str, Tensor]
) -> dict[str, dict[str, float]]:
    r"""Residual statistics ``std(A(x) - y) / sigma`` of posterior samples ``x: (S, ...)`` (mean,
    min and max over the samples) and, when ``data`` has the ``truth``, of the truth and the RMSE
    of the posterior mean to it: the evaluation of systems without a reference filter."""

    A = operator(spec, mask=data.get("mask"), shape=x.shape[1:])
    per_sample = [residual(s[None], y, A, sigma) for s in x]
    stats = {"residual std/sigma": float(np.mean(per_sample)), "min": min(per_sample),
             "max": max(per_sample)}  # fmt: skip
    rows = {"posterior": stats}
    if "truth" in data:
        rows["truth"] = {"residual std/sigma": residual(data["truth"][None], y, A, sigma)}
        error = (x.mean(0) - data["truth"]).square().mean().sqrt()
        rows["posterior"]["RMSE to truth"] = error.item()
    return rows


def _print_table(rows: dict[str, dict[str, float]]) -> None:
    r"""Prints the metrics as a table: a row per sampler, a column per metric."""

    columns = list(dict.fromkeys(k for row in rows.values() for k in row))
    print(" | ".join(["", *columns]))
    for name, row in rows.items():
        print(" | ".join([name, *(f"{row[c]:.4g}" if c in row else "" for c in columns)]))


def _check_rows(rows: dict[str, dict[str, float]], path: str) -> None:
    r"""Raises a ValueError when a metric is not a finite number: no score is written for a
    posterior whose metrics could not be computed."""

    for name, row in rows.items():
        for metric, value in row.items():
            if not np.isfinite(value):
                raise ValueError(
                    f"metric {metric!r} of the {name} is {value} for {path!r}: expected a finite "
                    "value (samples far outside the prior's range, or a degenerate reference?); "
                    "nothing was written"
                )


def cmd_evaluate(args: argparse.Namespace) -> None:
    check_out(args.out, "metrics", [args.posterior], args.overwrite)
    if args.particles < 2:
        raise ValueError(
            f"--particles {args.particles}: expected an integer >= 2 (the reference filter needs "
            "several particles to weigh against each other; thousands for a useful reference)"
        )
    data, attrs = read_h5(args.posterior, ("x", "y"), ("truth", "mask"))
    for key in ("operator", "sigma"):
        if key not in attrs:
            raise ValueError(
                f"{str(args.posterior)!r} has no attribute {key!r}: "
                "expected a file written by 'sda-lite assimilate'"
            )
    sigma = attrs["sigma"]
    if isinstance(sigma, (bool, str, bytes)) or not isinstance(sigma, (int, float)):
        raise ValueError(
            f"{str(args.posterior)!r}: attribute 'sigma' is {sigma!r}: expected a number"
        )
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(
            f"{str(args.posterior)!r}: attribute 'sigma' is {sigma}: expected a finite noise "
            "std > 0"
        )
    if not isinstance(attrs["operator"], (str, list)):
        raise ValueError(
            f"{str(args.posterior)!r}: attribute 'operator' is {attrs['operator']!r}: expected a "
            "JSON operator spec"
        )
    spec, sigma, x, y = parse_spec(attrs["operator"]), float(sigma), data["x"], data["y"]
    for name, value in data.items():
        if name != "mask" and not bool(torch.isfinite(value.double()).all()):
            bad = int((~torch.isfinite(value.double())).sum())
            raise ValueError(
                f"{str(args.posterior)!r}: {name!r} has {bad} non-finite value(s) (NaN or inf) out "
                f"of {value.numel()}: expected finite {'samples' if name == 'x' else 'values'} "
                "(a diverged sampler?); no metrics written"
            )
    data = {k: v.float() if k != "mask" else v.bool() for k, v in data.items()}
    x, y = data["x"], data["y"]
    if x.ndim < 2 or len(x) < 1:
        raise ValueError(
            f"{str(args.posterior)!r}: posterior samples {tuple(x.shape)}: expected (samples >= 1, "
            "L, *state)"
        )
    A = operator(spec, mask=data.get("mask"), shape=x.shape[1:])
    try:
        Ax = A(x[:1])
    except (ValueError, RuntimeError, IndexError) as error:
        raise ValueError(
            f"{str(args.posterior)!r}: operator {spec} does not apply to the samples "
            f"{tuple(x.shape)} ({error})"
        ) from None
    if tuple(Ax.shape[1:]) != tuple(y.shape):
        raise ValueError(
            f"{str(args.posterior)!r}: y has shape {tuple(y.shape)} but the operator {spec} gives "
            f"{tuple(Ax.shape[1:])} for one sample: expected the same"
        )
    if attrs.get("system") == "NoisyLorenz63":
        if x.ndim != 3 or x.shape[-1] != 3 or x.shape[1] < 2:
            raise ValueError(
                f"posterior samples {tuple(x.shape)}: the Lorenz evaluation expects one "
                "observation set, (samples, L >= 2, 3)"
            )
        if "truth" in data and tuple(data["truth"].shape) != tuple(x.shape[1:]):
            raise ValueError(
                f"{str(args.posterior)!r}: truth {tuple(data['truth'].shape)}: expected the shape "
                f"{tuple(x.shape[1:])} of one posterior sample"
            )
        rows = lorenz_metrics(x, y, spec, sigma, data.get("truth"), args)
    else:
        if "truth" in data and tuple(data["truth"].shape) != tuple(x.shape[1:]):
            raise ValueError(
                f"{str(args.posterior)!r}: truth {tuple(data['truth'].shape)}: expected the shape "
                f"{tuple(x.shape[1:])} of one posterior sample"
            )
        rows = residual_metrics(x, y, spec, sigma, data)
    _check_rows(rows, str(args.posterior))
    _print_table(rows)
    settings = {"particles": args.particles, "seed": args.seed}
    write_json(args.out, {"posterior": str(args.posterior), "metrics": rows, "settings": settings})
    print(f"wrote {args.out}")


# --------------------------------------------------------------------------------------------------
# Parser: one function per sub-command


def _add_overwrite(p: argparse.ArgumentParser, what: str) -> None:
    r"""Adds ``--overwrite``: without it a command never writes over one of its inputs or over a
    file of another kind (:func:`check_out`)."""

    p.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def _add_generate(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    r"""Adds the sub-command ``generate SYSTEM``: simulate a dataset (:func:`cmd_generate`)."""

    p = sub.add_parser(
        "generate",
        help="simulate a dataset (Lorenz-63 or Kolmogorov flow)",
        parents=[common],
        formatter_class=Formatter,
        description="Simulates a dataset at a scale (or explicit sizes) into "
        "OUT/<system>_<scale>.h5; an existing file with the same settings is kept. Under torchrun, "
        "Kolmogorov trajectories are split over the processes.",
    )
    p.add_argument("system", choices=("lorenz", "kolmogorov"))
    p.add_argument(
        "--scale",
        default=None,
        help="ci, cpu or full (default $SDA_SCALE, else cpu): the default sizes",
    )
    p.add_argument(
        "--out", default=None, help="output directory (default: the data directory, $SDA_DATA)"
    )
    p.add_argument("--trajectories", type=int, help="number of trajectories (split 80/10/10)")
    p.add_argument("--length", type=int, help="states kept per trajectory")
    p.add_argument("--burn", type=int, help="states dropped at the start of each trajectory")
    p.add_argument("--size", type=int, help="Kolmogorov: simulated grid size")
    # (not --r: torchrun's parser reads abbreviations anywhere on the line, --r would be ambiguous)
    p.add_argument(
        "--coarsen", dest="r", type=int, help="Kolmogorov: coarsening factor r of the stored grid"
    )
    p.add_argument(
        "--batch",
        type=int,
        help="Kolmogorov: trajectories simulated at once (default 1 on CPU, 64 on GPU)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation")
    _add_overwrite(p, "a file at the dataset's path that is not a dataset")
    p.set_defaults(run=cmd_generate)


def _add_train(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    r"""Adds the sub-command ``train``: train a prior from a configuration (:func:`cmd_train`)."""

    p = sub.add_parser(
        "train",
        help="train a prior from a configuration file (resumable)",
        parents=[common],
        formatter_class=Formatter,
        description="Trains the prior of a configuration (a shipped family such as lorenz_local, "
        "lorenz_global, kolmogorov, or a JSON file mapping scales to {'model', 'train'}) into a "
        "checkpoint directory, resuming it when present. Under 'torchrun --nproc_per_node N' the "
        "training is data-parallel with the same global batch and schedule.",
    )
    p.add_argument("--config", required=True, help="configuration family or path of a .json file")
    p.add_argument("--scale", default=None, help="ci, cpu or full (default $SDA_SCALE, else cpu)")
    p.add_argument(
        "--k",
        type=int,
        default=None,
        help="window half-width of a local prior (default: the file's)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PART.FIELD=VALUE",
        help="override a field, e.g. train.epochs=8 or model.width=32 (repeatable)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="dataset file with splits train and valid "
        "(default: the dataset the prior of the scale trains on, generated when missing)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="checkpoint directory (default: the data directory's, as the book names it)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="discard an existing checkpoint instead of resuming it",
    )
    p.set_defaults(run=cmd_train)


def _add_observe(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    r"""Adds the sub-command ``observe``: draw synthetic observations (:func:`cmd_observe`)."""

    p = sub.add_parser(
        "observe",
        help="draw synthetic observations y = A(x) + sigma z of a dataset trajectory",
        parents=[common],
        formatter_class=Formatter,
        description="Writes an observation file (datasets y and truth; attributes operator, sigma, "
        "length) for 'assimilate'.",
    )
    p.add_argument("--data", required=True, help="dataset file (from 'generate')")
    p.add_argument(
        "--split", default="test", choices=("train", "valid", "test"), help="split of the dataset"
    )
    p.add_argument("--index", type=int, default=0, help="trajectory of the split")
    p.add_argument("--start", type=int, default=0, help="first state")
    p.add_argument("--length", type=int, default=65, help="number of states L")
    p.add_argument(
        "--operator",
        default=DEFAULT_OPERATOR,
        help="JSON list of steps [name, *args] (every, select, mask, coarsen), "
        "or a Kolmogorov scenario name",
    )
    p.add_argument(
        "--sigma",
        type=float,
        default=None,
        help="observation noise standard deviation (default: the scenario's, else 0.05)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the noise")
    p.add_argument("--out", required=True, help="observation file (.h5)")
    _add_overwrite(p, "--out when it is the dataset or a file of another kind")
    p.set_defaults(run=cmd_observe)


def _add_assimilate(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    r"""Adds the sub-command ``assimilate``: sample the posterior (:func:`cmd_assimilate`)."""

    p = sub.add_parser(
        "assimilate",
        help="posterior samples for observations read from an HDF5 file",
        parents=[common],
        formatter_class=Formatter,
        description="Draws posterior trajectories x ~ p(x | y) with a trained prior and writes "
        "them (dataset x: (samples, L, D), plus y and truth when present) with the settings as "
        "attributes.",
    )
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint directory of the prior (from 'train')"
    )
    p.add_argument(
        "--observations",
        required=True,
        help="HDF5 file with dataset y (and optionally mask, truth)",
    )
    p.add_argument(
        "--operator",
        default=None,
        help="JSON operator spec (default: the file's 'operator' attribute)",
    )
    p.add_argument(
        "--sigma",
        type=float,
        default=None,
        help="observation noise std (default: the file's 'sigma' attribute)",
    )
    p.add_argument(
        "--length",
        type=int,
        default=None,
        help="trajectory length L (default: the file's 'length' attribute)",
    )
    _add_sampler_options(p)
    p.add_argument("--out", required=True, help="output file (.h5)")
    _add_overwrite(p, "--out when it is the observation file or a file of another kind")
    p.set_defaults(run=cmd_assimilate)


def _add_sampler_options(p: argparse.ArgumentParser) -> None:
    r"""The options of the posterior sampler of ``assimilate`` (:data:`SAMPLER_SETTINGS`)."""

    p.add_argument("--method", default="sda", choices=METHODS, help="guidance")
    p.add_argument(
        "--gamma",
        type=float,
        default=1e-2,
        help="SDA's variance term (the paper code's default; its Lorenz evaluation uses 3e-2)",
    )
    p.add_argument(
        "--limit",
        action="store_true",
        help="SDA's step limiter, a departure from the paper (off: the paper's method)",
    )
    p.add_argument(
        "--zeta", type=float, default=1.0, help="DPS's step size, per sample (1: the paper code's)"
    )
    p.add_argument("--iterations", type=int, default=3, help="MMPS's conjugate-gradient iterations")
    p.add_argument("--steps", type=int, default=64, help="predictor steps")
    p.add_argument("--corrections", type=int, default=0, help="Langevin corrections per step")
    p.add_argument("--tau", type=float, default=1.0, help="Langevin step factor")
    p.add_argument("--samples", type=int, default=16, help="posterior samples")
    p.add_argument(
        "--precision",
        default="float32",
        choices=("float32", "bfloat16"),
        help="of the prior's network",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler")


def _add_evaluate(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    r"""Adds the sub-command ``evaluate POSTERIOR``: metrics (:func:`cmd_evaluate`)."""

    p = sub.add_parser(
        "evaluate",
        help="metrics of posterior samples, printed and saved as JSON",
        parents=[common],
        formatter_class=Formatter,
        description="Lorenz-63: W1, log p(x_2:L | x_1), log p(y | x) and RMSE against a bootstrap "
        "particle filter on the same observations. Other systems: residual statistics "
        "std(A(x) - y) / sigma.",
    )
    p.add_argument("posterior", help="file written by 'assimilate'")
    p.add_argument(
        "--particles", type=int, default=2**14, help="particles of the reference filter (Lorenz)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the filter")
    p.add_argument("--out", required=True, help="metrics file (.json)")
    _add_overwrite(p, "--out when it is the posterior file or a file of another kind")
    p.set_defaults(run=cmd_evaluate)


def parser() -> argparse.ArgumentParser:
    r"""The parser of the command line: a sub-parser per sub-command (in the order of ``--help``),
    each with the common option ``--no-progress``."""

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide the progress bars"
    )
    main = argparse.ArgumentParser(
        prog="sda-lite",
        formatter_class=Formatter,
        description="Score-based data assimilation, headless: simulate data, train priors, "
        "assimilate observations and evaluate the posteriors.",
        epilog="Run 'sda-lite COMMAND --help' for the options of a command.",
    )
    sub = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_generate, _add_train, _add_observe, _add_assimilate, _add_evaluate):
        add(sub, common)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    r"""Runs the command line; returns the exit code (2 with a one-line message for bad input)."""

    cli = parser()
    args = cli.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"sda-lite {args.command}: error: {message}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown()
    return 0
