r"""Training loop, checkpoints and ready-made priors.

A prior is a :class:`~sda_lite.diffusion.VPSDE` around a noise network, trained by denoising score
matching (``sde.loss(x)``) with AdamW and a learning rate that decays every step, linearly or along
a half cosine, from ``lr`` to 0 over the whole run:

.. math:: \text{lr}_s = \text{lr} \, (1 - s / S) \quad \text{or} \quad \text{lr} \, \tfrac{1}{2} (1 + \cos(\pi s / S)),

with :math:`S` = ``epochs`` :math:`\times` ``epoch_size // batch_size`` steps. **An epoch is
``epoch_size`` samples** (default ``len(dataset)``: one pass over the dataset in a random order),
in batches of ``batch_size``; an incomplete last batch is dropped. For the Lorenz windows of
:class:`~sda_lite.data.TrajectoryWindows` one pass is one random window per training trajectory,
the paper's convention (819 windows, 12 steps of 64, at full scale).

A prior is described by a JSON-able ``config`` dict, e.g. ``{"kind": "local", "features": 3, "k": 2,
"width": 256, "depth": 5, "embedding": 32, "alpha": "cos", "eta": 1e-3}`` (a VPSDE over windows of
``2k+1`` states) or ``{"kind": "global", "features": 3, "window": 32, "channels": [64], "blocks": 3,
"embedding": 32}`` (a VPSDE over windows of ``window`` states); :func:`build_prior` builds it and
:func:`prior_for_length` turns it into the prior of whole trajectories of any length ``L``.

A checkpoint is a directory holding ``config.json`` (the model config, the training config and the
progress: epoch, step, history) and ``weights.pt`` (model, optimiser, scheduler, EMA and RNG states;
tensors only, read back with ``torch.load(weights_only=True)``). It is written to a temporary
directory first and swapped into place, so an interruption never leaves a half-written checkpoint.
:func:`train` resumes from it and continues exactly as an uninterrupted run would.
:func:`checkpoint` finds a finished one trained as asked, in ``data_dir()`` or else among the small
ones committed to ``data/shipped/``; :func:`ensure_prior` loads it or trains one.

The configurations of the shipped priors are files, ``sda_lite/configs/<family>.json``, read by
:func:`load_configs` (the book and the command line ``sda-lite train`` use the same). Launched by
``torchrun --nproc_per_node N``, :func:`train` runs data-parallel over N processes with the same
global batch and schedule (see its docstring and :mod:`sda_lite.distributed`).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.utils.data import Dataset, default_collate
from tqdm.auto import tqdm

from sda_lite import distributed
from sda_lite.config import data_dir, device, scale as get_scale
from sda_lite.data import TrajectoryWindows, ensure_lorenz, load
from sda_lite.diffusion import VPSDE
from sda_lite.plots import DATA, PRIOR
from sda_lite.score import FieldScoreNet, GlobalScoreNet, LocalScore, LocalScoreNet

SCHEDULES = ("linear", "cosine", "constant")
CONFIGS = Path(__file__).parent / "configs"  # the shipped training configurations, <family>.json
CONFIG, WEIGHTS = "config.json", "weights.pt"
# Small finished checkpoints committed to the repository (data/shipped/README.md), used when data_dir() has none.
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "shipped"
# The fields of a training configuration that change the result (``every`` does not).
TRAIN_FIELDS = ("epochs", "batch_size", "epoch_size", "lr", "weight_decay", "schedule", "ema", "bf16", "seed", "dataset")


# --------------------------------------------------------------------------------------------------
# Priors


def build_prior(config: dict[str, Any]) -> VPSDE:
    r"""Builds the (untrained) prior described by ``config``.

    * ``{"kind": "local", "features": D, "k": k, ...}``: a :class:`~sda_lite.score.LocalScoreNet`
      over windows of ``2k+1`` states, inside ``VPSDE(shape=(2k+1, D))``;
    * ``{"kind": "global", "features": D, "window": W, ...}``: a :class:`~sda_lite.score.GlobalScoreNet`
      (1-D U-Net over time), inside ``VPSDE(shape=(W, D))``.
    * ``{"kind": "field", "features": C, "k": k, "grid": H, ...}``: a :class:`~sda_lite.score.FieldScoreNet`
      (2-D U-Net over windows of ``2k+1`` fields ``(C, H, H)``), inside ``VPSDE(shape=(2k+1, C, H, H))``;
      with ``"gaussian": scale``, around the Gaussian part fitted to the Kolmogorov dataset of that
      scale (:func:`~sda_lite.kolmogorov.window_statistics`; the dataset is generated if missing).

    The other keys go to the network (``width``, ``depth``, ``embedding``, ``channels``, ...);
    ``alpha`` and ``eta`` (the noise schedule, defaults ``"cos"`` and ``1e-3``) go to both the VPSDE
    and the network (whose v-parametrisation uses the schedule). The config is kept as ``sde.config``.
    """

    config = _jsonable(config)
    kind = config.get("kind")
    net_args = {key: value for key, value in config.items() if key not in ("kind", "alpha", "eta", "window")}
    schedule = {"alpha": config.get("alpha", "cos"), "eta": config.get("eta", 1e-3)}

    if "features" not in config:
        raise ValueError(f"prior config needs 'features' (the state dimension D), got keys {sorted(config)}")
    if kind == "local":
        if "k" not in config:
            raise ValueError(f"a local prior config needs 'k' (the Markov order), got keys {sorted(config)}")
        shape = (2 * config["k"] + 1, config["features"])
        net = LocalScoreNet(**net_args, **schedule)
    elif kind == "global":
        if "window" not in config:
            raise ValueError(f"a global prior config needs 'window' (states per window), got keys {sorted(config)}")
        shape = (config["window"], config["features"])
        net = GlobalScoreNet(**net_args, **schedule)
    elif kind == "field":
        if "k" not in config or "grid" not in config:
            raise ValueError(f"a field prior config needs 'k' (the Markov order) and 'grid' (H = W), got keys {sorted(config)}")
        shape = (2 * config["k"] + 1, config["features"], config["grid"], config["grid"])
        gaussian = net_args.pop("gaussian", None)
        net = FieldScoreNet(**net_args, **schedule)
        if gaussian is not None:  # the Gaussian part, fitted to the dataset of a scale
            from sda_lite.kolmogorov import window_statistics

            net.fit(*window_statistics(gaussian, config["k"]))
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
        raise ValueError("sde has no .config: build it with build_prior(config) or load_prior(directory)")
    state = (config["features"],) if config["kind"] != "field" else (config["features"], config["grid"], config["grid"])
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


# --------------------------------------------------------------------------------------------------
# Learning-rate schedules


def lr_factor(schedule: str, step: int, total: int) -> float:
    r"""The factor applied to the base learning rate after ``step`` of ``total`` steps.

    ``linear``: :math:`1 - s / S`; ``cosine``: :math:`(1 + \cos(\pi s / S)) / 2`; ``constant``: 1.
    Both decays go from 1 at :math:`s = 0` to 0 at :math:`s = S`.
    """

    if schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}: expected one of {SCHEDULES}")
    r = min(step / max(total, 1), 1.0)
    if schedule == "linear":
        return 1 - r
    if schedule == "cosine":
        return (1 + math.cos(math.pi * r)) / 2
    return 1.0


# --------------------------------------------------------------------------------------------------
# Checkpoints


def _jsonable(x: Any) -> Any:
    r"""``x`` as it reads back from JSON (tuples become lists), so that configs compare equal."""

    return json.loads(json.dumps(x))


def _moved(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")


def read_config(directory: str | Path) -> dict[str, Any] | None:
    r"""The ``config.json`` of a checkpoint, or None when there is none.

    Recovers the previous checkpoint if a save was interrupted between its two renames.
    """

    directory = Path(directory)
    if not (directory / CONFIG).exists() and (_moved(directory) / CONFIG).exists():
        os.replace(_moved(directory), directory)
    if not (directory / CONFIG).exists():
        return None
    with open(directory / CONFIG) as f:
        return json.load(f)


def check_config(stored: dict[str, Any] | None, given: dict[str, Any] | None, what: str = "config") -> None:
    r"""Raises a ValueError naming the first field where ``given`` differs from ``stored``."""

    stored, given = _jsonable(stored or {}), _jsonable(given or {})
    for key in sorted(set(stored) | set(given)):
        if stored.get(key) != given.get(key):
            raise ValueError(
                f"checkpoint {what} field {key!r} differs: the checkpoint has {stored.get(key)!r}, "
                f"the given {what} has {given.get(key)!r}"
            )


def save_checkpoint(directory: str | Path, meta: dict[str, Any], state: dict[str, Any]) -> None:
    r"""Writes ``meta`` to ``directory/config.json`` and ``state`` to ``directory/weights.pt``, atomically.

    Both files are written into a temporary sibling directory, which then replaces ``directory``
    (the previous checkpoint is moved aside first and deleted last), so a failure at any point
    leaves either the previous or the new checkpoint in place, never a mixture.
    """

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        torch.save(state, tmp / WEIGHTS)
        with open(tmp / CONFIG, "w") as f:
            json.dump(meta, f, indent=1)
        old = _moved(directory)
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_checkpoint(directory: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    r"""Reads a checkpoint: ``(meta, state)``; ``state`` is loaded with ``torch.load(weights_only=True)``."""

    directory = Path(directory)
    meta = read_config(directory)
    if meta is None:
        raise FileNotFoundError(f"no checkpoint in {directory} (expected {CONFIG} and {WEIGHTS})")
    state = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    return meta, state


def load_prior(directory: str | Path, config: dict[str, Any] | None = None, ema: bool = True) -> VPSDE:
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


# --------------------------------------------------------------------------------------------------
# Training


def _batches(dataset: Dataset | Tensor, batch_size: int, generator: torch.Generator, size: int | None = None, rank: int = 0, world: int = 1):
    r"""Yields the ``size // batch_size`` batches of an epoch of ``size`` samples (default
    ``len(dataset)``: one pass), drawn without replacement from successive random permutations.

    With ``world > 1`` processes, every process draws the same permutations (the same ``generator``
    state) and yields only its slice ``rank`` of each global batch (:func:`~sda_lite.distributed.shard`)."""

    n = len(dataset)
    size = n if size is None else size
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(-(-size // n))])
    for i in range(size // batch_size):
        index = order[i * batch_size : (i + 1) * batch_size]
        if world > 1:
            index = distributed.shard(index, rank, world)
        if isinstance(dataset, Tensor):
            batch = dataset[index]
        elif hasattr(dataset, "__getitems__"):  # batched fetching, e.g. TrajectoryWindows
            batch = default_collate(dataset.__getitems__(index.tolist()))
        else:
            batch = default_collate([dataset[j] for j in index.tolist()])
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def evaluate(sde: nn.Module, dataset: Dataset | Tensor, samples: int = 1024, batch_size: int = 256, seed: int = 0) -> float:
    r"""The mean loss over at least ``samples`` samples of ``dataset`` (repeating passes over it),
    under fixed noise (``seed``), so that the losses of successive epochs compare; the caller's
    random state is left untouched."""

    size = len(dataset) * -(-samples // len(dataset))
    with torch.random.fork_rng(devices=_devices(sde)):
        torch.manual_seed(seed)
        mode, losses = sde.training, []
        sde.eval()
        for x in _batches(dataset, min(batch_size, size), torch.Generator().manual_seed(seed), size):
            losses.append(sde.loss(x.to(_device(sde))).item())
        sde.train(mode)
    return sum(losses) / max(len(losses), 1)


def _device(module: nn.Module) -> torch.device:
    return next(iter(module.parameters()), torch.empty(())).device


def _devices(module: nn.Module) -> list[int]:
    d = _device(module)
    return [d.index or 0] if d.type == "cuda" else []


class _Loss(nn.Module):
    r"""``sde.loss`` as a module's forward, for :class:`~torch.nn.parallel.DistributedDataParallel`."""

    def __init__(self, sde: VPSDE):
        super().__init__()
        self.sde = sde

    def forward(self, x: Tensor) -> Tensor:
        return self.sde.loss(x)


