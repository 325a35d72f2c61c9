"""Route limits over HTTP: counts, several rates, the answers and headers, every backend."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from tests.ratelimit.conftest import client_of, statuses
from vibetuner.models import RateLimitCounter

POLICY = re.compile(r'"([^"]+)";q=(\d+);w=(\d+)')
STATE = re.compile(r'"([^"]+)";r=(\d+);t=(\d+)')


@pytest.fixture(params=["memory", "mongodb", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for each counter backend (Redis: a real redis-server)."""
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        return {"rate_limit_backend": "redis", "redis_url": server.url}
    return {"rate_limit_backend": request.param}


async def test_a_limit_lets_n_through_then_answers_429(start_app, backend):
    async with start_app(**backend) as app, client_of(app) as http:
        answers = [await http.get("/ping") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json()["code"] == "rate_limited"
    assert "Too many requests in a short time" in refused.json()["detail"]
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert POLICY.findall(refused.headers["ratelimit-policy"]) == [("ping/60s", "3", "60")]
    [(name, remaining, reset)] = STATE.findall(refused.headers["ratelimit"])
    assert (name, remaining) == ("ping/60s", "0")
    assert reset == refused.headers["retry-after"]
    # The answers that went through say how many are left.
    assert [STATE.findall(a.headers["ratelimit"])[0][1] for a in answers[:3]] == ["2", "1", "0"]


async def test_concurrent_requests_never_pass_more_than_the_limit(start_app, backend):
    async with start_app(**backend) as app, client_of(app) as http:
        answers = await asyncio.gather(*(http.get("/ping") for _ in range(20)))
    assert sorted(a.status_code for a in answers) == [200] * 3 + [429] * 17


async def test_a_large_limit_counts_every_request_and_says_what_is_left(start_app, backend):
    # On MongoDB and Redis this worker takes blocks of places and counts them itself;
    # one worker's answers still count down one by one.
    async with start_app(**backend) as app, client_of(app) as http:
        answers = [await http.get("/many") for _ in range(103)]
    assert [a.status_code for a in answers] == [200] * 100 + [429] * 3
    remaining = [int(STATE.findall(a.headers["ratelimit"])[0][1]) for a in answers]
    assert remaining == [*range(99, -1, -1), 0, 0, 0]


async def test_concurrent_requests_never_pass_more_than_a_large_limit(start_app, backend):
    async with start_app(**backend) as app, client_of(app) as http:
        answers = await asyncio.gather(*(http.get("/many") for _ in range(150)))
    assert sorted(a.status_code for a in answers) == [200] * 100 + [429] * 50


async def test_burst_and_sustained_rates_both_hold(start_app):
    async with start_app(rate_limit_backend="memory") as app, client_of(app) as http:
        await asyncio.sleep(1 - time.time() % 1)  # start of a second: the burst window
        first = [await http.get("/burst") for _ in range(3)]
        assert [a.status_code for a in first] == [200, 200, 429]
        # The burst refusal waits for the second, not the minute.
        assert first[-1].headers["retry-after"] == "1"
        policies = POLICY.findall(first[-1].headers["ratelimit-policy"])
        assert policies == [("burst/1s", "2", "1"), ("burst/60s", "4", "60")]
        await asyncio.sleep(1 - time.time() % 1)
        # Refused hits count too: 3 of 4 are used in this minute, so one more goes through.
        second = await statuses(http, "/burst", 2)
        assert second == [200, 429]
        # The next second's burst budget does not lift the sustained rate.
        await asyncio.sleep(1 - time.time() % 1)
        third = await http.get("/burst")
    assert third.status_code == 429
    assert int(third.headers["retry-after"]) > 1  # the minute's window


async def test_browsers_get_a_page_and_htmx_a_message(start_app):
    async with start_app(rate_limit_backend="memory") as app, client_of(app) as http:
        await statuses(http, "/ping", 3)
        page = await http.get("/ping", headers={"Accept": "text/html"})
        fragment = await http.get("/ping", headers={"Accept": "text/html", "HX-Request": "true"})
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text and "Too many requests" in page.text
    assert "Please wait" in page.text
    assert page.headers["retry-after"] and page.headers["ratelimit-policy"]
    assert fragment.status_code == 429
    assert fragment.headers["hx-retarget"] == "#flashes"
    assert "<html" not in fragment.text and "Too many requests" in fragment.text


async def test_the_page_is_in_the_visitors_language(start_app):
    async with start_app(rate_limit_backend="memory") as app, client_of(app) as http:
        await statuses(http, "/ping", 3)
        page = await http.get("/ping", headers={"Accept": "text/html", "Accept-Language": "es"})
    assert page.status_code == 429
    assert "Demasiadas solicitudes" in page.text
    assert "Demasiadas solicitudes en poco tiempo" in page.text


async def test_sync_endpoints_and_form_posts_are_limited(start_app):
    async with start_app(rate_limit_backend="memory") as app, client_of(app) as http:
        assert await statuses(http, "/sync", 3) == [200, 200, 429]
        # The endpoint still gets its own parameters.
        assert (await http.get("/sync")).status_code == 429
        posted = [(await http.post("/form", data={"a": "1"})) for _ in range(3)]
    assert [p.status_code for p in posted] == [200, 200, 429]
    assert posted[0].json() == {"a": "1"}


async def test_a_router_dependency_is_one_budget_for_its_routes(start_app):
    async with start_app(rate_limit_backend="memory") as app, client_of(app) as http:
        got = [await http.get(path) for path in ("/api/a", "/api/b", "/api/a", "/api/b")]
    assert [g.status_code for g in got] == [200, 200, 200, 429]
    assert POLICY.findall(got[-1].headers["ratelimit-policy"]) == [("api-router/60s", "3", "60")]


async def test_one_limit_on_two_routes_is_one_budget(start_app):
    async with start_app(rate_limit_backend="memory") as app, client_of(app) as http:
        got = [await http.get(path) for path in ("/shared/a", "/shared/b", "/shared/a")]
    assert [g.status_code for g in got] == [200, 200, 429]
    name = "tests.ratelimit.limited_app.shared_a/60s"
    assert POLICY.findall(got[-1].headers["ratelimit-policy"]) == [(name, "2", "60")]


async def test_mongodb_counters_expire_with_their_window(start_app):
    async with start_app(rate_limit_backend="mongodb") as app, client_of(app) as http:
        await http.get("/ping")
        [counter] = await RateLimitCounter.get_pymongo_collection().find().to_list()
        indexes = await RateLimitCounter.get_pymongo_collection().index_information()
    assert counter["hits"] == 1
    window_end = (int(time.time() // 60) + 1) * 60
    # One second past the window's end (never removed while its window is counted).
    assert abs(counter["expires_at"].timestamp() - (window_end + 1)) <= 1
    assert "127.0.0.1" not in str(counter)
    assert any(
        spec.get("expireAfterSeconds") == 0 and dict(spec["key"]) == {"expires_at": 1}
        for spec in indexes.values()
    )


async def test_limits_off_lets_everything_through(start_app):
    async with start_app(rate_limit_enabled=False) as app, client_of(app) as http:
        answers = [await http.get("/ping") for _ in range(6)]
    assert {a.status_code for a in answers} == {200}
    assert "ratelimit" not in answers[0].headers
