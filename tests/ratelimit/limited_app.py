"""An app with rate-limited routes of every kind, for the rate-limit tests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request

from vibetuner import AdminFeature, AuthFeature, RateLimitFeature, create_app, rate_limit

router = APIRouter()


@router.get("/ping")
@rate_limit("3/minute", name="ping")
async def ping() -> dict[str, str]:
    return {"pong": "yes"}


@router.get("/burst")
@rate_limit("2/second;4/minute", name="burst")
async def burst() -> dict[str, str]:
    return {"ok": "yes"}


# Large enough for blocks of places (6, 5, ... 1) on the shared backends.
@router.get("/many")
@rate_limit("100/minute", name="many")
async def many() -> dict[str, str]:
    return {"ok": "yes"}


@router.get("/sync")
@rate_limit("2/minute")
def sync_route(request: Request) -> dict[str, str]:
    return {"path": request.url.path}


@router.get("/by-user")
@rate_limit("2/minute", key="user")
async def by_user() -> dict[str, str]:
    return {"ok": "yes"}


@router.get("/by-session")
@rate_limit("2/minute", key="session")
async def by_session() -> dict[str, str]:
    return {"ok": "yes"}


def tenant(request: Request) -> str | None:
    return request.headers.get("x-tenant")


@router.get("/by-tenant")
@rate_limit("2/minute", key=tenant, name="shared-name")
async def by_tenant() -> dict[str, str]:
    return {"ok": "yes"}


@router.get("/by-address-same-name")
@rate_limit("2/minute", name="shared-name")
async def by_address_same_name() -> dict[str, str]:
    return {"ok": "yes"}


@router.get("/notes/{note_id}")
@rate_limit("2/minute", name="note")
async def note(note_id: str) -> dict[str, str]:
    return {"id": note_id}


@router.post("/form")
@rate_limit("2/minute", name="form")
async def form(request: Request) -> dict[str, Any]:
    return dict(await request.form())


# One limit object on two routes: one budget, named after the first.
shared = rate_limit("2/minute")


@router.get("/shared/a")
@shared
async def shared_a() -> dict[str, str]:
    return {"route": "a"}


@router.get("/shared/b")
@shared
async def shared_b() -> dict[str, str]:
    return {"route": "b"}


# One budget for every route of the router.
api = APIRouter(prefix="/api", dependencies=[rate_limit("3/minute", name="api-router").depends])


@api.get("/a")
async def api_a() -> dict[str, str]:
    return {"route": "a"}


@api.get("/b")
async def api_b() -> dict[str, str]:
    return {"route": "b"}


def build(*, settings: Any) -> FastAPI:
    """The test app: the rate-limit, sign-in and admin features and the routes above."""
    features = [RateLimitFeature(), AuthFeature(), AdminFeature()]
    return create_app(settings=settings, features=features, routers=[router, api])
