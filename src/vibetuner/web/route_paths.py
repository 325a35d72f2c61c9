"""Route paths by name, without asking every route each time.

Starlette's ``Router.url_path_for`` asks each route in turn, and a route that does not
have the name answers by raising ``NoMatchFound``. A page that links to its items
(``path_for('show_note', note_id=...)`` in a loop) paid that for every link: fifty links
on an app of forty routes were about two thousand exceptions, most of the page's time.

Which route answers depends only on the name and the names of the parameters (a route
checks those, then fills in the values), so :class:`RoutePaths` asks the router once per
``(name, parameter names)`` and notes which route gave the answer. For a plain route
(Starlette's ``Route`` or ``WebSocketRoute``, FastAPI's ``APIRoute``) it keeps the
route's path as a template, split once into its fixed text and its parameters, and from
then on fills that in with the route's own convertors (``to_string``, which refuses the
values the route refuses): a dictionary look-up and a join per link. Other routes
(mounts, hosts) are asked directly. The notes are dropped whenever the app's routes are
added or removed. A name no route has is asked of the router each time (the app may add
the route later). The one difference from asking the router every time: when two routes
share a name and the first of them sits inside an included router or a mounted app that
only gains it after the name was first looked up, the second keeps answering.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from starlette.convertors import Convertor
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, NoMatchFound, Route, Router, WebSocketRoute

# A parameter in a route's ``path_format`` (``/notes/{note_id}``), as Starlette writes it.
PARAMETER = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")
PathProtocol = Literal["http", "websocket"]


class PathTemplate:
    """One route's path, split once: fixed text and parameters in turn."""

    __slots__ = ("convertors", "parts", "protocol")

    def __init__(
        self, path_format: str, convertors: dict[str, Convertor[Any]], protocol: PathProtocol
    ) -> None:
        self.parts = PARAMETER.split(path_format)
        self.convertors = convertors
        self.protocol = protocol

    def fill(self, params: dict[str, Any]) -> str:
        """The path with ``params`` in place, each through its route's convertor."""
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        filled = parts.copy()
        convertors = self.convertors
        for index in range(1, len(parts), 2):
            name = parts[index]
            filled[index] = convertors[name].to_string(params[name])
        return "".join(filled)


def template_of(route: BaseRoute) -> PathTemplate | None:
    """The path template of a plain route, or None (a mount, a host, a route of its own)."""
    # Only classes that keep Starlette's own ``url_path_for``: the template gives its answer.
    if isinstance(route, Route) and type(route).url_path_for is Route.url_path_for:
        return PathTemplate(route.path_format, route.param_convertors, "http")
    if (
        isinstance(route, WebSocketRoute)
        and type(route).url_path_for is WebSocketRoute.url_path_for
    ):
        return PathTemplate(route.path_format, route.param_convertors, "websocket")
    return None


class RoutePaths:
    """The route that answers each ``(name, parameter names)`` of one router."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._count = -1
        self._found: dict[tuple[str, frozenset[str]], BaseRoute | PathTemplate] = {}

    def text(self, name: str, /, **params: Any) -> str:
        """``str(router.url_path_for(name, **params))``; raises ``NoMatchFound`` the same way."""
        if len(self.router.routes) != self._count:
            self._found.clear()
            self._count = len(self.router.routes)
        found = self._found.get((name, frozenset(params)))
        if type(found) is PathTemplate:
            return found.fill(params)
        return str(self.path(name, **params))

    def path(self, name: str, /, **params: Any) -> URLPath:
        """``router.url_path_for(name, **params)``; raises ``NoMatchFound`` the same way."""
        if len(self.router.routes) != self._count:
            self._found.clear()
            self._count = len(self.router.routes)
        key = (name, frozenset(params))
        found = self._found.get(key)
        if isinstance(found, PathTemplate):
            return URLPath(found.fill(params), protocol=found.protocol)
        if found is not None:
            return found.url_path_for(name, **params)
        # The router's own answer; then which route gave it, to ask that one next time.
        path = self.router.url_path_for(name, **params)
        route = self._answering(name, params, path)
        if route is not None:
            template = template_of(route)
            same = template is not None and template.fill(params) == str(path)
            self._found[key] = template if template is not None and same else route
        return path

    def _answering(self, name: str, params: dict[str, Any], path: URLPath) -> BaseRoute | None:
        """The first of the router's routes that answers ``name``, if it gives ``path``."""
        for route in self.router.routes:
            try:
                answer = route.url_path_for(name, **params)
            except NoMatchFound:
                continue
            same = (str(answer), answer.protocol, answer.host) == (
                str(path),
                path.protocol,
                path.host,
            )
            return route if same else None
        return None


STATE_KEY = "vibetuner_route_paths"


def route_paths(app: Any) -> RoutePaths:
    """The :class:`RoutePaths` of ``app``'s router (one per app, made on first use)."""
    paths = getattr(app.state, STATE_KEY, None)
    if paths is None or paths.router is not app.router:
        paths = RoutePaths(app.router)
        setattr(app.state, STATE_KEY, paths)
    return paths


def route_path(app: Any, name: str, /, **params: Any) -> URLPath:
    """``app.url_path_for(name, **params)``, remembering which route answers the name."""
    return route_paths(app).path(name, **params)
