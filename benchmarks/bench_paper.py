r"""Times sda-lite's SDA guided sampling against the paper's own code (francois-rozet/sda), at
identical settings and on identical samples, the two interleaved in one run.

Settings: 64 posteriors of 65 states of Lorenz-63 for one 'lo' observation (the first variable
every 8th state, sigma_y = 0.05), a local score network with k = 2 of the ``full`` configuration
of ``sda_lite/configs/lorenz_local.json`` (width 256, depth 5, 32 embedding features), 64
predictor steps with C = 1 Langevin correction each, and the paper's Lorenz ``gamma`` and ``tau``
(``sampling("lorenz")``); one thread per process.

Identical samples. The two networks compute the same function from one set of random weights
(:func:`paper_state` maps sda-lite's parameters onto the paper's ``MCScoreNet``); their
architectures differ only in parts that carry no compute to speak of:

* the time embedding: the paper's hidden layer has 256 units, sda-lite's 128 (the extra 128 get
  zero weights, so they output 0);
* the time enters the paper's MLP only at its input; sda-lite's blocks also modulate their layer
  norm with it (adaptive LayerNorm, zero-initialised: left at zero here);
* the paper's MLP ends with a residual block of width 15 after the last projection (its last layer
  zeroed here: an identity);
* the paper's layer norm divides by the unbiased standard deviation (``zuko.nn.LayerNorm``),
  sda-lite's by the biased one (``F.layer_norm``): the first layer of each of the paper's blocks
  is scaled by :math:`\sqrt{256 / 255}` to compensate (exact up to :math:`10^{-8}` relative);
* sda-lite's network predicts the noise in the v-parametrisation
  :math:`\epsilon = \sigma_t x + \mu_t F(x, t)`; the paper's predicts :math:`\epsilon` directly. The
  paper's network is wrapped here in that one elementwise line (:class:`VParametrised`).

Both samplers draw their initial noise and Langevin noise from the same seed in the same order, so
the samples agree up to float error (the script reports the largest difference).

Each timed run is its own process, ``--worker lite`` under this interpreter and ``--worker paper``
under ``--paper-python``, alternated ``--rounds`` times; the ratio is that of the medians.

The paper's code stays outside the project, in a throwaway environment::

    git clone https://github.com/francois-rozet/sda /tmp/sda_paper
    python3 -m venv /tmp/sda_env
    /tmp/sda_env/bin/pip install torch==2.13.0 numpy tqdm h5py POT jax zuko==0.1.4
    /tmp/sda_env/bin/pip install --no-deps -e /tmp/sda_paper

Usage:
    python benchmarks/bench_paper.py [--paper-python /tmp/sda_env/bin/python] [--rounds 3]
        [--steps 64] [--bf16] [--also NAME=PYTHON ...] [--out benchmarks/results/paper_speed.json]

``--also before=/path/to/python`` adds sda-lite as another interpreter imports it (a checkout
before a change) to the same interleaved rounds; ``--bf16`` adds sda-lite under bfloat16 autocast
where the CPU runs it natively (``sda_lite.config.native_bfloat16``), with its largest change of
the samples.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
SAMPLES, L, K, STEPS, CORRECTIONS, SEED = 64, 65, 2, 64, 1, 0


# --------------------------------------------------------------------------------------------------
# The shared inputs (sda-lite's side)


def settings(steps: int) -> dict:
    r"""The settings of both runs: the scenario, the network and the paper's sampling settings."""

    from sda_lite.config import sampling
    from sda_lite.lorenz import SCENARIOS

    with open(HERE.parent / "sda_lite" / "configs" / "lorenz_local.json") as f:
        model = json.load(f)["full"]["model"]
    paper = sampling("lorenz")
    return {
        "samples": SAMPLES,
        "length": L,
        "scenario": "lo",
        "every": SCENARIOS["lo"]["every"],
        "std": SCENARIOS["lo"]["std"],
        "model": model,
        "steps": steps,
        "corrections": CORRECTIONS,
        "tau": paper["tau"],
        "gamma": paper["gamma"],
        "seed": SEED,
    }


