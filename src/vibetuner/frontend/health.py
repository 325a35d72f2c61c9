"""``GET /health``: liveness plus database status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service and database health")
async def health(request: Request) -> JSONResponse:
    """200 with ``{"status": "ok", "database": "ok"}``; 503 when MongoDB does not answer."""
    mongo = getattr(request.app.state, "mongo", None)
    reachable = mongo is not None and await mongo.ping()
    backend = "memory" if mongo is not None and mongo.in_memory else "mongodb"
    if not reachable:
        return JSONResponse(
            {"status": "error", "database": "unreachable", "backend": backend}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok", "backend": backend})
