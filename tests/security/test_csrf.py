"""CSRF protection: every unsafe request of a cookie-authenticated client needs this
site's origin and the session's token; cookie-less API clients are not affected."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from vibetuner.testing import (
    app_context,
    csrf_token_in,
    set_session_cookie,
    signed_in_cookie,
)
from vibetuner.web.csrf import mask, token_matches

FOREIGN = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/page"},
    {"Origin": "http://testserver.evil.example"},
    # A sibling subdomain is the same site (SameSite cookies go along) but not this origin.
    {"Origin": "http://sub.testserver"},
]


async def browser(app: Any, user: Any) -> httpx.AsyncClient:
    """A signed-in client that sends no token unless told to."""
    settings = app_context(app).settings
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    value = await signed_in_cookie(settings, user)
    set_session_cookie(http, settings, value)
    return http


async def page_token(http: httpx.AsyncClient) -> str:
    page = await http.get("/auth/login", headers={"Accept": "text/html"})
    assert page.status_code == 200
    return csrf_token_in(page.text)


async def upload(http: httpx.AsyncClient, **kwargs: Any) -> httpx.Response:
    return await http.post("/blobs", files={"file": ("a.txt", b"hello", "text/plain")}, **kwargs)


@pytest.mark.parametrize("headers", FOREIGN)
async def test_cross_site_unsafe_requests_are_refused(app, user, blob_store, headers):
    async with await browser(app, user) as http:
        token = await page_token(http)
        own = await upload(http, headers={"X-CSRF-Token": token})
        assert own.status_code == 201
        blob_id = own.json()["id"]
        # Even with a valid token: the request comes from another site.
        cross = {**headers, "X-CSRF-Token": token}
        for method, path in [
            ("POST", "/blobs"),
            ("DELETE", f"/blobs/{blob_id}"),
            ("POST", "/auth/logout"),
            ("POST", "/auth/logout-everywhere"),
        ]:
            response = await http.request(method, path, headers=cross)
            assert response.status_code == 403, (method, path, response.text)
            assert "another site" in response.json()["detail"]
        assert (await http.get(f"/blobs/{blob_id}")).status_code == 200
        assert (await http.get("/auth/me")).status_code == 200
        assert await blob_store.backend.exists((await find(blob_id)).key)


async def find(blob_id: str) -> Any:
    from beanie import PydanticObjectId

    from vibetuner.models import Blob

    return await Blob.get(PydanticObjectId(blob_id))


async def test_browsers_get_a_short_page(app, user):
    async with await browser(app, user) as http:
        response = await http.post(
            "/auth/logout", headers={"Origin": "https://evil.example", "Accept": "text/html"}
        )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "another site" in response.text and "evil.example" in response.text


async def test_same_site_requests_need_the_token(app, user):
    async with await browser(app, user) as http:
        missing = await http.post("/auth/logout", headers={"Origin": "http://testserver"})
        assert missing.status_code == 403
        assert "CSRF token is missing" in missing.json()["detail"]
        wrong = await http.post("/auth/logout", headers={"X-CSRF-Token": "x" * 86})
        assert wrong.status_code == 403
        assert "invalid" in wrong.json()["detail"]
        assert (await http.get("/auth/me")).status_code == 200
        token = await page_token(http)
        done = await http.post("/auth/logout", headers={"X-CSRF-Token": token})
        assert done.status_code == 200
        assert (await http.get("/auth/me")).status_code == 401


async def test_a_token_of_another_session_is_refused(app, user):
    async with await browser(app, user) as mine, await browser(app, user) as theirs:
        their_token = await page_token(theirs)
        await page_token(mine)  # this session has a secret of its own
        response = await mine.post("/auth/logout", headers={"X-CSRF-Token": their_token})
        assert response.status_code == 403
        assert (await mine.get("/auth/me")).status_code == 200


async def test_tokens_are_masked_per_response(app, user):
    async with await browser(app, user) as http:
        first, second = await page_token(http), await page_token(http)
        assert first != second
        for token in (first, second):
            response = await upload(http, headers={"X-CSRF-Token": token})
            assert response.status_code == 201


def test_masking_round_trip():
    secret = bytes(range(32))
    assert token_matches(mask(secret), secret)
    assert not token_matches(mask(bytes(32)), secret)
    assert not token_matches("not base64 !", secret)
    assert not token_matches("ü" * 86, secret)


async def test_the_form_field_works_and_the_route_still_reads_the_form(app, user, outbox):
    async with await browser(app, user) as http:
        page = await http.get("/auth/login", headers={"Accept": "text/html"})
        # The sign-in form carries the token as its first field.
        form = page.text.split('<form method="post" action="/auth/magic-link"', 1)[1]
        form = form.split(">", 1)[1]
        assert form.lstrip().startswith('<input type="hidden" name="csrf_token"')
        response = await http.post(
            "/auth/magic-link",
            data={"email": "field@example.com", "csrf_token": csrf_token_in(page.text)},
        )
        assert response.status_code == 200, response.text
        assert "field@example.com" in response.json()["detail"]
    assert len(outbox.to("field@example.com")) == 1


async def test_multipart_field_first_streams_the_upload_on(app, user, blob_store):
    data = bytes(range(256)) * 4096  # 1 MiB, beyond what is buffered for the token
    async with await browser(app, user) as http:
        token = await page_token(http)
        response = await http.post(
            "/blobs",
            data={"csrf_token": token},
            files={"file": ("big.bin", data, "application/octet-stream")},
        )
        assert response.status_code == 201, response.text
        assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
        content = await http.get(f"/blobs/{response.json()['id']}/content")
        assert content.content == data
        # After the file, the field is out of reach: the header is the way for scripts.
        late = await http.post(
            "/blobs",
            files=[
                ("file", ("big.bin", data, "application/octet-stream")),
                ("csrf_token", (None, token)),
            ],
        )
        assert late.status_code == 403


async def test_an_oversize_form_is_refused_before_the_token_is_found(app, user):
    async with await browser(app, user) as http:
        token = await page_token(http)
        response = await http.post(
            "/auth/magic-link", data={"email": "x@example.com", "pad": "p" * (2 * 1024 * 1024)}
        )
        assert response.status_code == 413
        fine = await http.post(
            "/auth/magic-link", data={"email": "y@example.com", "csrf_token": token}
        )
        assert fine.status_code == 200


async def test_trusted_origins_are_accepted(vibetuner_settings):
    from vibetuner.models import UserModel
    from vibetuner.testing import default_app

    settings = vibetuner_settings.model_copy(
        update={"csrf_trusted_origins": ["https://admin.example.com"]}
    )
    application = default_app(settings=settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as client,
    ):
        user = UserModel(email="trusted@example.com")
        await user.insert()
        value = await signed_in_cookie(settings, user)
        set_session_cookie(client, settings, value)
        token = await page_token(client)
        ok = await client.post(
            "/auth/logout", headers={"Origin": "https://admin.example.com", "X-CSRF-Token": token}
        )
        assert ok.status_code == 200, ok.text
        other = await client.post(
            "/auth/logout", headers={"Origin": "https://other.example.com", "X-CSRF-Token": token}
        )
        assert other.status_code == 403


async def test_cookie_less_api_clients_are_not_affected(app, outbox):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as api:
        # JSON from anywhere, no cookie: nothing of a visitor's to abuse.
        response = await api.post(
            "/auth/magic-link",
            json={"email": "api@example.com"},
            headers={"Origin": "https://elsewhere.example"},
        )
        assert response.status_code == 200
        plain = await api.post("/auth/magic-link", json={"email": "api2@example.com"})
        assert plain.status_code == 200
        assert "set-cookie" not in plain.headers


async def test_a_cookie_less_form_from_another_site_is_refused(app, outbox):
    """What another site's page can post on its own (login CSRF): refused by origin."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as anonymous:
        response = await anonymous.post(
            "/auth/magic-link",
            data={"email": "victim@example.com"},
            headers={"Origin": "https://evil.example"},
        )
    assert response.status_code == 403
    assert len(outbox) == 0


async def test_every_framework_page_carries_the_meta_tag(client):
    for path in ("/auth/login", "/auth/magic-link/not-a-token"):
        page = await client.get(path, headers={"Accept": "text/html"})
        assert csrf_token_in(page.text)
