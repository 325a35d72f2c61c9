"""The event stream over a real server: delivery, who may subscribe, resuming, and the
ends of a stream (session ended, shutdown)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import wait_until
from tests.realtime.conftest import OWNERS, cookies_for, hub_of, new_user, open_stream
from vibetuner.auth.sessions import sign_out_everywhere
from vibetuner.realtime import RealtimeUnavailable, publish, user_channel


async def test_an_event_published_reaches_the_users_stream(app, base_url):
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        published = await publish(user_channel(user), "note-updated", "<p>hi</p>\n<p>two</p>")
        got = await stream.next()
        assert (got.event, got.data, got.id) == (
            "note-updated",
            "<p>hi</p>\n<p>two</p>",
            published.id,
        )
        # JSON for anything that is not text
        await publish(user_channel(user), "counts", {"notes": 3})
        assert (await stream.next()).data == '{"notes":3}'
        await response.aclose()


async def test_events_of_other_channels_are_not_delivered(app, base_url):
    user, other = await new_user(), await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(
            http, f"/realtime?channel={user_channel(user)}&channel=app"
        )
        await publish(user_channel(other), "secret", "for the other user only")
        await publish("app", "notice", "for everyone")
        got = await stream.next()
        assert (got.event, got.data) == ("notice", "for everyone")
        await response.aclose()


async def test_signed_out_requests_are_refused(app, base_url):
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url) as http:
        response, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
        assert response.status_code == 401 and stream is None


async def test_another_users_channel_is_refused(app, base_url):
    """The attacker, signed in, names the victim's channel."""
    attacker, victim = await new_user(), await new_user()
    async with httpx.AsyncClient(
        base_url=base_url, cookies=await cookies_for(app, attacker)
    ) as http:
        for query in (
            f"channel={user_channel(victim)}",
            f"channel={user_channel(attacker)}&channel={user_channel(victim)}",
            "channel=vibetuner:control",  # the workers' own channel
            "channel=nobody-declared-this",
            f"channel=user:{attacker.id}:extra",
        ):
            response, stream = await open_stream(http, f"/realtime?{query}")
            assert response.status_code == 403, query
            assert stream is None
    assert not hub_of(app).listeners


async def test_document_channels_follow_the_apps_rule(app, base_url):
    owner, stranger = await new_user(), await new_user()
    OWNERS["n1"] = str(owner.id)
    async with httpx.AsyncClient(
        base_url=base_url, cookies=await cookies_for(app, stranger)
    ) as http:
        response, _ = await open_stream(http, "/realtime?channel=note:n1")
        assert response.status_code == 403
        response, _ = await open_stream(http, "/realtime?channel=note:does-not-exist")
        assert response.status_code == 403  # the same answer: existence is not told
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, owner)) as http:
        response, stream = await open_stream(http, "/realtime?channel=note:n1")
        assert response.status_code == 200
        await publish("note:n1", "note-updated", "new title")
        assert (await stream.next()).data == "new title"
        await response.aclose()


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://evil.testserver"},
        {"Origin": "https://evil.example"},
    ],
)
async def test_another_sites_event_source_is_refused(app, base_url, headers):
    """A page on another site opening ``new EventSource(url, {withCredentials: true})``."""
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(
            http, f"/realtime?channel={user_channel(user)}", headers=headers
        )
        assert response.status_code == 403 and stream is None


async def test_own_origin_is_accepted(app, base_url):
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        headers = {"Origin": base_url, "Sec-Fetch-Site": "same-origin"}
        response, stream = await open_stream(
            http, f"/realtime?channel={user_channel(user)}", headers
        )
        assert response.status_code == 200
        await response.aclose()


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("channel=", {}),
        ("channel=a%20b", {}),
        ("channel=" + "x" * 201, {}),
        ("&".join(f"channel=app:t{n}" for n in range(17)), {}),
    ],
)
async def test_malformed_requests_get_400(app, base_url, query, headers):
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(http, f"/realtime?{query}", headers)
        assert response.status_code == 400, response.text
        assert response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {"Last-Event-ID": "not-an-id"}),
        ("", {"Last-Event-ID": "1-" + "9" * 30}),
        ("&after=%0a", {}),
        ("&after=0", {}),
    ],
)
async def test_an_id_from_elsewhere_starts_with_missed_events(app, base_url, query, headers):
    """An id this app never gave (made up, another app's): told it missed events, then
    everything from now on."""
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(http, f"/realtime?channel=app{query}", headers)
        assert response.status_code == 200
        assert (await stream.next()).event == "realtime-missed"
        await publish("app", "n", "now")
        assert (await stream.next()).data == "now"
        await response.aclose()


