"""The feature contract: what a feature (sign-in, blob storage, an app's own) adds to an app.

A feature is an object. ``create_app(features=[...])`` asks each one, in order, for its
models, routers, routes, middleware, template folders, exception handlers and jobs, checks its
settings and its dependencies on other features when the app is built, and enters its
``lifespan`` at startup (after the database is ready; left in reverse order at
shutdown). Built-in features and an app's own are written the same way::

    class Search(Feature):
        name = "search"
        requires = ("auth",)

        def routers(self) -> Sequence[APIRouter]:
            return [search_router]

        @asynccontextmanager
        async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
            context.extras["search_index"] = await open_index(context.settings)
            yield

Nothing here imports FastAPI or Beanie at run time, so the contract stays cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vibetuner.errors import ConfigurationError

if TYPE_CHECKING:
    from beanie import Document
    from fastapi import APIRouter
    from starlette.middleware import Middleware
    from starlette.routing import BaseRoute

    from vibetuner.config import Settings
    from vibetuner.context import AppContext
    from vibetuner.jobs.registry import JobTask

ExceptionHandler = Callable[..., Any]


class Feature:
    """Base class of features; override only what the feature contributes."""

    #: A unique name other features refer to in ``requires``.
    name: ClassVar[str] = ""
    #: Names of features this one needs in the same app (checked by ``create_app``).
    requires: ClassVar[tuple[str, ...]] = ()

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

    def exception_handlers(self) -> Mapping[type[Exception] | int, ExceptionHandler]:
        """Exception handlers to add (a feature's own error classes)."""
        return {}

    def jobs(self) -> Sequence[JobTask]:
        """Background jobs this feature owns (``@task`` / ``@cron``), run by ``JobsFeature``."""
        return ()

    def check_settings(self, settings: Settings) -> list[str]:
        """Problems with ``settings`` that make this feature unusable, one sentence each."""
        return []

    async def check_ready(self, context: AppContext) -> list[str]:
        """Why the feature cannot serve right now, one sentence each (``/health/ready``)."""
        return []

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
