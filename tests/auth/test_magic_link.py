"""Magic-link sign-in end to end over HTTP, with the ``file`` email backend."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest

from tests.auth.conftest import (
    follow_link,
    html_body,
    link_path,
    magic_link,
    request_link,
    text_body,
)
from vibetuner.models import EmailVerificationToken, UserModel

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_link_signs_in_a_new_user(client, outbox, vibetuner_settings):
    response = await request_link(client, "New.Person@Example.com")
    assert response.status_code == 200
    assert response.json()["status"] == "sent"

    [message] = outbox()
    assert message["To"] == "new.person@example.com"
    assert message["From"] == vibetuner_settings.email_from
    assert "sign-in link" in message["Subject"].lower()
    link = magic_link(message)
    assert link.startswith("http://testserver/auth/magic-link/")
    assert link in html_body(message)
    assert "15 minutes" in text_body(message)

    followed = await follow_link(client, link)
    assert followed.status_code == 303
    assert followed.headers["location"] == "/"

    me = await client.get("/auth/me")
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == "new.person@example.com"
    assert body["email_verified"] is True
    assert body["providers"] == []
    assert set(body) == {"id", "email", "name", "picture", "email_verified", "providers"}

    user = await UserModel.get_by_email("new.person@example.com")
    assert (
        user is not None and user.last_login_at is not None and user.email_verified_at is not None
    )


async def test_only_the_hash_of_the_token_is_stored(client, outbox):
    await request_link(client, "hash@example.com")
    token = magic_link(outbox()[0]).rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    raw = await EmailVerificationToken.get_pymongo_collection().find_one(
        {"email": "hash@example.com"}
    )
    assert token not in str(raw)
    assert raw["token_hash"] != token


async def test_existing_user_signs_in_to_the_same_account(client, outbox, user):
    await request_link(client, user.email.upper())
    response = await follow_link(client, magic_link(outbox()[0]))
    assert response.status_code == 303
    me = (await client.get("/auth/me")).json()
    assert me["id"] == str(user.id)
    assert await UserModel.find_all().count() == 1


async def test_browser_form_gets_a_check_your_inbox_page(client, outbox):
    response = await client.post(
        "/auth/magic-link", data={"email": "page@example.com"}, headers=HTML
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Check your inbox" in response.text
    assert "page@example.com" in response.text
    assert len(outbox()) == 1


async def test_used_link_is_refused_with_a_plain_reason(client, app, outbox):
    await request_link(client, "twice@example.com")
    path = link_path(magic_link(outbox()[0]))
    assert (await follow_link(client, path)).status_code == 303

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        again = await other.get(path, headers=HTML)
        assert again.status_code == 400
        assert "already used" in again.text
        assert 'href="/auth/login"' in again.text
        assert (await other.get("/auth/me")).status_code == 401


async def test_expired_link_is_refused(client):
    # A link issued already expired: MongoDB's TTL index may remove its record at any time,
    # and the page must still say "expired".
    raw, _ = await EmailVerificationToken.issue(
        "late@example.com", purpose="login", ttl=timedelta(seconds=-1)
    )
    response = await client.get(f"/auth/magic-link/{raw}")
    assert response.status_code == 400
    assert "expired" in response.text
    assert (await client.get("/auth/me")).status_code == 401
    assert await UserModel.get_by_email("late@example.com") is None


async def test_unknown_and_replaced_links_are_refused(client, outbox):
    unknown = await client.get("/auth/magic-link/" + "A" * 43)
    assert unknown.status_code == 400
    assert "not valid" in unknown.text

    await request_link(client, "again@example.com")
    await request_link(client, "again@example.com")
    first, second = outbox()
    replaced = await client.get(link_path(magic_link(first)))
    assert replaced.status_code == 400
    assert "not valid" in replaced.text
    assert (await follow_link(client, magic_link(second))).status_code == 303


async def test_twenty_concurrent_follows_sign_in_exactly_once(app, client, outbox):
    await request_link(client, "race@example.com")
    path = link_path(magic_link(outbox()[0]))
    transport = httpx.ASGITransport(app=app)
    clients = [
        httpx.AsyncClient(transport=transport, base_url="http://testserver") for _ in range(20)
    ]
    try:
        responses = await asyncio.gather(*(follow_link(c, path) for c in clients))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [303] + [400] * 19
        signed_in = [c for c in clients if (await c.get("/auth/me")).status_code == 200]
        assert len(signed_in) == 1
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert await UserModel.find_all().count() == 1


async def test_same_answer_for_known_and_unknown_email(client, outbox, user):
    known = await request_link(client, user.email)
    unknown = await request_link(client, "nobody-here@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.json()["detail"].replace(user.email, "X") == unknown.json()["detail"].replace(
        "nobody-here@example.com", "X"
    )
    assert set(known.headers) == set(unknown.headers)
    # Both get a working link; the unknown address gets an account only once it follows it.
    assert len(outbox()) == 2
    assert await UserModel.get_by_email("nobody-here@example.com") is None

    pages = [
        await client.post("/auth/magic-link", data={"email": address}, headers=HTML)
        for address in (user.email, "nobody-here@example.com")
    ]
    # Alike but for the address and the per-response CSRF token and CSP nonce.
    texts = [
        re.sub(r'(content|nonce|value)="[^"]+"', "", page.text).replace(address, "X")
        for page, address in zip(pages, (user.email, "nobody-here@example.com"), strict=True)
    ]
    assert texts[0] == texts[1]


@pytest.mark.parametrize("address", ["not-an-email", "a@", "@example.com", "a b@example.com", ""])
async def test_invalid_email_is_422_and_nothing_is_stored(client, outbox, address):
    response = await request_link(client, address)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "email"]
    assert detail[0]["msg"]
    assert outbox() == []
    assert await EmailVerificationToken.find_all().count() == 0


async def test_invalid_email_page_for_browsers(client, outbox):
    response = await client.post("/auth/magic-link", data={"email": "nope"}, headers=HTML)
    assert response.status_code == 422
    assert "not valid" in response.text
    assert 'value="nope"' in response.text
    assert outbox() == []


async def test_json_body_is_accepted(client, outbox):
    response = await client.post("/auth/magic-link", json={"email": "json@example.com"})
    assert response.status_code == 200
    assert outbox()[0]["To"] == "json@example.com"


async def test_next_is_carried_through_the_link(client, outbox):
    await request_link(client, "next@example.com", next="/projects/7?tab=files")
    link = magic_link(outbox()[0])
    response = await follow_link(client, link)
    assert response.status_code == 303
    assert response.headers["location"] == "/projects/7?tab=files"


OPEN_REDIRECTS = [
    "//evil.com",
    "https://evil.com",
    "http://evil.com/path",
    "/\\evil.com",
    "\\\\evil.com",
    "/%2F%2Fevil.com",
    "/%5Cevil.com",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "///evil.com",
    "/\t/evil.com",
    " //evil.com",
    "evil.com",
    "data:text/html,hi",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
async def test_open_redirects_are_refused(client, outbox, target):
    await request_link(client, "redirect@example.com", next=target)
    link = magic_link(outbox()[0])
    assert "evil" not in link
    response = await follow_link(client, link)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
async def test_open_redirects_in_the_link_itself_are_refused(client, outbox, target):
    await request_link(client, "direct@example.com")
    path = link_path(magic_link(outbox()[0]))
    response = await follow_link(client, f"{path}?{urlencode({'next': target})}")
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_login_page_keeps_a_safe_next_only(client):
    page = await client.get("/auth/login", params={"next": "/settings"})
    assert page.status_code == 200
    assert 'name="next" value="/settings"' in page.text
    assert 'action="/auth/magic-link"' in page.text
    evil = await client.get("/auth/login", params={"next": "//evil.com"})
    assert "evil.com" not in evil.text


async def test_me_is_401_when_signed_out(client):
    response = await client.get("/auth/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not signed in.", "code": "not_signed_in"}


async def test_opening_a_link_uses_nothing_and_names_the_account(app, outbox):
    # A mail scanner (no cookies, no button) opens the link first, twice.
    await request_link_as_api(app, "scanned@example.com")
    path = link_path(magic_link(outbox()[0]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as scanner:
        for _ in range(2):
            page = await scanner.get(path, headers=HTML)
            assert page.status_code == 200
            assert "Sign in as" in page.text and "scanned@example.com" in page.text
        assert (await scanner.get("/auth/me")).status_code == 401
    record = await EmailVerificationToken.find_one({"email": "scanned@example.com"})
    assert record.used_at is None
    assert await UserModel.get_by_email("scanned@example.com") is None

    # The person then opens it and presses the button.
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as person:
        assert (await follow_link(person, path)).status_code == 303
        assert (await person.get("/auth/me")).json()["email"] == "scanned@example.com"


async def test_a_cross_site_post_cannot_use_a_link(app, outbox):
    # Login CSRF: another site auto-submits a form to a link it got for its own account.
    await request_link_as_api(app, "attacker@example.com")
    path = link_path(magic_link(outbox()[0]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as victim:
        forged = await victim.post(
            path, headers={"Origin": "https://evil.example", "Accept": "text/html"}
        )
        assert forged.status_code == 403
        assert (await victim.get("/auth/me")).status_code == 401
    record = await EmailVerificationToken.find_one({"email": "attacker@example.com"})
    assert record.used_at is None


async def request_link_as_api(app, email: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        assert (await request_link(api, email)).status_code == 200
