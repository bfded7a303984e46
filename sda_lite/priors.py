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

import inspect
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from sda_lite.checkpoints import SHIPPED, check_config, jsonable, load_checkpoint, read_config
from sda_lite.config import data_dir, device
from sda_lite.config import scale as get_scale
from sda_lite.diffusion import VPSDE
from sda_lite.score import FieldScoreNet, GlobalScoreNet, LocalScore, LocalScoreNet
from sda_lite.training import TRAIN_FIELDS, train

CONFIGS = Path(__file__).parent / "configs"  # the shipped training configurations, <family>.json


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

    The other keys go to the network (``width``, ``depth``, ``embedding``, ``channels``, ...);
    ``alpha`` and ``eta`` (the noise schedule, defaults ``"cos"`` and ``1e-3``) go to both the VPSDE
    and the network (whose v-parametrisation uses the schedule). The config is kept as ``sde.config``.
    """

    config = jsonable(config)
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
                f"a local prior config needs 'k' (the Markov order), got keys {sorted(config)}"
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
                f"a field prior config needs 'k' (the Markov order) and 'grid' (H = W), got keys {sorted(config)}"
            )
        shape = (2 * config["k"] + 1, config["features"], config["grid"], config["grid"])
        net_args.pop("gaussian", None)  # where the statistics of the Gaussian part come from
        net = FieldScoreNet(**net_args, **schedule)
    else:
        raise ValueError(f"unknown prior kind {kind!r}: expected 'local', 'global' or 'field'")

    sde = VPSDE(net, shape=shape, **schedule)
    sde.config = config
    return sde


def prior_for_length(sde: VPSDE, L: int) -> VPSDE:
    r"""The prior of whole trajectories ``(L, D)`` (``(L, C, H, W)`` for fields) that shares the
    network of a window prior ``sde``.

    For a local prior the window predictor is composed along the trajectory by
    :class:`~sda_lite.score.LocalScore` (the Markov-blanket decomposition); a global (convolutional)
    network is applied to the whole trajectory directly.
    """

    config = getattr(sde, "config", None)
    if config is None:
        raise ValueError(
            "sde has no .config: build it with build_prior(config) or load_prior(directory)"
        )
    state = (
        (config["features"],)
        if config["kind"] != "field"
        else (config["features"], config["grid"], config["grid"])
    )
    if config["kind"] in ("local", "field"):
        k = config["k"]
        if L < 2 * k + 1:
            raise ValueError(f"trajectory length L={L} is shorter than the window 2k+1={2 * k + 1}")
        eps = LocalScore(sde.eps, k, dim=-1 - len(state))
    else:
        eps = sde.eps
    prior = VPSDE(eps, shape=(L, *state), alpha=sde.alpha, eta=sde.eta).to(sde.device)
    prior.config = config
    return prior


def load_prior(
    directory: str | Path, config: dict[str, Any] | None = None, ema: bool = True
) -> VPSDE:
    r"""Builds the prior stored in a checkpoint and loads its weights (the EMA weights if any and ``ema``).

    When ``config`` is given it must equal the stored one (else a ValueError names the field).
    """

    meta, state = load_checkpoint(directory)
    if config is not None:
        check_config(meta["model"], config, "model config")
    sde = build_prior(meta["model"])
    weights = state["ema"] if ema and state.get("ema") is not None else state["model"]
    sde.load_state_dict(weights)
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
        meta = read_config(directory)
        if meta is None or meta["progress"]["epoch"] < meta["train"]["epochs"]:
            continue
        try:
            _check_trained(meta, config, train_config)
        except ValueError:
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
    prior is trained into ``data_dir() / name``, resuming an interrupted run there. A checkpoint in
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
    meta = read_config(directory)
    if meta is not None:
        try:
            _check_trained(meta, config, train_config)
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

    with torch.random.fork_rng():
        torch.manual_seed(train_config.get("seed", 0))
        sde = build_prior(config)
    if prepare is not None and read_config(directory) is None:
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
    accepted = set(inspect.signature(train).parameters) - {
        "sde",
        "dataset",
        "valid",
        "directory",
        "config",
        "callback",
        "progress",
    }
    unknown = sorted(set(entry["train"]) - accepted)
    if unknown:
        raise ValueError(
            f"configuration {str(path)!r}[{scale!r}] has unknown training option(s) {unknown}: "
            f"expected some of {sorted(accepted)}"
        )
    return jsonable(entry["model"]), jsonable(entry["train"])
