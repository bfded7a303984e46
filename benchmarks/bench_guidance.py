r"""Times SDA guided sampling of the Lorenz-63 'lo' scenario at the paper's settings.

64 posterior trajectories of 65 states, a local score network with k = 2 (residual MLP of width 256,
depth 5, untrained: the timing does not depend on the weights), 64 predictor steps with one Langevin
correction each (tau = 0.25), gamma = 1e-2; the first variable observed every 8th state with
sigma_y = 0.05. The paper's own code takes 13.6 s for this on our 2-core CPU.

Variants, timed in the same process and interleaved (best of ``--repeats``):

* ``paper-style``: a compact re-implementation of the paper code's structure (window MLP with a
  hand-written layer norm, dense likelihood gradient) to calibrate the machine's current load;
* ``float32, dense``: ``sda_lite`` with the locality of the prior hidden from the guidance, so that
  the likelihood gradient is taken through every window;
* ``float32``: ``sda_lite`` as is: the whole trajectory is denoised without a graph and only the
  windows of the observed states are differentiated (exact, see ``Guidance._denoise``);
* ``bfloat16``: the same under bfloat16 autocast. On CPUs without native bfloat16 (AVX2 only) this
  is slow, so it runs ``--bf16-steps`` steps and the time is extrapolated to 64 (marked ``*``).

With ``--accuracy``, the trained Lorenz prior of ``--scale`` (``sda_lite.train.lorenz_prior``) draws
``--samples`` posteriors of one observation in each precision, and the script compares their
``log p(x_{2:L} | x_1)`` and their W1 distance to a float32 reference, against the W1 between two
float32 runs with different seeds (the Monte Carlo floor).

Usage:
    python benchmarks/bench_guidance.py [--repeats 2] [--threads 2] [--accuracy --scale ci]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

from sda_lite.diffusion import VPSDE
from sda_lite.guidance import SDAGuidance
from sda_lite.lorenz import NoisyLorenz63
from sda_lite.observe import compose, every, observe, select
from sda_lite.score import LocalScore, LocalScoreNet

PAPER_SECONDS = 13.6
L, K, SAMPLES, STEPS, CORRECTIONS, TAU, GAMMA, STD = 65, 2, 64, 64, 1, 0.25, 1e-2, 0.05


class PaperStyleNet(nn.Module):
    r"""The structure of the paper's local score network: time embedding of a scalar t, windows
    concatenated with it, residual blocks (hand-written layer norm, Linear, SiLU, Linear), fold."""

    def __init__(self, k: int = K, width: int = 256, depth: int = 5, embedding: int = 32):
        super().__init__()
        self.k, n = k, 3 * (2 * k + 1)
        self.register_buffer("freqs", math.pi * torch.arange(1, 17))
        self.embed = nn.Sequential(nn.Linear(32, 256), nn.SiLU(), nn.Linear(256, embedding))
        sizes = [n + embedding] + [width] * depth + [n]
        self.projections = nn.ModuleList(
            nn.Linear(a, b) if a != b else nn.Identity() for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(b, b), nn.SiLU(), nn.Linear(b, b)) for b in sizes[1:]
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = self.freqs * t[..., None]
        t = self.embed(torch.cat((t.cos(), t.sin()), -1))
        w = x.unfold(1, 2 * self.k + 1, 1).movedim(-1, 2).flatten(2, 3)  # (B, L - 2k, (2k+1) 3)
        h = torch.cat((w, t.expand(*w.shape[:-1], -1)), -1)
        for projection, block in zip(self.projections, self.blocks):
            h = projection(h)
            var, mean = torch.var_mean(h, dim=-1, keepdim=True)
            h = h + block((h - mean) / (var + 1e-5).sqrt())
        s = h.unflatten(2, (2 * self.k + 1, -1))
        return torch.cat((s[:, 0, : self.k], s[:, :, self.k], s[:, -1, -self.k :]), 1)


class PlusGaussian(nn.Module):
    r"""``eps(x, t)`` plus the noise predictor of :math:`\mathcal{N}(0, I)`,
    :math:`\sigma_t x / (\mu_t^2 + \sigma_t^2)`.

    An untrained network that predicts :math:`\epsilon \approx 0` has the denoiser :math:`x / \mu_t`,
    which makes guided sampling diverge. With its last layers zeroed, the paper-style network plus
    this term starts, like ``LocalScoreNet``, as the noise predictor of :math:`\mathcal{N}(0, I)`."""

    def __init__(self, eps: nn.Module):
        super().__init__()
        self.eps, self.schedule = eps, VPSDE(lambda x, t: x, (L, 3))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        mu, sigma = self.schedule.mu(t), self.schedule.sigma(t)
        c = sigma / (mu**2 + sigma**2)
        return self.eps(x, t) + c.reshape(c.shape + (1, 1)) * x


class PaperStyleGuidance(nn.Module):
    r"""The paper code's likelihood score, with a dense gradient."""

    def __init__(self, y, A, sde):
        super().__init__()
        self.y, self.A, self.sde = y, A, sde

    def forward(self, x, t):
        mu, sigma = self.sde.mu(t), self.sde.sigma(t)
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            eps = self.sde.eps(x, t)
            err = self.y - self.A((x - sigma * eps) / mu)
            log_p = -(err**2 / (STD**2 + GAMMA * (sigma / mu) ** 2)).sum() / 2
        (s,) = torch.autograd.grad(log_p, x)
        return eps.detach() - sigma * s


