r"""Throughput of the Lorenz-63 local prior: training (windows/s) and sampling (trajectory-steps/s).

Settings (the paper's Lorenz network): k = 2 (windows of 5 states), residual MLP of width 256 and
depth 5, time embedding 32; training batches of 64 windows drawn by the library loop
(:func:`sda_lite.train.train` over :class:`~sda_lite.data.TrajectoryWindows`); sampling of 64
trajectories of 65 states from the composed prior (:class:`~sda_lite.score.LocalScore`) with 64
predictor steps and 1 Langevin correction per step. Weights are random: speed does not depend on them.

Conventions: windows/s counts training windows (batch x optimiser steps) per second.
Trajectory-steps/s counts trajectories x network evaluations per second, where each predictor step
and each correction counts as one step (64 x 64 x (1 + 1) per draw here); the predictor-only rate
(64 x 64 per draw), the convention of the paper's reference figure (64 guided posteriors of 65 states,
64 steps and 1 correction in 13.6 s on a 2-core CPU, about 300/s), is printed too.

Usage:
    python benchmarks/bench_prior.py [--bf16] [--threads 2] [--width 256] [--depth 5] ...
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from sda_lite.config import device, sampling
from sda_lite.priors import build_prior, prior_for_length
from sda_lite.training import train
from sda_lite.windows import TrajectoryWindows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bf16", action="store_true", help="bfloat16 autocast for training and sampling"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64, help="training windows per step")
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--trajectories", type=int, default=64)
    parser.add_argument("--length", type=int, default=65)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--corrections", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed repetitions (the best is kept)"
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = device()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    config = {
        "kind": "local",
        "features": 3,
        "k": args.k,
        "width": args.width,
        "depth": args.depth,
        "embedding": 32,
    }
    torch.manual_seed(0)
    sde = build_prior(config)
    windows = TrajectoryWindows(torch.randn(1024, 256, 3), 2 * args.k + 1)
    print(
        f"device {dev}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"{'bfloat16 autocast' if args.bf16 else 'float32'}"
    )
    print(
        f"network: local k={args.k}, width {args.width}, depth {args.depth}, "
        f"{sum(p.numel() for p in sde.parameters())} parameters"
    )

    # Training: the library loop, one epoch of train_steps batches (after one warm-up epoch).
    def epoch(steps: int) -> float:
        sync()
        start = time.perf_counter()
        train(
            sde,
            windows,
            epochs=1,
            batch_size=args.batch,
            epoch_size=args.batch * steps,
            bf16=args.bf16,
            progress=False,
        )
        sync()
        return time.perf_counter() - start

    epoch(10)
    seconds = min(epoch(args.train_steps) for _ in range(args.repeats))
    print(
        f"training: {args.train_steps} steps of {args.batch} windows in {seconds:.2f} s -> "
        f"{args.train_steps * args.batch / seconds:,.0f} windows/s, {args.train_steps / seconds:,.1f} steps/s"
    )

    # Sampling: trajectories of `length` states from the composed prior.
    prior = prior_for_length(sde.eval(), args.length)
    autocast = (
        (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if args.bf16 else nullcontext
    )

    def draw() -> float:
        sync()
        start = time.perf_counter()
        with autocast():
            x = prior.sample(
                (args.trajectories,),
                steps=args.steps,
                corrections=args.corrections,
                tau=sampling("lorenz")["tau"],
            )
        sync()
        assert x.isfinite().all()
        return time.perf_counter() - start

    with autocast():
        prior.sample((args.trajectories,), steps=2, corrections=args.corrections)  # warm-up
    seconds = min(draw() for _ in range(args.repeats))
    evaluations = args.trajectories * args.steps * (1 + args.corrections)
    print(
        f"sampling: {args.trajectories} trajectories x {args.length} states, {args.steps} steps, {args.corrections} "
        f"correction(s) in {seconds:.2f} s -> {evaluations / seconds:,.0f} trajectory-steps/s (corrections counted), "
        f"{args.trajectories * args.steps / seconds:,.0f} (predictor steps only; paper's code, guided: ~300)"
    )


if __name__ == "__main__":
    main()
