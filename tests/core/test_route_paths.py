"""``route_path`` answers exactly as the app's ``url_path_for``, the first time and after."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, NoMatchFound, Route, Router, WebSocketRoute

from vibetuner.web.route_paths import RoutePaths, route_path, route_paths


async def endpoint() -> PlainTextResponse:
    return PlainTextResponse("")


class CustomRoute(APIRoute):
    """A route class of its own: FastAPI keeps its router as an included branch."""


def build() -> FastAPI:
    app = FastAPI()
    app.add_api_route("/plain", endpoint, name="plain")
    app.add_api_route("/items/{item_id}", endpoint, name="item")
    app.add_api_route("/items/{item_id}/{part}", endpoint, name="item")  # same name, more params
    app.add_api_route("/first/{value}", endpoint, name="twice")
    app.add_api_route("/second/{value}", endpoint, name="twice")  # shadowed by the first
    app.add_api_route("/pages/{n:int}/{slug:path}", endpoint, name="page")
    app.router.routes.append(WebSocketRoute("/live/{room}", endpoint, name="live"))
    inner = Router([Route("/file/{name}", endpoint, name="file")])
    app.router.routes.append(Mount("/files", app=inner, name="files"))
    app.router.routes.append(
        Mount("/anon", app=Router([Route("/x/{n:int}", endpoint, name="anon")]))
    )
    branch = APIRouter(prefix="/notes", route_class=CustomRoute)
    branch.add_api_route("/{note_id}/edit", endpoint, name="edit_note")
    app.include_router(branch)
    return app


CASES = [
    ("plain", {}),
    ("item", {"item_id": "a b"}),
    ("item", {"item_id": "a", "part": "b"}),
    ("twice", {"value": "v"}),
    ("files", {"path": "/x/y.css"}),
    ("files:file", {"name": "report.pdf"}),
    ("anon", {"n": 7}),
    ("edit_note", {"note_id": "65a0"}),
    ("page", {"n": 3, "slug": "a/b c"}),
    ("live", {"room": "r1"}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_the_same_answer_as_the_router_first_and_then(name, params):
    app = build()
    for _ in range(3):  # the first look-up, then the remembered route
        assert route_path(app, name, **params) == app.url_path_for(name, **params)
    changed = {
        key: f"{value}-2" if isinstance(value, str) else value + 1 for key, value in params.items()
    }
    assert route_path(app, name, **changed) == app.url_path_for(name, **changed)
    expected = app.url_path_for(name, **changed)
    assert route_path(app, name, **changed).protocol == expected.protocol
    # What templates get: the same text, from the route's template once it is known.
    paths = route_paths(app)
    for _ in range(2):
        assert paths.text(name, **changed) == str(expected)


@pytest.mark.parametrize(
    ("name", "params"),
    [("nowhere", {}), ("plain", {"extra": "1"}), ("item", {}), ("files:nothing", {"name": "x"})],
)
def test_unknown_names_and_parameters_are_refused_the_same_way(name, params):
    app = build()
    for _ in range(2):
        with pytest.raises(NoMatchFound):
            app.url_path_for(name, **params)
        with pytest.raises(NoMatchFound):
            route_path(app, name, **params)


def test_a_value_the_route_refuses_is_refused_each_time():
    app = build()
    assert route_path(app, "anon", n=3) == "/anon/x/3"
    with pytest.raises(AssertionError):  # Starlette's int convertor: no negative numbers
        route_path(app, "anon", n=-1)
    paths = route_paths(app)
    assert paths.text("page", n=1, slug="x") == "/pages/1/x"
    for _ in range(2):  # through the route's template, as through the router
        with pytest.raises(AssertionError):
            app.url_path_for("page", n=-1, slug="x")
        with pytest.raises(AssertionError):
            paths.text("page", n=-1, slug="x")
    for _ in range(2):  # the other parameter names are another look-up
        with pytest.raises(NoMatchFound):
            paths.text("page", n=1)


def test_routes_added_later_are_seen():
    app = build()
    with pytest.raises(NoMatchFound):
        route_path(app, "late")
    assert route_path(app, "twice", value="v") == "/first/v"
    app.add_api_route("/late", endpoint, name="late")
    assert route_path(app, "late") == "/late"
    # A route put in front with a name already looked up answers from now on, as it does
    # for the router.
    app.router.routes.insert(0, Route("/zeroth/{value}", endpoint, name="twice"))
    assert route_path(app, "twice", value="v") == app.url_path_for("twice", value="v")
    assert route_path(app, "twice", value="v") == "/zeroth/v"
    assert route_paths(app).text("twice", value="v") == "/zeroth/v"


def test_a_router_of_its_own_per_app():
    first, second = build(), build()
    second.router.routes.insert(0, Route("/other", endpoint, name="plain"))
    assert route_path(first, "plain") == "/plain"
    assert route_path(second, "plain") == "/other"
    assert RoutePaths(first.router).path("item", item_id="1") == "/items/1"
