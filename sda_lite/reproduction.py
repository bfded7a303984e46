r"""The paper's reported numbers beside the book's reproductions of them, run by run.

A chapter that reproduces a number of the paper calls :func:`record` with its value and settings;
the values land in ``data_dir() / "reproduction_{scale}.json"``, one file per scale. :func:`table`
lays the paper's numbers (``sda_lite/configs/paper_numbers.json``) beside the values of every scale,
read from those files or, for a scale that has not been run here, from the copy of a maintainer's
run shipped in ``sda_lite/shipped/`` (marked as such).
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

from sda_lite.checkpoints import SHIPPED
from sda_lite.config import SCALES, data_dir
from sda_lite.config import scale as get_scale
from sda_lite.io import write_json

PAPER = Path(__file__).resolve().parent / "configs" / "paper_numbers.json"


def paper() -> dict:
    r"""The paper's numbers: ``{"source": str, "numbers": {key: {"what": str, "paper": float}}}``."""

    return json.loads(PAPER.read_text())


def record(key: str, value: float, settings: dict, scale_name: str | None = None) -> None:
    r"""Stores the book's ``value`` of the paper's number ``key`` (see :func:`paper`) at a scale,
    with the ``settings`` it was computed with (merged into the file of that scale)."""

    numbers = paper()["numbers"]
    if key not in numbers:
        raise ValueError(f"unknown number {key!r}: expected one of {sorted(numbers)}")
    if not math.isfinite(value):
        raise ValueError(f"{key}: value {value!r} is not finite: expected a number")
    path = data_dir() / f"reproduction_{get_scale(scale_name)}.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    runs[key] = {
        "value": float(value),
        "settings": settings,
        "date": datetime.date.today().isoformat(),
    }
    write_json(path, runs)


def runs(scale_name: str) -> tuple[dict, str]:
    r"""The recorded values of a scale and where they come from (``"this machine"``, ``"shipped"``,
    or ``""`` when there are none)."""

    for path, origin in (
        (data_dir() / f"reproduction_{scale_name}.json", "this machine"),
        (SHIPPED / f"reproduction_{scale_name}.json", "shipped"),
    ):
        if path.exists():
            return json.loads(path.read_text()), origin
    return {}, ""


def table() -> str:
    r"""The reproduction table in Markdown: one row per number of the paper, its value there and at
    each scale (``—`` where not run), then the settings and the origin of each scale's values."""

    source, numbers = paper()["source"], paper()["numbers"]
    columns = {name: runs(name) for name in SCALES}
    lines = [
        "| number | paper | " + " | ".join(f"`{name}`" for name in SCALES) + " |",
        "|---|---|" + "---|" * len(SCALES),
    ]
    for key, entry in numbers.items():
        cells = [
            f"{columns[name][0][key]['value']:.3g}" if key in columns[name][0] else "—"
            for name in SCALES
        ]
        lines.append(f"| {entry['what']} | {entry['paper']:g} | " + " | ".join(cells) + " |")
    notes = [f"The paper: {source}."]
    for name, (values, origin) in columns.items():
        if values:
            settings = sorted({json.dumps(v["settings"], sort_keys=True) for v in values.values()})
            dates = sorted({v["date"] for v in values.values()})
            notes.append(f"`{name}` ({origin}, {', '.join(dates)}): " + "; ".join(settings) + ".")
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes)
