r"""Checks our EnKF, with and without localisation, against DAPPER's published Lorenz-96 benchmark.

DAPPER's 'Sakov 2008' set-up (``dapper.mods.Lorenz96.sakov2008``): Lorenz-96 with N = 40 sites and
F = 8, one RK4 step per dt = 0.05 and no model noise; all 40 sites observed every step with R = I;
1000 cycles; truth and ensemble start from N(e_1, 0.001 I); the score is the analysis RMSE of the
ensemble mean, averaged over the cycles after a burn-in of 20 time units (400 cycles). The expected
scores are those of that module's table (``Expected rmse.a``), rounded to two decimals there.

Each seed draws a new truth, observations and ensemble; the table gives the mean of the seeds'
time-averaged RMSE and its 95% confidence interval (Student's t over seeds), and whether DAPPER's
figure lies in it (widened by half a unit of its last printed digit). DAPPER lists no localised
stochastic EnKF for this set-up; the localised rows are compared with its localised filter (LETKF,
N = 7, loc_rad 4, infl 1.04: 0.22), a deterministic square-root filter, as an order of magnitude
only (c and the inflation of those rows were picked from a coarse scan, c in 2..8 and inflation
1.04..1.10, over 2 seeds of 500 cycles). The row of 10 members without localisation shows what the
localisation is for.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_lorenz96_enkf.py                 # 1000 cycles, 16 seeds
    OMP_NUM_THREADS=1 python benchmarks/bench_lorenz96_enkf.py --cycles 300 --seeds 2
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from scipy import stats
from torch import Tensor

from sda_lite.baselines import enkf
from sda_lite.lorenz96 import localisation, observer, sakov2008
from sda_lite.metrics import rmse

N, STD, BURN = 40, 1.0, 400

# (name, members, settings, GC half-width c or None, DAPPER's analysis RMSE as printed, its method)
EXPERIMENTS = [
    ("Climatology", None, {}, None, "3.6", "Climatology()"),
    ("EnKF PertObs, infl 1.06", 40, {"inflation": 1.06}, None, "0.22", "EnKF('PertObs', N=40)"),
    ("EnKF PertObs, infl 1.08", 28, {"inflation": 1.08}, None, "0.24", "EnKF('PertObs', N=28)"),
    ("EnKF PertObs, infl 1.10", 10, {"inflation": 1.10}, None, None, "-"),
    ("local EnKF PertObs, infl 1.04", 20, {"inflation": 1.04}, 8.0, None, "LETKF(N=7): 0.22"),
    ("local EnKF PertObs, infl 1.06", 10, {"inflation": 1.06}, 6.0, None, "LETKF(N=7): 0.22"),
]


def analysis_rmse(
    members: int | None,
    radius: float | None = None,
    cycles: int = 1000,
    seed: int = 0,
    burn: int = BURN,
    **settings,
) -> tuple[float, float]:
    r"""The time-averaged analysis RMSE and spread of one filter (cycles after ``burn``)."""

    chain, x, y, g = sakov2008(cycles, seed)
    truth = x[1:]  # the observed states, (cycles, 40)
    if members is None:  # climatology: the truth's own mean and spread
        mean, spread = x.mean(0).expand_as(truth), x.std(0).expand_as(truth)
    else:
        # The initial ensemble, moved to the first observation (state 1), where the filter starts.
        E0 = torch.eye(N, dtype=torch.float64)[0] + math.sqrt(0.001) * torch.randn(
            members, N, generator=g, dtype=torch.float64
        )
        loc = None if radius is None else localisation(N, 1, radius)
        E = enkf(
            chain,
            y,
            observer(1),
            STD,
            x0=chain.transition(E0),
            generator=g,
            progress=False,
            localisation=loc,
            **settings,
        )
        mean, spread = E.mean(0), E.std(0)
    errors = rmse(mean, truth, dim=-1)[burn:]
    return errors.mean().item(), spread.square().mean(-1).sqrt()[burn:].mean().item()


def interval(scores: Tensor, level: float = 0.95) -> tuple[float, float]:
    r"""The mean of ``scores: (S,)`` and the half-width of its Student-t confidence interval."""

    S = len(scores)
    if S < 2:
        return scores.mean().item(), float("nan")
    half = stats.t.ppf((1 + level) / 2, S - 1) * scores.std().item() / math.sqrt(S)
    return scores.mean().item(), half


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    burn = min(BURN, args.cycles * 2 // 5)

    print(
        f"Lorenz-96 N = 40, DAPPER 'Sakov 2008': {args.cycles} cycles (burn-in {burn}), "
        f"{args.seeds} seeds"
    )
    head = f"| {'method':<30} | {'N':>3} | {'c':>4} | {'RMSE (95% CI)':>17} | {'spread':>6} |"
    head += f" {'DAPPER':<26} | {'in CI':>5} | {'s/seed':>6} |"
    print(head)
    print("|" + "|".join("-" * (len(c) + 0) for c in head.split("|")[1:-1]) + "|")
    for name, members, settings, radius, reference, method in EXPERIMENTS:
        start = time.perf_counter()
        runs = [
            analysis_rmse(members, radius, args.cycles, s, burn, **settings)
            for s in range(args.seeds)
        ]
        seconds = (time.perf_counter() - start) / args.seeds
        mean, half = interval(torch.tensor([r[0] for r in runs]))
        spread = sum(r[1] for r in runs) / len(runs)
        inside = ""
        if reference is not None:  # DAPPER's figure, give or take the rounding of its last digit
            rounding = 0.5 * 10.0 ** -len(reference.partition(".")[2])
            inside = abs(mean - float(reference)) <= half + rounding
        ref = method if reference is None else f"{reference} {method}"
        print(
            f"| {name:<30} | {members or '':>3} | {radius or '':>4} | "
            f"{mean:>7.3f} ± {half:<7.3f} | {spread:>6.3f} | {ref:<26} | {str(inside):>5} | "
            f"{seconds:>6.1f} |"
        )


if __name__ == "__main__":
    main()
