r"""Training throughput of the cpu-scale Lorenz-63 prior on one process and on two (gloo, DDP).

The prior and its training settings are those of ``sda_lite/configs/lorenz_local.json`` at ``cpu``
scale (k = 2, residual MLP of width 128 and depth 3, global batches of 256 windows), trained by
:func:`sda_lite.train.train` on the cpu Lorenz dataset, for ``--epochs`` epochs of ``--steps``
steps (the first epoch is a warm-up and is not timed). Three runs, each in a fresh process:

* one process, 1 thread (``OMP_NUM_THREADS=1``);
* one process, 2 threads;
* two processes of 1 thread each, launched by ``python -m torch.distributed.run --nproc_per_node 2``
  (each takes half of every global batch; gradients are averaged by DistributedDataParallel).

Throughput is in training windows (samples) per second: global batch x steps / seconds.

Usage:
    python benchmarks/bench_distributed.py [--epochs 4] [--steps 20] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def worker(epochs: int, steps: int) -> None:
    from sda_lite import distributed
    from sda_lite.lorenz import lorenz_configs, lorenz_windows
    from sda_lite.priors import build_prior
    from sda_lite.training import train

    model, schedule = lorenz_configs("local", 2, "cpu")
    schedule |= {"epochs": epochs, "epoch_size": steps * schedule["batch_size"]}
    windows, _ = lorenz_windows(2 * model["k"] + 1, "cpu")
    stamps = []
    train(
        build_prior(model),
        windows,
        progress=False,
        callback=lambda e, h: stamps.append(time.perf_counter()),
        **schedule,
    )
    if distributed.is_main():
        seconds = stamps[-1] - stamps[0]
        rate = (epochs - 1) * steps * schedule["batch_size"] / seconds
        print(
            "RESULT "
            + json.dumps(
                {"samples_per_s": rate, "seconds": seconds, "processes": distributed.world()}
            )
        )
    distributed.teardown()


def run(command: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs (the first is not timed)")
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps per epoch")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.epochs, args.steps)

    me = [
        sys.executable,
        __file__,
        "--worker",
        "--epochs",
        str(args.epochs),
        "--steps",
        str(args.steps),
    ]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(args.processes),
    ]
    runs = {
        "1 process x 1 thread": run(me, 1),
        f"1 process x {args.processes} threads": run(me, args.processes),
        f"{args.processes} processes x 1 thread (gloo)": run([*torchrun, *me[1:]], 1),
    }
    base = runs["1 process x 1 thread"]["samples_per_s"]
    print(
        f"cpu-scale Lorenz prior, global batch 256, {args.steps} steps x {args.epochs - 1} "
        f"timed epochs, {os.cpu_count()} CPU cores"
    )
    for name, r in runs.items():
        print(f"{name:32s} {r['samples_per_s']:9.0f} samples/s  ({r['samples_per_s'] / base:.2f}x)")


if __name__ == "__main__":
    main()
