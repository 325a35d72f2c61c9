"""A router whose route class only wraps the handler (``body_limit``) is added flat and
keeps its limit and the app's overrides; other route classes are included as before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute

from vibetuner._compat.fastapi import add_router, can_flatten, rebuilt_alike
from vibetuner._compat.starlette import StaticRouteIndex, index_static_routes
from vibetuner.web.body_limits import body_limit

LIMIT = 64


def who() -> str:
    return "real"


def limited_router() -> APIRouter:
    router = APIRouter(prefix="/forms", route_class=body_limit(LIMIT))

    @router.post("/send")
    async def send(request: Request, name: str = Depends(who)) -> dict[str, Any]:
        return {"name": name, "size": len(await request.body())}

    return router


async def post(app: FastAPI, path: str, body: bytes, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post(path, content=body, headers=headers)


async def test_a_body_limited_router_goes_flat_and_keeps_its_limit_and_overrides():
    router = limited_router()
    assert can_flatten(router)
    app = FastAPI()
    add_router(app, router)
    index_static_routes(app.router)
    assert isinstance(app.router.middleware_stack, StaticRouteIndex)
    [route] = [r for r in app.router.routes if getattr(r, "path", "") == "/forms/send"]
    assert isinstance(route, APIRoute)  # the route itself, not an included branch
    app.dependency_overrides[who] = lambda: "override"
    ok = await post(app, "/forms/send", b"x" * LIMIT)
    assert ok.status_code == 200 and ok.json() == {"name": "override", "size": LIMIT}
    # Declared too large: refused before the body is read.
    assert (await post(app, "/forms/send", b"x" * (LIMIT + 1))).status_code == 413


async def test_an_undeclared_body_over_the_limit_is_still_refused():
    app = FastAPI()
    add_router(app, limited_router())

    async def chunks() -> Any:
        for _ in range(4):
            yield b"y" * 40

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.post("/forms/send", content=chunks())
    assert answer.status_code == 413


def test_route_classes_that_change_more_than_the_handler_are_not_flattened():
    def subclass(**body: Any) -> type[APIRoute]:
        return type("Custom", (APIRoute,), body)

    def handler(self: APIRoute) -> Callable[..., Any]:
        return APIRoute.get_route_handler(self)

    def init(self: APIRoute, *args: Any, **kwargs: Any) -> None:
        APIRoute.__init__(self, *args, **kwargs)

    assert rebuilt_alike(APIRoute)
    assert rebuilt_alike(body_limit(10))
    assert rebuilt_alike(subclass(get_route_handler=handler))
    assert not rebuilt_alike(subclass(__init__=init))
    assert not rebuilt_alike(subclass(get_route_handler=handler, matches=APIRoute.matches))
    assert not rebuilt_alike(subclass(extra_setting=1))
    assert not rebuilt_alike(type("Deeper", (subclass(__init__=init),), {}))

    router = APIRouter(route_class=subclass(__init__=init))

    @router.get("/x")
    async def x() -> dict[str, str]:
        return {}

    assert not can_flatten(router)
