r"""The cost of one guided evaluation in the Lorenz-63 chapter's Figure-2 grid.

``lorenz_assimilation`` at ``cpu`` samples 4 observation sets x 64 samples (256 trajectories of
65 states) per call, for k in 1, 2, 4, C in 0, 1, 2, 4 and 64 steps: 704 evaluations per
scenario and k. This times SDA guidance (the paper's gamma, no corrections) over 16 steps with
the shipped ``cpu`` priors, one thread, and prints the milliseconds per evaluation.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_lorenz_grid.py
"""

from __future__ import annotations

import time

import torch

from sda_lite.config import sampling
from sda_lite.guidance import assimilate
from sda_lite.io import load
from sda_lite.lorenz import SCENARIOS, L, NoisyLorenz63, ensure_lorenz, lorenz_prior
from sda_lite.observe import compose, every, observe, select
from sda_lite.priors import prior_for_length

STEPS, SETS, SAMPLES = 16, 4, 64


def main() -> None:
    torch.set_num_threads(1)
    chain = NoisyLorenz63()
    test = load(ensure_lorenz(scale_name="cpu", progress=False), "test")[:SETS, :L]
    truth = chain.postprocess(test.double())

    def A_state(x):  # raw state -> standardised first variable
        return chain.preprocess(x)[..., :1]

    for name, s in SCENARIOS.items():
        generator = torch.Generator().manual_seed(0)
        y = observe(truth[:, :: s["every"]], A_state, s["std"], generator=generator)
        A = compose(every(s["every"]), select(0))
        for k in (1, 2, 4):
            prior = prior_for_length(lorenz_prior("local", k, "cpu", progress=False), L)
            start = time.perf_counter()
            assimilate(prior, y.float(), A, s["std"], gamma=sampling("lorenz")["gamma"],
                       steps=STEPS, samples=SAMPLES, progress=False)  # fmt: skip
            ms = (time.perf_counter() - start) / STEPS * 1000
            print(f"{name} k = {k}: {ms:.0f} ms per evaluation of {SETS * SAMPLES} trajectories")


if __name__ == "__main__":
    main()
