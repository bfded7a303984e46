r"""The shared panel: controls around a pure plotting function, and the helpers of the explorers.

:class:`Panel` draws its figure again whenever a control changes, inside a progress area, and keeps
the last images in a small LRU cache keyed on the parameters, so that moving a slider back is
instant. Displayed, a panel offers both the live widget and a PNG of its current figure: the HTML
book (``nb_mime_priority_overrides`` in ``book/_config.yml``) shows the PNG, a kernel shows the
widget.

The helpers build the controls (:func:`_slider`, :func:`_dropdown`, :func:`_checkbox`), check the
parameters (:func:`_check`), render figures (:func:`figure_png`) and key the caches (:func:`_key`);
the constants bound what the explorers offer.
"""

from __future__ import annotations

import base64
import io
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from sda_lite import plots

METHODS = ("sda", "dps", "mmps")
MAX_STEPS, MAX_SAMPLES, MAX_CORRECTIONS = 256, 256, 8
LIMITER = "step limiter (not in the paper)"  # the label of the limiter's control, not in the paper


def figure_png(fig: Figure) -> bytes:
    r"""The PNG bytes of a figure, at 80 dpi (what a panel shows)."""

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _key(params: dict[str, Any]) -> tuple:
    r"""A hashable cache key of parameters: sorted by name, lists and tuples as tuples."""

    return tuple(
        sorted(
            (name, tuple(v) if isinstance(v, (list, tuple)) else v) for name, v in params.items()
        )
    )


class Panel:
    r"""Controls around a pure plotting function ``plot(**params) -> Figure``.

    Whenever a control changes, the figure is drawn again (progress bars go to an output area) and
    shown as a PNG; the last ``cache`` images are kept, keyed on the parameters. Errors raised by
    ``plot`` are shown in the status line (ipywidgets would swallow them).

    Arguments:
        plot: The plotting function.
        controls: The ipywidgets value widgets, by the name of the parameter they set.
        fixed: Parameters passed to ``plot`` but not controlled.
        title: A heading shown above the controls.
        cache: The number of images kept.
        extra: Widgets shown before the controls that set no parameter themselves (e.g. presets).
        threads: The number of torch threads while drawing (restored afterwards), or None for
            torch's setting. One is the fastest for these small networks: on a busy 2-core machine
            two threads made the Lorenz panel ten times slower (``benchmarks/bench_widgets.py``).

    Attributes:
        widget: The ipywidgets ``VBox`` (controls, status, progress area, image).
        image: The ``Image`` widget holding the current PNG.
        status: The ``HTML`` status line: the time the figure took, or the error.
    """

    def __init__(
        self,
        plot: Callable[..., Figure],
        controls: dict[str, Any],
        fixed: dict[str, Any] | None = None,
        title: str = "",
        cache: int = 16,
        extra: list | None = None,
        threads: int | None = 1,
    ):
        import ipywidgets as widgets

        self.plot, self.controls, self.fixed = plot, controls, dict(fixed or {})
        self.images: OrderedDict[tuple, bytes] = OrderedDict()
        self.size, self.threads, self._held = cache, threads, False
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.status = widgets.HTML()
        self.output = widgets.Output()
        for control in controls.values():
            control.observe(lambda change: self.update(), names="value")
        boxes = widgets.Box(
            list(extra or []) + list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")
        )
        self.widget = widgets.VBox(
            [widgets.HTML(f"<b>{title}</b>"), boxes, self.status, self.output, self.image]
        )
        self.update()

    @property
    def params(self) -> dict[str, Any]:
        r"""The current parameters: the fixed ones and the controls' values."""

        return self.fixed | {name: control.value for name, control in self.controls.items()}

    def render(self, **params: Any) -> bytes:
        r"""The PNG of ``plot(**params)``, from the cache when it holds it."""

        key = _key(params)
        if key in self.images:
            self.images.move_to_end(key)
        else:
            self.images[key] = figure_png(self.plot(**params))
            if len(self.images) > self.size:
                self.images.popitem(last=False)
        return self.images[key]

    @contextmanager
    def hold(self) -> Iterator[None]:
        r"""Changes several controls at once: one update at the end instead of one per change."""

        self._held = True
        try:
            yield
        finally:
            self._held = False
            self.update()

    def update(self) -> None:
        r"""Draws the figure of the current parameters into :attr:`image`, or the error into
        :attr:`status`."""

        if self._held:
            return
        tic, threads = time.perf_counter(), torch.get_num_threads()
        self.status.value = "<i>computing…</i>"
        try:
            torch.set_num_threads(self.threads or threads)
            with self.output:
                self.image.value = self.render(**self.params)
            self.status.value = f"<small>figure in {time.perf_counter() - tic:.1f} s</small>"
        except Exception as error:  # shown, since ipywidgets would swallow it
            self.status.value = f"<span style='color:{plots.OBS}'><b>error:</b> {type(error).__name__}: {error}</span>"
        finally:
            torch.set_num_threads(threads)
            self.output.clear_output()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = self.widget._repr_mimebundle_(**kwargs)
        data["image/png"] = base64.b64encode(self.image.value).decode()
        return data


def _slider(kind: str, value, low, high, step=None, description: str = "", **kwargs):
    r"""A slider that updates on release: ``kind`` ``"int"``, ``"float"`` or ``"log"`` (bounds
    ``low`` and ``high`` in values, not in their logarithms)."""

    import ipywidgets as widgets

    cls = {"int": widgets.IntSlider, "float": widgets.FloatSlider, "log": widgets.FloatLogSlider}[
        kind
    ]
    if kind != "log":
        bounds = dict(min=low, max=high)
    else:
        bounds = dict(min=np.log10(low), max=np.log10(high))
    if step is not None:
        bounds["step"] = step
    style = {"description_width": "initial"}
    return cls(
        value=value,
        description=description,
        continuous_update=False,
        style=style,
        **bounds,
        **kwargs,
    )


def _dropdown(options, value, description: str):
    r"""A dropdown of ``options``."""

    import ipywidgets as widgets

    style = {"description_width": "initial"}
    return widgets.Dropdown(options=options, value=value, description=description, style=style)


def _checkbox(value: bool, description: str):
    r"""A checkbox."""

    import ipywidgets as widgets

    style = {"description_width": "initial"}
    return widgets.Checkbox(value=value, description=description, style=style)


def _check(name: str, value, low, high) -> None:
    r"""Raises ValueError, naming the parameter and the range, unless ``low <= value <= high``."""

    if not low <= value <= high:
        raise ValueError(f"{name}={value!r}: expected a value in [{low}, {high}]")
