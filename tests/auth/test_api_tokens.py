"""Personal API tokens, over HTTP, as their owner and as an attacker would use them."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends

from vibetuner import UserModel, create_app, require_scope
from vibetuner.models.api_token import ApiToken
from vibetuner.models.mixins import utcnow
from vibetuner.testing import app_context, send_csrf_token, set_session_cookie, signed_in_cookie

HTML = {"Accept": "text/html"}
TOKEN_RE = re.compile(r"data-new-api-token>(vt_[A-Za-z0-9_-]+)<")

api = APIRouter(prefix="/api/things")


@api.get("")
async def list_things(user: Annotated[UserModel, Depends(require_scope("things:read"))]) -> dict:
    return {"owner": user.email}


@api.post("", status_code=201)
async def add_thing(user: Annotated[UserModel, Depends(require_scope("things:write"))]) -> dict:
    return {"added_by": user.email}


@pytest.fixture
def vibetuner_settings(vibetuner_settings):
    values = {
        **vibetuner_settings.model_dump(),
        "api_token_scopes": "read,write,things:read,things:write",
        "api_token_rate_per_minute": 5,
    }
    return type(vibetuner_settings)(_env_file=None, **values)


@pytest.fixture
async def app(vibetuner_settings):
    application = create_app(settings=vibetuner_settings, routers=[api])
    async with application.router.lifespan_context(application):
        yield application


def browser(app) -> httpx.AsyncClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    return send_csrf_token(http, app_context(app).settings.session_cookie)


@pytest.fixture
async def owner(app, user):
    """A browser signed in as ``user``."""
    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        yield http


async def make_token(http, name="script", scopes=("read",), days=30) -> str:
    answer = await http.post(
        "/account/api-tokens",
        data={"name": name, "scopes": list(scopes), "days": str(days)},
        headers=HTML,
    )
    assert answer.status_code == 200, answer.text[:500]
    return TOKEN_RE.search(answer.text).group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(app, method: str, token: str | None, **kwargs) -> httpx.Response:
    """An API client with no cookies at all."""
    headers = {**(bearer(token) if token else {}), **kwargs.pop("headers", {})}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        return await client.request(method, "/api/things", headers=headers, **kwargs)


async def test_a_token_is_shown_once_stored_hashed_and_works(app, owner, user):
    token = await make_token(owner, scopes=["things:read"])
    assert len(token) > 40
    stored = await ApiToken.find_one({"user_id": user.id})
    assert stored.id == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(stored.model_dump())
    page = (await owner.get("/account", headers=HTML)).text
    assert token not in page and "Never used" in page

    answer = await call(app, "GET", token)
    assert answer.status_code == 200 and answer.json() == {"owner": user.email}
    used = await ApiToken.find_one({"user_id": user.id})
    assert used.last_used_at is not None and used.last_used_address == "127.0.0.1"
    page = (await owner.get("/account", headers=HTML)).text
    assert "Last used" in page and "127.0.0.1" in page


async def test_a_token_with_the_wrong_scope_is_refused(app, owner):
    reader = await make_token(owner, scopes=["things:read"])
    refused = await call(app, "POST", reader)
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    # "write" covers every <thing>:write, "read" every <thing>:read, and not the other way.
    writer = await make_token(owner, name="writer", scopes=["write"])
    assert (await call(app, "POST", writer)).status_code == 201
    assert (await call(app, "GET", writer)).status_code == 403


async def test_revoked_and_expired_tokens_are_refused(app, owner, user):
    token = await make_token(owner)
    assert (await call(app, "GET", token)).status_code == 200
    record = await ApiToken.find_one({"user_id": user.id})
    revoked = await owner.post(f"/account/api-tokens/{record.public_id}/revoke", headers=HTML)
    assert revoked.status_code == 303
    answer = await call(app, "GET", token)
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_token"
    assert answer.headers["www-authenticate"].startswith("Bearer")

    other = await make_token(owner, name="old")
    await ApiToken.get_pymongo_collection().update_one(
        {"name": "old"}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}}
    )
    assert (await call(app, "GET", other)).status_code == 401


async def test_nobody_else_revokes_a_token(app, owner, user, client_for):
    token = await make_token(owner)
    record = await ApiToken.find_one({"user_id": user.id})
    stranger = UserModel(email="stranger@example.com", email_verified_at=utcnow())
    await stranger.insert()
    async with await client_for(stranger) as other:
        answer = await other.post(f"/account/api-tokens/{record.public_id}/revoke")
        assert answer.status_code == 404
    assert (await call(app, "GET", token)).status_code == 200


async def test_a_deactivated_user_or_a_bad_header_gets_nothing(app, owner, user):
    token = await make_token(owner)
    for header in ("", "Bearer", "Bearer nonsense", f"Basic {token}", f"Bearer {token}x"):
        answer = await call(app, "GET", None, headers={"Authorization": header} if header else {})
        assert answer.status_code == 401, header
    await user.set({UserModel.is_active: False})
    assert (await call(app, "GET", token)).status_code == 401


async def test_cookies_never_authenticate_an_api_route(app, owner):
    # A signed-in browser without a token is not an API client.
    assert (await owner.get("/api/things")).status_code == 401


async def test_a_token_in_a_cross_site_request_with_cookies_reaches_no_session(app, owner, user):
    # The attacker has their own account and token, and gets the victim's browser to send
    # it along with the victim's cookies, from another site.
    mallory = UserModel(email="mallory@evil.example", email_verified_at=utcnow())
    await mallory.insert()
    settings = app_context(app).settings
    async with browser(app) as attacker:
        set_session_cookie(attacker, settings, await signed_in_cookie(settings, mallory))
        attacker_token = await make_token(attacker, name="mallory")
    cross_site = {**bearer(attacker_token), "Origin": "https://evil.example"}
    # The victim's cookies are ignored: the request is the token's, never the session's.
    me = await owner.get("/auth/me", headers=cross_site)
    assert me.status_code == 401
    things = await owner.get("/api/things", headers=cross_site)
    assert things.json() == {"owner": "mallory@evil.example"}
    # No CSRF token is needed for a bearer request, so nothing it can reach trusts cookies.
    for path, data in (
        ("/account/delete", {"confirm_email": user.email}),
        ("/auth/logout-everywhere", {}),
        ("/account/profile", {"name": "pwned"}),
    ):
        answer = await owner.post(path, data=data, headers=cross_site)
        assert answer.status_code in (401, 403), (path, answer.status_code)
    victim = await UserModel.get(user.id)
    assert victim is not None and victim.name == "Test User"
    assert (await owner.get("/auth/me")).json()["email"] == user.email


async def test_each_token_is_rate_limited(app, owner):
    token = await make_token(owner)
    for _ in range(5):
        assert (await call(app, "GET", token)).status_code == 200
    limited = await call(app, "GET", token)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    # Per token: the user's other token still works.
    other = await make_token(owner, name="other")
    assert (await call(app, "GET", other)).status_code == 200


async def test_a_token_is_never_logged(app, owner, caplog):
    caplog.set_level(logging.DEBUG)
    token = await make_token(owner)
    await call(app, "GET", token)
    await call(app, "POST", token)
    await call(app, "GET", token + "x")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "made API token" in logged
    assert token not in logged and token[3:] not in logged


@pytest.mark.parametrize(
    "form",
    [
        {"name": "", "scopes": ["read"], "days": "30"},
        {"name": "x", "days": "30"},
        {"name": "x", "scopes": ["admin"], "days": "30"},
        {"name": "x", "scopes": ["read"], "days": "366"},
        {"name": "x", "scopes": ["read"], "days": "0"},
        {"name": "x", "scopes": ["read"], "days": "soon"},
        {"name": "x" * 101, "scopes": ["read"], "days": "30"},
    ],
)
async def test_a_bad_form_makes_no_token(app, owner, form):
    answer = await owner.post("/account/api-tokens", data=form, headers=HTML)
    assert answer.status_code == 422
    assert await ApiToken.find_one() is None


async def test_deleting_the_account_deletes_its_tokens(app, owner, user):
    token = await make_token(owner)
    deleted = await owner.post("/account/delete", data={"confirm_email": user.email})
    assert deleted.status_code == 303
    assert await ApiToken.find_one() is None
    assert (await call(app, "GET", token)).status_code == 401


async def test_the_api_docs_show_the_bearer_scheme(app):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["API token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["API token"]["description"],
    }
    assert schema["paths"]["/api/things"]["post"]["security"] == [{"API token": []}]


async def test_a_token_made_before_the_address_changed_hands_dies_with_the_proof(
    app, owner, user, outbox
):
    from tests.auth.conftest import follow_link, magic_link, request_link

    # The former holder of the account keeps a token; an admin then gives the account
    # another address (the admin's edit leaves it unproven, as here).
    token = await make_token(owner, scopes=["things:read", "things:write"])
    await user.set({UserModel.email: "new-owner@example.com", UserModel.email_verified_at: None})
    # Until the new owner proves the mailbox, the token reaches nothing of theirs ...
    assert (await call(app, "GET", token)).status_code == 401
    # ... and the new owner proves the mailbox: whatever was attached before must not survive.
    async with browser(app) as new_owner:
        await request_link(new_owner, "new-owner@example.com")
        assert (await follow_link(new_owner, magic_link(outbox()[-1]))).status_code == 303
        assert (await new_owner.get("/auth/me")).json()["id"] == str(user.id)
    for method in ("GET", "POST"):
        refused = await call(app, method, token)
        assert refused.status_code == 401, refused.text
    assert await ApiToken.find_one({"user_id": user.id}) is None


async def test_no_token_is_made_while_the_address_is_unproven(app, owner, user):
    await user.set({UserModel.email: "new-owner@example.com", UserModel.email_verified_at: None})
    refused = await owner.post(
        "/account/api-tokens", data={"name": "script", "scopes": ["read"], "days": "30"}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "email_not_confirmed"
    assert await ApiToken.find_one({"user_id": user.id}) is None
