r"""Figures of Kolmogorov-flow fields."""

from __future__ import annotations

import torch
from torch import Tensor


def plot_vorticity(
    w: Tensor,
    axes=None,
    titles: list[str] | None = None,
    vmax: float | None = None,
    label: str = "vorticity $\\omega$",
    colorbar: bool = True,
):
    r"""Draws vorticity fields ``w: (n, H, W)`` side by side, :math:`x` down and :math:`y` across
    (matplotlib's image convention), on a shared diverging colour scale; returns the figure.

    Arguments:
        w: The fields (a single ``(H, W)`` field is accepted).
        axes: ``n`` axes to draw on (default: a new row of panels).
        titles: One title per panel.
        vmax: The colour range :math:`[-v, v]` (default: the largest absolute value).
        label: The colour bar's label.
        colorbar: Whether to draw the colour bar.
    """

    import matplotlib.pyplot as plt

    w = torch.as_tensor(w).detach().cpu().float()
    w = w[None] if w.ndim == 2 else w
    if w.ndim != 3:
        raise ValueError(
            f"w has shape {tuple(w.shape)}: expected vorticity fields shaped (n, H, W)"
        )
    if axes is None:
        _, axes = plt.subplots(
            1, len(w), figsize=(2.2 * len(w) + 0.8, 2.4), squeeze=False, constrained_layout=True
        )
        axes = axes[0]
    vmax = float(w.abs().max()) if vmax is None else vmax
    for i, (ax, field) in enumerate(zip(axes, w)):
        image = ax.imshow(
            field.numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest"
        )
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if colorbar:
        axes[0].figure.colorbar(image, ax=list(axes), shrink=0.8, label=label)
    return axes[0].figure
