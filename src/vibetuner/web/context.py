"""How routes reach the ``AppContext``: ``Context`` (a dependency) and ``app_context``."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.routing import Router

from vibetuner.context import AppContext
from vibetuner.errors import ConfigurationError
from vibetuner.web.route_paths import RoutePaths

STATE_KEY = "vibetuner"


def app_context(app: Any) -> AppContext:
    """The context of an app made by ``create_app``."""
    context = getattr(app.state, STATE_KEY, None)
    if not isinstance(context, AppContext):
        raise ConfigurationError("this app was not made by vibetuner's create_app")
    return context


def get_context(request: Request) -> AppContext:
    """FastAPI dependency: the running app's context."""
    context: AppContext = request.app.state.vibetuner
    return context


Context = Annotated[AppContext, Depends(get_context)]


class RouterLinks:
    """``LinkBuilder`` on a router: ``BASE_URL`` + ``url_path_for(name, **params)``."""

    def __init__(self, router: Router, base_url: str) -> None:
        self.router = router
        self.base_url = base_url.rstrip("/")
        self._paths = RoutePaths(router)

    def url(self, name: str, /, **path_params: str) -> str:
        """The absolute URL of route ``name``."""
        return self.base_url + str(self._paths.path(name, **path_params))


def add_template_dir(app: Any, directory: str | os.PathLike[str]) -> None:
    """Search ``directory`` before the app's other template folders and vibetuner's own."""
    app_context(app).templates.add_dir(directory)
