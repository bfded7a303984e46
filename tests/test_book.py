r"""The book's chapters read as lessons, not as engineering notes.

Every *lesson* (a ``book/*.md`` with a jupytext header, except the engineering chapter
``beyond_the_notebook.md`` and the reference pages ``api.md`` and ``execution.md``):

* speaks of no engineering matter: issues, targets, benchmarks, CI, busy or 2-core machines,
  "our first" trials, machine timings such as "minutes on one core" (those belong to
  ``beyond_the_notebook.md``, section "How this book is built");
* opens with a goals admonition ("What you will learn"), has a "Summary" section and an exercise
  with a hidden (dropdown) answer;
* starts each hidden self-check cell (tag ``remove-cell``) with a one-line comment saying what it
  checks, and collapses it in JupyterLab (``jupyter: {source_hidden: true}``).

Every *executable* chapter (a ``book/*.md`` with a jupytext header, lessons and the engineering
chapter alike) keeps the lines of its code cells within 88 characters, so that the HTML book clips
none of them.

A failure names the file and the line. The checks read the Markdown sources only: no kernel, no
build, a fraction of a second.
"""

import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
NOT_LESSONS = {"beyond_the_notebook.md", "api.md", "execution.md"}
EXECUTABLE = sorted(
    p.name for p in BOOK.glob("*.md") if p.read_text(encoding="utf-8").startswith("---\njupytext:")
)
LESSONS = [name for name in EXECUTABLE if name not in NOT_LESSONS]
# The HTML book shows a code cell in a box about 88 characters wide; longer lines are clipped.
CODE_WIDTH = 88

# Engineering talk, matched in prose and in code comments (not in code itself, where a variable may
# be called ``target``). Each pattern has a name for the failure message.
ENGINEERING = {
    "issue": re.compile(r"\bissues?\b", re.IGNORECASE),
    # "does not target the posterior" is a verb, and fine
    "target": re.compile(r"\btargets?\b(?! the )", re.IGNORECASE),
    "benchmark": re.compile(r"benchmark", re.IGNORECASE),
    "CI": re.compile(r"\bCI\b"),
    "busy": re.compile(r"\bbusy\b", re.IGNORECASE),
    "our first": re.compile(r"\bour first\b", re.IGNORECASE),
    "2-core": re.compile(r"\b\d+-core\b", re.IGNORECASE),
    "machine timing": re.compile(
        r"\b(seconds?|minutes?|hours?|days?|GPU-hours|CPU minutes)\b,? on (one|a|an|this|the|\d)",
        re.IGNORECASE,
    ),
    "this machine": re.compile(r"\bthis machine\b", re.IGNORECASE),
}


def _cells(text: str):
    r"""Splits a MyST notebook into (kind, first line number, lines), kind one of "front",
    "markdown", "code"; code cells keep their option block (``:tags:`` or a YAML header)."""

    lines = text.split("\n")
    blocks, kind, start, current = [], "markdown", 1, []
    i = 0
    if lines and lines[0] == "---":
        end = lines.index("---", 1)
        blocks.append(("front", 1, lines[: end + 1]))
        i = end + 1
        start = i + 1
    while i < len(lines):
        line = lines[i]
        if kind == "markdown" and line.startswith("```{code-cell}"):
            blocks.append((kind, start, current))
            kind, start, current = "code", i + 1, [line]
        elif kind == "code" and line == "```":
            blocks.append((kind, start, current + [line]))
            kind, start, current = "markdown", i + 2, []
        else:
            current.append(line)
        i += 1
    blocks.append((kind, start, current))
    return blocks


def _code_options(cell: list[str]) -> tuple[dict, list[str], int]:
    r"""The options of a code cell (tags and the JupyterLab flags, as text) and its source lines,
    with the offset of the first source line."""

    body = cell[1:-1]
    options, offset = {}, 1
    if body and body[0] == "---":
        end = body.index("---", 1)
        header = "\n".join(body[1:end])
        options["header"] = header
        options["tags"] = re.findall(r"remove-cell|remove-input|remove-output|hide-input", header)
        options["source_hidden"] = bool(re.search(r"source_hidden:\s*true", header))
        body, offset = body[end + 1 :], offset + end + 1
    elif body and body[0].startswith(":tags:"):
        options["tags"] = re.findall(r"[\w-]+", body[0].split(":", 2)[2])
        options["source_hidden"] = False
        body, offset = body[1:], offset + 1
    while body and not body[0].strip():
        body, offset = body[1:], offset + 1
    return options, body, offset


def _read(name: str):
    return _cells((BOOK / name).read_text(encoding="utf-8"))


def test_lessons_found():
    assert len(LESSONS) >= 8, LESSONS
    assert "lorenz.md" in LESSONS and "beyond_the_notebook.md" not in LESSONS


@pytest.mark.parametrize("name", LESSONS)
def test_no_engineering_talk(name):
    hits = []
    for kind, start, lines in _read(name):
        if kind == "front":
            continue
        for n, line in enumerate(lines):
            if kind == "code":
                if "#" not in line:
                    continue
                # a comment (or a string with '#': rare, and checked too)
                line = line[line.index("#") :]
            for word, pattern in ENGINEERING.items():
                if pattern.search(line):
                    hits.append(f"book/{name}:{start + n}: {word!r}: {line.strip()}")
    assert not hits, (
        "engineering talk in a lesson (move it to beyond_the_notebook.md):\n" + "\n".join(hits)
    )


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_structure(name):
    text = (BOOK / name).read_text(encoding="utf-8")
    missing = []
    if not re.search(r"^```\{admonition\} What you will learn", text, re.MULTILINE):
        missing.append('a goals admonition ("```{admonition} What you will learn")')
    if not re.search(r"^## Summary\s*$", text, re.MULTILINE):
        missing.append('a "## Summary" section')
    exercise = re.search(r"^## Exercises?\b", text, re.MULTILINE)
    if not exercise:
        missing.append('an "## Exercise" section')
    elif not re.search(r":class: dropdown|\{dropdown\}", text[exercise.end() :]):
        missing.append("a hidden answer (a dropdown admonition) after the exercise")
    assert not missing, f"book/{name} lacks " + "; ".join(missing)


@pytest.mark.parametrize("name", LESSONS + ["beyond_the_notebook.md"])
def test_hidden_checks_are_commented_and_collapsed(name):
    bad = []
    for kind, start, lines in _read(name):
        if kind != "code":
            continue
        options, body, offset = _code_options(lines)
        if "remove-cell" not in options.get("tags", []):
            continue
        if not options.get("source_hidden"):
            bad.append(f"book/{name}:{start}: a remove-cell without 'jupyter: source_hidden: true'")
        if not body or not body[0].startswith("# "):
            bad.append(
                f"book/{name}:{start + offset}: a remove-cell not starting with a '# ...' comment"
            )
    assert not bad, "hidden self-checks:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", EXECUTABLE)
def test_code_lines_are_short(name):
    long = []
    for kind, start, lines in _read(name):
        if kind != "code":
            continue
        for n, line in enumerate(lines):
            if len(line) > CODE_WIDTH:
                long.append(f"book/{name}:{start + n}: {len(line)} characters: {line.strip()[:60]}")
    assert not long, (
        f"code lines longer than {CODE_WIDTH} characters (split them, or name an intermediate):\n"
        + "\n".join(long)
    )
