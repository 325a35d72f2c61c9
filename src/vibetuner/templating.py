"""Jinja2 templates: the app's own template directories first, then vibetuner's.

An app overrides any framework page or email by putting a template with the same
name (``auth/login.html``, ``email/magic_link.html`` ...) in one of its directories
and registering the directory with :func:`add_template_dir` before startup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

STATE_DIRS = "template_dirs"


def template_environment(dirs: Sequence[str | os.PathLike[str]] = ()) -> jinja2.Environment:
    """An environment that looks in ``dirs`` (in order) and then in vibetuner's templates.

    HTML and XML templates are autoescaped; ``.txt`` templates (email text bodies,
    subjects) are not.
    """
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader([os.fspath(d) for d in dirs]),
            jinja2.PackageLoader("vibetuner", "templates"),
        ]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    # --- page security: csrf_field(), csrf_meta(), csrf_token(), csp_nonce() ---
    from vibetuner.web.page_security import template_globals

    env.globals.update(template_globals())
    return env


def add_template_dir(app: Any, directory: str | os.PathLike[str]) -> None:
    """Search ``directory`` before the ones added earlier and before vibetuner's own."""
    dirs: list[Path] = list(getattr(app.state, STATE_DIRS, []))
    dirs.insert(0, Path(directory))
    setattr(app.state, STATE_DIRS, dirs)
    # Drop environments built from the old list.
    if hasattr(app.state, "jinja_env"):
        del app.state.jinja_env


def app_template_dirs(app: Any) -> list[Path]:
    """The directories registered with :func:`add_template_dir`, first searched first."""
    return list(getattr(app.state, STATE_DIRS, []))


def app_environment(app: Any) -> jinja2.Environment:
    """The app's shared environment, built on first use."""
    env = getattr(app.state, "jinja_env", None)
    if env is None:
        env = template_environment(app_template_dirs(app))
        app.state.jinja_env = env
    return env
