r"""The book executes once: nbval runs each chapter, and this plugin keeps what it ran.

With ``--book-build DIR`` (the Makefile passes ``book/_build/<scale>``), each chapter that nbval
executes without an error is stored, outputs and widget states included, in the jupyter cache
that ``jupyter-book build --path-output DIR`` reads (``DIR/_build/.jupyter_cache``). The HTML book
then shows the outputs of this very run and executes nothing again, and since the build folder is
named after the scale, a book of another scale never serves these outputs. Each chapter's
execution time goes to ``DIR/chapter_times.json``, with the scale and the machine. With
``--book-reuse``, chapters whose source already has outputs in that cache are not run again
(``make book``); without it every chapter runs (``make test``).

Chapters may execute in parallel (pytest-xdist, ``-n 2 --dist loadfile --no-loadscope-reorder``):
the cells of a chapter run in order on one worker. The chapters are queued longest first, by
their last measured times at this scale (:data:`TIMES`, then ``DIR/chapter_times.json``; chapters
never timed go first), so that no long chapter starts last and leaves one worker alone at the
end. Chapters that need the same dataset or prior take turns on it
(:func:`sda_lite.lock.exclusive`), and so do the writes to the cache and the times file.

The outputs are built as MyST-NB's own execution builds them: every kernel message that nbval
reads for a cell goes through nbclient's ``NotebookClient.process_message``, the code that
jupyter-cache runs, so cleared outputs, display updates and widget states come out alike; and the
stored notebook is MyST-NB's reading of the chapter's Markdown source, so that its cache key is
the one the book build computes. Without ``--book-build`` nbval runs as usual.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sda_lite.lock import exclusive

# the chapter times measured at each scale (benchmarks/chapter_times.py), that order the queue
TIMES = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "chapter_times.json"


def pytest_addoption(parser):
    group = parser.getgroup("book", "executing the book once (book/conftest.py)")
    group.addoption(
        "--book-build",
        metavar="DIR",
        help="store each executed chapter in the jupyter cache of DIR (named after SDA_SCALE) "
        "and its time in DIR/chapter_times.json",
    )
    group.addoption(
        "--book-reuse",
        action="store_true",
        help="with --book-build, skip chapters whose outputs are already in the cache",
    )


def pytest_configure(config):
    build = config.getoption("--book-build", default=None)
    if build:
        config.pluginmanager.register(_BookExecution(Path(build), config.option.book_reuse))


def machine() -> dict:
    r"""The machine that executes: CPU model, cores, GPU (or ``None``), torch and Python."""

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


@dataclass
class _Chapter:
    r"""One chapter being executed: MyST-NB's notebook of its source, filled cell by cell."""

    source: Path
    notebook: object  # nbformat.NotebookNode
    client: object  # nbclient.NotebookClient, used only to process the kernel's messages
    code: list[int]  # index in notebook.cells of each code cell, in order
    done: int = 0
    failed: bool = False
    start: float | None = None
    items: list = field(default_factory=list)


