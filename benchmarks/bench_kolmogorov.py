r"""Measures the throughput of the Kolmogorov flow simulation (jax-cfd) and the time to build datasets.

For each grid size, builds a :class:`KolmogorovFlow`, times the compilation (the prior and a first
transition), then times transitions of ``--batch`` states: the throughput is states per second
(one state = Delta = 0.2 time units, i.e. ``steps`` inner solver steps). With ``--dataset``, also
times :func:`ensure_kolmogorov` at the given scales into a temporary folder. With ``--sample``, times
the unconditional sampling of one 8-state trajectory from the trained prior of each scale
(:func:`kolmogorov_prior`, trained first if missing), ``--steps`` predictor steps and 1 correction.

Usage::

    python benchmarks/bench_kolmogorov.py                          # 32, 64, 128 and 256, one state at a time
    python benchmarks/bench_kolmogorov.py --sizes 128 --states 50
    python benchmarks/bench_kolmogorov.py --sizes 256 --batch 16    # vmap over 16 states (pays on GPU)
    python benchmarks/bench_kolmogorov.py --sizes --dataset ci cpu  # dataset generation times only
    python benchmarks/bench_kolmogorov.py --sizes --sample ci cpu --steps 256  # sampling one trajectory

Set ``OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"``
to measure a single core.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import tempfile
import time
from pathlib import Path

import torch

from sda_lite.config import sampling
from sda_lite.kolmogorov import (
    KolmogorovFlow,
    _jax,
    ensure_kolmogorov,
    kolmogorov_prior,
    kolmogorov_sizes,
)
from sda_lite.priors import prior_for_length


def bench_flow(size: int, states: int, batch: int) -> None:
    flow = KolmogorovFlow(size=size, chunk=batch)
    start = time.perf_counter()
    x = flow.prior((batch,), generator=torch.Generator().manual_seed(0))
    x = flow.transition(x)
    compile_s = time.perf_counter() - start

    start, n = time.perf_counter(), 0
    while n < states:
        x = flow.transition(x)
        n += batch
    elapsed = time.perf_counter() - start
    print(
        f"{size:>4}x{size:<4} steps/state {flow.steps:>3}  batch {batch:>3}  compile {compile_s:6.1f} s  "
        f"{n / elapsed:8.1f} states/s  ({n * flow.steps / elapsed:8.0f} inner steps/s, {n} states in {elapsed:.1f} s)",
        flush=True,
    )


def bench_dataset(scale: str) -> None:
    sizes = kolmogorov_sizes(scale)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ensure_kolmogorov(Path(tmp) / f"kolmogorov_{scale}.h5", scale, progress=False)
        elapsed = time.perf_counter() - start
    states = sizes["trajectories"] * (sizes["burn"] + sizes["length"])
    print(
        f"dataset {scale}: {sizes}  {states} states in {elapsed:.1f} s "
        f"({states / elapsed:.1f} states/s, compilation included)",
        flush=True,
    )


def bench_sample(scale: str, steps: int, length: int = 8) -> None:
    prior = prior_for_length(kolmogorov_prior(scale, progress=False), length)
    with torch.no_grad():
        prior.sample((1,), steps=2)  # warm-up
        start = time.perf_counter()
        x = prior.sample((1,), steps=steps, corrections=1, tau=sampling("kolmogorov")["tau"])
    elapsed = time.perf_counter() - start
    print(
        f"sample {scale}: one trajectory {tuple(x.shape[1:])}, {steps} steps + 1 correction each, "
        f"{elapsed:.1f} s ({2 * steps / elapsed:.1f} network calls/s), torch threads {torch.get_num_threads()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[32, 64, 128, 256])
    parser.add_argument(
        "--states", type=int, default=None, help="states timed per size (default: by size)"
    )
    parser.add_argument("--batch", type=int, default=1, help="states simulated at once (jax.vmap)")
    parser.add_argument("--dataset", nargs="*", default=[], choices=["ci", "cpu", "full"])
    parser.add_argument("--sample", nargs="*", default=[], choices=["ci", "cpu", "full"])
    parser.add_argument(
        "--steps", type=int, default=256, help="predictor steps when sampling (the paper: 256)"
    )
    args = parser.parse_args()

    jax = _jax()
    print(
        f"jax {jax.__version__}, jax-cfd {importlib.metadata.version('jax-cfd')}, backend {jax.default_backend()} "
        f"({jax.devices()[0].device_kind}), {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', 'unset')!r}",
        flush=True,
    )
    for size in args.sizes:
        states = args.states or max(args.batch, {32: 200, 64: 100, 128: 40}.get(size, 10))
        bench_flow(size, states, args.batch)
    for scale in args.dataset:
        bench_dataset(scale)
    for scale in args.sample:
        bench_sample(scale, args.steps)


if __name__ == "__main__":
    main()
