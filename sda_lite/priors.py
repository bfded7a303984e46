r"""Priors: configs that build them, the files of configs the book and the command line share, and
the trained priors on disk (found, loaded, or trained).

A prior is described by a JSON-able ``config`` dict, e.g. ``{"kind": "local", "features": 3, "k": 2,
"width": 256, "depth": 5, "embedding": 32, "alpha": "cos", "eta": 1e-3}`` (a VPSDE over windows of
``2k+1`` states) or ``{"kind": "global", "features": 3, "window": 32, "channels": [64], "blocks": 3,
"embedding": 32}`` (a VPSDE over windows of ``window`` states); :func:`build_prior` builds it and
:func:`prior_for_length` turns it into the prior of whole trajectories of any length ``L``.

The configurations of the priors of each scale are files, ``sda_lite/configs/<family>.json``, read
by :func:`load_configs`. :func:`find_checkpoint` finds a finished checkpoint trained as asked, in
``data_dir()`` or else among those shipped with the package (:data:`~sda_lite.checkpoints.SHIPPED`);
:func:`ensure_prior` loads it or trains one. The recipes of each system's priors live with the
system (:func:`~sda_lite.lorenz.lorenz_prior`, :func:`~sda_lite.kolmogorov.kolmogorov_prior`).
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import shutil
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from sda_lite.checkpoints import (
    SHIPPED,
    check_config,
    check_meta,
    jsonable,
    load_checkpoint,
    read_config,
)
from sda_lite.config import data_dir, device
from sda_lite.config import scale as get_scale
from sda_lite.diffusion import VPSDE
from sda_lite.distributed import world
from sda_lite.lock import exclusive
from sda_lite.score import FieldScoreNet, GlobalScoreNet, LocalScore, LocalScoreNet
from sda_lite.spacetime import SpaceTimeNet
from sda_lite.training import LR_SCHEDULES, TRAIN_FIELDS, train

CONFIGS = Path(__file__).parent / "configs"  # the shipped training configurations, <family>.json

# --------------------------------------------------------------------------------------------------
# The schema of configurations: one per model kind and one for training


class Field:
    r"""One field of a configuration: its type (``"int"``, ``"float"``, ``"bool"``, ``"str"``,
    ``"ints"``: a non-empty list of ints, ``"int|ints"``: either), its range ``[lo, hi]``
    (bounds of the numbers, or of each int of a list), the strings it accepts (``choices``),
    whether it may be null, and whether the config must have it."""

    def __init__(
        self,
        kind: str,
        lo: float | None = None,
        hi: float | None = None,
        *,
        choices: tuple | None = None,
        null: bool = False,
        required: bool = False,
        open_lo: bool = False,
        open_hi: bool = False,
        what: str = "",
    ):
        self.kind, self.lo, self.hi, self.choices = kind, lo, hi, choices
        self.null, self.required, self.open_lo, self.open_hi = null, required, open_lo, open_hi
        self.what = what

    def expected(self) -> str:
        r"""What the field accepts, in words: e.g. ``an integer in [1, 4096]``."""

        if self.choices is not None:
            text = f"one of {list(self.choices)}"
        else:
            names = {"int": "an integer", "float": "a finite number", "bool": "true or false",
                     "str": "a string", "ints": "a non-empty list of integers",
                     "int|ints": "an integer or a non-empty list of integers"}  # fmt: skip
            text = names[self.kind]
            if self.lo is not None or self.hi is not None:
                left = "(" if self.open_lo else "["
                right = ")" if self.open_hi else "]"
                lo = "-inf" if self.lo is None else f"{self.lo:g}"
                hi = "inf" if self.hi is None else f"{self.hi:g}"
                text += f" {'each ' if 'ints' in self.kind else ''}in {left}{lo}, {hi}{right}"
        return text + (" or null" if self.null else "")

    def _number_ok(self, value: Any, integer: bool) -> bool:
        if isinstance(value, bool):
            return False
        if integer and not isinstance(value, int):
            return False
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.open_lo else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.open_hi else value <= self.hi)

    def accepts(self, value: Any) -> bool:
        r"""Whether ``value`` (as read from JSON) fits the field."""

        if value is None:
            return self.null
        if self.choices is not None:
            return isinstance(value, str) and value in self.choices
        if self.kind == "int":
            return self._number_ok(value, True)
        if self.kind == "float":
            return self._number_ok(value, False)
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "str":
            return isinstance(value, str)
        if isinstance(value, list) and "ints" in self.kind:
            return 1 <= len(value) <= 16 and all(self._number_ok(v, True) for v in value)
        return self.kind == "int|ints" and self._number_ok(value, True)


MAX_WIDTH, MAX_DEPTH, MAX_CHANNELS, MAX_EPOCHS = 4096, 64, 2048, 10**6

_COMMON = {
    "kind": Field("str", choices=("local", "global", "field", "spacetime"), required=True),
    "features": Field("int", 1, MAX_CHANNELS, required=True),
    "embedding": Field("int", 1, MAX_WIDTH),
    "alpha": Field("str", choices=("cos", "lin", "exp")),
    "eta": Field("float", 0, 1, open_lo=True, open_hi=True),
}
_UNET = {
    "channels": Field("ints", 1, MAX_CHANNELS),
    "blocks": Field("int|ints", 0, MAX_DEPTH),
    "kernel_size": Field("int", 1, 31),
}
MODEL_SCHEMA: dict[str, dict[str, Field]] = {
    "local": {
        **_COMMON,
        "k": Field("int", 1, MAX_DEPTH, required=True),
        "width": Field("int", 1, MAX_WIDTH),
        "depth": Field("int", 1, MAX_DEPTH),
    },
    "global": {**_COMMON, "window": Field("int", 1, 1 << 16, required=True), **_UNET},
    "field": {
        **_COMMON,
        "k": Field("int", 1, MAX_DEPTH, required=True),
        "grid": Field("int", 1, 4096, required=True),
        **_UNET,
        "forcing": Field("int", 0, 1024, null=True),
        "gaussian": Field("str", null=True),
    },
    "spacetime": {
        **_COMMON,
        "k": Field("int", 1, MAX_DEPTH, required=True),
        "channels": Field("int", 1, MAX_CHANNELS),
        "blocks": Field("int", 0, MAX_DEPTH),
        "kernel_size": Field("int", 1, 31),
    },
}
r"""The fields of the model config of each prior kind (:func:`build_prior`), with their types and
ranges: :func:`check_model_config` checks a config against it."""

TRAIN_SCHEMA: dict[str, Field] = {
    "epochs": Field("int", 1, MAX_EPOCHS, required=True),
    "batch_size": Field("int", 1, 1 << 20),
    "epoch_size": Field("int", 1, 1 << 40, null=True),
    "lr": Field("float", 0, 1, open_lo=True),
    "weight_decay": Field("float", 0, 100),
    "lr_schedule": Field("str", choices=LR_SCHEDULES),
    "ema": Field("float", 0, 1, null=True, open_lo=True, open_hi=True),
    "bf16": Field("bool"),
    "seed": Field("int", 0, 2**63 - 1),
    "every": Field("int", 1, MAX_EPOCHS, null=True),
}
r"""The keyword arguments of :func:`~sda_lite.training.train` that a training config may set, with
their types and ranges: :func:`check_train_config` checks a config against it."""


def _unknown(where: str, key: Any, known: Any) -> ValueError:
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(f"{where} has unknown field {key!r}{hint}: expected some of {sorted(known)}")


def _check_fields(config: Any, schema: dict[str, Field], where: str) -> None:
    if not isinstance(config, dict):
        raise ValueError(
            f"{where} is {type(config).__name__} {config!r:.60}: expected a mapping of fields"
        )
    for key in config:
        if key not in schema:
            raise _unknown(where, key, schema)
    for key, field in schema.items():
        if key not in config:
            if field.required:
                raise ValueError(
                    f"{where} needs {key!r} ({field.expected()}), got keys {sorted(config)}"
                )
        elif not field.accepts(config[key]):
            raise ValueError(
                f"{where} field {key!r} is {config[key]!r}: expected {field.expected()}"
            )


def check_model_config(config: Any, where: str = "model config") -> None:
    r"""Raises a ValueError, naming the field, what it is and what is expected, when ``config`` is
    not a model config of :data:`MODEL_SCHEMA`: an unknown kind or field (with the closest known
    name), a missing required field, a wrong type, or a value out of range."""

    if not isinstance(config, dict):
        raise ValueError(
            f"{where} is {type(config).__name__} {config!r:.60}: expected a mapping of fields"
        )
    kind = config.get("kind")
    if kind not in MODEL_SCHEMA:
        raise ValueError(
            f"unknown prior kind {kind!r} in {where}: expected one of {sorted(MODEL_SCHEMA)}"
        )
    _check_fields(config, MODEL_SCHEMA[kind], f"{where} ({kind})")
    blocks, channels = config.get("blocks"), config.get("channels")
    if isinstance(blocks, list) and isinstance(channels, list) and len(blocks) != len(channels):
        raise ValueError(
            f"{where} has blocks {blocks} and channels {channels}: expected one block count per "
            "level (as many as channels)"
        )
    if "kernel_size" in config and config["kernel_size"] % 2 == 0:
        raise ValueError(f"{where} field 'kernel_size' is {config['kernel_size']}: expected odd")
    size = {"global": "window", "field": "grid"}.get(kind)
    if size is not None and isinstance(channels, list):
        stride = 2 ** (len(channels) - 1)  # the U-Net halves the size at each level
        if config[size] % stride:
            raise ValueError(
                f"{where} field {size!r} is {config[size]}: expected a multiple of {stride} for "
                f"the {len(channels)} levels of channels {channels}"
            )


def check_train_config(config: Any, where: str = "training config") -> None:
    r"""Raises a ValueError, naming the field, what it is and what is expected, when ``config`` is
    not a training config of :data:`TRAIN_SCHEMA` (the keyword arguments of
    :func:`~sda_lite.training.train`): an unknown field (with the closest known name), a missing
    ``epochs``, a wrong type, or a value out of range."""

    _check_fields(config, TRAIN_SCHEMA, where)
    size, batch = config.get("epoch_size"), config.get("batch_size", 64)
    if size is not None and size < batch:
        raise ValueError(
            f"{where} field 'epoch_size' is {size}: expected at least batch_size={batch}"
        )


def build_prior(config: dict[str, Any]) -> VPSDE:
    r"""Builds the (untrained) prior described by ``config``.

    * ``{"kind": "local", "features": D, "k": k, ...}``: a :class:`~sda_lite.score.LocalScoreNet`
      over windows of ``2k+1`` states, inside ``VPSDE(shape=(2k+1, D))``;
    * ``{"kind": "global", "features": D, "window": W, ...}``: a :class:`~sda_lite.score.GlobalScoreNet`
      (1-D U-Net over time), inside ``VPSDE(shape=(W, D))``.
    * ``{"kind": "field", "features": C, "k": k, "grid": H, ...}``: a :class:`~sda_lite.score.FieldScoreNet`
      (2-D U-Net over windows of ``2k+1`` fields ``(C, H, H)``), inside ``VPSDE(shape=(2k+1, C, H, H))``;
      ``"gaussian": scale`` records that its Gaussian part is fitted to the dataset of that scale:
      the statistics are buffers of the network, set by whoever trains it (the ``prepare`` step of
      :func:`ensure_prior`, e.g. :func:`~sda_lite.kolmogorov.kolmogorov_prior`) and restored from
      the checkpoint when it is loaded: building never computes them.
    * ``{"kind": "spacetime", "features": N, "k": k, ...}``: a :class:`~sda_lite.spacetime.SpaceTimeNet`
      (periodic 1-D convolutions over the ``N`` sites of windows of ``2k+1`` states), inside
      ``VPSDE(shape=(2k+1, N))``; ``N`` is the ring it trains on, and
      :func:`prior_for_length` samples rings of any size.

    The other keys go to the network (``width``, ``depth``, ``embedding``, ``channels``, ...);
    ``alpha`` and ``eta`` (the noise schedule, defaults ``"cos"`` and ``1e-3``) go to both the VPSDE
    and the network (whose v-parametrisation uses the schedule). The config is kept as ``sde.config``.
    """

    try:
        config = jsonable(config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"prior config {config!r:.80} is not JSON-able ({error})") from None
    check_model_config(config, "prior config")
    kind = config.get("kind")
    net_args = {
        key: value for key, value in config.items() if key not in ("kind", "alpha", "eta", "window")
    }
    schedule = {"alpha": config.get("alpha", "cos"), "eta": config.get("eta", 1e-3)}

    if "features" not in config:
        raise ValueError(
            f"prior config needs 'features' (the state dimension D), got keys {sorted(config)}"
        )
    if kind == "local":
        if "k" not in config:
            raise ValueError(
                f"a local prior config needs 'k' (the window half-width), got keys {sorted(config)}"
            )
        shape = (2 * config["k"] + 1, config["features"])
        net = LocalScoreNet(**net_args, **schedule)
    elif kind == "global":
        if "window" not in config:
            raise ValueError(
                f"a global prior config needs 'window' (states per window), got keys {sorted(config)}"
            )
        shape = (config["window"], config["features"])
        net = GlobalScoreNet(**net_args, **schedule)
    elif kind == "field":
        if "k" not in config or "grid" not in config:
            raise ValueError(
                f"a field prior config needs 'k' (the window half-width) and 'grid' (H = W), got keys {sorted(config)}"
            )
        shape = (2 * config["k"] + 1, config["features"], config["grid"], config["grid"])
        net_args.pop("gaussian", None)  # where the statistics of the Gaussian part come from
        net = FieldScoreNet(**net_args, **schedule)
    else:  # spacetime (check_model_config knows no other kind)
        shape = (2 * config["k"] + 1, net_args.pop("features"))
        net = SpaceTimeNet(**net_args, **schedule)

    sde = VPSDE(net, shape=shape, **schedule)
    sde.config = config
    return sde


def prior_for_length(sde: VPSDE, L: int, features: int | None = None) -> VPSDE:
    r"""The prior of whole trajectories ``(L, D)`` (``(L, C, H, W)`` for fields) that shares the
    network of a window prior ``sde``.

    For a local prior the window predictor is composed along the trajectory by
    :class:`~sda_lite.score.LocalScore` (the Markov-blanket decomposition); a global (convolutional)
    network is applied to the whole trajectory directly. A ``spacetime`` prior, local in space too,
    serves rings of any size: ``features`` (default the ring it trained on) sets ``D = N``; the
    other kinds accept only their own ``features``.
    """

    config = getattr(sde, "config", None)
    if config is None:
        raise ValueError(
            "sde has no .config: build it with build_prior(config) or load_prior(directory)"
        )
    kind = config["kind"]
    if features is not None and features != config["features"]:
        if kind != "spacetime" or not isinstance(features, int) or features < 1:
            raise ValueError(
                f"features={features!r}: a {kind!r} prior has {config['features']} features "
                "(only a 'spacetime' prior takes another size, a positive integer)"
            )
    D = config["features"] if features is None else features
    state = (D,) if kind != "field" else (D, config["grid"], config["grid"])
    if kind in ("local", "field", "spacetime"):
        k = config["k"]
        if L < 2 * k + 1:
            raise ValueError(f"trajectory length L={L} is shorter than the window 2k+1={2 * k + 1}")
        eps = LocalScore(sde.eps, k, dim=-1 - len(state))
    else:
        eps = sde.eps
    prior = VPSDE(eps, shape=(L, *state), alpha=sde.alpha, eta=sde.eta).to(sde.device)
    prior.config = config
    return prior


def verify_checkpoint(directory: str | Path) -> tuple[dict[str, Any], dict[str, Any], VPSDE]:
    r"""Reads and checks the checkpoint of a prior: ``(meta, state, sde)``, ``sde`` the prior built
    from the stored config (with its raw, not EMA, weights loaded). The caller's random state is
    untouched, so that what follows a load draws the same numbers wherever the checkpoint lies
    (in ``data_dir()`` or shipped, checked once or twice).

    Raises:
        FileNotFoundError: When ``directory`` holds no checkpoint.
        ValueError: When a file is missing, unreadable or truncated, the stored config is not a
            valid model config (:func:`check_model_config`), or the weights do not match it
            (another architecture or sizes) or are not finite; the message names the file and
            how to recover.
    """

    from sda_lite.checkpoints import CONFIG, WEIGHTS

    directory = Path(directory)
    meta, state = load_checkpoint(directory)
    check_meta(meta, directory)
    recover = f"retrain it with 'sda-lite train --overwrite --out {directory}' or delete it"
    try:
        with torch.random.fork_rng():  # the weights are overwritten: leave the caller's RNG alone
            sde = build_prior(meta["model"])
    except ValueError as error:
        raise ValueError(
            f"checkpoint file {str(directory / CONFIG)!r}: {error}; {recover}"
        ) from None
    for key in ("model", "ema"):
        weights = state.get(key)
        if key == "model" or weights is not None:
            try:
                if not isinstance(weights, dict):
                    raise ValueError(f"{key!r} is {type(weights).__name__}, expected a state dict")
                sde.load_state_dict(weights)
            except (RuntimeError, ValueError, TypeError, AttributeError) as error:
                reason = " ".join(str(error).split())[:300]
                raise ValueError(
                    f"checkpoint weights {str(directory / WEIGHTS)!r} do not match its config "
                    f"{str(directory / CONFIG)!r} ({reason}); {recover}"
                ) from None
    if not all(
        bool(torch.isfinite(v).all()) for v in sde.state_dict().values() if v.is_floating_point()
    ):
        raise ValueError(
            f"checkpoint weights {str(directory / WEIGHTS)!r} hold NaN or infinite values (a "
            f"diverged training run?); {recover}"
        )
    return meta, state, sde


def load_prior(
    directory: str | Path, config: dict[str, Any] | None = None, ema: bool = True
) -> VPSDE:
    r"""Builds the prior stored in a checkpoint and loads its weights (the EMA weights if any and ``ema``).

    When ``config`` is given it must equal the stored one (else a ValueError names the field). The
    checkpoint is checked first (:func:`verify_checkpoint`): a missing, truncated or inconsistent
    file is a ValueError naming it.
    """

    meta, state, sde = verify_checkpoint(directory)
    if config is not None:
        check_config(meta["model"], config, "model config")
    if ema and state.get("ema") is not None:
        sde.load_state_dict(state["ema"])
    return sde.to(device())


def _resolve(data: Any) -> Any:
    return data() if callable(data) and not isinstance(data, (Dataset, Tensor)) else data


def _check_trained(
    meta: dict[str, Any], config: dict[str, Any], train_config: dict[str, Any]
) -> None:
    r"""Raises a ValueError naming the first field where the checkpoint ``meta`` (its ``config.json``)
    was not trained as the model ``config`` with the keyword arguments ``train_config`` of
    :func:`train`: the model configs must be equal, and so must the fields of ``TRAIN_FIELDS``,
    :func:`train`'s defaults standing for those that ``train_config`` omits."""

    parameters = inspect.signature(train).parameters.items()
    defaults = {
        k: p.default for k, p in parameters if k in TRAIN_FIELDS and p.default is not p.empty
    }
    wanted = {**defaults, **train_config}
    fields = [k for k in TRAIN_FIELDS if k in wanted]
    check_config(meta["model"], config, "model config")
    check_config(
        {k: meta["train"].get(k) for k in fields}, {k: wanted[k] for k in fields}, "training config"
    )


