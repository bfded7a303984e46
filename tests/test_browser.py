r"""The built HTML book in a real browser: headless Chromium driven by Selenium.

Every page renders (a title and a heading), no image is missing (``naturalWidth > 0``), every equation
is typeset by the book's own MathJax (no network needed) without any MathJax error (a file that
failed to load, a missing font, a TeX error, a "Math Processing Error"), no widget is
left as an empty "requires a kernel" box, and no internal link is broken. Screenshots of a chapter
and of a panel's static figure go to ``screenshots/`` beside the HTML folder.

Needs the HTML build (``$SDA_BOOK_HTML``, as ``make browser`` sets it, else that of ``$SDA_SCALE``
(default ``ci``): ``book/_build/<scale>/_build/html``), Debian's ``chromium`` and
``chromium-driver`` and the ``selenium`` package; without them the tests skip, unless
``SDA_REQUIRE_BROWSER=1`` (as in CI), where they fail.
"""

import os
import re
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCALE = os.environ.get("SDA_SCALE", "ci")
HTML = Path(
    os.environ.get("SDA_BOOK_HTML", ROOT / "book" / "_build" / SCALE / "_build" / "html")
).resolve()  # absolute: the pages are opened as file:// URIs
SCREENSHOTS = HTML.parent / "screenshots"
CHROMIUM, CHROMEDRIVER = (
    shutil.which("chromium") or "/usr/bin/chromium",
    shutil.which("chromedriver") or "/usr/bin/chromedriver",
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _missing() -> str | None:
    if not (HTML / "index.html").exists():
        return f"no HTML build at {HTML} (make browser, or SDA_SCALE={SCALE} make book)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} not found (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed"
    return None


def _require() -> None:
    reason = _missing()
    if reason is not None:
        if os.environ.get("SDA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SDA_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


PAGES = sorted(p.name for p in HTML.glob("*.html")) if HTML.is_dir() else []


class _Links(HTMLParser):
    r"""Collects the ids of a page and the targets of its links and images."""

    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def driver():
    _require()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="sda-chromium-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(120)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(browser, page: str) -> None:
    browser.get((HTML / page).as_uri())
    # Wait until the page and its images are loaded (remote scripts fail fast: no network).
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const check = () => (document.readyState === 'complete' && [...document.images].every(i => i.complete))"
        " ? done() : setTimeout(check, 100); check();"
    )


# Every MathJax error, once MathJax is done: a file that failed to load (the "File failed to load:
# .../fonts/TeX/fontdata.js" banner of a font MathJax looks for and the book does not serve), a font
# it cannot find, a TeX parse error or a "Math Processing Error". MathJax 2 posts each of them as a
# signal, and its signals keep their history (``posted``), so a message that has already left the
# message box is still read; the box and the typeset equations are read too.
MATHJAX_ERRORS = r"""
const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.Hub) return done([]);
MathJax.Hub.Queue(() => {
  // Not /error/ alone: the 'TeX noErrors Ready' signal announces an extension, not an error.
  const bad = /load error|fail|can't find|no valid font|image fonts|parse error|processing error/i;
  const text = m => [].concat(m).map(x => (x && x.nodeType) ? `<${x.nodeName}>` : String(x)).join(' ');
  const signals = [MathJax.Hub.signal, MathJax.Hub.Startup && MathJax.Hub.Startup.signal];
  const found = signals.filter(s => s && s.posted).flatMap(s => s.posted.map(text)).filter(m => bad.test(m));
  const box = document.getElementById('MathJax_Message');
  if (box && bad.test(box.textContent)) found.push('message box: ' + box.textContent.trim());
  for (const e of document.querySelectorAll('[class*="MathJax"], .noError, merror')) {
    if (/Math Processing Error/.test(e.textContent) || e.matches('.noError, merror'))
      found.push('in an equation: ' + e.textContent.trim().slice(0, 120));
  }
  done([...new Set(found)]);
});
"""


def test_html_build_present():
    _require()
    assert PAGES, f"no pages in {HTML}"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_all_images(driver, page):
    _open(driver, page)
    assert driver.title.strip(), f"{page}: empty <title>"
    if page not in ("search.html", "genindex.html", "py-modindex.html"):
        headings = driver.execute_script(
            "return [...document.querySelectorAll('main h1, article h1')].map(h => h.textContent.trim())"
        )
        assert any(headings), f"{page}: no heading rendered"
    broken = driver.execute_script(
        "return [...document.images].filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src'))"
    )
    assert not broken, f"{page}: images that did not load: {broken}"
    # Equations are typeset by the book's own MathJax (no network): none is left as raw TeX.
    driver.set_script_timeout(120)
    raw = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (!document.querySelector('.math')) return done(0);"
        "if (!window.MathJax || !MathJax.Hub) return done('MathJax did not load');"
        "MathJax.Hub.Queue(() => done([...document.querySelectorAll('.math')]"
        ".filter(e => /\\\\[(\\[]/.test(e.innerText)).length));"
    )
    assert raw == 0, f"{page}: equations not typeset: {raw}"
    errors = driver.execute_async_script(MATHJAX_ERRORS)
    assert not errors, f"{page}: MathJax reported errors: {errors}"
    # A widget view renders from the widget state saved in the page (e.g. a finished progress bar),
    # or not at all: one without a state would be an empty box.
    stateless = driver.execute_script(
        f"const views = [...document.querySelectorAll('script[type=\"{WIDGET_VIEW}\"]')]"
        ".map(s => JSON.parse(s.textContent).model_id);"
        "const saved = [...document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-state+json\"]')]"
        "  .flatMap(s => Object.keys(JSON.parse(s.textContent).state));"
        "return views.filter(id => !saved.includes(id));"
    )
    assert not stateless, (
        f"{page}: widget view(s) without a saved state or a static figure: {stateless}"
    )


