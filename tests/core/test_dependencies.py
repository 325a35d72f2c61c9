"""Every package the code imports is declared in pyproject.toml, and the tested set is whole."""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Extras a user installs for a part of vibetuner (the others are for working on it).
RUNTIME_EXTRAS = ("memory", "s3", "css", "jobs", "redis", "otel", "prometheus", "sentry")
# What the generated app's own package is called in its template's imports.
APP_PACKAGE = "generated_app"


def declared(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in requirements}


def source_of(path: Path) -> str:
    """A file's Python source; a copier template has its Jinja tags taken out."""
    text = path.read_text()
    if path.suffix == ".jinja":
        text = re.sub(r"\{\{ package_name \}\}", APP_PACKAGE, text)
        text = re.sub(r"\{\{.*?\}\}", "x", text)
        text = re.sub(r"\{%.*?%\}", "", text)
    return text


def third_party_imports(root: Path) -> dict[str, set[str]]:
    """Top-level third-party module name -> the files under ``root`` that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*")):
        if not (path.suffix == ".py" or path.name.endswith(".py.jinja")):
            continue
        for node in ast.walk(ast.parse(source_of(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("vibetuner", APP_PACKAGE):
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def installed_modules() -> dict[str, list[str]]:
    return packages_distributions()


def distributions_of(module: str) -> set[str]:
    names = installed_modules().get(module)
    assert names, f"{module} is imported but no installed distribution provides it"
    return {canonicalize_name(name) for name in names}


def test_every_package_vibetuner_imports_is_declared():
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    runtime = declared(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        runtime |= declared(extras[extra])
    undeclared = []
    for module, files in third_party_imports(ROOT / "src" / "vibetuner").items():
        allowed = runtime
        if files == {"src/vibetuner/testing.py"}:
            # The pytest plugin is loaded by pytest only: pytest comes with the tests.
            allowed = runtime | declared(extras["test"])
        if not distributions_of(module) & allowed:
            undeclared.append(f"{module} (imported by {', '.join(sorted(files))})")
    assert undeclared == []


def test_every_package_a_generated_app_imports_is_declared():
    # The app's own dependencies (and its dev extra, for its tests), plus vibetuner's:
    # models, routes and settings are written with vibetuner's FastAPI, Beanie, pydantic.
    text = (ROOT / "scaffold_templates" / "project" / "pyproject.toml.jinja").read_text()
    text = re.sub(r"\{\{[^}]*tojson \}\}", '"x"', text)
    text = re.sub(r"\{\{ vibetuner_pin \}\}", ">=0.1", text)
    text = re.sub(r"\{%.*?%\}", "", text)
    app = tomllib.loads(re.sub(r"\{\{.*?\}\}", "x", text))["project"]
    allowed = (
        declared(app["dependencies"])
        | declared(app["optional-dependencies"]["dev"])
        | declared(PYPROJECT["project"]["dependencies"])
    )
    undeclared = [
        f"{module} (imported by {', '.join(sorted(files))})"
        for module, files in third_party_imports(ROOT / "scaffold_templates").items()
        if not distributions_of(module) & allowed
    ]
    assert undeclared == []


def test_the_in_memory_database_is_an_extra_of_its_own():
    project = PYPROJECT["project"]
    base = declared(project["dependencies"])
    memory = declared(project["optional-dependencies"]["memory"])
    assert memory == {"mongomock", "mongomock-motor"}
    assert not memory & base, "production installs leave the in-memory database out"
    assert memory <= declared(project["optional-dependencies"]["test"])


def test_constraints_pin_every_package_the_tests_install():
    # constraints.txt is scripts/update-constraints.sh's output: a == pin for each
    # requirement of the [test] extra and of the base install.
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            specifiers = list(requirement.specifier)
            assert len(specifiers) == 1 and specifiers[0].operator == "==", line
            pins[canonicalize_name(requirement.name)] = specifiers[0].version
    project = PYPROJECT["project"]
    for line in project["dependencies"] + project["optional-dependencies"]["test"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in constraints.txt: run scripts/update-constraints.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside {requirement}: "
            "run scripts/update-constraints.sh"
        )


def test_every_package_the_tests_import_is_declared():
    project = PYPROJECT["project"]
    allowed = declared(project["dependencies"])
    for extra in (*RUNTIME_EXTRAS, "test"):
        allowed |= declared(project["optional-dependencies"][extra])
    # tests: this suite's own helpers; robust_app: an app the robustness tests scaffold.
    local = {"tests", "robust_app"}
    undeclared = [
        f"{module} (imported by {', '.join(sorted(files))})"
        for module, files in third_party_imports(ROOT / "tests").items()
        if module not in local and not distributions_of(module) & allowed
    ]
    assert undeclared == []


# The modules whose job is an extra's, and that extra: only they may need its packages
# when imported. Everything else of vibetuner imports on `pip install vibetuner` alone.
EXTRA_MODULES = {
    "vibetuner.mongo_memory_client": "memory",
    "vibetuner.jobs.redis_queue": "jobs",
    "vibetuner.observability.otel": "otel",
    "vibetuner.observability.jobs": "otel",
    "vibetuner.observability.mongo": "otel",
    "vibetuner.observability.request_tags": "otel",
    "vibetuner.observability.sentry": "sentry",
}

IMPORT_ALL_BLOCKING = """
import importlib, json, pkgutil, sys

