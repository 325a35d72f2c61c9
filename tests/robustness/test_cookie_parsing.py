"""One cookie parser for every middleware: a malformed cookie in front of the session
cookie must not hide it from the CSRF check while the session middleware still reads it.

Each request here is raw HTTP to the scaffolded app served by uvicorn, with a
``Cookie`` header written by hand, as an attacker's script would send it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.robustness.conftest import served
from vibetuner.models import UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.testing import app_context, csrf_session, signed_in_cookie

# Pairs Python's SimpleCookie gives up on (or reads as cookie attributes), which made the
# whole header look cookie-less to the CSRF check.
MALFORMED = ['x=a"b', "x=a\\b", "x=a b", "version=1", "Path=/", "expires=1"]


@pytest.fixture
async def live(app: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A plain HTTP client of the scaffolded app on a real socket, and the app."""
    async with served(app) as (url, _server), httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield http, app


async def session_of(app: Any, **fields: Any) -> tuple[UserModel, str, str]:
    """A user, a session cookie value that signs them in, and that session's CSRF token."""
    person = UserModel(
        email=f"c-{uuid.uuid4().hex[:8]}@example.com", email_verified_at=utcnow(), **fields
    )
    await person.insert()
    value = await signed_in_cookie(app_context(app).settings, person)
    value, token = await csrf_session(app, value)
    return person, value, token


def cookie(app: Any, prefix: str, value: str) -> dict[str, str]:
    return {"Cookie": f"{prefix}; {app_context(app).settings.session_cookie}={value}"}


@pytest.mark.parametrize("prefix", MALFORMED)
async def test_a_malformed_cookie_first_does_not_skip_the_token_for_a_note(live, prefix):
    from robust_app.models import Note

    http, app = live
    _, value, token = await session_of(app)
    form = {"title": "Forged", "body": "b"}
    forged = await http.post("/notes", data=form, headers=cookie(app, prefix, value))
    assert forged.status_code == 403, forged.text
    assert "CSRF token is missing" in forged.json()["detail"]
    assert await Note.count() == 0
    # The same header with the token is the site's own form: it goes through.
    sent = await http.post(
        "/notes", data={"csrf_token": token, **form}, headers=cookie(app, prefix, value)
    )
    assert sent.status_code == 303, sent.text
    assert await Note.count() == 1


@pytest.mark.parametrize("prefix", MALFORMED)
async def test_a_malformed_cookie_first_does_not_skip_the_token_for_an_admin_action(live, prefix):
    http, app = live
    _, value, _ = await session_of(app, roles=["admin"])
    member, _, _ = await session_of(app)
    forged = await http.post(
        f"/admin/_api/users/action?name=deactivate&pks={member.id}",
        data={},
        headers=cookie(app, prefix, value),
    )
    assert forged.status_code == 403, forged.text
    fresh = await UserModel.get(member.id)
    assert fresh is not None and fresh.is_active


@pytest.mark.parametrize("prefix", MALFORMED)
async def test_a_malformed_cookie_first_does_not_skip_the_token_for_account_deletion(live, prefix):
    http, app = live
    person, value, _ = await session_of(app)
    forged = await http.post(
        "/account/delete",
        data={"confirm_email": person.email},
        headers=cookie(app, prefix, value),
    )
    assert forged.status_code == 403, forged.text
    assert await UserModel.get(person.id) is not None


async def test_the_session_cookie_in_a_second_cookie_header_needs_the_token(live):
    from robust_app.models import Note

    http, app = live
    _, value, _ = await session_of(app)
    name = app_context(app).settings.session_cookie
    forged = await http.post(
        "/notes",
        data={"title": "Forged", "body": "b"},
        headers=[("Cookie", 'x=a"b'), ("Cookie", f"{name}={value}")],
    )
    assert forged.status_code == 403, forged.text
    assert await Note.count() == 0


@pytest.mark.parametrize("prefix", MALFORMED)
async def test_the_language_cookie_is_read_after_a_malformed_cookie(live, prefix):
    http, _ = live
    page = await http.get("/auth/login", headers={"Cookie": f"{prefix}; vt_locale=es"})
    assert page.status_code == 200
    assert '<html lang="es"' in page.text


# The unsafe routes of the features that came later: sign-in methods and API tokens.
LATER_ROUTES = [
    ("/account/api-tokens", {"name": "forged", "scopes": "read", "days": "30"}),
    ("/account/two-factor/start", {}),
    ("/account/passkeys/options", {}),
    ("/auth/logout-everywhere", {}),
]


@pytest.mark.parametrize("prefix", MALFORMED)
@pytest.mark.parametrize("bearer", [None, "Bearer vt_guessed"])
async def test_a_malformed_cookie_first_does_not_skip_the_token_for_later_routes(
    live, prefix, bearer
):
    from vibetuner.models import UserSession
    from vibetuner.models.api_token import ApiToken
    from vibetuner.models.two_factor import TwoFactorSecret

    http, app = live
    person, value, _ = await session_of(app)
    headers = cookie(app, prefix, value)
    if bearer:
        # With a bearer header the cookies are dropped: the session is not reached at all.
        headers["Authorization"] = bearer
    for path, form in LATER_ROUTES:
        forged = await http.post(path, data=form, headers=headers)
        assert forged.status_code in (401, 403), (path, forged.status_code, forged.text[:300])
        assert "vt_" not in forged.text
    assert await ApiToken.find({"user_id": person.id}).count() == 0
    assert await TwoFactorSecret.find({"user_id": person.id}).count() == 0
    assert await UserSession.find({"user_id": person.id}).count() == 1
    # The session itself still works (with its token) and still needs it.
    me = await http.get("/auth/me", headers=cookie(app, prefix, value))
    assert me.status_code == 200 and me.json()["email"] == person.email
