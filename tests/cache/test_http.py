"""ETag and Last-Modified with 304, and Cache-Control policies per route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.cache.app import RUNS, cache_app
from vibetuner.cache.http import etag_matches, make_etag


@pytest.fixture
async def app(vibetuner_settings: Any) -> AsyncIterator[Any]:
    RUNS.clear()
    application = cache_app(vibetuner_settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_a_matching_etag_gets_a_304_without_a_body(client):
    first = await client.get("/validated")
    assert first.status_code == 200 and first.text == "the document"
    etag = first.headers["etag"]
    again = await client.get("/validated", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    listed = await client.get("/validated", headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304
    changed = await client.get("/validated", headers={"If-None-Match": '"something else"'})
    assert changed.status_code == 200 and changed.text == "the document"


async def test_if_modified_since_is_answered_from_last_modified(client):
    first = await client.get("/validated")
    stamp = first.headers["last-modified"]
    assert stamp == "Tue, 01 Dec 2026 10:00:00 GMT"
    same = await client.get("/validated", headers={"If-Modified-Since": stamp})
    assert same.status_code == 304
    older = await client.get(
        "/validated", headers={"If-Modified-Since": "Mon, 30 Nov 2026 10:00:00 GMT"}
    )
    assert older.status_code == 200
    # If-None-Match wins over If-Modified-Since when both are sent.
    both = await client.get(
        "/validated", headers={"If-None-Match": '"stale"', "If-Modified-Since": stamp}
    )
    assert both.status_code == 200


@pytest.mark.parametrize("garbage", ["yesterday", "", "Tue, 99 Foo 2026 99:99:99 GMT", "\x00"])
async def test_a_malformed_date_is_ignored_not_an_error(client, garbage):
    answer = await client.get("/validated", headers={"If-Modified-Since": garbage})
    assert answer.status_code == 200


async def test_a_post_is_never_answered_304():
    from starlette.requests import Request

    from vibetuner.cache.http import not_modified

    tag = make_etag("x")
    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"if-none-match", tag.encode())],
        "path": "/",
        "query_string": b"",
    }
    assert not_modified(Request(scope), etag=tag) is None


def test_etags_name_their_parts_unambiguously():
    assert make_etag("ab", "c") != make_etag("a", "bc")
    assert make_etag("a", weak=True).startswith('W/"')
    assert etag_matches("*", make_etag("anything"))


async def test_a_route_policy_is_sent_to_signed_out_visitors(client):
    answer = await client.get("/policy")
    assert answer.headers["cache-control"] == "public, max-age=60"


async def test_a_public_policy_becomes_private_for_a_signed_in_user(signed_in_client):
    answer = await signed_in_client.get("/policy")
    assert answer.headers["cache-control"] == "private, max-age=60"


async def test_a_public_policy_becomes_private_for_an_api_tokens_answer(app, client, user):
    # A proxy must not keep one token's answer for the next client (a "public" answer
    # to a request with Authorization may be stored by shared caches).
    from vibetuner.auth import api_token_store
    from vibetuner.testing import app_context

    settings = app_context(app).settings
    token = (await api_token_store.create(user, "ada", ["read"], 30, settings)).secret
    answer = await client.get("/api/profile", headers={"Authorization": f"Bearer {token}"})
    assert answer.json() == {"owner": user.email}
    assert answer.headers["cache-control"] == "private, max-age=60"


async def test_signed_in_pages_stay_no_store_by_default(signed_in_client):
    answer = await signed_in_client.get("/validated")
    assert answer.headers["cache-control"] == "no-store"


async def test_a_response_keeps_its_own_cache_control(client):
    assert (await client.get("/own-policy")).headers["cache-control"] == "no-cache"


def test_a_policy_with_a_line_break_is_refused():
    from vibetuner.cache import cache_control

    with pytest.raises(ValueError, match="not a Cache-Control value"):
        cache_control("public\r\nSet-Cookie: x=1")
