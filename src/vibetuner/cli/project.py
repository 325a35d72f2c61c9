"""The project in the current directory, as its ``pyproject.toml`` describes it.

A generated project says where its app and models are::

    [tool.vibetuner]
    app = "my_app.app:app"
    models = "my_app.models:MODELS"
    worker = "my_app.worker:build_context"    # what `vibetuner run worker` runs jobs with
    migrations = "migrations"
    css = "src/my_app/styles/app.css"          # Tailwind input (optional)
    css_output = "src/my_app/static/app.css"   # what `vibetuner css build` writes
    locales = "src/my_app/locales"             # translation catalogs (optional)
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ProjectError(Exception):
    """The project cannot be found or its ``[tool.vibetuner]`` table is wrong."""


@dataclass(frozen=True)
class Project:
    """Where a vibetuner project lives and what its ``[tool.vibetuner]`` table says."""

    root: Path
    app: str
    models: str | None
    migrations: Path
    css: Path | None = None
    css_output: Path | None = None
    locales: Path | None = None
    #: ``package.module:NAME`` of the job worker's context: an ``AppContext`` or a
    #: function that returns one (``create_context(...)``), imported without the web app.
    worker: str | None = None

    @property
    def source_dir(self) -> Path | None:
        """``src/`` when the project uses the src layout."""
        src = self.root / "src"
        return src if src.is_dir() else None

    def activate(self) -> None:
        """Make the project importable and its ``.env`` the one read, as a server would."""
        os.chdir(self.root)
        for path in (self.source_dir, self.root):
            if path is not None and str(path) not in sys.path:
                sys.path.insert(0, str(path))


def find_project(start: Path | None = None) -> Project:
    """The project whose ``pyproject.toml`` is in ``start`` (default: the current directory)
    or the nearest parent directory that has one."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return read_project(candidate)
    raise ProjectError(
        f"no pyproject.toml in {here} or its parents; run this inside a vibetuner project "
        "(create one with: vibetuner scaffold new DIR)"
    )


def read_project(pyproject: Path) -> Project:
    """Read the ``[tool.vibetuner]`` table of ``pyproject``."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(f"cannot read {pyproject}: {exc}") from None
    table: dict[str, Any] = data.get("tool", {}).get("vibetuner", {})
    app = table.get("app")
    if not isinstance(app, str) or not valid_spec(app):
        raise ProjectError(
            f"{pyproject} has no valid [tool.vibetuner] app entry; add one such as\n"
            '  [tool.vibetuner]\n  app = "my_app.app:app"'
        )
    models = table.get("models")
    if models is not None and (not isinstance(models, str) or not valid_spec(models)):
        raise ProjectError(
            f"[tool.vibetuner] models in {pyproject} must look like 'package.module:NAME', "
            f"got {models!r}"
        )
    worker = table.get("worker")
    if worker is not None and (not isinstance(worker, str) or not valid_spec(worker)):
        raise ProjectError(
            f"[tool.vibetuner] worker in {pyproject} must look like 'package.module:NAME', "
            f"got {worker!r}"
        )
    migrations = table.get("migrations", "migrations")
    if not isinstance(migrations, str):
        raise ProjectError(f"[tool.vibetuner] migrations in {pyproject} must be a folder name")
    root = pyproject.parent
    css_paths: list[Path | None] = []
    for key in ("css", "css_output"):
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise ProjectError(f"[tool.vibetuner] {key} in {pyproject} must be a file path")
        css_paths.append(root / value if value else None)
    css, css_output = css_paths
    locales = table.get("locales")
    if locales is not None and not isinstance(locales, str):
        raise ProjectError(f"[tool.vibetuner] locales in {pyproject} must be a folder path")
    if css is not None and css_output is None:
        raise ProjectError(
            f"[tool.vibetuner] in {pyproject} names a css input but no css_output to write"
        )
    return Project(
        root=root,
        app=app,
        models=models,
        migrations=root / migrations,
        css=css,
        css_output=css_output,
        locales=root / locales if locales else None,
        worker=worker,
    )


def valid_spec(spec: str) -> bool:
    """True for ``package.module:attribute`` with identifiers on both sides."""
    module, sep, attr = spec.partition(":")
    return bool(sep) and all(p.isidentifier() for p in module.split(".")) and attr.isidentifier()


def load_object(spec: str) -> Any:
    """Import ``package.module:attribute`` and return the attribute."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProjectError(
            f"cannot import {module_name!r} ({exc}); is the project installed (pip install -e .)?"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ProjectError(f"{module_name!r} has no attribute {attr!r}") from None
