"""The Redis broker: two apps in this process stand for two workers on one Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.jobs.redis_server import RedisServer
from tests.realtime.conftest import (
    cookies_for,
    hub_of,
    new_user,
    open_stream,
    realtime_app,
    running,
)
from tests.robustness.conftest import served
from vibetuner.auth.sessions import sign_out_everywhere
from vibetuner.realtime import RealtimeUnavailable, user_channel


@pytest.fixture
def redis_server(tmp_path: Path) -> Any:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def realtime_settings(redis_server: Any) -> dict[str, Any]:
    from pydantic import SecretStr

    return {"redis_url": SecretStr(redis_server.url), "realtime_history": 50}


@pytest.fixture
async def other_worker(app: Any) -> AsyncIterator[str]:
    """A second app on the same database and Redis, served on its own port."""
    from vibetuner.web.context import app_context

    second = realtime_app(app_context(app).settings)
    async with running(second), served(second) as (url, _):
        yield url


async def test_an_event_published_in_one_worker_reaches_a_stream_on_the_other(
    app, base_url, other_worker
):
    user = await new_user()
    cookies = await cookies_for(app, user)
    async with httpx.AsyncClient(base_url=other_worker, cookies=cookies) as http:
        response, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
        assert response.status_code == 200
        # published through the first app's hub (the module's current one is the last
        # started: the second app), so publish on the first one explicitly
        published = await hub_of(app).publish(user_channel(user), "note-updated", "a\nb")
        got = await stream.next()
        assert (got.event, got.data, got.id) == ("note-updated", "a\nb", published.id)
        await response.aclose()


async def test_a_reconnect_to_another_worker_gets_what_it_missed(app, base_url, other_worker):
    user = await new_user()
    channel = user_channel(user)
    cookies = await cookies_for(app, user)
    hub = hub_of(app)
    async with httpx.AsyncClient(base_url=base_url, cookies=cookies) as http:
        response, stream = await open_stream(http, f"/realtime?channel={channel}")
        await hub.publish(channel, "n", "1")
        first = await stream.next()
        await response.aclose()
    await hub.publish(channel, "n", "2")
    await hub.publish("app", "n", "elsewhere")
    await hub.publish(channel, "n", "3")
    async with httpx.AsyncClient(base_url=other_worker, cookies=cookies) as http:
        response, stream = await open_stream(
            http, f"/realtime?channel={channel}", {"Last-Event-ID": first.id}
        )
        assert [(await stream.next()).data for _ in range(2)] == ["2", "3"]
        await response.aclose()
        # older than the history (50 events): told it missed events
        for n in range(60):
            await hub.publish(channel, "n", str(n))
        response, stream = await open_stream(
            http, f"/realtime?channel={channel}", {"Last-Event-ID": first.id}
        )
        assert (await stream.next()).event == "realtime-missed"
        await response.aclose()


async def test_signing_out_everywhere_closes_streams_on_every_worker(app, base_url, other_worker):
    user = await new_user()
    async with (
        httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as one,
        httpx.AsyncClient(base_url=other_worker, cookies=await cookies_for(app, user)) as two,
    ):
        first = (await open_stream(one, f"/realtime?channel={user_channel(user)}"))[1]
        second = (await open_stream(two, f"/realtime?channel={user_channel(user)}"))[1]
        await sign_out_everywhere(user)
        assert await first.next(seconds=3) is None
        assert await second.next(seconds=3) is None


async def test_publish_while_redis_is_down_says_so(app, redis_server):
    redis_server.stop()
    with pytest.raises(RealtimeUnavailable):
        await hub_of(app).publish("app", "e", "x")
    assert not await hub_of(app).broker.ping()


async def test_a_route_whose_publish_finds_redis_down_answers_503_with_its_code(
    app, base_url, redis_server, caplog
):
    # The route lets RealtimeUnavailable through: the app's error table answers it.
    redis_server.stop()
    async with httpx.AsyncClient(base_url=base_url) as http:
        api = await http.post("/test-publish/app/e")
        page = await http.post("/test-publish/app/e", headers={"Accept": "text/html"})
    assert api.status_code == 503
    answer = api.json()
    assert answer["code"] == "realtime_unavailable"
    assert answer["detail"] == "The service is unavailable; try again later."
    assert page.status_code == 503 and "Service unavailable" in page.text
    # Logged with the path, the broker's address kept out of the answer.
    assert "realtime_unavailable on POST /test-publish/app/e" in caplog.text
    assert "127.0.0.1" not in api.text
