r"""Shared figure helpers and the colours every chapter uses.

The same quantity has the same colour everywhere in the book:

* ``TRUTH`` -- the ground-truth (hidden) state;
* ``OBS`` -- observations;
* ``POSTERIOR`` -- posterior samples drawn by score-based data assimilation;
* ``REFERENCE`` -- a reference posterior (Kalman smoother, particle filter);
* ``PRIOR`` -- samples from the (unconditional) diffusion prior;
* ``DATA`` -- samples from the training data.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

TRUTH = "#000000"
OBS = "#d62728"
POSTERIOR = "#1f77b4"
REFERENCE = "#ff7f0e"
PRIOR = "#2ca02c"
DATA = "#7f7f7f"

LORENZ_LABELS = ("$x_1$", "$x_2$", "$x_3$")


def band(
    ax: Axes,
    t: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    color: str,
    label: str | None = None,
    k: float = 2.0,
) -> None:
    r"""Draws ``mean`` as a line and ``mean +- k std`` as a shaded band over ``t``."""

    t, mean, std = (np.asarray(a, dtype=float) for a in (t, mean, std))
    ax.plot(t, mean, color=color, label=label)
    ax.fill_between(t, mean - k * std, mean + k * std, color=color, alpha=0.25, linewidth=0)


def trajectories(
    x: np.ndarray,
    labels: Sequence[str] = LORENZ_LABELS,
    color: str = POSTERIOR,
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
    alpha: float = 0.3,
    label: str | None = None,
    dt: float | None = None,
) -> Sequence[Axes]:
    r"""Plots trajectories ``x: (N, L, D)`` (or ``(L, D)``), one panel per variable, time on the x-axis.

    The time axis is in states, or in model time units when ``dt`` is given.
    """

    x = np.asarray(x, dtype=float)
    x = x[None] if x.ndim == 2 else x
    n, length, d = x.shape
    if axes is None:
        _, axes = plt.subplots(d, 1, figsize=(8, 1.8 * d), sharex=True, squeeze=False)
        axes = axes[:, 0]
        axes[-1].set_xlabel("time" if dt is not None else "state index $i$")
        if title:
            axes[0].set_title(title)
    t = np.arange(length) * (dt or 1)
    for j, ax in enumerate(axes):
        for i in range(n):
            ax.plot(
                t,
                x[i, :, j],
                color=color,
                alpha=alpha if n > 1 else 1.0,
                lw=1,
                label=label if i == 0 else None,
            )
        ax.set_ylabel(labels[j] if j < len(labels) else f"$x_{{{j + 1}}}$")
    return axes


def plot_history(
    history: dict[str, list[float]],
    ax: Axes | None = None,
    title: str = "Denoising score matching loss",
) -> Figure:
    r"""Plots the training and validation losses per epoch (log scale); returns the figure."""

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    epochs = range(1, len(history["train"]) + 1)
    ax.plot(epochs, history["train"], color=PRIOR, label="train")
    if any(v is not None for v in history.get("valid", [])):
        ax.plot(epochs, history["valid"], color=DATA, label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"loss $\| \epsilon_\phi(x(t), t) - \epsilon \|^2$")
    ax.set_title(title)
    ax.legend()
    return ax.figure