def find_checkpoint(name: str, config: dict[str, Any], train_config: dict[str, Any]) -> Path | None:
    r"""The directory of the finished checkpoint ``name`` of the prior ``config`` trained with
    ``train_config`` (:func:`_check_trained`): ``data_dir() / name``, else the shipped
    ``sda_lite/shipped/name`` (:data:`~sda_lite.checkpoints.SHIPPED`), else None. Unfinished or
    mismatched checkpoints are skipped."""

    for directory in (data_dir() / name, SHIPPED / name):
        try:
            meta = read_config(directory)
            if meta is None:
                continue
            check_meta(meta, directory)
            if meta["progress"]["epoch"] < meta["train"]["epochs"]:
                continue
            _check_trained(meta, config, train_config)
        except ValueError:  # corrupt or trained otherwise
            continue
        return directory
    return None


def ensure_prior(
    name: str,
    config: dict[str, Any],
    train_config: dict[str, Any],
    data: Dataset | Tensor | Callable[[], Any],
    valid: Dataset | Tensor | Callable[[], Any] | None = None,
    progress: bool = True,
    prepare: Callable[[VPSDE], None] | None = None,
) -> VPSDE:
    r"""Returns the trained prior ``name``: loaded when a matching checkpoint exists, else trained
    into ``data_dir() / name``.

    The finished checkpoint found by :func:`find_checkpoint` is loaded: ``data_dir() / name``, else the
    shipped ``sda_lite/shipped/name`` (loaded in place, neither copied nor retrained). Otherwise the
    prior is trained into ``data_dir() / name``, resuming an interrupted run there. Processes
    that ask for the same prior at once take turns (:func:`~sda_lite.lock.exclusive`): one trains,
    the others then load its checkpoint. A checkpoint in
    ``data_dir() / name`` with another ``config`` or ``train_config`` is deleted first (with a
    warning). The initial weights are drawn under ``train_config["seed"]`` (default 0), so the
    result does not depend on the caller's random state.

    Arguments:
        name: The checkpoint directory under :func:`~sda_lite.config.data_dir`.
        config: The prior's config (see :func:`build_prior`).
        train_config: Keyword arguments of :func:`train` (``epochs``, ``batch_size``, ``lr``, ...).
        data: The training samples, or a function returning them or a pair (training, validation)
            (called only when training is needed), e.g. :func:`~sda_lite.lorenz.lorenz_windows`.
        valid: The validation samples, or a function returning them.
        progress: Whether to show a progress bar.
        prepare: Called on the fresh prior before training starts (not when a run resumes), e.g. to
            fit the Gaussian part of a field prior to its dataset.
    """

    directory = data_dir() / name
    found = find_checkpoint(name, config, train_config)
    if found is not None and (found == directory or not directory.exists()):
        try:
            return load_prior(found, config)  # finished: nothing to wait for
        except ValueError:  # unreadable weights: replaced below, under the lock
            pass
    # one process at a time trains it (torchrun ranks train it together)
    with exclusive(directory) if world() == 1 else nullcontext():
        try:
            meta = read_config(directory)
        except ValueError as error:  # a corrupt checkpoint: replaced, as a mismatched one is
            warnings.warn(f"replacing the checkpoint {directory}: {error}", stacklevel=2)
            _remove(directory)
            meta = None
        if meta is not None:
            try:
                check_meta(meta, directory)
                _check_trained(meta, config, train_config)
                if found_corrupt(directory):
                    raise ValueError("its weights are unreadable or do not match its config")
            except ValueError as error:
                warnings.warn(f"replacing the checkpoint {directory}: {error}", stacklevel=2)
                shutil.rmtree(directory)
                meta = None
        found = find_checkpoint(name, config, train_config)
        if found is not None and (
            meta is None or found == directory
        ):  # an interrupted local run resumes
            return load_prior(found, config)

        train_prior(directory, config, train_config, data, valid, progress, prepare)
        return load_prior(directory, config)