@pytest.mark.parametrize("page", PAGES)
def test_internal_links(page):
    _require()
    ids = {}
    broken = []
    for link in _parse(HTML / page).links:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or link.startswith("//"):
            continue  # external
        target = (HTML / page).parent / unquote(parts.path) if parts.path else HTML / page
        if not target.exists():
            broken.append(link)
        elif parts.fragment and target.suffix == ".html":
            if target not in ids:
                ids[target] = _parse(target).ids
            if unquote(parts.fragment) not in ids[target]:
                broken.append(link)
    assert not broken, f"{page}: broken internal links {broken}"


def _chapter(name: str) -> str:
    if f"{name}.html" not in PAGES:
        message = f"{name}.html is not in the build (is it in book/_toc.yml?)"
        if os.environ.get("SDA_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return f"{name}.html"


def test_screenshots_of_a_chapter_and_a_widget_figure(driver):
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = _chapter("playground")
    _open(driver, page)
    chapter = SCREENSHOTS / "playground.png"
    assert driver.save_screenshot(str(chapter))

    figures = driver.find_elements("css selector", "div.cell_output img")
    assert len(figures) >= 4, (
        f"{page}: expected the static figures of four panels, found {len(figures)}"
    )
    views = driver.find_elements("css selector", f'script[type="{WIDGET_VIEW}"]')
    assert not views, (
        f"{page}: the panels should show their PNG in the HTML book, not a widget view"
    )
    # The Lorenz panel's static figure, in its section of the playground.
    figure = driver.find_element("css selector", "section#lorenz-63-posteriors div.cell_output img")
    driver.execute_script("arguments[0].scrollIntoView()", figure)
    widget = SCREENSHOTS / "lorenz_panel.png"
    assert figure.screenshot(str(widget))
    for path in (chapter, widget):
        with Image.open(path) as image:
            assert min(image.size) > 100, (path, image.size)
            low, high = image.convert("L").getextrema()
            assert high - low > 100, f"{path} is blank"
    width = driver.execute_script("return arguments[0].naturalWidth", figure)
    assert width > 300, width
    assert re.search(r"Lorenz|posterior", driver.page_source)


# --------------------------------------------------------------------------------------------------
# A live panel in JupyterLab


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    r"""A JupyterLab server (no token) on a folder holding one notebook with the Gaussian panel."""

    import json
    import subprocess
    import sys
    import time
    import urllib.request

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            _fail_or_skip(f"{path} not found (apt-get install chromium chromium-driver)")
    try:
        import jupyterlab  # noqa: F401
        import selenium  # noqa: F401
    except ImportError as error:
        _fail_or_skip(f"{error.name} is not installed")

    root = tmp_path_factory.mktemp("lab")
    source = "from sda_lite.widgets import gaussian_panel\n\npanel = gaussian_panel(L=12, samples=64, steps=8)\npanel"
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "live.ipynb").write_text(json.dumps(notebook))
    port = _free_port()
    env = os.environ | {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--allow-root",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail("JupyterLab did not start within 60 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("SDA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SDA_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def test_live_panel_in_jupyterlab(lab):
    r"""Runs the notebook in JupyterLab, changes the panel's method in the browser and waits for the
    kernel's new figure: the whole loop, widget front end included."""

    import time

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="sda-chromium-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        wait = WebDriverWait(browser, 240, poll_frequency=0.25)
        browser.get(f"{lab}/lab/tree/live.ipynb")
        notebook = (
            "const app = window.jupyterapp; "
            "const w = app && [...app.shell.widgets('main')].find(w => w.sessionContext);"
        )
        wait.until(
            lambda b: b.execute_script(
                notebook
                + "const k = w && w.sessionContext.session && w.sessionContext.session.kernel; "
                "return !!k && k.status === 'idle'"
            )
        )
        browser.execute_script(
            notebook
            + "app.shell.activateById(w.id); return app.commands.execute('notebook:run-all-cells')"
        )
        image = "div.jp-OutputArea-output img.widget-image"
        wait.until(
            lambda b: b.execute_script(
                f"const i = document.querySelector('{image}'); return i && i.naturalWidth > 0"
            )
        )
        first = browser.execute_script(f"return document.querySelector('{image}').src")
        method = browser.find_elements(
            "css selector", "div.jp-OutputArea-output .widget-dropdown select"
        )[0]
        tic = time.perf_counter()
        Select(method).select_by_visible_text("mmps")
        wait.until(
            lambda b: b.execute_script(
                f"const i = document.querySelector('{image}'); "
                "return i && i.src !== arguments[0] && i.naturalWidth > 0",
                first,
            )
        )
        response = time.perf_counter() - tic
        status = browser.execute_script(
            "return [...document.querySelectorAll('div.jp-OutputArea-output .widget-html-content')]"
            ".map(e => e.textContent).join(' ')"
        )
        assert "figure in" in status and "error" not in status, status
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "jupyterlab_live_panel.png"))
        print(f"live panel: new figure {response:.1f} s after the change in the browser")
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
