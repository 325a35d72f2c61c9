"""Sessions kept on the server: sign-out that holds, lifetimes, listing and revoking."""

from __future__ import annotations

from datetime import timedelta

import httpx
from pydantic import SecretStr

from tests.auth.conftest import follow_link, magic_link, request_link
from vibetuner import create_app
from vibetuner.auth.sessions import hash_session_token
from vibetuner.config import Settings
from vibetuner.models import UserModel, UserSession
from vibetuner.models.mixins import utcnow
from vibetuner.testing import app_context, send_csrf_token, signed_in_cookie
from vibetuner.web.identity import SESSION_TOKEN_KEY


def browser_with(app, cookie: str) -> httpx.AsyncClient:
    """A client holding a copy of ``cookie`` (as a thief or a second tab would)."""
    settings = app_context(app).settings
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    http.cookies.set(settings.session_cookie, cookie, domain="testserver.local")
    return send_csrf_token(http, settings.session_cookie)


async def signed_in(app, user) -> tuple[httpx.AsyncClient, str]:
    cookie = await signed_in_cookie(app_context(app).settings, user)
    return browser_with(app, cookie), cookie


async def test_a_copied_cookie_stops_working_after_sign_out(app, user):
    browser, cookie = await signed_in(app, user)
    async with browser, browser_with(app, cookie) as stolen:
        assert (await stolen.get("/auth/me")).status_code == 200
        assert (await browser.post("/auth/logout")).status_code == 200
        # The copy taken before the sign-out is refused: the session is gone on the server.
        assert (await stolen.get("/auth/me")).status_code == 401
    assert await UserSession.find({"user_id": user.id}).count() == 0


async def test_sign_out_everywhere_deletes_every_session(app, user):
    laptop, _ = await signed_in(app, user)
    phone, _ = await signed_in(app, user)
    async with laptop, phone:
        assert await UserSession.find({"user_id": user.id}).count() == 2
        assert (await laptop.post("/auth/logout-everywhere")).status_code == 200
        assert (await phone.get("/auth/me")).status_code == 401
    assert await UserSession.find({"user_id": user.id}).count() == 0
    assert (await UserModel.get(user.id)).session_version == user.session_version + 1


async def test_the_absolute_lifetime_is_never_extended(app, user):
    browser, cookie = await signed_in(app, user)
    key = hash_session_token(session_token(app, cookie))
    sessions = UserSession.get_pymongo_collection()
    async with browser:
        before = await sessions.find_one({"_id": key})
        # Activity moves last_seen_at, never expires_at ...
        await sessions.update_one(
            {"_id": key}, {"$set": {"last_seen_at": utcnow() - timedelta(minutes=5)}}
        )
        assert (await browser.get("/auth/me")).status_code == 200
        after = await sessions.find_one({"_id": key})
        assert after["expires_at"] == before["expires_at"]
        assert after["last_seen_at"] > before["last_seen_at"] - timedelta(minutes=5)
        # ... and once expires_at has passed, busy or not, the session is over.
        await sessions.update_one(
            {"_id": key}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}}
        )
        assert (await browser.get("/auth/me")).status_code == 401
    assert await sessions.find_one({"_id": key}) is None


async def test_an_idle_session_ends(app, user):
    browser, cookie = await signed_in(app, user)
    idle = app_context(app).settings.session_idle_timeout
    key = hash_session_token(session_token(app, cookie))
    async with browser:
        await UserSession.get_pymongo_collection().update_one(
            {"_id": key}, {"$set": {"last_seen_at": utcnow() - timedelta(seconds=idle + 1)}}
        )
        assert (await browser.get("/auth/me")).status_code == 401


async def test_sessions_are_listed_and_one_can_be_revoked(app, user):
    laptop, _ = await signed_in(app, user)
    phone, _ = await signed_in(app, user)
    async with laptop, phone:
        listed = await laptop.get("/auth/sessions", headers={"User-Agent": "laptop"})
        assert listed.status_code == 200
        rows = listed.json()
        assert len(rows) == 2 and sum(row["current"] for row in rows) == 1
        assert set(rows[0]) == {
            "id", "current", "created_at", "last_seen_at", "expires_at", "user_agent", "ip_prefix"
        }  # fmt: skip
        other = next(row["id"] for row in rows if not row["current"])
        assert (await laptop.delete(f"/auth/sessions/{other}")).status_code == 204
        assert (await phone.get("/auth/me")).status_code == 401
        assert (await laptop.get("/auth/me")).status_code == 200
        assert (await laptop.delete(f"/auth/sessions/{other}")).status_code == 404


async def test_nobody_revokes_a_session_of_someone_else(app, user):
    stranger = UserModel(email="stranger@example.com")
    await stranger.insert()
    mine, _ = await signed_in(app, user)
    theirs, _ = await signed_in(app, stranger)
    async with mine, theirs:
        [their_session] = (await theirs.get("/auth/sessions")).json()
        assert (await mine.delete(f"/auth/sessions/{their_session['id']}")).status_code == 404
        assert (await theirs.get("/auth/me")).status_code == 200


async def test_sign_in_rotates_the_session(app, client, outbox, user):
    # A session planted before sign-in (fixation) is not the one signed in.
    planted, planted_cookie = await signed_in(app, user)
    await planted.aclose()
    settings = app_context(app).settings
    client.cookies.set(settings.session_cookie, planted_cookie, domain="testserver.local")
    await request_link(client, user.email)
    assert (await follow_link(client, magic_link(outbox()[0]))).status_code == 303
    new_cookie = client.cookies[settings.session_cookie]
    assert session_token(app, new_cookie) != session_token(app, planted_cookie)
    # The planted session was ended by the sign-in.
    old_key = hash_session_token(session_token(app, planted_cookie))
    assert await UserSession.get_pymongo_collection().find_one({"_id": old_key}) is None


async def test_only_a_hash_of_the_token_is_stored(app, user):
    browser, cookie = await signed_in(app, user)
    await browser.aclose()
    token = session_token(app, cookie)
    [stored] = await UserSession.get_pymongo_collection().find({"user_id": user.id}).to_list()
    assert token not in str(stored)
    assert stored["_id"] == hash_session_token(token)


async def test_a_deactivated_user_is_signed_out_at_once(app, user):
    browser, _ = await signed_in(app, user)
    async with browser:
        assert (await browser.get("/auth/me")).status_code == 200
        await user.set({UserModel.is_active: False})
        assert (await browser.get("/auth/me")).status_code == 401


def test_production_cookies_use_the_host_prefix():
    settings = Settings(
        _env_file=None,
        environment="production",
        session_key=SecretStr("q8Zr3vN1xK5mP0wT7yB2cF9hJ4lD6sG-aE_uI"),
        mongodb_url=SecretStr("mongodb://db.internal:27017/app"),
        email_backend="smtp",
        base_url="https://app.example.com",
    )
    assert settings.session_cookie_name == "__Host-vibetuner_session"
    app = create_app(settings=settings)
    [session_layer] = [m for m in app.user_middleware if m.cls.__name__ == "SessionMiddleware"]
    assert session_layer.kwargs["session_cookie"] == "__Host-vibetuner_session"
    assert session_layer.kwargs["https_only"] is True


def session_token(app, cookie: str) -> str:
    """The session token inside a signed cookie value."""
    import base64
    import json

    import itsdangerous

    from vibetuner.services.keys import signing_key

    signer = itsdangerous.TimestampSigner(signing_key(app_context(app).settings))
    return json.loads(base64.b64decode(signer.unsign(cookie)))[SESSION_TOKEN_KEY]
