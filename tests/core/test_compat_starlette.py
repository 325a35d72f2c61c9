"""The static-route index keeps Starlette's routing semantics while skipping the scan,
and the parts of Starlette it relies on behave as it expects."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Mount, Route, Router

from vibetuner._compat.starlette import StaticRouteIndex, index_static_routes


def build() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict:
        return {"route": "param", "id": item_id}

    @app.get("/items/special")
    async def special() -> dict:  # shadowed: the parameter route comes first
        return {"route": "special"}

    @app.get("/plain")
    async def plain_get() -> dict:
        return {"route": "plain-get"}

    @app.delete("/plain")
    async def plain_delete() -> dict:
        return {"route": "plain-delete"}

    @app.post("/form/{name}")
    async def form_any(name: str) -> dict:
        return {"route": "form-param", "name": name}

    @app.get("/form/fixed")
    async def form_fixed() -> dict:
        return {"route": "form-fixed"}

    app.router.routes.append(Mount("/static", app=PlainTextResponse("mounted")))
    index_static_routes(app.router)
    return app


@pytest.fixture
async def http():
    app = build()
    assert isinstance(app.router.middleware_stack, StaticRouteIndex)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, app


async def test_static_paths_and_methods_dispatch_as_before(http):
    client, _ = http
    assert (await client.get("/plain")).json() == {"route": "plain-get"}
    assert (await client.delete("/plain")).json() == {"route": "plain-delete"}
    put = await client.put("/plain")
    # The router answers as it did without the index (create_app's 405 handler then
    # lists every method of the path; see test_app).
    assert put.status_code == 405 and "GET" in put.headers["allow"]


async def test_an_earlier_parameter_route_still_wins(http):
    client, _ = http
    assert (await client.get("/items/special")).json() == {"route": "param", "id": "special"}


async def test_a_later_route_takes_what_the_static_one_refuses(http):
    client, _ = http
    # GET /form/fixed is static; a POST there belongs to the later parameter route.
    assert (await client.get("/form/fixed")).json() == {"route": "form-fixed"}
    assert (await client.post("/form/fixed")).json() == {"route": "form-param", "name": "fixed"}


async def test_mounts_redirects_and_url_building_still_work(http):
    client, app = http
    assert (await client.get("/static/anything")).text == "mounted"
    redirect = await client.get("/plain/")
    assert redirect.status_code == 307 and redirect.headers["location"].endswith("/plain")
    assert app.url_path_for("plain_get") == "/plain"
    assert (await client.get("/nowhere")).status_code == 404


async def test_routes_added_later_are_found(http):
    client, app = http
    await client.get("/plain")  # the index is built
    router = APIRouter()

    @router.get("/late")
    async def late() -> dict:
        return {"route": "late"}

    app.include_router(router)
    assert (await client.get("/late")).json() == {"route": "late"}


# The contract with Starlette the index relies on (see vibetuner/_compat/starlette.py).


async def test_contract_router_calls_its_middleware_stack_for_each_request():
    router = Router(routes=[Route("/x", PlainTextResponse("x"))])
    assert router.middleware_stack == router.app  # no router middleware: the plain loop
    seen: list[str] = []
    plain = router.middleware_stack

    async def recorder(scope, receive, send):
        seen.append(scope["path"])
        await plain(scope, receive, send)

    router.middleware_stack = recorder
    transport = httpx.ASGITransport(app=router)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/x")).text == "x"
    assert seen == ["/x"]


def test_contract_routes_expose_what_the_index_reads():
    static = Route("/a", PlainTextResponse("a"), methods=["GET"])
    dynamic = Route("/a/{name}", PlainTextResponse("a"))
    assert static.param_convertors == {} and set(dynamic.param_convertors) == {"name"}
    assert dynamic.path_regex.match("/a/b") and not static.path_regex.match("/a/b")
    scope = {"type": "http", "path": "/a", "method": "GET", "root_path": ""}
    match, child = static.matches(scope)
    assert match is Match.FULL and child["endpoint"] is static.endpoint
    assert static.matches({**scope, "method": "POST"})[0] is Match.PARTIAL


async def test_contract_the_index_leaves_scope_as_the_router_does(http):
    client, app = http
    seen: dict[str, object] = {}

    @app.get("/scope-check")
    async def scope_check(request: Request) -> dict:
        seen["router"] = request.scope.get("router")
        seen["route"] = request.scope.get("route")
        return {}

    await client.get("/scope-check")
    assert seen["router"] is app.router
    assert seen["route"] is next(r for r in app.router.routes if r.path == "/scope-check")
