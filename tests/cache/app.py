"""An app with CacheFeature and routes that use each part of it, for the HTTP tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from vibetuner import (
    CurrentUser,
    RequireUser,
    UserModel,
    create_app,
    flash,
    render_page,
    require_scope,
)
from vibetuner.app import default_features
from vibetuner.cache import (
    CacheFeature,
    cache_control,
    cache_page,
    cached,
    invalidate_tags,
    make_etag,
    not_modified,
    set_validators,
)

TEMPLATES = Path(__file__).parent / "templates"
RUNS: Counter[str] = Counter()
CHANGED = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)

router = APIRouter()


@router.get("/public", dependencies=[Depends(cache_page(ttl=60, tags=["public"]))])
async def public(request: Request, user: CurrentUser) -> HTMLResponse:
    RUNS["public"] += 1
    who = user.email if user else "nobody"
    return render_page(request, "cache_test/page.html", {"runs": RUNS["public"], "who": who})


@router.get("/cookie", dependencies=[Depends(cache_page(ttl=60))])
async def sets_cookie(request: Request) -> HTMLResponse:
    RUNS["cookie"] += 1
    response = HTMLResponse(f"<p>runs={RUNS['cookie']}</p>")
    response.set_cookie("tracking", f"visitor-{RUNS['cookie']}")
    return response


@router.get("/mine", dependencies=[Depends(cache_page(ttl=60, signed_in=True))])
async def mine(request: Request, user: RequireUser) -> HTMLResponse:
    RUNS["mine"] += 1
    return render_page(request, "cache_test/page.html", {"runs": RUNS["mine"], "who": user.email})


@router.get("/api/mine", dependencies=[Depends(cache_page(ttl=60))])
async def api_mine(user: Annotated[UserModel, Depends(require_scope("read"))]) -> dict[str, str]:
    RUNS["api mine"] += 1
    return {"owner": user.email}


@router.get("/api/profile", dependencies=[Depends(cache_control("public, max-age=60"))])
async def api_profile(user: Annotated[UserModel, Depends(require_scope("read"))]) -> dict[str, str]:
    return {"owner": user.email}


@router.get("/notes/{note_id}", dependencies=[Depends(cache_page(ttl=60, tags=["note:{note_id}"]))])
async def note(request: Request, note_id: str) -> HTMLResponse:
    RUNS[f"note {note_id}"] += 1
    return HTMLResponse(f"<p>note {note_id}, runs={RUNS[f'note {note_id}']}</p>")


@router.get("/flash")
async def flash_then_public(request: Request) -> Response:
    flash(request, "A message for you alone")
    return JSONResponse({"flashed": True})


@router.post("/echo")
async def echo() -> dict[str, bool]:
    return {"ok": True}


@router.post("/touch/{tag}")
async def touch(tag: str) -> dict[str, bool]:
    await invalidate_tags(tag)
    return {"ok": True}


@router.get("/fragments")
async def fragments(request: Request, user: CurrentUser) -> HTMLResponse:
    RUNS["fragments"] += 1
    values = {"user": user, "runs": RUNS["fragments"], "total": RUNS["fragments"] * 10}
    return render_page(request, "cache_test/fragments.html", values)


@cached(ttl=60, key="slow-count")
async def slow_count() -> int:
    RUNS["slow_count"] += 1
    await asyncio.sleep(0.1)
    return 42


@router.get("/count")
async def count() -> dict[str, int]:
    return {"count": await slow_count()}


@router.get("/validated")
async def validated(request: Request) -> Response:
    RUNS["validated"] += 1
    tag = make_etag("document", "version 3")
    unchanged = not_modified(request, etag=tag, last_modified=CHANGED)
    if unchanged is not None:
        return unchanged
    return set_validators(Response("the document"), etag=tag, last_modified=CHANGED)


@router.get("/policy", dependencies=[Depends(cache_control("public, max-age=60"))])
async def policy() -> dict[str, Any]:
    return {"ok": True}


@router.get("/own-policy", dependencies=[Depends(cache_control("public, max-age=60"))])
async def own_policy() -> Response:
    return Response("x", headers={"Cache-Control": "no-cache"})


def cache_app(settings: Any) -> Any:
    """The test app: the default features, the cache, and the routes above."""
    return create_app(
        settings=settings,
        features=[*default_features(), CacheFeature()],
        routers=[router],
        template_dirs=[TEMPLATES],
    )
