"""Sign-out, sign-out everywhere, ``/auth/me`` and the same-origin rule on POSTs."""

from __future__ import annotations

import httpx
import pytest

from vibetuner.models import OAuthAccount, UserModel
from vibetuner.testing import app_context, send_csrf_token, signed_in_cookie


async def client_for(app, user):
    settings = app_context(app).settings
    cookie = await signed_in_cookie(settings, user)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    # The domain httpx files the server's own cookies under, so a sign-out that
    # expires the cookie replaces this one, as in a browser.
    http.cookies.set(settings.session_cookie, cookie, domain="testserver.local")
    return send_csrf_token(http, settings.session_cookie)


@pytest.fixture
async def browser(app, user):
    """A client signed in as ``user`` whose cookie the server can replace."""
    async with await client_for(app, user) as http:
        yield http


async def test_me_shows_the_user_without_tokens(signed_in_client, user):
    account = OAuthAccount(
        provider="example",
        provider_user_id="42",
        user=user,
        email=user.email,
        email_verified=True,
        access_token="secret-access-token",
        refresh_token="secret-refresh-token",
    )
    await account.insert()
    user.oauth_accounts.append(account)
    await user.save()

    response = await signed_in_client.get("/auth/me")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": str(user.id),
        "email": user.email,
        "name": "Test User",
        "picture": None,
        "email_verified": True,
        "providers": ["example"],
    }
    assert "secret" not in response.text


async def test_logout_clears_the_session(browser):
    assert (await browser.get("/auth/me")).status_code == 200
    response = await browser.post("/auth/logout")
    assert response.status_code == 200
    assert response.json() == {"status": "signed_out"}
    assert (await browser.get("/auth/me")).status_code == 401


async def test_logout_from_a_browser_redirects_home(browser):
    response = await browser.post(
        "/auth/logout", headers={"Accept": "text/html", "Origin": "http://testserver"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert (await browser.get("/auth/me")).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "http://testserver.evil.example"},
    ],
)
async def test_cross_site_logout_is_refused(browser, headers):
    for path in ("/auth/logout", "/auth/logout-everywhere"):
        response = await browser.post(path, headers=headers)
        assert response.status_code == 403
    assert (await browser.get("/auth/me")).status_code == 200


async def test_same_origin_referer_is_accepted(browser):
    response = await browser.post("/auth/logout", headers={"Referer": "http://testserver/settings"})
    assert response.status_code == 200
    assert (await browser.get("/auth/me")).status_code == 401


async def test_logout_everywhere_ends_every_session(app, user):
    async with await client_for(app, user) as laptop, await client_for(app, user) as phone:
        assert (await phone.get("/auth/me")).status_code == 200
        response = await laptop.post("/auth/logout-everywhere")
        assert response.status_code == 200
        assert (await laptop.get("/auth/me")).status_code == 401
        assert (await phone.get("/auth/me")).status_code == 401
    refreshed = await UserModel.get(user.id)
    assert refreshed.session_version == user.session_version + 1


async def test_logout_everywhere_needs_a_signed_in_user(client):
    response = await client.post("/auth/logout-everywhere")
    assert response.status_code == 401


async def test_session_cookie_is_httponly_and_samesite(client, outbox):
    from tests.auth.conftest import follow_link, magic_link, request_link

    await request_link(client, "cookie@example.com")
    response = await follow_link(client, magic_link(outbox()[0]))
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


async def test_disabled_user_cannot_sign_in_by_link(client, outbox, user):
    from tests.auth.conftest import follow_link, magic_link, request_link

    await user.set({UserModel.is_active: False})
    await request_link(client, user.email)
    response = await follow_link(client, magic_link(outbox()[0]))
    assert response.status_code == 403
    assert "disabled" in response.text
    assert (await client.get("/auth/me")).status_code == 401
