"""Job test fixtures: a job log, and the app with ``JobsFeature`` and a route that queues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from tests.jobs import jobs_for_tests as jobs_module
from vibetuner import Context, JobsFeature, create_app
from vibetuner.models import UserModel

router = APIRouter()


@router.post("/queue/{n}")
async def queue_one(n: int, context: Context) -> dict[str, Any]:
    job_id = await jobs_module.record.enqueue(context, n)
    ran_already = "ran" in jobs_module.LOG.read_text() if jobs_module.LOG.exists() else False
    return {"id": job_id, "ran_before_response": ran_already}


@router.post("/chatty/{n}")
async def queue_chatty(n: int, context: Context) -> dict[str, Any]:
    return {"id": await jobs_module.chatty.enqueue(context, n)}


@pytest.fixture
def job_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "jobs.log"
    log.write_text("")
    monkeypatch.setattr(jobs_module, "LOG", log)
    return log


def lines(log: Path, first_word: str | None = None) -> list[list[str]]:
    found = [line.split() for line in log.read_text().splitlines() if line.strip()]
    return [words for words in found if first_word is None or words[0] == first_word]


TEST_JOBS = jobs_module.TEST_JOBS


def jobs_app(settings: Any) -> FastAPI:
    """An app with the test jobs (no periodic one) and a route that queues one; users are
    registered too (a job takes one as its argument), the app having no sign-in feature."""
    return create_app(
        settings=settings,
        features=[JobsFeature(TEST_JOBS)],
        models=[UserModel],
        routers=[router],
    )


@pytest.fixture
async def app(vibetuner_settings: Any) -> AsyncIterator[FastAPI]:
    """The plugin's ``app``, built with the jobs of these tests."""
    application = jobs_app(vibetuner_settings)
    async with application.router.lifespan_context(application):
        yield application