def network(model: dict, seed: int = SEED) -> nn.Module:
    r"""sda-lite's window network with random weights: PyTorch's default initialisation for every
    layer, the last one included (sda-lite zero-initialises it), the modulation left at zero."""

    from sda_lite.score import LocalScoreNet

    torch.manual_seed(seed)
    net = LocalScoreNet(
        model["features"],
        model["k"],
        width=model["width"],
        depth=model["depth"],
        embedding=model["embedding"],
        alpha=model["alpha"],
        eta=model["eta"],
    )
    net.mlp.tail.reset_parameters()
    return net


def paper_state(net: nn.Module) -> dict[str, torch.Tensor]:
    r"""sda-lite's ``LocalScoreNet`` parameters under the names of the paper's ``MCScoreNet``
    (``make_local_score`` of ``experiments/lorenz/utils.py``), such that both compute the same
    :math:`F(x, t)` (see the module docstring for the differences bridged)."""

    mlp, embedding = net.mlp, net.embedding.mlp
    if any(
        b.modulation.weight.abs().max() > 0 or b.modulation.bias.abs().max() > 0 for b in mlp.blocks
    ):
        raise ValueError(
            "the paper's MLP has no modulation: expected sda-lite's modulation at zero"
        )
    width, hidden = mlp.head.out_features, embedding[0].out_features
    out = {"kernel.embedding.freqs": net.embedding.freqs.clone()}
    w0 = torch.zeros(256, embedding[0].in_features)
    b0, w2 = torch.zeros(256), torch.zeros(embedding[2].out_features, 256)
    w0[:hidden], b0[:hidden], w2[:, :hidden] = (
        embedding[0].weight,
        embedding[0].bias,
        embedding[2].weight,
    )
    out |= {"kernel.embedding.0.weight": w0, "kernel.embedding.0.bias": b0}
    out |= {"kernel.embedding.2.weight": w2, "kernel.embedding.2.bias": embedding[2].bias.clone()}
    out |= {"kernel.network.0.weight": mlp.head.weight, "kernel.network.0.bias": mlp.head.bias}
    unbiased = math.sqrt(width / (width - 1))  # zuko's LayerNorm: unbiased variance
    for i, block in enumerate(mlp.blocks, start=1):
        first, second = block.f[0], block.f[2]
        out[f"kernel.network.{i}.1.weight"] = first.weight * unbiased
        out[f"kernel.network.{i}.1.bias"] = first.bias
        out[f"kernel.network.{i}.3.weight"] = second.weight
        out[f"kernel.network.{i}.3.bias"] = second.bias
    n, d = len(mlp.blocks) + 1, mlp.tail.out_features
    out |= {
        f"kernel.network.{n}.weight": mlp.tail.weight,
        f"kernel.network.{n}.bias": mlp.tail.bias,
    }
    for j in (1, 3):  # the last residual block, of width 15: zero, an identity
        out[f"kernel.network.{n + 1}.{j}.weight"] = torch.zeros(d, d)
        out[f"kernel.network.{n + 1}.{j}.bias"] = torch.zeros(d)
    return {name: v.detach().clone().float() for name, v in out.items()}


def observation(every: int, std: float, seed: int = SEED) -> torch.Tensor:
    r"""One standardised Lorenz trajectory of ``L`` states (after a burn-in) and its observation
    ``y: (L // every + 1, 1)``: the first variable every ``every``-th state, noise ``std``."""

    from sda_lite.lorenz import NoisyLorenz63
    from sda_lite.observe import compose, observe, select
    from sda_lite.observe import every as every_

    chain, generator = NoisyLorenz63(), torch.Generator().manual_seed(seed)
    x = chain.trajectory(chain.prior(generator=generator), 1024 + L, generator=generator)[-L:]
    x = chain.preprocess(x).float()
    return observe(x, compose(every_(every), select(0)), std, generator=generator)


# --------------------------------------------------------------------------------------------------
# The workers, one timed sampling each, in a process of their own


class VParametrised(nn.Module):
    r"""The paper's network in sda-lite's v-parametrisation, :math:`\sigma_t x + \mu_t F(x, t)`."""

    def __init__(self, net: nn.Module, sde: nn.Module):
        super().__init__()
        self.net, self.sde = net, sde

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None):
        return self.sde.sigma(t) * x + self.sde.mu(t) * self.net(x, t, c)


