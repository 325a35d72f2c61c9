"""The feature contract: what a feature (sign-in, blob storage, an app's own) adds to an app.

A feature is an object. ``create_app(features=[...])`` asks each one, in order, for what
it contributes, checks its settings and its dependencies on other features when the app
is built, and enters its ``lifespan`` at startup (after the database is ready; left in
reverse order at shutdown). Built-in features and an app's own use the same hooks::

    class SearchSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="SEARCH_")
        index_url: str = "memory://"

    class Search(Feature):
        name = "search"
        requires = ("auth",)
        settings_class = SearchSettings

        def routers(self) -> Sequence[APIRouter]:
            return [search_router]

        @asynccontextmanager
        async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
            index = await open_index(context.get(SearchSettings).index_url)
            context.provide(index)  # found by type: context.get(SearchIndex)
            yield

Nothing here imports FastAPI, Beanie or Typer at run time, so the contract stays cheap
to import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from vibetuner.errors import ConfigurationError

if TYPE_CHECKING:
    from beanie import Document
    from fastapi import APIRouter
    from pydantic_settings import BaseSettings
    from starlette.middleware import Middleware
    from starlette.routing import BaseRoute

    from vibetuner.config import Settings
    from vibetuner.context import AppContext
    from vibetuner.errors import VibetunerError
    from vibetuner.jobs.registry import JobTask

ExceptionHandler = Callable[..., Any]


class ErrorAnswer(NamedTuple):
    """How the error table answers one error class: its HTTP status and page title.

    The JSON answer is ``{"detail": str(error), "code": error.code}`` (for a status of
    500 and above the detail is a generic line: the message is about the server).
    ``message``, when given, is said instead: a sentence for people (translated on
    pages), with ``%(name)s`` placeholders filled from the error's ``public_values()``.
    """

    status: int
    title: str
    message: str = ""


@dataclass(frozen=True)
class SignIn:
    """Where a sign-in feature's pages are, by route name: how the rest of the app finds
    sign-in without knowing which feature provides it.

    The sign-in feature keeps one in the app's context (``context.provide(SignIn(...))``);
    the layout's user menu and ``RequireUser``'s redirect read it. An app without one
    has no sign-in button and answers 401 where a user is required.
    """

    login_route: str
    sign_out_route: str
    account_route: str | None = None


class Feature:
    """Base class of features; override only what the feature contributes."""

    #: A unique name other features refer to in ``requires``; also the name of its
    #: health check and of its command group (``vibetuner <name> ...``).
    name: ClassVar[str] = ""
    #: Names of features this one needs in the same app (checked by ``create_app``).
    requires: ClassVar[tuple[str, ...]] = ()
    #: The feature's own settings section: a pydantic-settings class with its own
    #: ``env_prefix``. ``create_app`` reads and validates it (a bad value stops the app
    #: with one line per variable, as the core settings do); ``context.get(TheClass)``
    #: returns the values.
    settings_class: ClassVar[type[BaseSettings] | None] = None

    def models(self) -> Sequence[type[Document]]:
        """Beanie documents to register at startup."""
        return ()

    def routers(self) -> Sequence[APIRouter]:
        """Routers to add to the app."""
        return ()

    def routes(self) -> Sequence[BaseRoute]:
        """Starlette routes and mounts (a whole sub-application), added after the routers."""
        return ()

    def middleware(self) -> Sequence[Middleware]:
        """ASGI middleware, outermost first."""
        return ()

    def template_dirs(self) -> Sequence[Path]:
        """Template folders searched after the app's own and before vibetuner's."""
        return ()

    def static_dirs(self) -> Sequence[Path]:
        """Folders of static files, served at ``/static`` after the app's own."""
        return ()

    def template_globals(self) -> Mapping[str, Any]:
        """Functions and values every template can use (``{{ plan_badge() }}``)."""
        return {}

    def template_filters(self) -> Mapping[str, Callable[..., Any]]:
        """Jinja filters every template can use (``{{ cents | money }}``)."""
        return {}

    def errors(self) -> Mapping[type[VibetunerError], ErrorAnswer]:
        """The feature's error classes and how to answer each (status and title).

        A route raises the error; the app's error table answers it, as JSON with the
        error's ``code`` for API clients and as the message page for browsers.
        """
        return {}

    def exception_handlers(self) -> Mapping[type[Exception] | int, ExceptionHandler]:
        """Exception handlers to add, for errors that are not ``VibetunerError`` s."""
        return {}

    def jobs(self) -> Sequence[JobTask]:
        """Background jobs this feature owns (``@task`` / ``@cron``), run by ``JobsFeature``."""
        return ()

    def check_settings(self, settings: Settings) -> list[str]:
        """Problems with ``settings`` that make this feature unusable, one sentence each."""
        return []

    async def check_ready(self, context: AppContext) -> list[str]:
        """The feature's health check: why it cannot serve right now, one sentence each.

        Shown under the feature's name in ``/health/ready`` (503 when not empty) and
        ``/health`` (``degraded``).
        """
        return []

    async def health_details(self, context: AppContext) -> Mapping[str, Any]:
        """Extra fields of the ``/health`` summary (the job queue's kind and depth)."""
        return {}

    def admin_views(self) -> Sequence[Any]:
        """starlette-admin views for ``/admin`` (``ModelView`` instances or classes).

        The admin feature collects them from every feature of the app.
        """
        return ()

    def commands(self) -> Any:
        """A ``typer.Typer`` of commands, run as ``vibetuner <name> ...`` in the project."""
        return None

    def lifespan(self, context: AppContext) -> AbstractAsyncContextManager[None]:
        """Open what the feature needs at startup and close it at shutdown."""
        return nullcontext()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def check_dependencies(features: Sequence[Feature]) -> None:
    """Raise ``ConfigurationError`` for duplicate names or a missing required feature."""
    seen: set[str] = set()
    for feature in features:
        if not feature.name:
            raise ConfigurationError(f"{type(feature).__name__} has no name")
        if feature.name in seen:
            raise ConfigurationError(f"the feature {feature.name!r} is added twice")
        seen.add(feature.name)
    for feature in features:
        missing = [name for name in feature.requires if name not in seen]
        if missing:
            raise ConfigurationError(
                f"the feature {feature.name!r} needs {', '.join(map(repr, missing))}; "
                "add it to create_app(features=[...])"
            )


def read_settings(feature: Feature) -> BaseSettings | None:
    """The feature's settings section read from the environment and ``.env``.

    A bad value raises ``ConfigurationError`` with one ``VARIABLE: what is wrong`` line
    per variable (the variable named with the section's prefix).
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from vibetuner.config_errors import settings_error_lines
    from vibetuner.errors import ConfigurationError

    kind = feature.settings_class
    if kind is None:
        return None
    try:
        return kind()
    except (ValidationError, SettingsError) as exc:
        prefix = str(kind.model_config.get("env_prefix") or "")
        lines = settings_error_lines(exc, prefix) or [str(exc)]
        raise ConfigurationError("; ".join(lines)) from None
