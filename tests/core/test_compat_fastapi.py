"""Routers added flat behave as ``include_router``'s, and the parts of FastAPI that
``vibetuner/_compat/fastapi.py`` relies on behave as it expects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute, request_response

from vibetuner._compat.fastapi import add_router, can_flatten


def who() -> str:
    return "real"


def build_router() -> APIRouter:
    router = APIRouter(prefix="/things", tags=["things"])

    @router.get("/one")
    async def one(name: str = Depends(who)) -> dict[str, str]:
        return {"name": name}

    return router


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


async def test_a_plain_router_is_added_flat_and_keeps_overrides_prefix_and_tags():
    router = build_router()
    first, second = FastAPI(), FastAPI()
    add_router(first, router)
    add_router(second, router)  # one module-level router, two apps
    route = next(r for r in first.router.routes if getattr(r, "path", "") == "/things/one")
    assert isinstance(route, APIRoute) and route.tags == ["things"]
    first.dependency_overrides[who] = lambda: "override"
    assert (await get(first, "/things/one")).json() == {"name": "override"}
    assert (await get(second, "/things/one")).json() == {"name": "real"}
    assert "/things/one" in first.openapi()["paths"]


async def test_routers_with_a_lifespan_or_startup_are_included_as_fastapi_does():
    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        yield

    with_lifespan = APIRouter(lifespan=lifespan)
    with_startup = APIRouter(on_startup=[lambda: None])
    assert can_flatten(build_router())
    assert not can_flatten(with_lifespan)
    assert not can_flatten(with_startup)
    # A router with a router inside it is included as FastAPI does it, whether FastAPI
    # keeps the inner router as a branch (0.16x) or copies its routes and merges its
    # lifespan into the outer one (0.120).
    nested = APIRouter()
    nested.include_router(build_router())
    assert not can_flatten(nested)


# The contract with FastAPI.


def test_contract_a_plain_router_has_the_default_lifespan_type():
    assert type(APIRouter().lifespan_context) is type(FastAPI().router.lifespan_context)


async def test_contract_route_handler_is_rebuilt_around_the_overrides_provider():
    # What add_router does by hand is what APIRoute does when it is made: an ASGI app
    # from request_response(get_route_handler()), reading dependency_overrides_provider.
    app = FastAPI()
    router = build_router()
    [route] = [r for r in router.routes if isinstance(r, APIRoute)]
    assert route.dependency_overrides_provider is None
    route.dependency_overrides_provider = app
    route.app = request_response(route.get_route_handler())
    app.router.routes.append(route)
    app.dependency_overrides[who] = lambda: "seen"
    assert (await get(app, "/things/one")).json() == {"name": "seen"}
