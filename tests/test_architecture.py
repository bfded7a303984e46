r"""The shape of the package, read from its source: imports point down only and never in a circle.

Three floors: generic machinery (no dynamical system), the systems above it, and on top the
widgets, the command line and the modules that keep earlier import paths working. Every
``import sda_lite...`` of every module counts, those inside functions (lazy imports) included.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sda_lite"
GENERIC = {
    "calibration",
    "chain",
    "checkpoints",
    "config",
    "diffusion",
    "distributed",
    "fields",
    "guidance",
    "io",
    "lock",
    "metrics",
    "baselines",
    "nets",
    "observe",
    "plots",
    "priors",
    "reproduction",
    "samplers",
    "schedule",
    "score",
    "spacetime",
    "training",
    "windows",
}
SYSTEMS = {"lorenz", "lorenz96", "linear", "kolmogorov", "scenarios"}
TOP = {
    "cli",
    "__main__",
    "widgets",
    "dynamics",
    "data",
    "train",
}  # dynamics, data, train: old import paths


def modules() -> dict[str, Path]:
    r"""Every module of the package by its name below ``sda_lite`` (``widgets.lorenz``, ...)."""

    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name or "__init__"] = path
    return found


def imports(path: Path) -> set[str]:
    r"""The ``sda_lite`` modules that a file imports, anywhere in it (``sda_lite.x.y`` -> ``x.y``)."""

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {
                f"{node.module}.{alias.name}" for alias in node.names
            }  # from sda_lite import x
    known = modules()
    return {n.removeprefix("sda_lite.") for n in names if n.startswith("sda_lite.")} & set(known)


def floor(name: str) -> str:
    top = name.split(".")[0]
    if top in GENERIC:
        return "generic"
    if top in SYSTEMS:
        return "systems"
    if top in TOP or name == "__init__":
        return "top"
    raise AssertionError(
        f"module sda_lite.{name} has no floor: add it to GENERIC, SYSTEMS or TOP in {__file__}"
    )


GRAPH = {name: imports(path) - {name} for name, path in modules().items()}
RANK = {"generic": 0, "systems": 1, "top": 2}


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_imports_point_down(name):
    up = sorted(other for other in GRAPH[name] if RANK[floor(other)] > RANK[floor(name)])
    assert not up, f"sda_lite.{name} ({floor(name)}) imports {up} from a floor above it"


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for other in sorted(GRAPH[name]):
            if state.get(other) == 1:
                cycle = path[path.index(other) :] + [other] if other in path else [name, other]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, path + [other])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_the_generic_floor_loads_no_system():
    import subprocess
    import sys

    code = (
        "import sys, sda_lite.guidance, sda_lite.observe, sda_lite.priors, sda_lite.training; "
        "bad = [m for m in sys.modules if m in ('jax', 'h5py') "
        "or m.startswith(('sda_lite.lorenz', 'sda_lite.kolmogorov'))]; "
        "print(bad); assert not bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
