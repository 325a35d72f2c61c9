"""Fixtures for the rate-limit tests: the limited app on each backend, its clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.jobs.redis_server import RedisServer
from tests.ratelimit.limited_app import build
from vibetuner.testing import app_context, send_csrf_token, set_session_cookie, signed_in_cookie

# No app-wide defaults unless a test asks: each test sees only the limits it is about.
NO_DEFAULTS = {"rate_limit_unsafe": "", "rate_limit_pages": "", "rate_limit_api": ""}


@pytest.fixture
def redis_server(tmp_path: Path) -> Any:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def limited_settings(vibetuner_settings: Any) -> Any:
    """Test settings with the limits on (the plugin turns them off) and no defaults."""
    return vibetuner_settings.model_copy(update={"rate_limit_enabled": True, **NO_DEFAULTS})


@pytest.fixture
def start_app(limited_settings: Any) -> Callable[..., Any]:
    """``async with start_app(**changes) as app``: the limited app, running."""

    @asynccontextmanager
    async def start(**changes: Any) -> AsyncIterator[Any]:
        values = {**limited_settings.model_dump(), **changes}
        settings = type(limited_settings)(_env_file=None, **values)
        application = build(settings=settings)
        await fresh_minute()
        async with application.router.lifespan_context(application):
            yield application
            mongo = app_context(application).mongo
            if not mongo.in_memory:
                await mongo.client.drop_database(mongo.database.name)

    return start


def seconds_left_in_minute() -> float:
    return 60 - time.time() % 60


async def fresh_minute() -> None:
    """Wait for the next minute when this one ends within 10 s: a test's requests then
    all fall in one window of the minute rates (windows follow the clock)."""
    if seconds_left_in_minute() < 10:
        await asyncio.sleep(seconds_left_in_minute() + 0.05)


def client_of(app: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client of ``app`` whose connection comes from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    return send_csrf_token(http, app_context(app).settings.session_cookie_name)


async def signed_in(app: Any, user: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client of ``app`` with a new session of ``user``."""
    settings = app_context(app).settings
    http = client_of(app, address)
    set_session_cookie(http, settings, await signed_in_cookie(settings, user))
    return http


async def statuses(http: httpx.AsyncClient, path: str, times: int, **kwargs: Any) -> list[int]:
    """The status codes of ``times`` requests, one after the other."""
    return [(await http.get(path, **kwargs)).status_code for _ in range(times)]
