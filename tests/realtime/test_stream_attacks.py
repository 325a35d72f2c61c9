"""The event stream attacked: a stream must never outlive what let it open (an account
nobody had proven, an admin's view as the user) nor open for a request that is not a
browser's session (a bearer request)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.auth.conftest import magic_link
from tests.realtime.conftest import cookies_for, new_user, open_stream, running
from vibetuner.realtime import publish, user_channel
from vibetuner.testing import follow_sign_in_link, send_csrf_token


@pytest.fixture
async def app(vibetuner_settings: Any) -> AsyncIterator[Any]:
    from vibetuner import AdminFeature, create_app
    from vibetuner.app import default_features
    from vibetuner.realtime import RealtimeFeature

    application = create_app(
        settings=vibetuner_settings,
        features=[*default_features(), AdminFeature(), RealtimeFeature()],
    )
    async with running(application):
        yield application


def browser(base_url: str, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base_url, cookies=cookies)
    return send_csrf_token(http, "session")


async def test_a_stream_opened_before_the_address_was_proven_ends_with_the_proof(
    app, base_url, outbox
):
    # Whoever held the unproven account (before these rules, or after an admin typed in
    # a new address) has a stream of its channel open; then the mailbox owner signs in.
    account = await new_user("owner@example.com")
    assert account.email_verified_at is None
    holder = browser(base_url, await cookies_for(app, account))
    async with holder:
        response, stream = await open_stream(holder, f"/realtime?channel={user_channel(account)}")
        assert response.status_code == 200
        async with browser(base_url) as owner:
            asked = await owner.post("/auth/magic-link", data={"email": "owner@example.com"})
            assert asked.status_code in (200, 303)
            link = magic_link(outbox.last)
            assert (await follow_sign_in_link(owner, link)).status_code == 303
            assert (await owner.get("/auth/me")).json()["id"] == str(account.id)
        assert await stream.next(seconds=3) is None
        again, _ = await open_stream(holder, f"/realtime?channel={user_channel(account)}")
        assert again.status_code == 401


async def test_a_stream_opened_while_viewing_as_ends_with_the_view(app, base_url):
    admin = await new_user()
    await admin.set({"roles": ["admin"]})
    member = await new_user()
    async with browser(base_url, await cookies_for(app, admin)) as http:
        started = await http.post(f"/admin/_api/users/row-action?name=view_as&pk={member.id}")
        assert started.status_code == 303, started.text[:300]
        # The view reads what the user sees, live updates included ...
        response, stream = await open_stream(http, f"/realtime?channel={user_channel(member)}")
        assert response.status_code == 200
        # ... until the admin goes back: then the stream ends, and cannot be opened again.
        back = await http.post("/ui/view-as/stop")
        assert back.status_code == 303
        assert await stream.next(seconds=3) is None
        again, _ = await open_stream(http, f"/realtime?channel={user_channel(member)}")
        assert again.status_code == 403


@pytest.mark.parametrize("authorization", ["Bearer vt_guessed", "bearer nonsense", "Bearer x"])
async def test_a_bearer_request_carrying_the_session_cookie_gets_no_stream(
    app, base_url, authorization
):
    user = await new_user()
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, user)) as http:
        ok, stream = await open_stream(http, f"/realtime?channel={user_channel(user)}")
        assert ok.status_code == 200
        await ok.aclose()
        refused, _ = await open_stream(
            http,
            f"/realtime?channel={user_channel(user)}",
            headers={"Authorization": authorization},
        )
        assert refused.status_code == 401


@pytest.mark.parametrize("junk", ['x=a"b', "x=a\\b", "x=a b", "version=1", "Path=/", "expires=1"])
async def test_a_malformed_cookie_ahead_of_the_session_reads_the_session_alike(app, base_url, junk):
    user = await new_user()
    cookie = "; ".join(f"{k}={v}" for k, v in (await cookies_for(app, user)).items())
    async with httpx.AsyncClient(base_url=base_url) as http:
        response, stream = await open_stream(
            http,
            f"/realtime?channel={user_channel(user)}",
            headers={"Cookie": f"{junk}; {cookie}"},
        )
        # The same parser as the CSRF check's: the session is read past the junk, and
        # the stream is the user's own.
        assert response.status_code == 200
        await publish(user_channel(user), "mine", "for the user")
        assert (await stream.next()).data == "for the user"
        await response.aclose()