blocked, skip = set(sys.argv[1].split(",")) - {""}, set(sys.argv[2].split(",")) - {""}


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Refuse())
import vibetuner

failed = []
for info in pkgutil.walk_packages(vibetuner.__path__, "vibetuner."):
    if info.name in skip or info.name.endswith(".__main__"):  # __main__ runs the CLI
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as exc:
        failed.append(f"{info.name}: {exc}")
print(json.dumps(failed))
"""


def _requirement_closure(names: set[str]) -> set[str]:
    """``names`` and every installed distribution they require, transitively."""
    from importlib.metadata import PackageNotFoundError, requires

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            lines = requires(name) or []
        except PackageNotFoundError:
            continue
        for line in lines:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def _packages_of(distribution: str) -> set[str]:
    """The dotted names of ``distribution``'s outermost regular packages and modules (for a
    namespace such as ``opentelemetry``, the packages inside it that it ships)."""
    from importlib.metadata import files

    shipped = [str(f) for f in files(distribution) or [] if str(f).endswith(".py")]
    found: set[str] = set()
    for path in shipped:
        parts = path[: -len(".py")].split("/")
        if ".." in parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "bin":
            continue
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if depth == len(parts) or f"{prefix}/__init__.py" in shipped:
                found.add(".".join(parts[:depth]).removesuffix(".__init__"))
                break
    return found


def extra_only_modules(extras: tuple[str, ...]) -> set[str]:
    """The packages of the distributions that only ``extras`` bring: declared there, not in
    the base install nor required by anything it brings."""
    project = PYPROJECT["project"]
    names: set[str] = set()
    for extra in extras:
        names |= declared(project["optional-dependencies"][extra])
    names -= _requirement_closure(declared(project["dependencies"]))
    return {package for name in names for package in _packages_of(name)}


def imports_failing(blocked: set[str], skip: set[str]) -> list[str]:
    import json
    import os
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_BLOCKING, ",".join(sorted(blocked)), ",".join(skip)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        check=True,
    )
    failed: list[str] = json.loads(done.stdout.splitlines()[-1])
    return failed


def test_a_plain_install_imports_every_module_but_the_extras_own():
    blocked = extra_only_modules(RUNTIME_EXTRAS)
    assert {"mongomock", "coredis", "streaq", "opentelemetry.sdk.trace", "sentry_sdk"} <= blocked
    assert imports_failing(blocked, set(EXTRA_MODULES)) == []


def test_each_extras_own_modules_import_with_that_extra_alone():
    for extra in sorted(set(EXTRA_MODULES.values())):
        others = tuple(name for name in RUNTIME_EXTRAS if name != extra)
        blocked = extra_only_modules(others) - extra_only_modules((extra,))
        skip = {module for module, owner in EXTRA_MODULES.items() if owner != extra}
        assert imports_failing(blocked, skip) == [], f"with [{extra}] alone"