async def test_a_reconnect_gets_what_it_missed(app, base_url):
    user = await new_user()
    channel = user_channel(user)
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(http, f"/realtime?channel={channel}")
        await publish(channel, "n", "1")
        first = await stream.next()
        await response.aclose()  # the network drops
        await publish(channel, "n", "2")
        await publish("app", "n", "not this channel")
        await publish(channel, "n", "3")
        response, stream = await open_stream(
            http, f"/realtime?channel={channel}", {"Last-Event-ID": first.id}
        )
        assert [(await stream.next()).data for _ in range(2)] == ["2", "3"]
        await publish(channel, "n", "4")
        assert (await stream.next()).data == "4"
        await response.aclose()


async def test_the_page_starting_point_covers_events_before_the_connection(app, base_url):
    from vibetuner.web.context import app_context

    user = await new_user()
    channel = user_channel(user)
    await publish("app", "warm", "")
    url = app_context(app).templates.env.globals["realtime_url"](channel)  # as the page renders it
    await publish(channel, "n", "published before the page connected")
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(http, url)
        assert (await stream.next()).data == "published before the page connected"
        await response.aclose()


@pytest.mark.parametrize("realtime_settings", [{"realtime_history": 3}])
async def test_a_reconnect_too_late_is_told_it_missed_events(app, base_url, realtime_settings):
    user = await new_user()
    channel = user_channel(user)
    first = await publish(channel, "n", "1")
    for n in range(5):
        await publish(channel, "n", str(n))
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        for last in (first.id, "1-1", "99999999999999-1"):
            response, stream = await open_stream(
                http, f"/realtime?channel={channel}", {"Last-Event-ID": last}
            )
            missed = await stream.next()
            assert missed.event == "realtime-missed"
            assert missed.id == hub_of(app).broker.last_id  # resume from now on
            await response.aclose()


async def test_signing_out_everywhere_closes_the_users_open_streams(app, base_url):
    """The admin's "sign out everywhere" (`sign_out_everywhere` of vibetuner.auth.sessions) ends
    the streams at once, not at the next periodic check (REALTIME_SESSION_CHECK is 30 s)."""
    user, other = await new_user(), await new_user()
    async with (
        httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as first,
        httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as second,
        httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, other)) as bystander,
    ):
        streams = [
            (await open_stream(http, f"/realtime?channel={user_channel(person)}"))[1]
            for http, person in ((first, user), (second, user), (bystander, other))
        ]
        await sign_out_everywhere(user)
        assert await streams[0].next(seconds=3) is None
        assert await streams[1].next(seconds=3) is None
        # the other user's stream is untouched
        await publish(user_channel(other), "still", "here")
        assert (await streams[2].next()).data == "here"
        # and the revoked browser cannot come back
        response, _ = await open_stream(first, f"/realtime?channel={user_channel(user)}")
        assert response.status_code == 401
        await streams[2].response.aclose()


async def test_revoking_one_session_closes_only_its_stream(app, base_url):
    """The sessions page's "revoke" on one browser ends that browser's stream only."""
    from vibetuner.auth.sessions import revoke_session
    from vibetuner.models.session import UserSession

    user = await new_user()
    async with (
        httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as first,
    ):
        one = (await open_stream(first, f"/realtime?channel={user_channel(user)}"))[1]
        [record] = await UserSession.find({"user_id": user.id}).to_list()
        async with httpx.AsyncClient(
            base_url=base_url, cookies=await cookies_for(app, user)
        ) as second:
            two = (await open_stream(second, f"/realtime?channel={user_channel(user)}"))[1]
            assert await revoke_session(user.id, record.public_id)
            assert await one.next(seconds=3) is None
            await publish(user_channel(user), "n", "x")
            assert (await two.next()).data == "x"
            await two.response.aclose()