class _BookExecution:
    def __init__(self, build: Path, reuse: bool):
        from jupyter_cache import get_cache

        self.scale = os.environ.get("SDA_SCALE", "")
        if build.name != self.scale:
            raise pytest.UsageError(
                f"--book-build {build} is not named after the scale: expected SDA_SCALE set to "
                f"the folder's name, {build.name!r}; got SDA_SCALE={self.scale!r}"
            )
        self.build, self.reuse = build, reuse
        # where `jupyter-book build --path-output DIR` (MyST-NB) looks for executed notebooks
        with exclusive(build):
            self.cache = get_cache(str((build / "_build" / ".jupyter_cache").resolve()))
            self.cache.list_cache_records()  # creates the database, once
        self.chapters: dict[Path, _Chapter] = {}
        self.reused: list[str] = []

    # ---------------------------------------------------------------------------------------
    # Collection: match each notebook with its Markdown source, skip the cached ones if asked

    def pytest_collection_modifyitems(self, session, config, items):
        from nbval.plugin import IPyNbCell

        files: dict = {}
        for item in items:
            if isinstance(item, IPyNbCell):
                files.setdefault(item.parent, []).append(item)
        reused = []
        for file, cells in files.items():
            path = Path(str(file.fspath))
            chapter = self._chapter(path, [item.cell.source for item in cells])
            if self.reuse and self._cached(chapter.notebook):
                reused += cells
                continue
            chapter.items = cells
            self.chapters[path] = chapter
        if reused:
            config.hook.pytest_deselected(items=reused)
            skipped = set(reused)
            items[:] = [item for item in items if item not in skipped]
            self.reused = sorted({Path(str(item.parent.fspath)).stem for item in reused})
        seconds = self._expected_seconds()
        order = {file: i for i, file in enumerate(dict.fromkeys(item.parent for item in items))}
        items.sort(
            key=lambda item: (
                -seconds.get(Path(str(item.parent.fspath)).stem, float("inf")),
                order[item.parent],
            )
        )  # stable: the cells of a chapter stay together and in order

    def _expected_seconds(self) -> dict[str, float]:
        r"""Each chapter's last measured time at this scale, in seconds: the committed
        :data:`TIMES`, updated by this build folder's own ``chapter_times.json``."""

        seconds = {}
        for path, key in ((TIMES, self.scale), (self.build / "chapter_times.json", None)):
            try:
                times = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            times = times.get(key, {}) if key else times
            if times.get("scale") == self.scale:
                for name, chapter in times.get("chapters", {}).items():
                    seconds[name] = float(chapter["seconds"])
        return seconds

    def pytest_report_collectionfinish(self, config, start_path, items):
        if self.reused:
            return f"book: outputs at scale {self.scale} reused for {', '.join(self.reused)}"
        return None

    def pytest_sessionfinish(self, session, exitstatus):
        # every chapter was already executed (under xdist only the workers know which they
        # reused: the controller sees no test at all)
        if self.reuse and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK

    def _chapter(self, path: Path, sources: list[str]) -> _Chapter:
        from myst_nb.core.read import read_myst_markdown_notebook
        from myst_parser.config.main import MdParserConfig
        from nbclient import NotebookClient

        source = path.with_suffix(".md")
        if not source.exists():
            raise pytest.UsageError(f"{path}: no Markdown source {source.name} beside it")
        notebook = read_myst_markdown_notebook(
            source.read_text(encoding="utf-8"),
            config=MdParserConfig(enable_extensions=self._extensions(source.parent)),
            add_source_map=True,
            path=str(source),
        )
        code = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
        if [notebook.cells[i].source for i in code] != sources:
            raise pytest.UsageError(
                f"{path} does not hold the code of {source.name} ({len(sources)} code cells "
                f"against {len(code)}, or other code): run `make notebooks` to pair them again"
            )
        # the settings jupyter-cache executes with (no timing in the cells, streams as sent)
        client = NotebookClient(notebook, record_timing=False)
        return _Chapter(source, notebook, client, code)

    @staticmethod
    def _extensions(book: Path) -> set[str]:
        import yaml

        config = book / "_config.yml"
        if not config.exists():
            return set()
        parse = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("parse") or {}
        return set(parse.get("myst_enable_extensions") or [])

    def _cached(self, notebook) -> bool:
        try:
            self.cache.match_cache_notebook(notebook)
        except KeyError:
            return False
        return True

    # ---------------------------------------------------------------------------------------
    # Execution: time each chapter, record the messages of each cell

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        chapter = self.chapters.get(Path(str(item.fspath)))
        if chapter is not None and chapter.start is None:
            chapter.start = time.perf_counter()  # before nbval starts the kernel

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        chapter = self.chapters.get(Path(str(item.fspath)))
        if chapter is None:
            return (yield)
        file, kernel = item.parent, item.parent.kernel
        get, execute = file.get_kernel_message, kernel.execute_cell_input
        messages, ids = [], []

        def recorded_get(timeout=None, stream="iopub"):
            message = get(timeout=timeout, stream=stream)
            messages.append(message)
            return message

        def recorded_execute(source, allow_stdin=None):
            ids.append(execute(source, allow_stdin=allow_stdin))
            return ids[-1]

        file.get_kernel_message, kernel.execute_cell_input = recorded_get, recorded_execute
        try:
            result = yield
        except BaseException:
            chapter.failed = True
            raise
        finally:
            del file.get_kernel_message, kernel.execute_cell_input
        self._outputs(chapter, item, messages, ids[0] if ids else None, kernel.kc)
        chapter.done += 1
        if chapter.done == len(chapter.items) and not chapter.failed:
            self._store(chapter, kernel.kc)
        return result

    @staticmethod
    def _outputs(chapter: _Chapter, item, messages: list, msg_id, kc) -> None:
        r"""The cell's outputs, as ``NotebookClient.async_execute_cell`` builds them."""

        from nbclient.exceptions import CellExecutionComplete

        index = chapter.code[item.cell_num]
        cell = chapter.notebook.cells[index]
        client = chapter.client
        client.kc = kc  # an Output widget answers the kernel, as a front end does
        cell.outputs = []
        client.clear_before_next_output = False
        for message in messages:
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            try:
                client.process_message(message, cell, index)
            except CellExecutionComplete:
                break

    # ---------------------------------------------------------------------------------------
    # A chapter ran without error: cache its notebook, record its time

    def _store(self, chapter: _Chapter, kc) -> None:
        from jupyter_cache.base import CacheBundleIn

        seconds = time.perf_counter() - chapter.start
        reply_to = kc.kernel_info()
        while True:
            reply = kc.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == reply_to:
                break
        notebook = chapter.notebook
        if "language_info" in reply["content"]:
            notebook.metadata["language_info"] = reply["content"]["language_info"]
        chapter.client.set_widgets_metadata()
        with exclusive(self.build):
            self.cache.cache_notebook_bundle(
                CacheBundleIn(notebook, str(chapter.source), data={"execution_seconds": seconds}),
                check_validity=False,
                overwrite=True,
            )
            self._record_time(chapter.source.stem, seconds, len(chapter.code))

    def _record_time(self, name: str, seconds: float, cells: int) -> None:
        path = self.build / "chapter_times.json"
        here = machine()
        times = {"scale": self.scale, "machine": here, "chapters": {}}
        if path.exists():
            old = json.loads(path.read_text(encoding="utf-8"))
            if old.get("machine") == here and old.get("scale") == self.scale:
                times["chapters"] = old.get("chapters", {})
        times["chapters"][name] = {
            "seconds": round(seconds, 2),
            "code cells": cells,
            "executed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        times["chapters"] = dict(sorted(times["chapters"].items()))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(times, indent=1) + "\n", encoding="utf-8")
        temporary.replace(path)
