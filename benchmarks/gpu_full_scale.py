r"""The paper's Kolmogorov prior on a GPU, briefly: step time, memory and one assimilation.

One short script for a GPU machine (a few minutes in all): it generates the ``full`` dataset (the
paper's 1024 trajectories of 64 x 64 fields, about 2 minutes on an H200) unless it exists, trains
the ``full`` configuration of ``sda_lite/configs/kolmogorov.json`` (the paper's U-Net, channels
96/192/384, 3 blocks per level, batch 32, AdamW at 2e-4) for ``--minutes`` of wall-clock time,
then samples one posterior of scenario (a), assimilation, at the paper's settings (256 steps,
C = 1, tau = 0.5, gamma = 1e-2, 32 states) and reports, next to the paper's numbers:

* the training step time (seconds per step of 32 windows) and the peak GPU memory;
* the sampling time of one assimilation (the paper: 80 s per posterior sample on its GPU).

A few minutes of training are far from the paper's 4096 epochs, so the residual it prints says
little of the paper's prior; the times and the memory are the point. The report goes to
``--out`` (JSON) with the device's name and the date. On a machine without a GPU, run it with
``--scale ci --minutes 0.2`` to check that it works.

Usage::

    python benchmarks/gpu_full_scale.py --minutes 4 --out $OUT/gpu_full_scale.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import torch

from sda_lite.config import device, sampling
from sda_lite.guidance import assimilate
from sda_lite.io import load
from sda_lite.kolmogorov import ensure_kolmogorov, gaussian_part, prior_windows
from sda_lite.kolmogorov.scenarios import scenario
from sda_lite.priors import build_prior, load_configs, prior_for_length

PAPER_SECONDS = 80.0  # seconds per posterior sample of scenario (a), the paper's Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="full", choices=("ci", "cpu", "full"))
    parser.add_argument("--minutes", type=float, default=4.0, help="training wall-clock time")
    parser.add_argument("--length", type=int, default=32, help="states of the assimilation")
    parser.add_argument("--out", type=Path, default=Path("gpu_full_scale.json"))
    args = parser.parse_args()
    dev = device()
    cuda = dev.type == "cuda"

    t0 = time.perf_counter()
    path = ensure_kolmogorov(scale_name=args.scale)
    generation = time.perf_counter() - t0

    model, train_config = load_configs("kolmogorov", args.scale)
    sde = build_prior(model).to(dev)
    prepare = gaussian_part(model)
    if prepare is not None:
        prepare(sde)
    windows = prior_windows(args.scale, model["k"])
    batch = train_config["batch_size"]
    optimizer = torch.optim.AdamW(
        sde.parameters(), lr=train_config["lr"], weight_decay=train_config["weight_decay"]
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    steps, losses, start = 0, [], time.perf_counter()
    while time.perf_counter() - start < 60 * args.minutes:
        index = torch.randint(len(windows), (batch,)).tolist()
        x = torch.stack(windows.__getitems__(index)).to(dev)
        loss = sde.loss(x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        if steps % 100 == 0:
            losses.append(loss.item())
    if cuda:
        torch.cuda.synchronize(dev)
    step_time = (time.perf_counter() - start) / max(steps, 1)
    memory = torch.cuda.max_memory_allocated(dev) / 2**30 if cuda else None

    settings = sampling("kolmogorov", "assimilation")
    truth = load(path, "test")[0, : args.length]
    s = scenario("assimilation", truth)
    sde.eval()
    t0 = time.perf_counter()
    x = assimilate(
        prior_for_length(sde, args.length),
        s.y.to(dev),
        s.A,
        s.std,
        gamma=settings["gamma"],
        steps=settings["steps"],
        corrections=settings["corrections"],
        tau=settings["tau"],
        samples=1,
        progress=False,
    )
    if cuda:
        torch.cuda.synchronize(dev)
    sampling_time = time.perf_counter() - t0

    report = {
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "date": datetime.date.today().isoformat(),
        "scale": args.scale,
        "dataset_seconds": round(generation, 1),
        "train_steps": steps,
        "seconds_per_step": round(step_time, 4),
        "batch": batch,
        "peak_memory_gib": round(memory, 2) if memory is not None else None,
        "last_losses": losses[-5:],
        "assimilation_seconds": round(sampling_time, 1),
        "assimilation_settings": {"length": args.length, **settings},
        "paper_assimilation_seconds": PAPER_SECONDS,
        "residual": s.residual(x.cpu()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