@pytest.mark.parametrize("realtime_settings", [{"realtime_session_check": 0.2}])
async def test_a_session_gone_without_a_signal_is_caught_by_the_periodic_check(
    app, base_url, realtime_settings
):
    from vibetuner.models.session import UserSession

    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        _, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
        # deleted behind the app's back (another tool, the TTL index)
        await UserSession.get_pymongo_collection().delete_many({"user_id": user.id})
        assert await stream.next(seconds=3) is None


async def test_deactivating_the_user_closes_the_stream(app, base_url):
    from vibetuner.realtime.hub import sessions_changed

    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        _, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
        await user.set({"is_active": False})
        await sessions_changed(user_id=user.id)
        assert await stream.next(seconds=3) is None


@pytest.mark.parametrize("realtime_settings", [{"realtime_heartbeat": 0.2}])
async def test_an_idle_stream_gets_heartbeats(app, base_url, realtime_settings):
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
        with pytest.raises(TimeoutError):
            await stream.next(seconds=0.7)
        assert len([line for line in stream.comments if line.startswith(": ping")]) >= 2
        await response.aclose()


async def test_streams_end_when_the_server_shuts_down(app):
    from tests.robustness.conftest import served

    user = await new_user()
    cookies = await cookies_for(app, user)
    async with served(app) as (url, server):
        async with httpx.AsyncClient(base_url=url, cookies=cookies) as http:
            _, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
            server.should_exit = True
            assert await stream.next(seconds=5) is None


async def test_closing_the_app_ends_its_streams(app, base_url):
    hub = hub_of(app)
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        _, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
        hub.broker.close_all("shutdown")
        assert await stream.next(seconds=3) is None
    await asyncio.sleep(0.05)
    assert not hub.listeners


async def test_publish_checks_its_arguments(app):
    with pytest.raises(ValueError, match="channel"):
        await publish("no spaces", "e", "")
    with pytest.raises(ValueError, match="event"):
        await publish("app", "two\nlines", "")
    with pytest.raises(ValueError, match="REALTIME_MAX_EVENT_BYTES"):
        await publish("app", "big", "x" * (64 * 1024 + 1))


async def test_publish_without_the_feature_says_so():
    with pytest.raises(RealtimeUnavailable):
        await publish("app", "e", "")


async def test_publish_from_a_route(app, base_url):
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        _, stream = await open_stream(http, "/realtime?channel=app")
        page = await http.get("/auth/login")
        token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        answer = await http.post(
            "/test-publish/app/hello?data=world", headers={"X-CSRF-Token": token}
        )
        assert answer.status_code == 200, answer.text
        got = await stream.next()
        assert (got.event, got.data, got.id) == ("hello", "world", answer.json()["id"])
        await stream.response.aclose()