def train_prior(
    directory: str | Path,
    config: dict[str, Any],
    train_config: dict[str, Any],
    data: Dataset | Tensor | Callable[[], Any],
    valid: Dataset | Tensor | Callable[[], Any] | None = None,
    progress: bool = True,
    prepare: Callable[[VPSDE], None] | None = None,
) -> dict[str, list[float]]:
    r"""Builds the prior ``config`` with initial weights drawn under ``train_config["seed"]``
    (default 0) and trains it into the checkpoint ``directory`` (resuming it if present, with the
    same configuration, else ValueError): the one path by which :func:`ensure_prior` and the
    command line (``sda-lite train``) train a prior. ``data`` and ``valid`` are as in
    :func:`ensure_prior`; ``prepare(sde)`` runs on a fresh prior, before training starts (not when
    the run resumes, whose checkpoint holds all the state). Returns the history of :func:`train`."""

    check_model_config(config)
    check_train_config(train_config)
    with torch.random.fork_rng():
        torch.manual_seed(train_config.get("seed", 0))
        sde = build_prior(config)
    meta = read_config(directory)
    if meta is not None:  # resumed: the checkpoint must be whole (ValueError naming the file)
        verify_checkpoint(directory)
    elif Path(directory).is_dir() and any(Path(directory).iterdir()):
        raise ValueError(
            f"checkpoint directory {str(directory)!r} holds files but no config.json: expected a "
            "checkpoint directory or a new one (choose another directory, or delete this one)"
        )
    if prepare is not None and meta is None:
        prepare(sde)
    data = _resolve(data)
    if isinstance(data, tuple):
        data, valid = data
    return train(
        sde,
        data,
        valid=_resolve(valid),
        directory=directory,
        config=config,
        progress=progress,
        **train_config,
    )