def paper_sampler(data: dict):
    r"""The paper's guided sampler (``experiments/lorenz/eval.py``): ``GaussianScore`` around a
    ``VPSDE`` of the ``MCScoreNet``, sampled by ``VPSDE.sample``."""

    from sda.score import VPSDE, GaussianScore, MCScoreNet

    s, model = data["settings"], data["settings"]["model"]
    net = MCScoreNet(
        features=model["features"],
        order=model["k"],
        embedding=model["embedding"],
        hidden_features=[model["width"]] * model["depth"],
        activation=nn.SiLU,
    )
    net.load_state_dict(data["paper"])
    schedule = VPSDE(net, shape=(), alpha=model["alpha"], eta=model["eta"])
    prior = VPSDE(VParametrised(net, schedule), shape=(), alpha=model["alpha"], eta=model["eta"])
    every, y = s["every"], data["y"]  # (9, 1): the paper's A keeps the variable axis, as select
    guided = GaussianScore(y, lambda x: x[..., ::every, :1], s["std"], prior, gamma=s["gamma"])
    sde = VPSDE(
        guided, shape=(s["length"], model["features"]), alpha=model["alpha"], eta=model["eta"]
    )

    def run() -> torch.Tensor:
        return sde.sample(
            (s["samples"],), steps=s["steps"], corrections=s["corrections"], tau=s["tau"]
        )

    return run, lambda: prior.eps(torch.zeros(1, s["length"], 3), torch.tensor(0.5))


def lite_sampler(data: dict, precision: str = "float32"):
    r"""sda-lite's guided sampler: ``SDAGuidance`` around ``VPSDE(LocalScore(net))``."""

    from sda_lite.diffusion import VPSDE
    from sda_lite.guidance import SDAGuidance
    from sda_lite.observe import compose, every, select
    from sda_lite.score import LocalScore

    s, model = data["settings"], data["settings"]["model"]
    net = network(model)
    net.load_state_dict(data["lite"])
    shape, schedule = (
        (s["length"], model["features"]),
        {"alpha": model["alpha"], "eta": model["eta"]},
    )
    prior = VPSDE(LocalScore(net), shape, **schedule)
    A = compose(every(s["every"]), select(0))
    guided = SDAGuidance(data["y"], A, s["std"], prior, gamma=s["gamma"], precision=precision)
    sde = VPSDE(guided, shape, **schedule)

    def run() -> torch.Tensor:
        return sde.sample(
            s["samples"], steps=s["steps"], corrections=s["corrections"], tau=s["tau"]
        )

    return run, lambda: prior.eps(torch.zeros(1, *shape), torch.tensor(0.5))


