"""``GET /health``: liveness plus database status."""

from __future__ import annotations

from typing import Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vibetuner.web.context import get_context
from vibetuner.web.routers import FlatRouter

router = FlatRouter(tags=["health"])


class HealthStatus(BaseModel):
    """Body of ``GET /health``."""

    status: Literal["ok", "error"]
    database: Literal["ok", "unreachable"]
    backend: Literal["memory", "mongodb"]


@router.get(
    "/health",
    summary="Service and database health",
    response_model=HealthStatus,
    responses={503: {"model": HealthStatus, "description": "The database does not answer"}},
)
async def health(request: Request) -> JSONResponse:
    """200 with ``{"status": "ok", "database": "ok"}``; 503 when MongoDB does not answer."""
    mongo = get_context(request).mongo
    reachable = mongo is not None and await mongo.ping()
    body = HealthStatus(
        status="ok" if reachable else "error",
        database="ok" if reachable else "unreachable",
        backend="memory" if mongo is not None and mongo.in_memory else "mongodb",
    )
    return JSONResponse(body.model_dump(), status_code=200 if reachable else 503)
