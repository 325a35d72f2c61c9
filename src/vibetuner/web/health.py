"""Health probes: ``/health/live`` (the process answers), ``/health/ready`` (it can serve:
database, job broker, migrations applied, each feature's own checks) and ``/health``,
the summary it always was."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from vibetuner.context import AppContext
from vibetuner.features import Feature
from vibetuner.migrations import migration_files, pending_migrations, project_migrations_folder
from vibetuner.web.context import get_context

router = APIRouter(tags=["health"])


class HealthStatus(BaseModel):
    """Body of ``GET /health``.

    ``checks`` holds each feature's health check (``"ok"`` or what is wrong); a failing
    one makes the status ``degraded`` (pages still work; that feature does not). Features
    add fields of their own (``Feature.health_details``): with ``JobsFeature``, ``jobs``
    (the broker answers), ``jobs_backend`` and, with ``JOBS_HEALTH_DEPTH``,
    ``jobs_waiting``.
    """

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded", "error"]
    database: Literal["ok", "unreachable"]
    backend: Literal["memory", "mongodb"]
    checks: dict[str, str] | None = None


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
    checks = await feature_checks(context)
    if checks:
        body.checks = checks
    if reachable and any(value != "ok" for value in checks.values()):
        body.status = "degraded"
    answer = body.model_dump(exclude_none=True)
    for feature in context.features:
        try:
            details = await feature.health_details(context)
        except Exception as exc:  # a broken hook is reported, never a 500
            details = {feature.name: f"the check failed: {type(exc).__name__}"}
        answer.update({key: value for key, value in details.items() if key not in answer})
    return JSONResponse(answer, status_code=200 if reachable else 503)


async def feature_checks(context: AppContext) -> dict[str, str]:
    """Each feature's health check (``Feature.check_ready``) by feature name: ``"ok"``
    or its problems; features without a check are left out."""
    checks: dict[str, str] = {}
    for feature in context.features:
        try:
            problems = await feature.check_ready(context)
        except Exception as exc:  # a broken check is a failed check, not a 500
            problems = [f"the check failed: {type(exc).__name__}"]
        if problems or type(feature).check_ready is not Feature.check_ready:
            checks[feature.name] = "; ".join(problems) or "ok"
    return checks


class LiveStatus(BaseModel):
    """Body of ``GET /health/live``."""

    status: Literal["ok"]


class ReadyStatus(BaseModel):
    """Body of ``GET /health/ready``: each check is ``"ok"`` or says what is wrong."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str]


@router.get("/health/live", summary="The process answers", response_model=LiveStatus)
async def live() -> JSONResponse:
    """200 whenever the server can answer at all: restart the process when it does not.

    Nothing else is checked (a database outage is no reason to restart the app).
    """
    return JSONResponse({"status": "ok"})


@router.get(
    "/health/ready",
    summary="The app can serve requests",
    response_model=ReadyStatus,
    responses={503: {"model": ReadyStatus, "description": "A check failed"}},
)
async def ready(request: Request) -> JSONResponse:
    """200 when the database answers, the job broker (Redis) answers when configured,
    every migration is applied and each feature's own checks pass; 503 naming the
    failures otherwise (send no traffic to this instance until it is ready)."""

    context = get_context(request)
    checks: dict[str, str] = {}
    mongo = context.mongo
    reachable = mongo is not None and await mongo.ping()
    checks["database"] = "ok" if reachable else "unreachable"
    if reachable and mongo is not None:
        try:
            pending = await pending_migrations(mongo.database, project_migrations())
        except Exception:  # the database went away between the two calls
            checks["migrations"] = "unknown: the database did not answer"
        else:
            checks["migrations"] = (
                "ok"
                if not pending
                else "pending (run `vibetuner db migrate`): " + ", ".join(pending)
            )
    checks.update(await feature_checks(context))
    ok = all(value == "ok" for value in checks.values())
    body = ReadyStatus(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


def project_migrations() -> list[str]:
    """The migration files of the project the server runs in (read once)."""
    return list(_project_migrations(Path.cwd()))


@lru_cache(maxsize=4)
def _project_migrations(cwd: Path) -> tuple[str, ...]:

    folder = project_migrations_folder(cwd)
    if folder is None or not folder.is_dir():
        return ()
    return tuple(migration_files(folder))