def worker(kind: str, data_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    data = torch.load(data_path)
    if kind == "paper":
        run, warm = paper_sampler(data)
    else:
        run, warm = lite_sampler(data, "bfloat16" if kind == "lite-bf16" else "float32")
    with torch.no_grad():
        warm()  # one small evaluation: library loading and first-call costs out of the timing
    torch.manual_seed(data["settings"]["seed"])
    start = time.perf_counter()
    x = run()
    seconds = time.perf_counter() - start
    torch.save({"x": x, "seconds": seconds, "torch": str(torch.__version__)}, out_path)


# --------------------------------------------------------------------------------------------------
# The interleaved run


def cpu() -> dict:
    r"""The machine: CPU model, the flags that matter for float32 and bfloat16 matrix products."""

    path = Path("/proc/cpuinfo")
    lines = path.read_text().splitlines() if path.exists() else []
    field = lambda name: next(  # noqa: E731
        (line.split(":", 1)[1].strip() for line in lines if line.startswith(name)), ""
    )
    flags = field("flags").split()
    return {
        "cpu": field("model name") or platform.processor(),
        "cores": os.cpu_count(),
        **{flag: flag in flags for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--paper-python", default=os.environ.get("SDA_PAPER_PYTHON", "/tmp/sda_env/bin/python")
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument(
        "--bf16", action="store_true", help="also time sda-lite with bfloat16 where native"
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=PYTHON",
        help="also time sda-lite as another interpreter imports it (another checkout, before a change)",
    )
    parser.add_argument("--out", default=str(HERE / "results" / "paper_speed.json"))
    parser.add_argument("--worker", choices=("lite", "lite-bf16", "paper"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.data, args.result)

    from sda_lite.config import native_bfloat16

    torch.set_num_threads(1)
    s = settings(args.steps)
    net = network(s["model"])
    data = {"settings": s, "lite": net.state_dict(), "paper": paper_state(net)}
    data["y"] = observation(s["every"], s["std"])
    kinds = {"lite": (sys.executable, "lite"), "paper": (args.paper_python, "paper")}
    if args.bf16 and native_bfloat16():
        kinds["lite-bf16"] = (sys.executable, "lite-bf16")
    for also in args.also:
        name, _, python = also.partition("=")
        kinds[name] = (python, "lite")
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    times, samples, versions = {k: [] for k in kinds}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(data, f"{tmp}/data.pt")
        for r in range(args.rounds):
            for kind in list(kinds) if r % 2 == 0 else list(kinds)[::-1]:
                python, role = kinds[kind]
                out = f"{tmp}/{kind}.pt"
                cmd = [
                    python,
                    __file__,
                    "--worker",
                    role,
                    "--data",
                    f"{tmp}/data.pt",
                    "--result",
                    out,
                ]
                done = subprocess.run(cmd, env=env, cwd=tmp, stderr=subprocess.PIPE, text=True)
                if done.returncode:
                    raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
                result = torch.load(out)
                times[kind].append(result["seconds"])
                samples[kind], versions[kind] = result["x"], result["torch"]
                print(f"round {r + 1}: {kind:<9} {result['seconds']:7.2f} s", flush=True)

    lite, paper = samples["lite"], samples["paper"]
    finite = bool(torch.isfinite(lite).all() and torch.isfinite(paper).all())
    diff = (lite - paper).abs().max().item()
    median = {k: statistics.median(v) for k, v in times.items()}
    report = {
        "what": "SDA guided sampling, sda-lite vs the paper's code (francois-rozet/sda), interleaved",
        "command": "python benchmarks/bench_paper.py " + " ".join(sys.argv[1:]),
        "settings": s,
        "machine": cpu() | {"threads": 1, "native_bfloat16": native_bfloat16()},
        "torch": versions,
        "seconds": times,
        "median_seconds": median,
        "ratio": median["paper"] / median["lite"],
        "ratio_per_round": [p / q for p, q in zip(times["paper"], times["lite"])],
        "max_sample_difference": diff,
        "sample_scale": paper.abs().max().item(),
        "finite": finite,
    }
    for kind in kinds:
        if kind not in ("lite", "paper"):
            report[f"{kind}_ratio"] = median["paper"] / median[kind]
            report[f"{kind}_max_sample_difference"] = (samples[kind] - paper).abs().max().item()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    m = s["model"]
    print(f"\n{s['samples']} x {s['length']} states, k = {m['k']}, width {m['width']}, ", end="")
    print(f"depth {m['depth']}, {s['steps']} steps, C = {s['corrections']}, ", end="")
    print(f"gamma = {s['gamma']}, tau = {s['tau']}")
    machine = report["machine"]
    print(f"machine: {machine['cpu']}, 1 thread, avx512_bf16: {machine['avx512_bf16']}")
    for kind in kinds:
        rounds = ", ".join(f"{v:.2f}" for v in times[kind])
        print(f"{kind:<9} median {median[kind]:6.2f} s  ({rounds})")
    print(f"paper / sda-lite: {report['ratio']:.2f}x; max |x_lite - x_paper| = {diff:.2e}", end="")
    print(f" (samples up to {report['sample_scale']:.2f}, finite: {finite})")
    for kind in kinds:
        if kind not in ("lite", "paper"):
            ratio, error = report[f"{kind}_ratio"], report[f"{kind}_max_sample_difference"]
            print(f"paper / {kind}: {ratio:.2f}x; max |x_{kind} - x_paper| = {error:.2e}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
