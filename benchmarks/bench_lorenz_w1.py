r"""Measures how far SDA, DPS and MMPS posteriors on Lorenz-63 are from the particle-filter ground truth.

For each scenario ('lo': first variable every 8th state, sigma_y 0.05; 'hi': every state, sigma_y
0.25) and each of ``--sets`` test trajectories (65 states), the script draws ``--samples`` posterior
trajectories per method of ``--methods`` with the trained local prior of order ``--k``
(``sda_lite.train.lorenz_prior`` at ``--scale``), and two independent particle-filter posteriors
(``--particles``) of as many samples. It prints, per observation set, the ratio
W1(method, PF) / W1(PF, PF'): the distance to the filter in units of the Monte Carlo floor, then
the median over the sets (the target at ``cpu`` scale: at most 2.5 for SDA with k = 4, C = 2 and
256 steps), with mean log p(x_{2:L} | x_1) and log p(y | x).

The guidance settings default to the paper's Lorenz evaluation (``sda_lite.config.sampling``:
gamma 3e-2, tau 0.25; DPS zeta 1 per sample), without the step limiter (``--limit`` adds it).

Usage (the prior is trained first when missing; the cpu priors of k = 1, 2, 4 are shipped):
    python benchmarks/bench_lorenz_w1.py --scale cpu --k 4 --corrections 2 --steps 256 --sets 4 --samples 128
    python benchmarks/bench_lorenz_w1.py --methods sda dps mmps --sets 2 --samples 64 --steps 128 --corrections 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sda_lite.baselines import particle_filter
from sda_lite.config import sampling
from sda_lite.guidance import assimilate
from sda_lite.io import load
from sda_lite.lorenz import SCENARIOS, L, NoisyLorenz63, ensure_lorenz, first_states, lorenz_prior
from sda_lite.metrics import log_px, log_py, w1
from sda_lite.observe import compose, every, observe, select
from sda_lite.priors import prior_for_length


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--corrections", type=int, default=2)
    parser.add_argument("--steps", type=int, default=256)
    paper = sampling("lorenz")
    parser.add_argument("--methods", nargs="+", default=["sda"], choices=["sda", "dps", "mmps"])
    parser.add_argument("--gamma", type=float, default=paper["gamma"])
    parser.add_argument("--zeta", type=float, default=paper["zeta"])
    parser.add_argument("--iterations", type=int, default=1, help="MMPS's Krylov iterations")
    parser.add_argument(
        "--limit", action="store_true", help="SDA's step limiter (not in the paper)"
    )
    parser.add_argument("--tau", type=float, default=paper["tau"])
    parser.add_argument("--sets", type=int, default=4)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--particles", type=int, default=2**14)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    args = parser.parse_args()

    torch.manual_seed(0)
    chain = NoisyLorenz63()
    truth = chain.postprocess(
        load(ensure_lorenz(scale_name=args.scale), "test")[: args.sets, :L].double()
    )
    prior = prior_for_length(lorenz_prior("local", args.k, args.scale), L)

    def A_state(x):  # raw state (*, 3) -> standardised first variable (*, 1)
        return chain.preprocess(x)[..., :1]

    def pf(y, std, n, seed):  # a particle filter's posterior samples (samples, L, 3), raw units
        gen = torch.Generator().manual_seed(seed)
        x0 = first_states(chain, args.particles, gen)
        return particle_filter(
            chain, y, A_state, std, every=n, length=L, x0=x0, samples=args.samples, generator=gen,
            progress=False,
        )  # fmt: skip

    print(
        f"scale {args.scale}, k = {args.k}, C = {args.corrections}, {args.steps} steps, "
        f"gamma {args.gamma}, zeta {args.zeta}, {args.iterations} MMPS iteration(s), "
        f"limiter {'on' if args.limit else 'off'}, {args.sets} sets x {args.samples} samples, "
        f"{args.particles} particles, {torch.get_num_threads()} threads"
    )
    for name in args.scenarios:
        n, std = SCENARIOS[name]["every"], SCENARIOS[name]["std"]
        g = torch.Generator().manual_seed(0)
        y = observe(truth[:, ::n], A_state, std, generator=g)  # (sets, K, 1)
        A_traj = lambda x, n=n: A_state(x)[..., ::n, :]  # raw trajectory -> observations
        filters = [
            (pf(y[i], std, n, 2 * i + 1), pf(y[i], std, n, 2 * i + 2)) for i in range(args.sets)
        ]
        for method in args.methods:
            t0 = time.perf_counter()
            x = assimilate(
                prior,
                y.float(),
                compose(every(n), select(0)),
                std,
                method=method,
                gamma=args.gamma,
                limit=args.limit,
                zeta=args.zeta,
                iterations=args.iterations,
                steps=args.steps,
                corrections=args.corrections,
                tau=args.tau,
                samples=args.samples,
                progress=True,
            )
            x = chain.postprocess(x.double()).movedim(0, 1)  # (sets, samples, L, 3)
            seconds = time.perf_counter() - t0
            ratios, lpx, lpy = [], [], []
            for i, (a, b) in enumerate(filters):
                d, floor = w1(x[i], a), w1(b, a)
                ratios.append(d / floor)
                lpx.append((log_px(chain, x[i]).item(), log_px(chain, b).item()))
                lpy.append(
                    (log_py(x[i], y[i], A_traj, std).item(), log_py(b, y[i], A_traj, std).item())
                )
                print(
                    f"  {name} {method} set {i}: W1 {d:.2f}, floor W1(PF', PF) {floor:.2f}, "
                    f"ratio {d / floor:.2f}, log p(x) {lpx[-1][0]:.1f} / PF {lpx[-1][1]:.1f}, "
                    f"log p(y|x) {lpy[-1][0]:.1f} / PF {lpy[-1][1]:.1f}"
                )
            mean = [statistics.mean(column) for column in (*zip(*lpx), *zip(*lpy))]
            sets = ", ".join(f"{r:.2f}" for r in ratios)
            print(
                f"{name} {method.upper()}: median ratio {statistics.median(ratios):.2f} (sets: {sets}); "
                f"mean log p(x) {mean[0]:.1f} vs PF {mean[1]:.1f}; "
                f"mean log p(y|x) {mean[2]:.1f} vs PF {mean[3]:.1f}; sampling {seconds:.0f} s"
            )


if __name__ == "__main__":
    main()
