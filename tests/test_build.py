r"""The book executes each chapter once, and keeps the outputs of each scale apart.

A throwaway book (the project's ``_config.yml``, ``_ext`` and ``conftest.py``, and one chapter
that prints the scale and appends a line to ``runs.txt`` each time it runs) is built with the
Makefile's own ``book`` target, pointed at it with ``BOOK=``: first at ``ci``, then at ``cpu``,
then at ``ci`` again. Each build executes the chapter under nbval and builds the HTML from what
nbval ran: one line per build that had to execute, none from the HTML build. The ``cpu`` build
executes again and its HTML shows ``cpu``; the second ``ci`` build reuses the outputs cached by
the first. About 30 seconds on a quiet 2-core machine.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# The scale

```{code-cell} ipython3
import os
from pathlib import Path

with Path("runs.txt").open("a") as f:  # one line each time this chapter runs
    f.write(os.environ["SDA_SCALE"] + "\\n")
print("executed at scale", os.environ["SDA_SCALE"])
```
"""


@pytest.fixture
def book(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    bin_ = Path(sys.executable).parent
    if not (bin_ / "jupyter-book").exists() or not (bin_ / "jupytext").exists():
        pytest.skip(f"jupyter-book and jupytext are not installed in {bin_}")
    book = tmp_path / "book"
    book.mkdir()
    for name in ("_config.yml", "conftest.py"):
        shutil.copy(ROOT / "book" / name, book / name)
    shutil.copytree(ROOT / "book" / "_ext", book / "_ext", ignore=shutil.ignore_patterns("__*"))
    (book / "_toc.yml").write_text("format: jb-book\nroot: scale\n")
    (book / "scale.md").write_text(CHAPTER)
    return book


def _make_book(book: Path, scale: str) -> str:
    r"""``SDA_SCALE=scale make book BOOK=book`` with this interpreter's environment (no install);
    returns the chapter's HTML."""

    env = {**os.environ, "SDA_SCALE": scale, "OMP_NUM_THREADS": "1"}
    env.pop("MPLBACKEND", None)
    # BIN: this interpreter's tools; STAMP empty: the environment is installed (no pip run)
    variables = [f"BOOK={book}", f"BIN={Path(sys.executable).parent}", "STAMP="]
    command = ["make", "-C", str(ROOT), "book", *variables]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = book / "_build" / scale / "_build" / "html" / "scale.html"
    assert html.exists(), f"no {html}: {result.stdout[-2000:]}"
    return html.read_text(encoding="utf-8")


def _runs(book: Path) -> list[str]:
    return (book / "runs.txt").read_text().split()


@pytest.mark.slow
def test_a_scale_change_executes_again_and_a_repeat_reuses(book):
    html = _make_book(book, "ci")
    assert "executed at scale ci" in html
    assert _runs(book) == ["ci"], "the chapter ran more than once in one build"
    times = json.loads((book / "_build" / "ci" / "chapter_times.json").read_text())
    assert times["scale"] == "ci" and times["chapters"]["scale"]["seconds"] > 0, times
    assert {"cpu", "cores", "torch"} <= set(times["machine"]), times

    html = _make_book(book, "cpu")
    assert "executed at scale cpu" in html and "executed at scale ci" not in html
    assert _runs(book) == ["ci", "cpu"]

    html = _make_book(book, "ci")
    assert "executed at scale ci" in html
    assert _runs(book) == ["ci", "cpu"], "a repeat at the same scale executed again"
    again = json.loads((book / "_build" / "ci" / "chapter_times.json").read_text())
    assert again == times


def test_chapters_are_queued_longest_first(book, tmp_path):
    r"""The chapters' cells are collected longest chapter first, by the times of the build folder
    (a chapter never timed first), each chapter's cells together and in order."""

    import jupytext

    for name in ("short", "long", "new"):
        text = CHAPTER.replace("# The scale", f"# {name}") + "\n```{code-cell} ipython3\n1\n```\n"
        (book / f"{name}.md").write_text(text)
        jupytext.write(jupytext.reads(text, fmt="md:myst"), book / f"{name}.ipynb")
    build = book / "_build" / "ci"
    build.mkdir(parents=True)
    times = {"short": {"seconds": 1.0}, "long": {"seconds": 10.0}}
    (build / "chapter_times.json").write_text(json.dumps({"scale": "ci", "chapters": times}))
    notebooks = [str(book / f"{name}.ipynb") for name in ("short", "long", "new")]
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "--nbval-lax"]
    command += ["-p", "no:cacheprovider", "--book-build", str(build), *notebooks]
    env = {**os.environ, "SDA_SCALE": "ci"}
    result = subprocess.run(command, cwd=book, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cells = [line for line in result.stdout.splitlines() if "::Cell" in line]
    expected = [f"{name}.ipynb::Cell {i}" for name in ("new", "long", "short") for i in (0, 1)]
    assert cells == expected, result.stdout
