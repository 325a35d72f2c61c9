"""Jinja2 templates: the app's own folders first, then the features', then vibetuner's.

An app overrides any framework page or email by putting a template with the same name
(``auth/login.html``, ``email/magic_link.html`` ...) in one of its folders, given to
``create_app(template_dirs=[...])`` or added later with :func:`add_template_dir`.
Pages are rendered with Starlette's ``Jinja2Templates`` on this environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from vibetuner import template_i18n
from vibetuner.user_agents import browser_name

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import HTMLResponse

ContextProcessor = Callable[["Request"], dict[str, Any]]


def template_environment(dirs: Sequence[str | os.PathLike[str]] = ()) -> jinja2.Environment:
    """An environment that looks in ``dirs`` (in order) and then in vibetuner's templates.

    HTML and XML templates are autoescaped; ``.txt`` templates (email text bodies,
    subjects) are not. ``_()``, ``{% trans %}`` and the ``date``, ``datetime``,
    ``number``, ``ago`` (``2 minutes ago``), ``filesize`` (``1.2 KB``) and ``browser``
    (``Chrome on Linux``) filters follow the current locale (``vibetuner.i18n``).
    """
    environment = jinja2.Environment(
        loader=_loader(dirs),
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    template_i18n.install(environment)
    environment.filters["browser"] = browser_name
    return environment


def _loader(dirs: Sequence[str | os.PathLike[str]]) -> jinja2.BaseLoader:
    return jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader([os.fspath(d) for d in dirs]),
            jinja2.PackageLoader("vibetuner", "templates"),
        ]
    )


class Templates:
    """The template folders and environment of one app, and page rendering.

    ``render`` is Starlette's ``Jinja2Templates.TemplateResponse`` (through
    ``jinja2-fragments``, for single blocks) with the context processors of the app
    (``app_name``, ``theme`` and whatever features add).
    """

    def __init__(self, dirs: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.dirs: list[Path] = [Path(d) for d in dirs]
        self.env = template_environment(self.dirs)
        self.context_processors: list[ContextProcessor] = []
        self._pages: Any = None

    def add_dir(self, directory: str | os.PathLike[str], *, first: bool = True) -> None:
        """Search ``directory`` before (or after) the folders known so far."""
        path = Path(directory)
        if first:
            self.dirs.insert(0, path)
        else:
            self.dirs.append(path)
        self.env.loader = _loader(self.dirs)
        if self.env.cache is not None:
            self.env.cache.clear()

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        *,
        blocks: Sequence[str] = (),
    ) -> HTMLResponse:
        """The page ``name`` rendered with ``context`` and the context processors.

        With ``blocks``, only those blocks of the template are rendered, one after the
        other (``jinja2-fragments``): the same template serves the full page and the
        fragment an htmx request swaps in.
        """
        if self._pages is None:
            from jinja2_fragments.starlette import Jinja2Blocks

            self._pages = Jinja2Blocks(env=self.env, context_processors=self.context_processors)
        response: HTMLResponse = self._pages.TemplateResponse(
            request,
            name,
            context or {},
            status_code=status_code,
            headers=headers,
            block_names=list(blocks),
        )
        return response
