"""``GET /health``: liveness plus database status."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vibetuner.web.context import get_context

router = APIRouter(tags=["health"])


class HealthStatus(BaseModel):
    """Body of ``GET /health``.

    With ``JobsFeature``: ``jobs`` (the broker answers), ``jobs_backend`` and, with
    ``JOBS_HEALTH_DEPTH``, ``jobs_waiting``. A broker that does not answer makes the
    status ``degraded`` (pages still work; queuing a job does not).
    """

    status: Literal["ok", "degraded", "error"]
    database: Literal["ok", "unreachable"]
    backend: Literal["memory", "mongodb"]
    jobs: Literal["ok", "unreachable"] | None = None
    jobs_backend: Literal["in-process", "redis"] | None = None
    jobs_waiting: int | None = None


@router.get(
    "/health",
    summary="Service and database health",
    response_model=HealthStatus,
    responses={503: {"model": HealthStatus, "description": "The database does not answer"}},
)
async def health(request: Request) -> JSONResponse:
    """200 with ``{"status": "ok", "database": "ok"}``; 503 when MongoDB does not answer."""
    context = get_context(request)
    mongo = context.mongo
    reachable = mongo is not None and await mongo.ping()
    body = HealthStatus(
        status="ok" if reachable else "error",
        database="ok" if reachable else "unreachable",
        backend="memory" if mongo is not None and mongo.in_memory else "mongodb",
    )
    queue = context.extras.get("jobs")
    if queue is not None:
        answering = await queue.ping()
        body.jobs = "ok" if answering else "unreachable"
        body.jobs_backend = queue.kind
        if answering and context.settings.jobs_health_depth:
            body.jobs_waiting = await queue.depth()
        if not answering and reachable:
            body.status = "degraded"
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if reachable else 503)