def train(
    sde: VPSDE,
    dataset: Dataset | Tensor,
    *,
    epochs: int,
    batch_size: int = 64,
    epoch_size: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    schedule: str = "linear",
    valid: Dataset | Tensor | None = None,
    ema: float | None = None,
    bf16: bool = False,
    seed: int = 0,
    directory: str | Path | None = None,
    config: dict[str, Any] | None = None,
    every: int | None = None,
    callback: Callable[[int, dict[str, list[float]]], None] | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    r"""Trains ``sde`` (anything with ``.loss(x)`` and parameters) by minimising ``sde.loss(x)``.

    Arguments:
        sde: The module to train, moved to :func:`~sda_lite.config.device`.
        dataset: Samples ``x: (*shape)`` (a Dataset, a tensor ``(N, *shape)``, or a Dataset of tuples
            whose first item is ``x``).
        epochs: The number of epochs (>= 1).
        batch_size: Samples per step (1 <= batch_size <= len(dataset)).
        epoch_size: Samples per epoch, ``epoch_size // batch_size`` steps (default ``len(dataset)``,
            one pass over the dataset); drawn from successive random permutations of the dataset.
        lr: The initial learning rate of AdamW (> 0).
        weight_decay: AdamW's decoupled weight decay (>= 0).
        schedule: ``"linear"``, ``"cosine"`` or ``"constant"``, applied per step over the whole run.
        valid: Validation samples; their loss (under fixed noise, see :func:`evaluate`) is recorded
            each epoch (None when absent).
        ema: If given, the decay ``beta`` in (0, 1) of an exponential moving average of the weights,
            :math:`\bar\phi \gets \beta \bar\phi + (1 - \beta) \phi` after each step; ``sde`` holds
            the averaged weights when training ends (the raw ones stay in the checkpoint for resuming).
        bf16: Computes the loss under bfloat16 autocast (weights and optimiser stay float32).
        seed: Seeds the shuffling and the diffusion noise, in a forked random state (the caller's
            random state is untouched). The initial weights are the caller's.
        directory: If given, a checkpoint is written there every ``every`` epochs and at the end,
            and training resumes from it when it exists (with the same configuration, else
            ValueError naming the field that differs).
        config: The prior's config (see :func:`build_prior`), stored with the checkpoint;
            defaults to ``sde.config`` when present.
        every: Epochs between checkpoints (default: about 32 per run).
        callback: Called as ``callback(epoch, history)`` after each epoch (and its checkpoint); an
            exception raised there stops training, e.g. to simulate an interruption.
        progress: Whether to show a progress bar.

    Returns:
        The history ``{"train": [...], "valid": [...], "lr": [...]}``, one value per epoch (since
        the start of the run, resumed epochs included): mean training loss, validation loss and the
        learning rate at the end of the epoch.

    **Several processes.** Launched by ``torchrun --nproc_per_node N`` (``WORLD_SIZE = N > 1``),
    training runs data-parallel under :class:`~torch.nn.parallel.DistributedDataParallel`
    (:func:`~sda_lite.distributed.setup`: ``gloo`` on CPU, ``nccl`` on CUDA). Every process draws
    the same permutations and takes its slice of each global batch of ``batch_size`` samples
    (which ``N`` must divide); the gradients are averaged over the processes, so the global batch,
    the number of steps, the learning-rate schedule and the epochs are those of one process. The
    diffusion noise of process ``r`` is seeded by ``seed + r``, so the run matches a one-process run
    in distribution (not bit for bit). Only rank 0 shows the progress bar and writes the checkpoint,
    which holds only global state (and the random states of the ranks): a run can resume with
    another ``N``.
    """

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= len(dataset):
        raise ValueError(f"batch_size must be an integer in [1, len(dataset)={len(dataset)}], got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}: expected one of {SCHEDULES}")
    if ema is not None and not 0 < ema < 1:
        raise ValueError(f"ema must be None or a decay in (0, 1), got {ema!r}")
    if epoch_size is not None and (not isinstance(epoch_size, int) or epoch_size < batch_size):
        raise ValueError(f"epoch_size must be None or an integer >= batch_size={batch_size}, got {epoch_size!r}")
    every = max(1, epochs // 32) if every is None else every
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    parallel = distributed.setup()
    rank, world = (distributed.rank(), distributed.world()) if parallel else (0, 1)
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} does not split over {world} processes: expected a multiple of {world}")

    hyper = {
        "epochs": epochs, "batch_size": batch_size, "epoch_size": epoch_size, "lr": lr, "weight_decay": weight_decay,
        "schedule": schedule, "ema": ema, "bf16": bf16, "seed": seed, "dataset": len(dataset), "every": every,
    }  # fmt: skip
    config = _jsonable(config if config is not None else getattr(sde, "config", None))
    steps = (epoch_size or len(dataset)) // batch_size
    dev = distributed.device() if parallel else device()
    sde.to(dev)
    sde.train()

    optimizer = torch.optim.AdamW(sde.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(schedule, s, epochs * steps))
    average = {k: v.detach().clone() for k, v in sde.state_dict().items()} if ema is not None else None
    shuffle = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"train": [], "valid": [], "lr": []}
    start = 0

    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed + rank)

        if directory is not None and rank > 0:
            distributed.barrier()  # rank 0 reads first (and recovers an interrupted save)
        meta = read_config(directory) if directory is not None else None
        if directory is not None and rank == 0:
            distributed.barrier()
        if meta is not None:  # resume
            check_config(meta["model"], config, "model config")
            check_config({k: meta["train"].get(k) for k in TRAIN_FIELDS}, {k: hyper[k] for k in TRAIN_FIELDS}, "training config")
            _, state = load_checkpoint(directory)
            sde.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if average is not None:
                average = {k: v.to(dev) for k, v in state["ema"].items()}
            shuffle.set_state(state["rng"]["shuffle"])
            ranks = state["rng"].get("ranks") or [{"cpu": state["rng"]["cpu"], "cuda": state["rng"].get("cuda")}]
            if rank < len(ranks):  # this rank's random state; a rank new to the run is seeded afresh
                torch.set_rng_state(ranks[rank]["cpu"])
                if dev.type == "cuda" and ranks[rank].get("cuda") is not None:
                    torch.cuda.set_rng_state(ranks[rank]["cuda"], dev)
            else:
                torch.manual_seed(seed + rank + 7919 * meta["progress"]["epoch"])
            start, history = meta["progress"]["epoch"], meta["progress"]["history"]

        loss_of = sde.loss
        if parallel:
            ids = [dev.index] if dev.type == "cuda" else None
            loss_of = nn.parallel.DistributedDataParallel(_Loss(sde), device_ids=ids)

        def save(epoch: int) -> None:
            rng = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}
            ranks = distributed.gather({k: v.cpu() if v is not None else None for k, v in rng.items()})
            if rank > 0:
                distributed.barrier()
                return
            state = {
                "model": sde.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "ema": average,
                "rng": {"shuffle": shuffle.get_state(), **rng, **({"ranks": ranks} if world > 1 else {})},
            }
            meta = {
                "model": config,
                "train": hyper,
                "progress": {"epoch": epoch, "step": epoch * steps, "history": history},
            }
            save_checkpoint(directory, meta, state)
            distributed.barrier()

        bar = tqdm(range(start, epochs), initial=start, total=epochs, disable=not progress or rank > 0, desc="training")
        for epoch in bar:
            losses = []
            for x in _batches(dataset, batch_size, shuffle, epoch_size, rank, world):
                with torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else nullcontext():
                    loss = loss_of(x.to(dev, torch.get_default_dtype()))
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                if average is not None:
                    with torch.no_grad():
                        for key, value in sde.state_dict().items():
                            if value.is_floating_point():
                                average[key].lerp_(value, 1 - ema)
                            else:
                                average[key].copy_(value)
                losses.append(loss.detach())

            history["train"].append(distributed.mean(torch.stack(losses).mean().item()))
            history["valid"].append(distributed.broadcast(evaluate(sde, valid, seed=seed + 1) if valid is not None and rank == 0 else None))
            history["lr"].append(optimizer.param_groups[0]["lr"])
            bar.set_postfix(train=f"{history['train'][-1]:.4f}", valid=f"{history['valid'][-1] or math.nan:.4f}", lr=f"{history['lr'][-1]:.1e}")

            if directory is not None and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
                save(epoch + 1)
            if callback is not None:
                callback(epoch + 1, history)

    if average is not None:
        sde.load_state_dict(average)
    return history


