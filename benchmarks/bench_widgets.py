r"""Response time of the Lorenz posterior explorer: a control change to a new figure.

Drives :func:`sda_lite.widgets.lorenz_panel` at its default settings as a reader would: the first
figure, a change of a sampler parameter (gamma: the particle filter is cached), a change of the
observations (sigma_y: the filter runs again), and a move back (from the cache). Prints wall and
process CPU times, and the machine's load, since the times scale with it.

    .venv/bin/python benchmarks/bench_widgets.py [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads while the panel draws (Panel.threads)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="changes of each kind")
    args = parser.parse_args()
    from sda_lite import widgets

    def timed(what: str, action) -> float:
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{what:<44} {wall:6.2f} s wall {cpu:6.2f} s cpu   load {os.getloadavg()[0]:.1f}   {panel.status.value}",
            flush=True,
        )
        return wall

    panel = None
    start = time.perf_counter()
    widgets.lorenz_window_prior(2)  # loading the checkpoint is not a response
    print(
        f"prior loaded in {time.perf_counter() - start:.1f} s; {os.cpu_count()} cores, "
        f"{args.threads} torch thread(s) after the first figure"
    )

    def make() -> None:
        nonlocal panel
        panel = widgets.lorenz_panel()
        panel.threads = args.threads

    timed("first figure (particle filter + SDA)", make)
    gamma, sigma = panel.controls["gamma"], panel.controls["sigma_y"]
    times = {"gamma": [], "sigma_y": []}
    for i in range(args.repeat):
        g = 3e-2 * 2 ** (i + 1)
        times["gamma"].append(
            timed(f"gamma -> {g:.3g} (filter cached)", lambda g=g: setattr(gamma, "value", g))
        )
        s_prev, s = sigma.value, 0.05 * (1 + (i + 1) / 10)
        times["sigma_y"].append(
            timed(f"sigma_y -> {s:.3g} (filter runs again)", lambda s=s: setattr(sigma, "value", s))
        )
    timed(f"sigma_y back to {s_prev:.3g} (image cache)", lambda: setattr(sigma, "value", s_prev))
    for name, values in times.items():
        print(f"median response to a {name} change: {sorted(values)[len(values) // 2]:.2f} s")


if __name__ == "__main__":
    main()
