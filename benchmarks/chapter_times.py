r"""Chapter execution times, from the book's builds into ``benchmarks/results/chapter_times.json``.

Every execution of the book (``make book``, ``make test``) records how long each chapter took, with
the scale and the machine (CPU model, cores, GPU, torch), in ``book/_build/<scale>/chapter_times.json``
(written by ``book/conftest.py``). This script gathers the builds found here into one results file,
one entry per scale, which the performance section of *Beyond the notebook* reads; the entries
of scales not built here are kept. It measures nothing itself: run ``make book`` (``cpu``) or
``make test`` (``ci``) first.

    python benchmarks/chapter_times.py               # every scale built here
    python benchmarks/chapter_times.py --scale cpu   # one scale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCALES = ("ci", "cpu", "full")


def gather(build: Path, out: Path, scales: list[str]) -> dict:
    r"""Merges ``build/<scale>/chapter_times.json`` of each of ``scales`` found into ``out``;
    returns the merged results ``{scale: {"scale", "machine", "chapters": {name: {"seconds",
    ...}}}}``."""

    results = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    found = []
    for name in scales:
        path = build / name / "chapter_times.json"
        if path.exists():
            times = json.loads(path.read_text(encoding="utf-8"))
            if times.get("scale") != name or not isinstance(times.get("chapters"), dict):
                raise ValueError(f"{path}: expected the chapter times of scale {name!r}")
            results[name] = times
            found.append(name)
    if not found:
        raise FileNotFoundError(
            f"no chapter times in {build}/<scale>/chapter_times.json for {', '.join(scales)}: "
            "run `make book` (cpu) or `make test` (ci) first"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    temporary.replace(out)
    return {name: results[name] for name in found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, action="append", help="default: every scale")
    parser.add_argument("--build", type=Path, default=ROOT / "book" / "_build")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "chapter_times.json"
    )
    args = parser.parse_args(argv)
    try:
        found = gather(args.build, args.out, args.scale or list(SCALES))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, times in found.items():
        machine = times["machine"]
        chapters = times["chapters"]
        total = sum(entry["seconds"] for entry in chapters.values())
        print(
            f"{name}: {len(chapters)} chapters, {total / 60:.1f} min in all "
            f"({machine.get('cpu')}, {machine.get('cores')} cores, torch {machine.get('torch')})"
        )
        for chapter, entry in sorted(chapters.items(), key=lambda item: -item[1]["seconds"]):
            print(f"  {chapter:28s} {entry['seconds']:8.1f} s")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