def plot_history(history: dict[str, list[float]], ax: plt.Axes | None = None, title: str = "Denoising score matching loss") -> Figure:
    r"""Plots the training and validation losses per epoch (log scale); returns the figure."""

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    epochs = range(1, len(history["train"]) + 1)
    ax.plot(epochs, history["train"], color=PRIOR, label="train")
    if any(v is not None for v in history.get("valid", [])):
        ax.plot(epochs, history["valid"], color=DATA, label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"loss $\| \epsilon_\phi(x(t), t) - \epsilon \|^2$")
    ax.set_title(title)
    ax.legend()
    return ax.figure


# --------------------------------------------------------------------------------------------------
# Priors on disk


def _resolve(data: Any) -> Any:
    return data() if callable(data) and not isinstance(data, (Dataset, Tensor)) else data


def lorenz_windows(window: int, scale_name: str | None = None) -> tuple[Dataset, Dataset]:
    r"""The training and validation :class:`~sda_lite.data.TrajectoryWindows` of the standardised
    Lorenz-63 dataset of a scale (generated when missing): one random window of ``window`` states
    per trajectory and epoch."""

    path = ensure_lorenz(scale=scale_name)
    return TrajectoryWindows(load(path, "train"), window), TrajectoryWindows(load(path, "valid"), window)


