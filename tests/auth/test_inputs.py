"""Odd and hostile input to the sign-in routes: always a clear 4xx, never a 500."""

from __future__ import annotations

import logging

import pytest

from tests.auth.conftest import follow_link, magic_link, request_link
from vibetuner.models import EmailVerificationToken
from vibetuner.web.redirects import is_safe_next

HTML = {"Accept": "text/html"}


@pytest.mark.parametrize(
    "value", ["/", "/a", "/a/b?c=d&e=f#g", "/caf%C3%A9", "/search?q=%2F%2Fnot-a-host"]
)
def test_relative_paths_are_safe(value):
    assert is_safe_next(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "a",
        "//x",
        "/\\x",
        "\\/x",
        "/%2F%2Fx",
        "%2F%2Fx",
        "/%5C%5Cx",
        "/\nx",
        "/\x00x",
        "http:/x",
        "/" + "a" * 5000,
        ["/a"],
    ],
)
def test_unsafe_values_are_refused(value):
    assert not is_safe_next(value)


async def test_user_input_is_escaped_in_pages(client):
    hostile = '"><script>alert(1)</script>'
    response = await client.post("/auth/magic-link", data={"email": hostile}, headers=HTML)
    assert response.status_code == 422
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text or "&#34;&gt;&lt;script" in response.text


async def test_tokens_never_reach_the_logs(client, outbox, caplog):
    caplog.set_level(logging.DEBUG)
    await request_link(client, "quiet@example.com")
    link = magic_link(outbox()[0])
    token = link.rsplit("/", 1)[1]
    await follow_link(client, link)
    await follow_link(client, link)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("vibetuner")]
    assert ours  # the flow does log
    assert not [line for line in ours if token in line]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422),
        ({"json": ["a@example.com"]}, 422),
        ({"json": {"email": 42}}, 422),
        ({"data": {}}, 422),
        ({"files": {"email": ("e.txt", b"a@example.com")}}, 400),
        ({"data": {"email": "a" * 70_000 + "@example.com"}}, 413),
        ({"json": {"email": "a@example.com", "pad": "x" * 70_000}}, 413),
    ],
)
async def test_malformed_requests_are_4xx(client, outbox, kwargs, expected):
    response = await client.post("/auth/magic-link", **kwargs)
    assert response.status_code == expected
    assert outbox() == []
    assert await EmailVerificationToken.find_all().count() == 0


async def test_oversized_body_without_length_is_413(client, outbox):
    async def chunks():
        yield b"email=a%40example.com&pad="
        for _ in range(10):
            yield b"x" * 8192

    response = await client.post(
        "/auth/magic-link",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert outbox() == []
    assert await EmailVerificationToken.find_all().count() == 0


@pytest.mark.parametrize("header", ["origin", "referer"])
@pytest.mark.parametrize("value", ["http://[::1", "http://[bad", "null", "\x7f"])
async def test_malformed_origin_headers_are_refused_not_500(signed_in_client, header, value):
    response = await signed_in_client.post("/auth/logout", headers={header: value})
    assert response.status_code == 403
    assert (await signed_in_client.get("/auth/me")).status_code == 200


@pytest.mark.parametrize("token", ["x", "A" * 300, "%00", "a b", "%E2%80%AE"])
async def test_odd_tokens_are_400(client, token):
    response = await client.get(f"/auth/magic-link/{token}")
    assert response.status_code == 400
    assert "not valid" in response.text


async def test_get_on_post_routes_is_405(client):
    assert (await client.get("/auth/logout")).status_code == 405
    assert (await client.get("/auth/magic-link")).status_code == 405
