r"""Quality against cost of the samplers (``sda_lite.samplers``), for SDA and MMPS guidance.

Cost is the number of network evaluations per sample (``sda_lite.samplers.evaluations``). Each
*recipe* is a sampler with its corrections and tau; its steps are chosen to fit each budget of
evaluations. Two problems:

(a) the linear-Gaussian chain of the guided-sampling chapter (``sampling("linear")``: the damped
    rotation, its first variable observed every 4th state with sigma_y = 0.1, exact prior
    ``GaussianEps``): the mean error (RMS over coordinates of (mean - m_post) / s_post) and the
    variance ratio (mean over coordinates of var / var_post) against the exact posterior;
(b) Lorenz-63, the shipped ``cpu`` prior of order k = 4, the paper's 'lo' and 'hi' scenarios on the
    first test trajectories: W1 to a particle filter (2^14 particles) in units of the floor
    W1(filter, filter') of two independent filters, with as many samples for SDA, the filter and
    the floor; and the mean log p(x_{2:L} | x_1) of the samples and of the filter's. SDA uses the
    paper's gamma = 3e-2, MMPS one Krylov iteration (as ``bench_lorenz_w1.py``).

The paper's setting is ``pc`` with C = 2, tau = 0.25 and 256 steps: 768 evaluations. The script
prints, per scenario and method, the best median ratio at <= 256 (a third) and <= 768 evaluations
against the paper's.

Usage (one thread; ``--scale ci`` is a smoke run of a few seconds, ``cpu`` the recorded one):
    OMP_NUM_THREADS=1 python benchmarks/bench_samplers.py --scale cpu \
        --out benchmarks/results/samplers_cpu.json

A sweep of SDA's gamma on chosen Lorenz recipes and budgets (MMPS runs once, it has no gamma):
    OMP_NUM_THREADS=1 python benchmarks/bench_samplers.py --scale cpu --parts lorenz \
        --gammas 0.03 0.1 --only pc:7:1.0,pc:2:0.25 --budgets 256 768 --out gammas.json

The same k = 4 prior trained for longer (``--prior-epochs 512``: four times the ``cpu`` recipe's
epochs, about 12 minutes on one thread; trained once into ``data/lorenz_local_k4_cpu_e512``):
    OMP_NUM_THREADS=1 python benchmarks/bench_samplers.py --scale cpu --parts lorenz \
        --prior-epochs 512 --only pc:7:1.0,pc:2:0.25 --budgets 256 768

The shipped prior on eight observation sets instead of two, SDA only (the paper's recipe at 768
evaluations, C = 7, tau = 1 at 256 and 768):
    OMP_NUM_THREADS=1 python benchmarks/bench_samplers.py --scale cpu --parts lorenz --sets 8 \
        --methods sda --only pc:7:1.0,pc:2:0.25 --budgets 256 768 \
        --out benchmarks/results/samplers_sets8_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from sda_lite.baselines import particle_filter
from sda_lite.config import sampling
from sda_lite.diffusion import VPSDE
from sda_lite.guidance import assimilate
from sda_lite.io import load
from sda_lite.linear import LinearGaussian
from sda_lite.lorenz import (
    SCENARIOS,
    L,
    NoisyLorenz63,
    ensure_lorenz,
    first_states,
    lorenz_configs,
    lorenz_prior,
    lorenz_windows,
)
from sda_lite.metrics import log_px, w1
from sda_lite.observe import compose, every, observe, select
from sda_lite.priors import ensure_prior, prior_for_length
from sda_lite.samplers import evaluations
from sda_lite.score import GaussianEps

PAPER = ("pc", 2, 0.25)  # the paper's Lorenz sampler: C = 2, tau = 0.25 (at 256 steps)


def recipes(problem: str, scale: str) -> dict[tuple[str, int, float], list[int]]:
    r"""The recipes (sampler, corrections, tau) and their budgets of evaluations per sample."""

    if problem == "gaussian":
        test_bed = sampling("linear")
        budgets = dict(ci=[8, 32], cpu=[8, 16, 32, 64, 128, 256])[scale]
        return {
            ("pc", 0, 1.0): budgets,
            ("pc", test_bed["corrections"], test_bed["tau"]): budgets,
            ("heun", 0, 1.0): budgets,
            ("dpm2m", 0, 1.0): budgets,
            ("sde-dpm2m", 0, 1.0): budgets,
            ("pc", 7, 1.0): [b for b in budgets if b >= 32],
        }
    few = dict(ci=[32], cpu=[32, 128])[scale]
    return {
        PAPER: dict(ci=[96], cpu=[96, 256, 768])[scale],
        ("pc", 7, 1.0): dict(ci=[32], cpu=[32, 64, 128, 256, 768])[scale],
        ("pc", 0, 1.0): few,
        ("heun", 0, 1.0): few,
        ("dpm2m", 0, 1.0): few,
        ("sde-dpm2m", 0, 1.0): few,
    }


def steps_for(sampler: str, corrections: int, budget: int) -> int:
    return budget // evaluations(sampler, 1, corrections)


def gaussian(scale: str) -> list[dict]:
    r"""Mean error and variance ratio against the exact posterior of the linear-Gaussian chain."""

    L_g, n = dict(ci=(16, 1024), cpu=(32, 4096))[scale]
    torch.manual_seed(0)
    chain = LinearGaussian.rotation()
    m, C = chain.moments(L_g)
    prior = VPSDE(GaussianEps(m, C, (L_g, chain.D)), (L_g, chain.D))
    A, std = compose(every(4), select(0)), 0.1
    x_star = chain.trajectory(chain.prior(), L_g).float()
    y = observe(x_star, A, std)
    H, R = torch.tensor([[1.0, 0.0]]), torch.tensor([[std**2]])
    mean, cov = chain.posterior(y, H, R, every=4, length=L_g)
    sd = cov.diagonal().sqrt().reshape(mean.shape)
    gamma = sampling("linear")["gamma"]
    rows = []
    for method, kwargs in (("sda", {"gamma": gamma}), ("mmps", {"iterations": y.shape[0]})):
        for (sampler, C_, tau), budgets in recipes("gaussian", scale).items():
            for budget in budgets:
                steps = steps_for(sampler, C_, budget)
                torch.manual_seed(0)
                t0 = time.perf_counter()
                try:
                    x = assimilate(
                        prior, y, A, std, method=method, samples=n, steps=steps, corrections=C_,
                        tau=tau, sampler=sampler, progress=False, **kwargs,
                    ).double()  # fmt: skip
                    error = ((x.mean(0) - mean) / sd).square().mean().sqrt().item()
                    ratio = (x.var(0) / sd**2).mean().item()
                except ValueError:  # diverged
                    error = ratio = None
                rows.append(
                    dict(method=method, sampler=sampler, corrections=C_, tau=tau, steps=steps,
                         evaluations=evaluations(sampler, steps, C_), mean_error=error,
                         variance_ratio=ratio, seconds=time.perf_counter() - t0)
                )  # fmt: skip
                print(
                    f"gaussian {method} {sampler} C={C_} tau={tau} {rows[-1]['evaluations']:4d} "
                    f"evals: mean error {error if error is None else round(error, 3)}, "
                    f"variance ratio {ratio if ratio is None else round(ratio, 3)}",
                    flush=True,
                )
    return rows


def lorenz(
    scale: str,
    prior_scale: str,
    gammas: list[float] | None = None,
    only: str | None = None,
    budgets: list[int] | None = None,
    prior_epochs: int | None = None,
    sets: int | None = None,
    methods: tuple[str, ...] = ("sda", "mmps"),
) -> tuple[dict, list[dict]]:
    r"""W1 to the particle filter in units of the filter-vs-filter floor, and log p(x), on
    Lorenz-63: SDA for each of ``gammas`` (default the paper's), MMPS once; ``only`` keeps the
    recipes ``"sampler:C:tau"`` named in it (comma-separated), ``budgets`` those budgets only;
    ``prior_epochs`` trains the k = 4 prior of ``prior_scale`` for that many epochs instead;
    ``sets`` replaces the scale's number of observation sets (the first test trajectories);
    ``methods`` are the guidances run."""

    default, S, particles = dict(ci=(1, 16, 2**12), cpu=(2, 64, 2**14))[scale]
    sets = sets or default
    chain = NoisyLorenz63()
    truth = chain.postprocess(
        load(ensure_lorenz(scale_name=prior_scale, progress=False), "test")[:sets, :L].double()
    )
    if prior_epochs is None:
        prior = lorenz_prior("local", 4, prior_scale, progress=False)
    else:
        config, schedule = lorenz_configs("local", 4, prior_scale)
        schedule["epochs"] = prior_epochs
        windows = lambda: lorenz_windows(9, prior_scale)  # noqa: E731
        name = f"lorenz_local_k4_{prior_scale}_e{prior_epochs}"
        prior = ensure_prior(name, config, schedule, data=windows, progress=False)
    prior = prior_for_length(prior, L)
    gammas = gammas or [sampling("lorenz")["gamma"]]
    chosen = recipes("lorenz", scale)
    if only:
        keep = {(a, int(b), float(c)) for a, b, c in (r.split(":") for r in only.split(","))}
        chosen = {r: b for r, b in chosen.items() if r in keep}
    if budgets:
        chosen = {r: [b for b in bs if b in budgets] for r, bs in chosen.items()}

    def A_state(x):  # raw state (*, 3) -> standardised first variable (*, 1)
        return chain.preprocess(x)[..., :1]

    setup = dict(sets=sets, samples=S, particles=particles, k=4, prior_scale=prior_scale,
                 prior_epochs=prior_epochs, gammas=gammas, mmps_iterations=1, floors={},
                 log_px_filter={})  # fmt: skip
    rows = []
    for name in ("lo", "hi"):
        n, std = SCENARIOS[name]["every"], SCENARIOS[name]["std"]
        y = observe(truth[:, ::n], A_state, std, generator=torch.Generator().manual_seed(0))

        filters = [
            tuple(
                particle_filter(
                    chain, y[i], A_state, std, every=n, length=L, samples=S, generator=gen,
                    x0=first_states(chain, particles, gen), progress=False,
                )
                for gen in (torch.Generator().manual_seed(s) for s in (2 * i + 1, 2 * i + 2))
            )
            for i in range(sets)
        ]  # fmt: skip
        floors = [w1(b, a) for a, b in filters]
        setup["floors"][name] = floors
        setup["log_px_filter"][name] = [log_px(chain, b).item() for _, b in filters]
        runs = [("sda", g) for g in gammas if "sda" in methods]
        if "mmps" in methods:
            runs.append(("mmps", gammas[0]))
        for method, gamma in runs:
            for (sampler, C_, tau), budgets in chosen.items():
                for budget in budgets:
                    steps = steps_for(sampler, C_, budget)
                    torch.manual_seed(0)
                    t0 = time.perf_counter()
                    try:
                        x = assimilate(
                            prior, y.float(), compose(every(n), select(0)), std, method=method,
                            gamma=gamma, iterations=1, steps=steps, corrections=C_, tau=tau,
                            samples=S, sampler=sampler, progress=False,
                        )  # fmt: skip
                        x = chain.postprocess(x.double()).movedim(0, 1)  # (sets, S, L, 3)
                        ratios = [
                            w1(x[i], a) / f for i, ((a, _), f) in enumerate(zip(filters, floors))
                        ]
                        lpx = [log_px(chain, x[i]).item() for i in range(sets)]
                        median = statistics.median(ratios)
                    except ValueError:  # diverged
                        ratios, lpx, median = None, None, None
                    rows.append(
                        dict(scenario=name, method=method, gamma=gamma, sampler=sampler,
                             corrections=C_,
                             tau=tau, steps=steps, evaluations=evaluations(sampler, steps, C_),
                             ratios=ratios, median_ratio=median, log_px=lpx,
                             seconds=time.perf_counter() - t0)
                    )  # fmt: skip
                    shown = "diverged" if ratios is None else ", ".join(f"{r:.2f}" for r in ratios)
                    print(
                        f"lorenz {name} {method} gamma={gamma} {sampler} C={C_} tau={tau} "
                        f"{rows[-1]['evaluations']:4d} evals: W1 / floor {shown}; "
                        f"{rows[-1]['seconds']:.0f} s",
                        flush=True,
                    )
    return setup, rows


def targets(rows: list[dict]) -> dict:
    r"""Per scenario and method: the paper's median ratio at 768 evaluations, and the best median
    ratio (with its recipe) at <= 256 and at <= 768 evaluations."""

    found = {}
    for name in ("lo", "hi"):
        for method in ("sda", "mmps"):
            mine = [r for r in rows if (r["scenario"], r["method"]) == (name, method)]
            paper = [
                r for r in mine
                if (r["sampler"], r["corrections"], r["tau"]) == PAPER and r["evaluations"] == 768
                and r["gamma"] == sampling("lorenz")["gamma"]
            ]  # fmt: skip
            entry = {"paper_768": paper[0]["median_ratio"] if paper else None}
            for cap in (256, 768):
                ok = [r for r in mine if r["evaluations"] <= cap and r["median_ratio"] is not None]
                best = min(ok, key=lambda r: r["median_ratio"]) if ok else None
                entry[f"best_{cap}"] = best and {
                    k: best[k]
                    for k in (
                        "gamma",
                        "sampler",
                        "corrections",
                        "tau",
                        "steps",
                        "evaluations",
                        "median_ratio",
                    )
                }
            p, b256, b768 = entry["paper_768"], entry["best_256"], entry["best_768"]
            entry["paper_quality_at_a_third"] = bool(p and b256 and b256["median_ratio"] <= p)
            entry["ratio_at_most_1.5_within_768"] = bool(b768 and b768["median_ratio"] <= 1.5)
            found[f"{name}/{method}"] = entry
    return found


def machine() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="cpu", choices=["ci", "cpu"], help="the sizes")
    parser.add_argument("--prior-scale", default="cpu", help="the Lorenz prior (shipped: cpu)")
    parser.add_argument("--parts", nargs="+", default=["gaussian", "lorenz"])
    parser.add_argument("--out", type=Path, help="write the results as JSON there")
    parser.add_argument("--gammas", type=float, nargs="+", help="SDA's gammas (default: paper's)")
    parser.add_argument("--only", help="Lorenz recipes to run, e.g. pc:7:1.0,pc:2:0.25")
    parser.add_argument("--budgets", type=int, nargs="+", help="Lorenz budgets to run, e.g. 768")
    parser.add_argument("--prior-epochs", type=int, help="train the k = 4 prior this many epochs")
    parser.add_argument("--sets", type=int, help="Lorenz observation sets (default: 2 at cpu)")
    parser.add_argument("--methods", nargs="+", default=["sda", "mmps"], choices=["sda", "mmps"])
    args = parser.parse_args()
    torch.set_num_threads(1)

    start = time.perf_counter()
    result = {"machine": machine(), "threads": torch.get_num_threads(), "scale": args.scale}
    if "gaussian" in args.parts:
        result["gaussian"] = gaussian(args.scale)
    if "lorenz" in args.parts:
        result["lorenz_setup"], result["lorenz"] = lorenz(
            args.scale,
            args.prior_scale,
            args.gammas,
            args.only,
            args.budgets,
            args.prior_epochs,
            args.sets,
            tuple(args.methods),
        )
        result["targets"] = targets(result["lorenz"])
        for key, entry in result["targets"].items():
            print(key, json.dumps(entry))
    result["seconds"] = time.perf_counter() - start
    print(f"total {result['seconds']:.0f} s on {result['machine']}, 1 thread")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
