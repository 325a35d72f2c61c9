"""``/health/live`` and ``/health/ready`` next to the ``/health`` summary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vibetuner import create_app
from vibetuner.app import default_features
from vibetuner.config import Settings
from vibetuner.features import Feature
from vibetuner.migrations import run_framework_migrations
from vibetuner.testing import app_context


class SearchIndex(Feature):
    """A feature with a readiness check of its own."""

    name = "search"
    offline = False

    async def check_ready(self, context: Any) -> list[str]:
        return ["the search index is rebuilding"] if self.offline else []


@pytest.fixture
async def served(vibetuner_settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    application = create_app(
        settings=vibetuner_settings, features=[*default_features(), SearchIndex()]
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


async def test_live_answers_without_asking_anything(served: Any) -> None:
    _, http = served
    answer = await http.get("/health/live")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


async def test_a_fresh_database_is_not_ready_until_migrated(served: Any) -> None:
    application, http = served
    answer = await http.get("/health/ready")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert "0001_oauth_links_stored_once" in body["checks"]["migrations"]

    await run_framework_migrations(app_context(application).mongo.database)
    answer = await http.get("/health/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "search": "ok"},
    }
    # The summary is still there, as it was.
    summary = await http.get("/health")
    assert summary.status_code == 200 and summary.json()["status"] == "ok"


async def test_a_features_own_check_makes_it_not_ready(served: Any) -> None:
    application, http = served
    await run_framework_migrations(app_context(application).mongo.database)
    feature = next(f for f in app_context(application).features if isinstance(f, SearchIndex))
    feature.offline = True
    answer = await http.get("/health/ready")
    assert answer.status_code == 503
    assert answer.json()["checks"]["search"] == "the search index is rebuilding"


async def test_the_projects_own_migrations_count(
    served: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    application, http = served
    database = app_context(application).mongo.database
    await run_framework_migrations(database)
    project = tmp_path / "proj"
    (project / "migrations").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.vibetuner]\napp = "x:app"\n')
    for name in ("20260101_first.py", "20260201_second.py", "__init__.py"):
        (project / "migrations" / name).write_text("")
    monkeypatch.chdir(project)

    answer = await http.get("/health/ready")
    assert answer.status_code == 503
    assert answer.json()["checks"]["migrations"].endswith("20260101_first.py, 20260201_second.py")
    # Beanie records the last one it applied as current.
    await database["migrations_log"].insert_one({"name": "20260101_first.py", "is_current": True})
    assert (
        (await http.get("/health/ready"))
        .json()["checks"]["migrations"]
        .endswith(": 20260201_second.py")
    )
    await database["migrations_log"].update_one(
        {"is_current": True}, {"$set": {"name": "20260201_second.py"}}
    )
    assert (await http.get("/health/ready")).status_code == 200