def found_corrupt(directory: str | Path) -> bool:
    r"""Whether the checkpoint in ``directory`` fails :func:`verify_checkpoint`."""

    try:
        verify_checkpoint(directory)
    except (ValueError, FileNotFoundError):
        return True
    return False


def _remove(directory: Path) -> None:
    if directory.is_dir():
        shutil.rmtree(directory)
    elif directory.exists():
        directory.unlink()


def families() -> list[str]:
    r"""The names of the shipped configuration files, e.g. ``["kolmogorov", "lorenz_global", "lorenz_local"]``."""

    return sorted(
        path.stem
        for path in CONFIGS.glob("*.json")
        if set(json.loads(path.read_text())) <= {"ci", "cpu", "full"}
    )


def load_configs(
    family: str, scale_name: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    r"""The model and training configs ``(model, train)`` of a family at a scale, read from a file.

    A configuration file maps each scale to ``{"model": {...}, "train": {...}}``: ``model`` is a
    :func:`build_prior` config, ``train`` the keyword arguments of :func:`train`. The book and the
    command line read the same files, so they train the same priors.

    Arguments:
        family: A shipped family (:func:`families`, e.g. ``"lorenz_local"``, in
            ``sda_lite/configs/``) or the path of a JSON file.
        scale_name: ``ci``, ``cpu`` or ``full`` (default ``$SDA_SCALE``).
    """

    scale = get_scale(scale_name)
    path = Path(family)
    if path.suffix != ".json":
        if family not in families():
            raise ValueError(
                f"unknown configuration family {family!r}: expected one of {families()} or the path of a .json file"
            )
        path = CONFIGS / f"{family}.json"
    try:
        with open(path) as f:
            configs = json.load(f)
    except FileNotFoundError:
        raise ValueError(
            f"configuration file {str(path)!r} not found: expected a JSON file mapping scales to "
            "model and train configs"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"configuration file {str(path)!r} is not valid JSON ({error}): "
            "expected a mapping scale -> {'model', 'train'}"
        ) from None
    if not isinstance(configs, dict) or scale not in configs:
        scales = sorted(configs) if isinstance(configs, dict) else type(configs).__name__
        raise ValueError(
            f"configuration file {str(path)!r} has no scale {scale!r}: it has {scales}"
        )
    entry = configs[scale]
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("model"), dict)
        or not isinstance(entry.get("train"), dict)
    ):
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(
            f"configuration {str(path)!r}[{scale!r}] has {got}: expected a mapping with dicts 'model' and 'train'"
        )
    where = f"configuration {str(path)!r}[{scale!r}]"
    check_train_config(entry["train"], f"{where} train")
    check_model_config(entry["model"], f"{where} model")
    return jsonable(entry["model"]), jsonable(entry["train"])
