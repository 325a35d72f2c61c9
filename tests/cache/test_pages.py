"""Over HTTP: cached pages, fragments and functions, and what must never be cached."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.cache.app import RUNS, cache_app
from vibetuner.cache import Cache
from vibetuner.testing import app_context, csrf_token_in

HTML = {"Accept": "text/html"}
NONCE = re.compile(r'<script nonce="([^"]+)">window.cached')


def settings_for(vibetuner_settings: Any, cache_backend: str, request: Any) -> Any:
    values: dict[str, Any] = {"cache_backend": cache_backend}
    if cache_backend == "redis":
        values["redis_url"] = SecretStr(request.getfixturevalue("redis_server").url)
    return vibetuner_settings.model_copy(update=values)


@pytest.fixture
async def app(vibetuner_settings: Any) -> AsyncIterator[Any]:
    RUNS.clear()
    application = cache_app(vibetuner_settings)
    async with application.router.lifespan_context(application):
        yield application


def runs(page: httpx.Response) -> str:
    found = re.search(r"runs=(\d+)", page.text)
    assert found, page.text[:500]
    return found.group(1)


@pytest.mark.parametrize("cache_backend", ["memory", "redis", "mongodb"])
async def test_fifty_concurrent_requests_for_a_cold_key_compute_it_once(
    vibetuner_settings, cache_backend, request
):
    RUNS.clear()
    application = cache_app(settings_for(vibetuner_settings, cache_backend, request))
    # The lifespan runs in the test's own task, as a server runs it (coredis needs that).
    async with application.router.lifespan_context(application):
        if cache_backend == "redis":
            await app_context(application).get(Cache).backend._client.flushdb()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            answers = await asyncio.gather(*(http.get("/count") for _ in range(50)))
    assert {answer.json()["count"] for answer in answers} == {42}
    assert RUNS["slow_count"] == 1


async def test_an_anonymous_page_is_rendered_once_and_then_served_from_the_cache(client):
    first = await client.get("/public", headers=HTML)
    second = await client.get("/public", headers=HTML)
    assert first.status_code == second.status_code == 200
    assert runs(first) == runs(second) == "1"
    assert "x-cache" not in first.headers and second.headers["x-cache"] == "hit"
    assert RUNS["public"] == 1


async def test_each_visitor_of_a_cached_page_gets_their_own_csrf_token_and_nonce(app, client):
    await client.get("/public", headers=HTML)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        hit = await other.get("/public", headers=HTML)
        assert hit.headers["x-cache"] == "hit"
        token = csrf_token_in(hit.text)
        # The token works for this visitor's own session ...
        sent = await other.post("/echo", data={"csrf_token": token}, headers=HTML)
        assert sent.status_code == 200, sent.text[:300]
        # ... and is not the first visitor's (whose session secret it would reveal).
        first_token = csrf_token_in((await client.get("/public", headers=HTML)).text)
        assert token != first_token
        nonce = NONCE.search(hit.text).group(1)
        assert f"'nonce-{nonce}'" in hit.headers["content-security-policy"]
        again = await other.get("/public", headers=HTML)
        assert NONCE.search(again.text).group(1) != nonce


async def test_a_signed_in_visitor_is_never_served_nor_stored(client, signed_in_client, user):
    mine = await signed_in_client.get("/public", headers=HTML)
    assert user.email in mine.text and "x-cache" not in mine.headers
    assert mine.headers["cache-control"] == "no-store"
    anonymous = await client.get("/public", headers=HTML)
    assert user.email not in anonymous.text
    assert "x-cache" not in anonymous.headers  # the signed-in page was not stored
    again = await signed_in_client.get("/public", headers=HTML)
    assert user.email in again.text and "x-cache" not in again.headers
    assert RUNS["public"] == 3


async def test_a_response_that_sets_a_cookie_is_never_stored(client):
    first = await client.get("/cookie")
    second = await client.get("/cookie")
    assert runs(first) == "1" and runs(second) == "2"
    assert first.cookies["tracking"] == "visitor-1"
    assert second.cookies["tracking"] == "visitor-2"


async def test_a_message_waiting_for_one_visitor_is_neither_stored_nor_replaced(app, client):
    await client.get("/public", headers=HTML)  # stored, without any message
    await client.get("/flash")
    page = await client.get("/public", headers=HTML)
    assert "A message for you alone" in page.text and "x-cache" not in page.headers
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        theirs = await other.get("/public", headers=HTML)
        assert "A message for you alone" not in theirs.text


async def test_pages_per_user_when_asked_never_cross_users(client_for, user, app):
    from vibetuner.models import UserModel

    bob = UserModel(email="bob@example.com", name="Bob")
    await bob.insert()
    ada_client, bob_client = await client_for(user), await client_for(bob)
    ada_first = await ada_client.get("/mine", headers=HTML)
    bob_first = await bob_client.get("/mine", headers=HTML)
    ada_again = await ada_client.get("/mine", headers=HTML)
    bob_again = await bob_client.get("/mine", headers=HTML)
    assert user.email in ada_first.text and user.email in ada_again.text
    assert "bob@example.com" in bob_first.text and "bob@example.com" in bob_again.text
    assert user.email not in bob_again.text and "bob@example.com" not in ada_again.text
    assert ada_again.headers["x-cache"] == bob_again.headers["x-cache"] == "hit"
    assert ada_again.headers["cache-control"] == "no-store"


async def test_a_stolen_cookie_of_an_ended_session_gets_no_cached_page(client_for, user, app):
    from vibetuner.auth import sessions
    from vibetuner.testing import app_context

    ada = await client_for(user)
    assert user.email in (await ada.get("/mine", headers=HTML)).text
    cookie = ada.cookies.get(app_context(app).settings.session_cookie_name)
    await sessions.end_all_sessions(user.id)  # "sign out everywhere": the cookie is dead
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as thief:
        thief.cookies.set(app_context(app).settings.session_cookie_name, cookie)
        stolen = await thief.get("/mine", headers=HTML, follow_redirects=False)
    assert user.email not in stolen.text
    assert stolen.status_code in (303, 401)


async def test_invalidating_a_page_tag_renders_the_page_again(client):
    await client.get("/notes/1")
    await client.get("/notes/2")
    assert (await client.get("/notes/1")).headers.get("x-cache") == "hit"
    await client.post("/touch/note:1")
    fresh = await client.get("/notes/1")
    assert runs(fresh) == "2" and "x-cache" not in fresh.headers
    assert (await client.get("/notes/2")).headers.get("x-cache") == "hit"


async def test_htmx_requests_are_not_served_from_the_page_cache(client):
    await client.get("/public", headers=HTML)
    partial = await client.get("/public", headers={**HTML, "HX-Request": "true"})
    assert "x-cache" not in partial.headers


async def test_a_fragment_is_cached_per_viewer_and_never_shown_to_another(client, client_for, user):
    from vibetuner.models import UserModel

    bob = UserModel(email="bob@example.com", name="Bob")
    await bob.insert()
    ada_client, bob_client = await client_for(user), await client_for(bob)
    ada = await ada_client.get("/fragments", headers=HTML)
    bob_page = await bob_client.get("/fragments", headers=HTML)
    anonymous = await client.get("/fragments", headers=HTML)
    assert f"Hello {user.email} (1)" in ada.text
    assert "Hello bob@example.com (2)" in bob_page.text
    assert "Hello stranger (3)" in anonymous.text
    ada_again = await ada_client.get("/fragments", headers=HTML)
    assert f"Hello {user.email} (1)" in ada_again.text  # from the fragment cache
    assert "bob@example.com" not in ada_again.text
    # The shared fragment is the first one rendered, for everyone.
    assert all("total=10" in page.text for page in (ada, bob_page, anonymous, ada_again))


async def test_a_cached_fragment_carries_the_viewers_own_csrf_token(app, client):
    first = await client.get("/fragments", headers=HTML)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        page = await other.get("/fragments", headers=HTML)
        assert "Hello stranger (1)" in page.text  # the cached fragment
        tokens = re.findall(r'name="csrf_token" value="([^"]+)"', page.text)
        assert tokens and tokens[0] not in first.text
        sent = await other.post("/echo", data={"csrf_token": tokens[0]}, headers=HTML)
        assert sent.status_code == 200


async def test_invalidating_a_fragment_tag_renders_it_again(client):
    assert "total=10" in (await client.get("/fragments", headers=HTML)).text
    assert "total=10" in (await client.get("/fragments", headers=HTML)).text
    await client.post("/touch/totals")
    assert "total=30" in (await client.get("/fragments", headers=HTML)).text


async def test_only_get_is_served_from_the_cache(client):
    """HEAD is answered as the route answers it (FastAPI: 405), cached page or not."""
    await client.get("/public", headers=HTML)
    assert (await client.get("/public", headers=HTML)).headers["x-cache"] == "hit"
    head = await client.head("/public", headers=HTML)
    assert head.status_code == 405 and "x-cache" not in head.headers


async def test_each_host_and_scheme_has_its_own_copy(client):
    """A request with another Host cannot store a page that visitors of this one get."""
    poisoned = await client.get("/public", headers={**HTML, "Host": "evil.example"})
    assert poisoned.status_code == 200
    page = await client.get("/public", headers=HTML)
    assert "x-cache" not in page.headers and runs(page) == "2"


async def test_a_fragment_tag_invalidated_in_one_worker_is_dropped_in_the_other(
    vibetuner_settings, request
):
    """Two app processes on one Redis: fragments live in each, tags are shared."""
    from contextlib import AsyncExitStack

    settings = settings_for(vibetuner_settings, "redis", request).model_copy(
        update={"cache_fragment_sync_seconds": 0.05}
    )
    RUNS.clear()
    first, second = cache_app(settings), cache_app(settings)
    async with AsyncExitStack() as stack:
        for application in (first, second):
            await stack.enter_async_context(application.router.lifespan_context(application))
        await app_context(first).get(Cache).backend._client.flushdb()
        clients = []
        for application in (first, second):
            transport = httpx.ASGITransport(app=application)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver")
                )
            )
        one, two = clients
        assert "total=10" in (await one.get("/fragments", headers=HTML)).text
        assert "total=20" in (await two.get("/fragments", headers=HTML)).text  # its own copy
        assert "total=20" in (await two.get("/fragments", headers=HTML)).text
        # A note changes in the first process.
        await app_context(first).get(Cache).invalidate_tags("totals")
        await asyncio.sleep(0.3)  # a few sync intervals
        last = (await two.get("/fragments", headers=HTML)).text
        assert "total=40" in last, re.findall(r"total=\d+|Hello [^<]*", last)


async def test_an_api_tokens_answer_is_never_served_to_anyone_else(app, user):
    # A route that caches its page and reads the token's user: the answer to a bearer
    # request is that user's, whatever the cache thinks of a request without cookies.
    from vibetuner.auth import api_token_store
    from vibetuner.models import UserModel
    from vibetuner.models.mixins import utcnow

    settings = app_context(app).settings
    bob = UserModel(email="bob@example.com", email_verified_at=utcnow())
    await bob.insert()
    ada_token = (await api_token_store.create(user, "ada", ["read"], 30, settings)).secret
    bob_token = (await api_token_store.create(bob, "bob", ["read"], 30, settings)).secret
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        for _ in range(2):
            ada = await api.get("/api/mine", headers={"Authorization": f"Bearer {ada_token}"})
            assert ada.json() == {"owner": user.email}
        anonymous = await api.get("/api/mine")
        assert anonymous.status_code == 401 and user.email not in anonymous.text
        guessed = await api.get("/api/mine", headers={"Authorization": "Bearer vt_guessed"})
        assert guessed.status_code == 401 and user.email not in guessed.text
        bob_answer = await api.get("/api/mine", headers={"Authorization": f"Bearer {bob_token}"})
        assert bob_answer.json() == {"owner": "bob@example.com"}
    assert "x-cache" not in bob_answer.headers


async def test_a_view_as_session_is_neither_served_nor_stored_the_users_pages(
    client_for, user, app
):
    from vibetuner.auth.current import STASHED_TOKEN_KEY
    from vibetuner.auth.impersonation import VIEWED_KEY
    from vibetuner.auth.sessions import start_session
    from vibetuner.models import UserModel
    from vibetuner.models.mixins import utcnow
    from vibetuner.testing import session_cookie, set_session_cookie
    from vibetuner.web.identity import SESSION_TOKEN_KEY

    # The user's own copy is stored ...
    own = await client_for(user)
    assert runs(await own.get("/mine", headers=HTML)) == "1"
    assert (await own.get("/mine", headers=HTML)).headers["x-cache"] == "hit"
    # ... then an admin views the app as the user: the browser holds the view's session
    # and the admin's own, waiting.
    settings = app_context(app).settings
    admin = UserModel(email="lead@example.com", roles=["admin"], email_verified_at=utcnow())
    await admin.insert()
    waiting = await start_session(admin, settings)
    view = await start_session(user, settings, impersonator=admin, max_age=3600)
    cookie = session_cookie(
        settings,
        {
            SESSION_TOKEN_KEY: view,
            STASHED_TOKEN_KEY: waiting,
            VIEWED_KEY: user.email,
        },
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as viewing:
        set_session_cookie(viewing, settings, cookie)
        for _ in range(2):
            page = await viewing.get("/mine", headers=HTML)
            assert page.status_code == 200 and user.email in page.text
            assert "x-cache" not in page.headers
            assert "data-view-as-banner" in page.text  # the way back is always there
    # The view's pages never became the user's copy.
    mine = await own.get("/mine", headers=HTML)
    assert mine.headers["x-cache"] == "hit" and runs(mine) == "1"
    assert "data-view-as-banner" not in mine.text