def lo_observation(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A standardised Lorenz trajectory of 65 states (after a burn-in) and its 'lo' observation."""

    chain, generator = NoisyLorenz63(), torch.Generator().manual_seed(seed)
    x = chain.trajectory(chain.prior(generator=generator), 1024 + L, generator=generator)[-L:]
    x = chain.preprocess(x).float()
    return x, observe(x, compose(every(8), select(0)), STD, generator=generator)


def sampler(eps: nn.Module, shape=(L, 3)) -> VPSDE:
    return VPSDE(eps, shape)


def timed(sde: VPSDE, steps: int = STEPS, seed: int = 0) -> tuple[float, float]:
    r"""Returns the wall-clock and CPU (all threads) seconds of one sampling, scaled to ``STEPS`` steps."""

    torch.manual_seed(seed)
    wall, cpu = time.perf_counter(), time.process_time()
    x = sde.sample(SAMPLES, steps=steps, corrections=CORRECTIONS, tau=TAU)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert torch.isfinite(x).all()
    return wall * STEPS / steps, cpu * STEPS / steps


def speed(repeats: int, steps: int, bf16_steps: int) -> None:
    A = compose(every(8), select(0))
    _, y = lo_observation()
    torch.manual_seed(0)
    net = LocalScoreNet(3, k=K, width=256, depth=5)  # starts as the noise predictor of N(0, I)
    prior = sampler(LocalScore(net))
    hidden = sampler(lambda x, t: prior.eps(x, t))  # the same network, locality hidden
    paper = PaperStyleNet()
    nn.init.zeros_(paper.blocks[-1][-1].weight), nn.init.zeros_(paper.blocks[-1][-1].bias)
    nn.init.zeros_(paper.projections[-1].weight), nn.init.zeros_(paper.projections[-1].bias)
    paper_prior = sampler(PlusGaussian(paper))
    variants = {
        "paper-style": (sampler(PaperStyleGuidance(y, A, paper_prior)), steps),
        "float32, dense": (sampler(SDAGuidance(y, A, STD, hidden, gamma=GAMMA)), steps),
        "float32": (sampler(SDAGuidance(y, A, STD, prior, gamma=GAMMA)), steps),
        "bfloat16": (
            sampler(SDAGuidance(y, A, STD, prior, gamma=GAMMA, precision="bfloat16")),
            min(steps, bf16_steps),
        ),
    }
    best = {name: (math.inf, math.inf) for name in variants}
    for _ in range(repeats):
        for name, (sde, n) in variants.items():
            best[name] = min(best[name], timed(sde, n))

    print(
        f"SDA guided sampling, 'lo': {SAMPLES} x {L} states, k = {K}, width 256, depth 5, "
        f"{STEPS} steps, C = {CORRECTIONS}"
    )
    print(
        f"{'variant':<16} {'wall time':>10} {'traj.-steps/s':>14} {'vs 13.6 s':>10} "
        f"{'vs paper-style':>15} {'CPU time':>9} {'vs paper-style':>15}"
    )
    wall0, cpu0 = best["paper-style"]
    for name, (wall, cpu) in best.items():
        mark = "*" if variants[name][1] != STEPS else " "
        print(
            f"{name:<16} {wall:>9.2f}s{mark} {SAMPLES * STEPS / wall:>13.0f} "
            f"{PAPER_SECONDS / wall:>9.2f}x {wall0 / wall:>14.2f}x {cpu:>8.1f}s {cpu0 / cpu:>14.2f}x"
        )
    print("traj.-steps/s: posterior trajectories times predictor steps per second (wall clock);")
    print("CPU time: all threads of this process, less sensitive to other processes than wall time")
    if any(n != STEPS for _, n in variants.values()):
        print(
            "* extrapolated to 64 steps from "
            + ", ".join(f"{n} ({name})" for name, (_, n) in variants.items() if n != STEPS)
        )


def accuracy(scale_name: str, samples: int) -> None:
    from sda_lite.lorenz import lorenz_prior
    from sda_lite.metrics import log_px, w1
    from sda_lite.priors import prior_for_length

    chain, A = NoisyLorenz63(), compose(every(8), select(0))
    _, y = lo_observation(seed=1)
    prior = prior_for_length(lorenz_prior("local", K, scale_name=scale_name, progress=False), L)
    hidden = sampler(lambda x, t: prior.eps(x, t))

    def draw(sde: VPSDE, precision: str, seed: int) -> torch.Tensor:
        guided = sampler(SDAGuidance(y, A, STD, sde, gamma=GAMMA, precision=precision))
        torch.manual_seed(seed)
        return chain.postprocess(
            guided.sample(samples, steps=STEPS, corrections=CORRECTIONS, tau=TAU)
        )

    runs = {
        "float32, dense": draw(hidden, "float32", 0),
        "float32": draw(prior, "float32", 0),
        "float32, seed 1": draw(prior, "float32", 1),
        "bfloat16": draw(prior, "bfloat16", 0),
    }
    reference = runs["float32, dense"]
    print(f"\naccuracy, trained '{scale_name}' prior, {samples} posteriors of one 'lo' observation")
    print(f"{'run':<16} {'log p(x)':>10} {'W1 to float32, dense':>21}")
    for name, x in runs.items():
        print(
            f"{name:<16} {log_px(chain, x).item():>10.2f} {w1(x, reference) if x is not reference else 0.0:>21.3f}"
        )
    print("(W1 of 'float32, seed 1' is the Monte Carlo floor)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--steps", type=int, default=STEPS, help="steps actually run (times are scaled to 64)"
    )
    parser.add_argument(
        "--bf16-steps",
        type=int,
        default=4,
        help="steps run in bfloat16 (slow without native support)",
    )
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--scale", default="ci")
    parser.add_argument("--samples", type=int, default=256)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    speed(args.repeats, args.steps, args.bf16_steps)
    if args.accuracy:
        accuracy(args.scale, args.samples)


if __name__ == "__main__":
    main()