def _check_trained(meta: dict[str, Any], config: dict[str, Any], train_config: dict[str, Any]) -> None:
    r"""Raises a ValueError naming the first field where the checkpoint ``meta`` (its ``config.json``)
    was not trained as the model ``config`` with the keyword arguments ``train_config`` of
    :func:`train`: the model configs must be equal, and so must the fields of ``TRAIN_FIELDS``,
    :func:`train`'s defaults standing for those that ``train_config`` omits."""

    parameters = inspect.signature(train).parameters.items()
    defaults = {k: p.default for k, p in parameters if k in TRAIN_FIELDS and p.default is not p.empty}
    wanted = {**defaults, **train_config}
    fields = [k for k in TRAIN_FIELDS if k in wanted]
    check_config(meta["model"], config, "model config")
    check_config({k: meta["train"].get(k) for k in fields}, {k: wanted[k] for k in fields}, "training config")


def checkpoint(name: str, config: dict[str, Any], train_config: dict[str, Any]) -> Path | None:
    r"""The directory of the finished checkpoint ``name`` of the prior ``config`` trained with
    ``train_config`` (:func:`_check_trained`): ``data_dir() / name``, else the shipped
    ``data/shipped/name`` (``SHIPPED``), else None. Unfinished or mismatched checkpoints are skipped."""

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
    data: Dataset | Tensor | Callable[[], Any] | None = None,
    valid: Dataset | Tensor | Callable[[], Any] | None = None,
    progress: bool = True,
) -> VPSDE:
    r"""Returns the trained prior ``name``: loaded when a matching checkpoint exists, else trained
    into ``data_dir() / name``.

    The finished checkpoint found by :func:`checkpoint` is loaded: ``data_dir() / name``, else the
    shipped ``data/shipped/name`` (loaded in place, neither copied nor retrained). Otherwise the
    prior is trained into ``data_dir() / name``, resuming an interrupted run there. A checkpoint in
    ``data_dir() / name`` with another ``config`` or ``train_config`` is deleted first (with a
    warning). The initial weights are drawn under ``train_config["seed"]`` (default 0), so the
    result does not depend on the caller's random state.

    Arguments:
        name: The checkpoint directory under :func:`~sda_lite.config.data_dir`.
        config: The prior's config (see :func:`build_prior`).
        train_config: Keyword arguments of :func:`train` (``epochs``, ``batch_size``, ``lr``, ...).
        data: The training samples, or a function returning them or a pair (training, validation)
            (called only when training is needed). Default: windows of the Lorenz-63 dataset of the
            current scale as long as the prior's window (``2k+1`` or ``window``), and its validation
            split (:func:`lorenz_windows`).
        valid: The validation samples, or a function returning them.
        progress: Whether to show a progress bar.
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
    found = checkpoint(name, config, train_config)
    if found is not None and (meta is None or found == directory):  # an interrupted local run resumes
        return load_prior(found, config)

    train_prior(directory, config, train_config, data, valid, progress)
    return load_prior(directory, config)


def train_prior(
    directory: str | Path,
    config: dict[str, Any],
    train_config: dict[str, Any],
    data: Dataset | Tensor | Callable[[], Any] | None = None,
    valid: Dataset | Tensor | Callable[[], Any] | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    r"""Builds the prior ``config`` with initial weights drawn under ``train_config["seed"]``
    (default 0) and trains it into the checkpoint ``directory`` (resuming it if present, with the
    same configuration, else ValueError): the one path by which :func:`ensure_prior` and the
    command line (``sda-lite train``) train a prior. ``data`` and ``valid`` are as in
    :func:`ensure_prior`. Returns the history of :func:`train`."""

    with torch.random.fork_rng():
        torch.manual_seed(train_config.get("seed", 0))
        sde = build_prior(config)
    data = lorenz_windows(sde.shape[0]) if data is None else _resolve(data)
    if isinstance(data, tuple):
        data, valid = data
    return train(sde, data, valid=_resolve(valid), directory=directory, config=config, progress=progress, **train_config)


def families() -> list[str]:
    r"""The names of the shipped configuration files, e.g. ``["kolmogorov", "lorenz_global", "lorenz_local"]``."""

    return sorted(path.stem for path in CONFIGS.glob("*.json"))


def load_configs(family: str, scale: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    r"""The model and training configs ``(model, train)`` of a family at a scale, read from a file.

    A configuration file maps each scale to ``{"model": {...}, "train": {...}}``: ``model`` is a
    :func:`build_prior` config, ``train`` the keyword arguments of :func:`train`. The book and the
    command line read the same files, so they train the same priors.

    Arguments:
        family: A shipped family (:func:`families`, e.g. ``"lorenz_local"``, in
            ``sda_lite/configs/``) or the path of a JSON file.
        scale: ``ci``, ``cpu`` or ``full`` (default ``$SDA_SCALE``).
    """

    scale = get_scale(scale)
    path = Path(family)
    if path.suffix != ".json":
        if family not in families():
            raise ValueError(f"unknown configuration family {family!r}: expected one of {families()} or the path of a .json file")
        path = CONFIGS / f"{family}.json"
    try:
        with open(path) as f:
            configs = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"configuration file {str(path)!r} not found: expected a JSON file mapping scales to model and train configs") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"configuration file {str(path)!r} is not valid JSON ({error}): expected a mapping scale -> {{'model', 'train'}}") from None
    if not isinstance(configs, dict) or scale not in configs:
        scales = sorted(configs) if isinstance(configs, dict) else type(configs).__name__
        raise ValueError(f"configuration file {str(path)!r} has no scale {scale!r}: it has {scales}")
    entry = configs[scale]
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), dict) or not isinstance(entry.get("train"), dict):
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"configuration {str(path)!r}[{scale!r}] has {got}: expected a mapping with dicts 'model' and 'train'")
    accepted = set(inspect.signature(train).parameters) - {"sde", "dataset", "valid", "directory", "config", "callback", "progress"}
    unknown = sorted(set(entry["train"]) - accepted)
    if unknown:
        raise ValueError(f"configuration {str(path)!r}[{scale!r}] has unknown training option(s) {unknown}: expected some of {sorted(accepted)}")
    return _jsonable(entry["model"]), _jsonable(entry["train"])


def lorenz_configs(kind: str = "local", k: int = 2, scale_name: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    r"""The model and training configs of the Lorenz-63 prior of a scale.

    ``full`` is the paper's: a residual MLP of width 256, depth 5 and time embedding 32 over windows
    of ``2k+1`` states (``kind="local"``), or a 1-D U-Net over 32-state windows with channels (64,)
    and 3 blocks (``kind="global"``); AdamW, lr 1e-3, weight decay 1e-3, linear decay, batch 64,
    4096 epochs of one window per training trajectory (819 windows, 12 steps). ``cpu`` (width 128,
    depth 3; 8192 steps of 256 windows, lr 2e-3) and ``ci`` (width 64, depth 2; 1024 steps of 64
    windows, lr 2e-3) train in minutes and seconds on a CPU, with epochs of a fixed number of windows.
    The configs are read from ``sda_lite/configs/lorenz_{kind}.json`` (:func:`load_configs`), whose
    local prior has ``k = 2``, replaced by ``k``.
    """

    if kind not in ("local", "global"):
        raise ValueError(f"unknown prior kind {kind!r}: expected 'local' or 'global'")
    config, schedule = load_configs(f"lorenz_{kind}", scale_name)
    if kind == "local":
        config["k"] = k
    return config, schedule


def lorenz_prior(kind: str = "local", k: int = 2, scale_name: str | None = None, progress: bool = True) -> VPSDE:
    r"""The trained Lorenz-63 window prior of a scale (:func:`lorenz_configs`), loaded from
    ``data_dir() / f"lorenz_{kind}_k{k}_{scale}"`` (``lorenz_global_{scale}``) or trained there.

    Use :func:`prior_for_length` to sample trajectories of any length from it.
    """

    scale_name = get_scale(scale_name)
    config, schedule = lorenz_configs(kind, k, scale_name)
    name = f"lorenz_local_k{k}_{scale_name}" if kind == "local" else f"lorenz_global_{scale_name}"
    window = 2 * k + 1 if kind == "local" else config["window"]
    return ensure_prior(name, config, schedule, data=lambda: lorenz_windows(window, scale_name), progress=progress)