@pytest.mark.parametrize(
    "realtime_settings",
    [{"realtime_buffer": 5, "realtime_send_timeout": 1.0, "realtime_heartbeat": 300}],
)
async def test_a_client_that_never_reads_is_dropped(app, base_url, realtime_settings):
    """The attacker opens a stream and never reads it while events keep coming: the
    server keeps at most REALTIME_BUFFER events for it, then lets it go."""
    import socket
    from urllib.parse import urlsplit

    user = await new_user()
    cookies = await cookies_for(app, user)
    name, value = next(iter(cookies.items()))
    port = urlsplit(base_url).port
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = (
        f"GET /realtime?channel={user_channel(user)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: {name}={value}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    hub = hub_of(app)
    try:

        async def listening() -> bool:
            return bool(hub.listeners)

        async def gone() -> bool:
            return not hub.listeners

        await wait_until(listening, seconds=5)
        [listener] = hub.listeners
        largest = 0
        chunk = "x" * 60_000
        for _ in range(300):  # 18 MB, far past what the sockets hold
            await publish(user_channel(user), "big", chunk)
            largest = max(largest, listener.subscription.pending())
            await asyncio.sleep(0)
            if listener.subscription.closed:
                break
        assert listener.subscription.closed == "slow"
        assert largest <= 5
        # the stream is torn down, the socket closed
        await wait_until(gone, seconds=5)
    finally:
        sock.close()


@pytest.mark.parametrize(
    "realtime_settings",
    [{"realtime_buffer": 10_000, "realtime_send_timeout": 1.0, "realtime_heartbeat": 300}],
)
async def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(
    app, base_url, realtime_settings
):
    """The buffer is far from full, but the socket is: a write that waits longer than
    REALTIME_SEND_TIMEOUT drops the client."""
    import socket
    from urllib.parse import urlsplit

    user = await new_user()
    name, value = next(iter((await cookies_for(app, user)).items()))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", urlsplit(base_url).port))
    request = (
        f"GET /realtime?channel={user_channel(user)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: {name}={value}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    hub = hub_of(app)
    try:

        async def listening() -> bool:
            return bool(hub.listeners)

        async def gone() -> bool:
            return not hub.listeners

        await wait_until(listening, seconds=5)
        [listener] = hub.listeners
        for _ in range(100):  # 6 MB: more than the sockets hold, far less than the buffer
            await publish(user_channel(user), "big", "x" * 60_000)
        await asyncio.sleep(0.5)
        assert listener.subscription.closed is None  # still within the send timeout
        assert listener.subscription.pending() > 0
        await wait_until(gone, seconds=5)
        assert listener.subscription.closed == "slow"
    finally:
        sock.close()


@pytest.mark.parametrize("realtime_settings", [{"realtime_max_streams_per_session": 3}])
async def test_one_browser_cannot_open_streams_without_end(app, base_url, realtime_settings):
    """The attacker, signed in, opens stream after stream to fill the server's memory."""
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        opened = [await open_stream(http, "/realtime?channel=app") for _ in range(3)]
        assert [response.status_code for response, _ in opened] == [200, 200, 200]
        refused, _ = await open_stream(http, "/realtime?channel=app")
        assert refused.status_code == 429
        await opened[0][0].aclose()  # a tab closed: room for one more

        async def room() -> bool:
            return hub_of(app).streams_of(next(iter(hub_of(app).listeners)).session_key) < 3

        await wait_until(room, seconds=5)
        again, _ = await open_stream(http, "/realtime?channel=app")
        assert again.status_code == 200
        for response, _ in [*opened[1:], (again, None)]:
            await response.aclose()
    # another browser of the same user has its own allowance
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, _ = await open_stream(http, "/realtime?channel=app")
        assert response.status_code == 200
        await response.aclose()


async def test_event_data_keeps_its_text_across_line_ends(app, base_url):
    """CR, LF and CR LF end lines in an event stream (so they arrive as LF, as the
    browser's EventSource gives them); nothing else does (U+2028 stays as it is)."""
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(http, "/realtime?channel=app")
        await publish("app", "text", "a\r\nb\rc\nd\u2028e")
        assert (await stream.next()).data == "a\nb\nc\nd\u2028e"
        await publish("app", "empty", "")
        got = await stream.next()
        assert (got.event, got.data) == ("empty", "")
        await response.aclose()


def awaiting(task: asyncio.Task) -> list[Any]:
    """The frames of ``task``'s coroutines, outermost first (what each one awaits)."""
    frames, current = [], task.get_coro()
    while current is not None:
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    return frames


async def test_an_idle_stream_holds_one_task_and_no_middleware(app, base_url):
    """Thousands of streams sit idle: each is its request's task alone, waiting for the
    client to go, with none of the app's middleware frames, request objects or timers."""
    user = await new_user()
    before = asyncio.all_tasks()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        response, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
        await publish(user_channel(user), "hello", "first")
        assert (await stream.next()).data == "first"
        await asyncio.sleep(0.1)  # the writer of that event has ended
        # the server's tasks for this stream (the client runs in this test's task)
        server_side = [task for task in asyncio.all_tasks() - before if not task.done()]
        assert len(server_side) == 1, [awaiting(task)[-1] for task in server_side]
        names = [frame.f_code.co_qualname for frame in awaiting(server_side[0])]
        # Right inside the outermost of vibetuner's middleware: none of the others, no
        # route, no Request object
        outermost = names.index("DetachedResponses.__call__")
        assert names[outermost + 1 :][:1] == ["EventStream.run"], names
        await response.aclose()
