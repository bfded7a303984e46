"""pyproject.toml and environment.yml name the same dependencies with the same version bounds."""

import re
from pathlib import Path

import yaml

try:
    import tomllib  # Python >= 3.11
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package (the test extra has it)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def split(requirement: str) -> tuple[str, str]:
    requirement = requirement.split(";")[0]  # environment markers (python_version < '3.11') aside
    name, spec = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement).groups()
    name = re.sub(r"[-_.]+", "-", name).lower()
    return CONDA_NAMES.get(name, name), spec.replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for items in project["optional-dependencies"].values():
        reqs += [r for r in items if not r.startswith("sda-lite")]
    return dict(split(r) for r in reqs)


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    reqs = []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            reqs += [r for r in item["pip"] if not r.startswith("-e")]
        elif not item.startswith(("python=", "pip")) or item.startswith("pip "):
            reqs.append(item)
    return dict(split(r) for r in reqs)


def test_same_dependencies():
    assert conda_requirements() == pyproject_requirements()


def test_environment_installs_package_with_all_extras():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert "-e .[all]" in pip
    assert "conda-forge" in env["channels"]
    assert "python=3.11" in env["dependencies"]


def test_all_extra_covers_every_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"]) - {"all"}
    (all_,) = project["optional-dependencies"]["all"]
    assert set(re.search(r"\[(.*)\]", all_).group(1).split(",")) == extras


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_shipped_checkpoints_are_package_data():
    r"""Every file the package needs at run time (configs, shipped checkpoints) matches a glob of
    ``[tool.setuptools.package-data]``, so an installed ``sda-lite`` has them; and the lookup finds
    them next to the package, not by walking up to a checkout."""

    from fnmatch import fnmatch

    import sda_lite
    from sda_lite.checkpoints import SHIPPED

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    package = Path(sda_lite.__file__).parent
    files = [
        p.relative_to(package).as_posix()
        for d in ("configs", "shipped")
        for p in (package / d).rglob("*")
        if p.is_file()
    ]
    assert any(f.endswith("weights.pt") for f in files)
    missing = [f for f in files if not any(fnmatch(f, g) for g in globs["sda_lite"])]
    assert not missing, missing
    assert SHIPPED.parent == package
