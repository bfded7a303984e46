r"""The training loop: denoising score matching with AdamW, a decaying learning rate, an exponential
moving average of the weights, exact resume from checkpoints and data-parallel processes.

A prior is trained by minimising ``sde.loss(x)`` with AdamW and a learning rate that decays every
step, linearly or along a half cosine, from ``lr`` to 0 over the whole run:

.. math:: \text{lr}_s = \text{lr} \, (1 - s / S) \quad \text{or} \quad \text{lr} \, \tfrac{1}{2} (1 + \cos(\pi s / S)),

with :math:`S` = ``epochs`` :math:`\times` ``epoch_size // batch_size`` steps. **An epoch is
``epoch_size`` samples** (default ``len(dataset)``: one pass over the dataset in a random order),
in batches of ``batch_size``; an incomplete last batch is dropped. For the windows of
:class:`~sda_lite.windows.TrajectoryWindows` one pass is one random window per training
trajectory, the paper's convention (819 windows, 12 steps of 64, at full scale).

:func:`train` writes a checkpoint (:mod:`sda_lite.checkpoints`) every few epochs and resumes from
it exactly as an uninterrupted run would. Launched by ``torchrun --nproc_per_node N``, it runs
data-parallel over N processes with the same global batch and learning-rate schedule (see its
docstring and :mod:`sda_lite.distributed`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, default_collate
from tqdm.auto import tqdm

from sda_lite import distributed
from sda_lite.checkpoints import (
    check_config,
    jsonable,
    load_checkpoint,
    read_config,
    save_checkpoint,
)
from sda_lite.config import device
from sda_lite.diffusion import VPSDE

LR_SCHEDULES = ("linear", "cosine", "constant")
# The fields of a training configuration that change the result (``every`` does not).
TRAIN_FIELDS = (
    "epochs",
    "batch_size",
    "epoch_size",
    "lr",
    "weight_decay",
    "lr_schedule",
    "ema",
    "bf16",
    "seed",
    "dataset",
)


def lr_factor(lr_schedule: str, step: int, total: int) -> float:
    r"""The factor applied to the base learning rate after ``step`` of ``total`` steps.

    ``linear``: :math:`1 - s / S`; ``cosine``: :math:`(1 + \cos(\pi s / S)) / 2`; ``constant``: 1.
    Both decays go from 1 at :math:`s = 0` to 0 at :math:`s = S`.
    """

    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"unknown learning-rate schedule {lr_schedule!r}: expected one of {LR_SCHEDULES}"
        )
    r = min(step / max(total, 1), 1.0)
    if lr_schedule == "linear":
        return 1 - r
    if lr_schedule == "cosine":
        return (1 + math.cos(math.pi * r)) / 2
    return 1.0


def _batches(
    dataset: Dataset | Tensor,
    batch_size: int,
    generator: torch.Generator,
    size: int | None = None,
    rank: int = 0,
    world: int = 1,
):
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
def evaluate(
    sde: nn.Module,
    dataset: Dataset | Tensor,
    samples: int = 1024,
    batch_size: int = 256,
    seed: int = 0,
) -> float:
    r"""The mean loss over at least ``samples`` samples of ``dataset`` (repeating passes over it),
    under fixed noise (``seed``), so that the losses of successive epochs compare; the caller's
    random state is left untouched."""

    size = len(dataset) * -(-samples // len(dataset))
    with torch.random.fork_rng(devices=_devices(sde)):
        torch.manual_seed(seed)
        mode, losses = sde.training, []
        sde.eval()
        for x in _batches(
            dataset, min(batch_size, size), torch.Generator().manual_seed(seed), size
        ):
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
    lr_schedule: str = "linear",
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
        lr_schedule: ``"linear"``, ``"cosine"`` or ``"constant"``, the decay of the learning rate,
            applied per step over the whole run (:func:`lr_factor`).
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
        config: The prior's config (see :func:`~sda_lite.priors.build_prior`), stored with the checkpoint;
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

    if not isinstance(bf16, bool):
        raise ValueError(f"bf16 must be true or false, got {bf16!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    if not hasattr(dataset, "__len__") or len(dataset) < 1:
        raise ValueError(f"dataset {type(dataset).__name__}: expected a non-empty set of samples")
    every = _check_hyper(
        epochs, batch_size, len(dataset), epoch_size, lr, weight_decay, lr_schedule, ema, every
    )
    parallel = distributed.setup()
    rank, world = (distributed.rank(), distributed.world()) if parallel else (0, 1)
    if batch_size % world:
        raise ValueError(
            f"batch_size={batch_size} does not split over {world} processes: expected a multiple of {world}"
        )

    hyper = {
        "epochs": epochs, "batch_size": batch_size, "epoch_size": epoch_size, "lr": lr, "weight_decay": weight_decay,
        "lr_schedule": lr_schedule, "ema": ema, "bf16": bf16, "seed": seed, "dataset": len(dataset), "every": every,
    }  # fmt: skip
    config = jsonable(config if config is not None else getattr(sde, "config", None))
    steps = (epoch_size or len(dataset)) // batch_size
    dev = distributed.device() if parallel else device()
    sde.to(dev)
    sde.train()

    optimizer = torch.optim.AdamW(sde.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(lr_schedule, s, epochs * steps)
    )
    average = (
        {k: v.detach().clone() for k, v in sde.state_dict().items()} if ema is not None else None
    )
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
            check_config(
                {k: meta["train"].get(k) for k in TRAIN_FIELDS},
                {k: hyper[k] for k in TRAIN_FIELDS},
                "training config",
            )
            average = _restore(
                load_checkpoint(directory)[1],
                sde,
                optimizer,
                scheduler,
                average,
                shuffle,
                dev,
                rank,
                seed + 7919 * meta["progress"]["epoch"],
            )
            start, history = meta["progress"]["epoch"], meta["progress"]["history"]

        loss_of = sde.loss
        if parallel:
            ids = [dev.index] if dev.type == "cuda" else None
            loss_of = nn.parallel.DistributedDataParallel(_Loss(sde), device_ids=ids)

        def save(epoch: int) -> None:
            rng = {
                "cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
            }
            ranks = distributed.gather(
                {k: v.cpu() if v is not None else None for k, v in rng.items()}
            )
            if rank > 0:
                distributed.barrier()
                return
            state = {
                "model": sde.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "ema": average,
                "rng": {
                    "shuffle": shuffle.get_state(),
                    **rng,
                    **({"ranks": ranks} if world > 1 else {}),
                },
            }
            meta = {
                "model": config,
                "train": hyper,
                "progress": {"epoch": epoch, "step": epoch * steps, "history": history},
            }
            save_checkpoint(directory, meta, state)
            distributed.barrier()

        bar = tqdm(
            range(start, epochs),
            initial=start,
            total=epochs,
            disable=not progress or rank > 0,
            desc="training",
        )
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
                    _ema_update(average, sde, ema)
                losses.append(loss.detach())

            history["train"].append(distributed.mean(torch.stack(losses).mean().item()))
            history["valid"].append(
                distributed.broadcast(
                    evaluate(sde, valid, seed=seed + 1) if valid is not None and rank == 0 else None
                )
            )
            history["lr"].append(optimizer.param_groups[0]["lr"])
            bar.set_postfix(
                train=f"{history['train'][-1]:.4f}",
                valid=f"{history['valid'][-1] or math.nan:.4f}",
                lr=f"{history['lr'][-1]:.1e}",
            )

            if directory is not None and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
                save(epoch + 1)
            if callback is not None:
                callback(epoch + 1, history)

    if average is not None:
        sde.load_state_dict(average)
    return history


def _check_hyper(
    epochs, batch_size, n, epoch_size, lr, weight_decay, lr_schedule, ema, every
) -> int:
    r"""Checks the hyper-parameters of :func:`train` for a dataset of ``n`` samples; returns ``every``
    (epochs between checkpoints, default about 32 per run)."""

    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= 10**6:
        raise ValueError(f"epochs must be an integer in [1, 10**6], got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n:
        raise ValueError(
            f"batch_size must be an integer in [1, len(dataset)={n}], got {batch_size!r}"
        )
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if not (
        isinstance(weight_decay, (int, float)) and math.isfinite(weight_decay) and weight_decay >= 0
    ):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if not isinstance(lr_schedule, str) or lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"unknown learning-rate schedule {lr_schedule!r}: expected one of {LR_SCHEDULES}"
        )
    if ema is not None and not (
        isinstance(ema, (int, float)) and not isinstance(ema, bool) and 0 < ema < 1
    ):
        raise ValueError(f"ema must be None or a decay in (0, 1), got {ema!r}")
    if epoch_size is not None and (
        isinstance(epoch_size, bool) or not isinstance(epoch_size, int) or epoch_size < batch_size
    ):
        raise ValueError(
            f"epoch_size must be None or an integer >= batch_size={batch_size}, got {epoch_size!r}"
        )
    every = max(1, epochs // 32) if every is None else every
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    return every


def _restore(state, sde, optimizer, scheduler, average, shuffle, dev, rank, fresh_seed):
    r"""Loads a checkpoint's ``state`` into the model, the optimiser, the learning-rate scheduler,
    the shuffling generator and this rank's random state (a rank new to the run is seeded with
    ``fresh_seed + rank``); returns the EMA weights (``None`` without EMA)."""

    sde.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if average is not None:
        average = {k: v.to(dev) for k, v in state["ema"].items()}
    shuffle.set_state(state["rng"]["shuffle"])
    ranks = state["rng"].get("ranks") or [
        {"cpu": state["rng"]["cpu"], "cuda": state["rng"].get("cuda")}
    ]
    if rank < len(ranks):
        torch.set_rng_state(ranks[rank]["cpu"])
        if dev.type == "cuda" and ranks[rank].get("cuda") is not None:
            torch.cuda.set_rng_state(ranks[rank]["cuda"], dev)
    else:
        torch.manual_seed(fresh_seed + rank)
    return average


@torch.no_grad()
def _ema_update(average: dict[str, Tensor], sde: nn.Module, ema: float) -> None:
    r""":math:`\bar\phi \gets \beta \bar\phi + (1 - \beta) \phi` for the floating-point weights;
    the others are copied."""

    for key, value in sde.state_dict().items():
        if value.is_floating_point():
            average[key].lerp_(value, 1 - ema)
        else:
            average[key].copy_(value)
