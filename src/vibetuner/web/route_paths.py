"""Route paths by name, without asking every route each time.

Starlette's ``Router.url_path_for`` asks each route in turn, and a route that does not
have the name answers by raising ``NoMatchFound``. A page that links to its items
(``path_for('show_note', note_id=...)`` in a loop) paid that for every link: fifty links
on an app of forty routes were about two thousand exceptions, most of the page's time.

Which route answers depends only on the name and the names of the parameters (a route
checks those, then fills in the values), so :func:`route_path` asks the router once per
``(name, parameter names)``, notes which route gave the answer, and asks that route
directly from then on; the notes are dropped whenever the app's routes are added or
removed. A name no route has is asked of the router each time (the app may add the
route later). The one difference from asking the router every time: when two routes
share a name and the first of them sits inside an included router or a mounted app
that only gains it after the name was first looked up, the second keeps answering.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, NoMatchFound, Router


class RoutePaths:
    """The route that answers each ``(name, parameter names)`` of one router."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._count = -1
        self._found: dict[tuple[str, frozenset[str]], BaseRoute] = {}

    def path(self, name: str, /, **params: Any) -> URLPath:
        """``router.url_path_for(name, **params)``; raises ``NoMatchFound`` the same way."""
        if len(self.router.routes) != self._count:
            self._found.clear()
            self._count = len(self.router.routes)
        key = (name, frozenset(params))
        route = self._found.get(key)
        if route is not None:
            return route.url_path_for(name, **params)
        # The router's own answer; then which route gave it, to ask that one next time.
        path = self.router.url_path_for(name, **params)
        route = self._answering(name, params, path)
        if route is not None:
            self._found[key] = route
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


def route_path(app: Any, name: str, /, **params: Any) -> URLPath:
    """``app.url_path_for(name, **params)``, remembering which route answers the name."""
    paths = getattr(app.state, STATE_KEY, None)
    if paths is None or paths.router is not app.router:
        paths = RoutePaths(app.router)
        setattr(app.state, STATE_KEY, paths)
    return paths.path(name, **params)
