r"""Checks our EnKF and particle filter against DAPPER's published Lorenz-63 benchmark.

DAPPER's 'Sakov 2012' set-up (``dapper.mods.Lorenz63.sakov2012``): Lorenz-63 integrated by RK4 with
dt = 0.01 and no model noise; all three variables observed every 25 steps with R = 2 I; 1000
cycles; truth and ensembles start from N((1.509, -1.531, 25.46), 2 I); the score is the analysis
RMSE (of the ensemble's mean, or the particles' weighted mean) averaged over the cycles after a
burn-in of 16 time units (64 cycles). DAPPER's settings and expected scores are those listed in
its benchmark table (the ``Expected rmse.a`` comments of that module).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_dapper.py              # 1000 cycles, seed 0
    OMP_NUM_THREADS=1 python benchmarks/bench_dapper.py --cycles 200 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor

from sda_lite.baselines import Deterministic, bootstrap_filter, enkf
from sda_lite.lorenz import NoisyLorenz63
from sda_lite.metrics import rmse

EVERY, STD, BURN = 25, 2**0.5, 64
MU0 = (1.509, -1.531, 25.46)

# (name, method, N, settings, DAPPER's analysis RMSE)
EXPERIMENTS = [
    ("Climatology", "climatology", None, {}, 7.6),
    ("EnKF PertObs, infl 1.04", "enkf", 10, {"inflation": 1.04}, 0.65),
    ("EnKF PertObs, infl 1.01", "enkf", 100, {"inflation": 1.01}, 0.56),
    ("PartFilt, reg 2.4, NER 0.3", "pf", 100, {"jitter": 2.4, "ess": 0.3}, 0.38),
    ("PartFilt, reg 0.9, NER 0.2", "pf", 800, {"jitter": 0.9, "ess": 0.2}, 0.28),
]


def sakov2012(
    cycles: int = 1000, seed: int = 0
) -> tuple[Deterministic, Tensor, Tensor, torch.Generator]:
    r"""The truth ``(cycles * 25 + 1, 3)`` from state 0 and the observations ``(cycles, 3)`` of states 25, 50, ..."""

    chain = Deterministic(NoisyLorenz63(dt=0.01))
    g = torch.Generator().manual_seed(seed)
    x0 = torch.tensor(MU0, dtype=torch.float64) + STD * torch.randn(
        3, generator=g, dtype=torch.float64
    )
    x = chain.trajectory(x0, cycles * EVERY + 1)
    y = x[EVERY::EVERY] + STD * torch.randn(cycles, 3, generator=g, dtype=torch.float64)
    return chain, x, y, g


def analysis_rmse(
    method: str, N: int | None, cycles: int = 1000, seed: int = 0, burn: int = BURN, **settings
) -> float:
    r"""The time-averaged analysis RMSE of one method on the Sakov 2012 set-up (cycles after ``burn``)."""

    chain, x, y, g = sakov2012(cycles, seed)
    truth = x[EVERY::EVERY]  # the observed states, (cycles, 3)
    if method == "climatology":
        means = x.mean(0).expand_as(truth)
    else:
        # The initial ensemble, moved to the first observation (state 25), where our filters start.
        E0 = torch.tensor(MU0, dtype=torch.float64) + STD * torch.randn(
            N, 3, generator=g, dtype=torch.float64
        )
        E0 = chain.trajectory(E0, EVERY + 1)[:, -1]
        A = lambda x: x  # noqa: E731
        if method == "enkf":
            E = enkf(chain, y, A, STD, every=EVERY, x0=E0, generator=g, progress=False, **settings)
            means = E[:, ::EVERY].mean(0)
        elif method == "pf":
            steps = bootstrap_filter(chain, y, A, STD, every=EVERY, x0=E0, generator=g, **settings)
            means = torch.stack(
                [s.log_w.exp() @ s.x for i, s in enumerate(steps) if i % EVERY == 0]
            )
        else:
            raise ValueError(f"method={method!r}: expected 'climatology', 'enkf' or 'pf'")
    return rmse(means, truth, dim=-1)[burn:].mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    burn = min(BURN, args.cycles // 10)

    print(
        f"Lorenz-63, DAPPER 'Sakov 2012': {args.cycles} cycles (burn-in {burn}), seeds {args.seeds}"
    )
    print(f"| {'method':<28} | {'N':>4} | {'our RMSE':>13} | {'DAPPER':>6} | {'time (s)':>8} |")
    print(f"|{'-' * 30}|{'-' * 6}|{'-' * 15}|{'-' * 8}|{'-' * 10}|")
    for name, method, N, settings, reference in EXPERIMENTS:
        start = time.perf_counter()
        scores = torch.tensor(
            [analysis_rmse(method, N, args.cycles, s, burn, **settings) for s in args.seeds]
        )
        seconds = (time.perf_counter() - start) / len(args.seeds)
        ours = f"{scores.mean():.3f}" + (f" ± {scores.std():.3f}" if len(scores) > 1 else "")
        print(f"| {name:<28} | {N or '':>4} | {ours:>13} | {reference:>6.2f} | {seconds:>8.1f} |")


if __name__ == "__main__":
    main()
