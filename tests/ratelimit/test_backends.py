"""The counter backends: expiry (no key outlives its window), Redis shared by two uvicorn
workers, and a backend that goes away."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.conftest import request_link
from tests.helpers import stop_process
from tests.ratelimit.conftest import client_of, statuses
from vibetuner.models import RateLimitCounter
from vibetuner.ratelimit.counters import MemoryCounter, MongoCounter
from vibetuner.ratelimit.limiter import Limiter
from vibetuner.rates import Rate
from vibetuner.testing import free_port


async def test_redis_counters_carry_an_expiry_no_longer_than_their_window(start_app, redis_server):
    import coredis

    async with (
        start_app(rate_limit_backend="redis", redis_url=redis_server.url) as app,
        client_of(app) as http,
    ):
        assert await statuses(http, "/burst", 3) == [200, 200, 429]
        async with coredis.Redis.from_url(redis_server.url, decode_responses=True) as redis:
            keys = [key async for key in redis.scan_iter(match="*")]
            ttls = {key: await redis.ttl(key) for key in keys}
    assert len(keys) == 2  # one per rate of the limit, for this client
    for key, ttl in ttls.items():
        window = int(key.split(":")[-2])
        assert 0 < ttl <= window + 1, (key, ttl)
        assert "127.0.0.1" not in key


@pytest.mark.parametrize("mongo_backend", ["memory"], indirect=True)
async def test_many_clients_leave_no_counter_behind_in_the_development_database(vibetuner_db):
    # A flood of clients leaves one counter per window each; once the windows are over,
    # the TTL index removes them (the in-memory database applies it on each read).
    collection = RateLimitCounter.get_pymongo_collection()
    old = datetime.now(UTC) - timedelta(minutes=5)
    await collection.insert_many(
        [{"key": f"ratelimit:old:{n}", "hits": 1, "expires_at": old} for n in range(500)]
    )
    limiter = Limiter(MongoCounter(), "mongodb")
    await limiter.hit("fresh", "address:192.0.2.1", [Rate(5, 60)])
    assert await collection.count_documents({}) == 1


async def test_the_in_process_counter_forgets_ended_windows(monkeypatch):
    counter = MemoryCounter()
    limiter = Limiter(counter, "memory")
    for n in range(1000):
        await limiter.hit("flood", f"address:192.0.2.{n}", [Rate(1, 1)])
    assert len(counter.counts) == 1000
    later = time.time() + 2
    monkeypatch.setattr(time, "time", lambda: later)
    await limiter.hit("flood", "address:192.0.2.1", [Rate(1, 1)])
    assert len(counter.counts) == 1


async def test_a_backend_that_goes_away_lets_requests_through(start_app, redis_server, caplog):
    async with (
        start_app(rate_limit_backend="redis", redis_url=redis_server.url) as app,
        client_of(app) as http,
    ):
        assert await statuses(http, "/ping", 1) == [200]
        redis_server.stop()
        # The limit cannot be checked: the request is served, and the log says why.
        answer = await http.get("/ping")
        redis_server.start()
    assert answer.status_code == 200
    assert "rate limit 'ping' not checked: the redis rate-limit backend failed" in caplog.text


async def test_sign_in_links_are_not_sent_while_their_counters_are_away(
    start_app, redis_server, outbox
):
    async with (
        start_app(rate_limit_backend="redis", redis_url=redis_server.url) as app,
        client_of(app) as http,
    ):
        redis_server.stop()
        refused = await request_link(http, "away@example.com")
        redis_server.start()
    # Unlimited sign-in mail would be a mail bomb: refused with 503, never a 500.
    assert refused.status_code == 503
    assert refused.json()["code"] == "rate_limit_unavailable"
    assert len(outbox) == 0


WORKER_APP = textwrap.dedent(
    """
    import os

    from fastapi import APIRouter, Response
    from vibetuner import RateLimitFeature, create_app, rate_limit

    router = APIRouter()

    @router.get("/limited")
    @rate_limit("{limit}/minute", name="two-workers")
    async def limited(response: Response) -> dict[str, int]:
        return {{"pid": os.getpid()}}

    app = create_app(features=[RateLimitFeature()], routers=[router])

    @app.middleware("http")
    async def say_which_worker(request, call_next):
        response = await call_next(request)
        response.headers["X-Worker"] = str(os.getpid())
        return response
    """
)


# 17: below 32 places every hit is its own Redis call; 100: the workers take blocks of
# places (6, 5, ... 1) and count in process.
@pytest.mark.parametrize(("workers", "limit"), [(2, 17), (2, 100), (1, 100)])
def test_uvicorn_workers_on_redis_let_exactly_n_through(
    tmp_path: Path, redis_server: Any, workers: int, limit: int
) -> None:
    (tmp_path / "two_workers_limits.py").write_text(WORKER_APP.format(limit=limit))
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "REDIS_URL": redis_server.url,
        "RATE_LIMIT_UNSAFE": "",
        "RATE_LIMIT_PAGES": "",
        "RATE_LIMIT_API": "",
        "DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "two_workers_limits:app", "--workers", str(workers)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Both workers up: each has answered a probe (probes are not counted).
        ready: set[str] = set()
        deadline = time.monotonic() + 60
        while len(ready) < workers:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                ready.add(httpx.get(f"{url}/health/live").headers["x-worker"])
            except httpx.TransportError:
                time.sleep(0.1)
            assert time.monotonic() < deadline, f"the workers did not start ({ready})"
        if 60 - time.time() % 60 < 10:  # all in one window of the minute rate
            time.sleep(60 - time.time() % 60 + 0.05)
        answers = asyncio.run(hammer(url, limit * 4))
        # Traffic keeps arriving until every worker has refused: a worker refuses only
        # once it holds no places of the window, so none is left unused.
        for _ in range(10):
            refusing = {a.headers["x-worker"] for a in answers if a.status_code == 429}
            if len(refusing) == workers:
                break
            answers += asyncio.run(hammer(url, limit))
    finally:
        stop_process(server)
    passed = [a for a in answers if a.status_code == 200]
    assert len(passed) == limit
    assert {a.status_code for a in answers} == {200, 429}
    # Every worker answered, so every worker counted.
    assert len({a.headers["x-worker"] for a in answers}) == workers


async def hammer(url: str, count: int) -> list[httpx.Response]:
    """``count`` requests at once, each on a new connection (spread over the workers)."""
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=count)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        return list(await asyncio.gather(*(http.get("/limited") for _ in range(count))))
