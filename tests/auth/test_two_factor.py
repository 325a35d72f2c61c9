"""Two-factor codes (TOTP), run over HTTP as a user and as an attacker would.

The attacker of most tests holds the first factor (the victim's mailbox, so a sign-in
link) but not the phone: the half session they get must reach nothing, guessing codes
must hit the limit, and no code or recovery code works twice.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from fastapi import APIRouter, Depends

from tests.auth.conftest import follow_link, magic_link, request_link
from vibetuner import require_role
from vibetuner.models import UserModel, UserSession
from vibetuner.models.mixins import utcnow
from vibetuner.models.two_factor import TwoFactorSecret
from vibetuner.testing import (
    app_context,
    send_csrf_token,
    session_cookie,
    set_session_cookie,
    signed_in_cookie,
)

HTML = {"Accept": "text/html"}
SECRET_RE = re.compile(r"data-two-factor-secret>([A-Z2-7 ]+)<")
RECOVERY_RE = re.compile(r"<li>([0-9a-f]{5}-[0-9a-f]{5})</li>")


def browser(app) -> httpx.AsyncClient:
    """A browser with no session yet that sends the CSRF token like a page's script."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    return send_csrf_token(http, app_context(app).settings.session_cookie)


def code_at(secret: str, offset_steps: int = 0) -> str:
    """The code of the step ``offset_steps`` from now (the server accepts -1..+1)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


async def turn_on(http: httpx.AsyncClient) -> tuple[str, list[str]]:
    """Turn two-factor on from the account page; returns the secret and recovery codes."""
    started = await http.post("/account/two-factor/start", headers=HTML)
    assert started.status_code == 303, started.text
    page = (await http.get("/account", headers=HTML)).text
    secret = SECRET_RE.search(page).group(1).replace(" ", "")
    confirmed = await http.post(
        "/account/two-factor/confirm", data={"code": code_at(secret)}, headers=HTML
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = RECOVERY_RE.findall(confirmed.text)
    assert len(codes) == 10
    return secret, codes


@pytest.fixture
async def victim(app, user):
    """``user`` with two-factor on: (user, secret, recovery codes)."""
    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        secret, codes = await turn_on(http)
    return user, secret, codes


async def first_factor(app, http: httpx.AsyncClient, email: str, outbox, next: str = "/account"):
    """Sign in with an email link; returns the answer to the link's button."""
    await request_link(http, email, next=next)
    return await follow_link(http, magic_link(outbox()[-1]))


async def give_code(http: httpx.AsyncClient, code: str, next: str = "/account") -> httpx.Response:
    return await http.post("/auth/two-factor", data={"code": code, "next": next}, headers=HTML)


# --- turning it on -----------------------------------------------------------------------


async def test_turning_on_shows_a_server_drawn_qr_code_and_ten_codes_once(app, signed_in_client):
    started = await signed_in_client.post("/account/two-factor/start", headers=HTML)
    assert started.status_code == 303
    page = await signed_in_client.get("/account", headers=HTML)
    svg = re.search(r'<svg[^>]*class="vt-qr".*?</svg>', page.text, re.S).group(0)
    # Drawn here, inline, with no style attribute or script the CSP would have to allow.
    assert "style=" not in svg and "<script" not in svg
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    secret = SECRET_RE.search(page.text).group(1).replace(" ", "")

    # A wrong code does not turn it on.
    wrong = await signed_in_client.post(
        "/account/two-factor/confirm", data={"code": "000000"}, headers=HTML
    )
    assert wrong.status_code == 422
    assert (await TwoFactorSecret.find_one()).confirmed_at is None

    confirmed = await signed_in_client.post(
        "/account/two-factor/confirm", data={"code": code_at(secret)}, headers=HTML
    )
    codes = RECOVERY_RE.findall(confirmed.text)
    assert len(set(codes)) == 10
    # Shown once: the page afterwards has neither the codes nor the secret.
    later = (await signed_in_client.get("/account", headers=HTML)).text
    assert not RECOVERY_RE.search(later) and secret not in later.replace(" ", "")
    assert "10 recovery codes left" in later

    stored = await TwoFactorSecret.find_one()
    assert stored.confirmed_at is not None
    assert stored.secret.startswith("fernet:") and secret not in stored.secret
    assert len(stored.recovery_codes) == 10
    for code in codes:
        assert code not in str(stored.model_dump())
        assert code.replace("-", "") not in str(stored.model_dump())


async def test_the_secret_is_encrypted_with_token_encryption_key_when_set(
    app_with, vibetuner_settings
):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    async with app_with(vibetuner_settings, token_encryption_key=key) as http:
        settings = type(vibetuner_settings)(
            _env_file=None, **{**vibetuner_settings.model_dump(), "token_encryption_key": key}
        )
        user = UserModel(email="keyed@example.com", email_verified_at=utcnow())
        await user.insert()
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        secret, _ = await turn_on(http)
        stored = await TwoFactorSecret.find_one()
    clear = Fernet(key.encode()).decrypt(stored.secret.removeprefix("fernet:").encode()).decode()
    assert clear == secret


# --- the second step of a sign-in ----------------------------------------------------------


async def test_signing_in_asks_for_the_code_and_the_half_session_reaches_nothing(
    app, victim, outbox
):
    user, secret, _ = victim
    async with browser(app) as attacker:
        answer = await first_factor(app, attacker, user.email, outbox)
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert urlsplit(location).path == "/auth/two-factor"
        assert parse_qs(urlsplit(location).query)["next"] == ["/account"]

        # Holding only the first factor: not signed in anywhere.
        assert (await attacker.get("/auth/me")).status_code == 401
        assert (await attacker.get("/auth/sessions")).status_code == 401
        account = await attacker.get("/account", headers=HTML)
        assert account.status_code == 303 and account.headers["location"].startswith("/auth/login")
        # Every page and API route without path parameters: none shows the account.
        paths = {"/account", "/auth/me", "/auth/sessions"} | {
            route.path
            for route in app.routes
            if "GET" in (getattr(route, "methods", None) or ()) and "{" not in route.path
        }
        for path in sorted(paths):
            for headers in (HTML, {"Accept": "application/json"}):
                page = await attacker.get(path, headers=headers)
                assert user.email not in page.text, path
        assert (await attacker.post("/auth/logout-everywhere")).status_code == 401
        assert (
            await attacker.post("/account/delete", data={"confirm_email": user.email})
        ).status_code in (303, 401)
        assert (
            await attacker.post("/account/two-factor/disable", data={"code": "000000"})
        ).status_code in (303, 401)
        assert (await attacker.post("/blobs", files={"file": ("a.txt", b"x")})).status_code == 401
        assert await UserModel.get(user.id) is not None
        assert await TwoFactorSecret.find_one({"confirmed_at": {"$ne": None}}) is not None

        # The half session is on the server, marked, and not a session anywhere.
        pending = await UserSession.find_one({"user_id": user.id, "pending_second_factor": True})
        assert pending is not None
        assert pending.expires_at - pending.created_at <= timedelta(seconds=300)

        # The real owner, with the phone, finishes the sign-in.
        done = await give_code(attacker, code_at(secret, 1))
        assert done.status_code == 303 and done.headers["location"] == "/account"
        me = await attacker.get("/auth/me")
        assert me.status_code == 200 and me.json()["email"] == user.email
    # The half session was swapped for a new full one.
    assert await UserSession.find_one({"pending_second_factor": True}) is None
    full = await UserSession.find_one({"user_id": user.id, "second_factor_at": {"$ne": None}})
    assert full is not None


async def test_the_half_sessions_token_never_counts_as_a_session(app, victim, outbox):
    user, _, _ = victim
    settings = app_context(app).settings
    async with browser(app) as attacker:
        await first_factor(app, attacker, user.email, outbox)
        jar = attacker.cookies[settings.session_cookie]
    # Even moved to where a signed-in token goes (a cookie forged with the key), the half
    # session's token is refused by the server itself.
    import base64
    import json

    from vibetuner.auth.session_auth import PENDING_TOKEN_KEY, SESSION_TOKEN_KEY

    payload = json.loads(base64.b64decode(jar.split(".")[0]))
    forged = session_cookie(settings, {SESSION_TOKEN_KEY: payload[PENDING_TOKEN_KEY]})
    async with browser(app) as replay:
        set_session_cookie(replay, settings, forged)
        assert (await replay.get("/auth/me")).status_code == 401


async def test_guessing_codes_hits_the_limit(app, victim, outbox):
    user, secret, _ = victim
    limit = app_context(app).settings.two_factor_rate_per_user
    right = code_at(secret, 1)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    async with browser(app) as attacker:
        await first_factor(app, attacker, user.email, outbox)
        for _ in range(limit - 1):  # turning two-factor on was the user's first try
            assert (await give_code(attacker, wrong)).status_code == 422
        blocked = await give_code(attacker, wrong)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        # Past the limit even the right code waits: guessing gains nothing.
        assert (await give_code(attacker, right)).status_code == 429
        assert (await attacker.get("/auth/me")).status_code == 401
    # The limit is the user's, not the browser's: a new half session is still blocked.
    async with browser(app) as again:
        await first_factor(app, again, user.email, outbox)
        assert (await give_code(again, right)).status_code == 429


async def test_a_used_code_is_refused_within_its_window(app, victim, outbox):
    user, secret, _ = victim
    code = code_at(secret, 1)
    async with browser(app) as owner:
        await first_factor(app, owner, user.email, outbox)
        assert (await give_code(owner, code)).status_code == 303
    # Someone who saw the code over the owner's shoulder, with the first factor too.
    async with browser(app) as attacker:
        await first_factor(app, attacker, user.email, outbox)
        replay = await give_code(attacker, code)
        assert replay.status_code == 422
        # So is the code of the step before it, still inside the drift window.
        assert (await give_code(attacker, code_at(secret, 0))).status_code == 422
        assert (await attacker.get("/auth/me")).status_code == 401


async def test_the_code_that_turned_it_on_does_not_sign_in(app, user, outbox):
    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        await http.post("/account/two-factor/start", headers=HTML)
        page = (await http.get("/account", headers=HTML)).text
        secret = SECRET_RE.search(page).group(1).replace(" ", "")
        code = code_at(secret)
        assert (
            await http.post("/account/two-factor/confirm", data={"code": code}, headers=HTML)
        ).status_code == 200
    async with browser(app) as attacker:
        await first_factor(app, attacker, user.email, outbox)
        assert (await give_code(attacker, code)).status_code == 422


async def test_a_recovery_code_signs_in_once(app, victim, outbox):
    user, _, codes = victim
    async with browser(app) as owner:
        await first_factor(app, owner, user.email, outbox)
        # Typed with spaces and in capitals, as people copy them.
        answer = await give_code(owner, " " + codes[0].upper() + " ")
        assert answer.status_code == 303
        assert (await owner.get("/auth/me")).status_code == 200
        account = await owner.get("/account", headers=HTML)
        assert "9 recovery codes left" in account.text
    async with browser(app) as attacker:
        await first_factor(app, attacker, user.email, outbox)
        assert (await give_code(attacker, codes[0])).status_code == 422
        assert (await attacker.get("/auth/me")).status_code == 401
    stored = await TwoFactorSecret.find_one({"user_id": user.id})
    assert len(stored.recovery_codes) == 9


async def test_a_recovery_code_of_another_user_does_not_work(app, victim, outbox):
    user, _, _ = victim
    other = UserModel(email="other@example.com", email_verified_at=utcnow())
    await other.insert()
    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, other))
        _, others_codes = await turn_on(http)
    async with browser(app) as attacker:
        await first_factor(app, attacker, user.email, outbox)
        assert (await give_code(attacker, others_codes[0])).status_code == 422


async def test_an_expired_half_session_starts_over(app, victim, outbox):
    user, secret, _ = victim
    async with browser(app) as slow:
        await first_factor(app, slow, user.email, outbox)
        await UserSession.get_pymongo_collection().update_many(
            {"pending_second_factor": True},
            {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}},
        )
        answer = await give_code(slow, code_at(secret, 1))
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/auth/login")
        assert (await slow.get("/auth/me")).status_code == 401
    assert await UserSession.find_one({"pending_second_factor": True}) is None


async def test_api_clients_get_json_answers(app, victim, outbox):
    user, secret, _ = victim
    async with browser(app) as http:
        await first_factor(app, http, user.email, outbox)
        refused = await http.post("/auth/two-factor", data={"code": "12"})
        assert refused.status_code == 422
        assert refused.json()["code"] == "two_factor_code_refused"
    async with browser(app) as nobody:
        answer = await nobody.post("/auth/two-factor", data={"code": "123456"})
        assert answer.status_code == 401


async def test_cancelling_the_sign_in_ends_the_half_session(app, victim, outbox):
    user, _, _ = victim
    async with browser(app) as http:
        await first_factor(app, http, user.email, outbox)
        out = await http.post("/auth/logout", headers=HTML)
        assert out.status_code == 303
    assert await UserSession.find_one({"pending_second_factor": True}) is None


# --- turning it off and new recovery codes -------------------------------------------------


async def test_turning_off_needs_a_fresh_code(app, user):
    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        secret, _ = await turn_on(http)
        # The code just used to turn it on is spent: it cannot turn it off.
        used = code_at(secret)
        assert (
            await http.post("/account/two-factor/disable", data={"code": used}, headers=HTML)
        ).status_code == 422
        assert (
            await http.post("/account/two-factor/disable", data={}, headers=HTML)
        ).status_code == 422
        assert await TwoFactorSecret.find_one({"user_id": user.id}) is not None
        off = await http.post(
            "/account/two-factor/disable", data={"code": code_at(secret, 1)}, headers=HTML
        )
        assert off.status_code == 303
    assert await TwoFactorSecret.find_one({"user_id": user.id}) is None


async def test_new_recovery_codes_replace_the_old_ones(app, victim, outbox):
    user, secret, old_codes = victim
    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        answer = await http.post(
            "/account/two-factor/recovery-codes", data={"code": code_at(secret, 1)}, headers=HTML
        )
        assert answer.status_code == 200
        new_codes = RECOVERY_RE.findall(answer.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    async with browser(app) as attacker:
        await first_factor(app, attacker, user.email, outbox)
        assert (await give_code(attacker, old_codes[1])).status_code == 422
        assert (await give_code(attacker, new_codes[1])).status_code == 303


async def test_no_code_or_secret_is_logged(app, user, outbox, caplog):
    caplog.set_level(logging.DEBUG)
    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        secret, codes = await turn_on(http)
    async with browser(app) as http:
        await first_factor(app, http, user.email, outbox)
        await give_code(http, "999999")
        await give_code(http, codes[2])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "gave the second factor" in logged
    for value in (secret, *codes, *(c.replace("-", "") for c in codes)):
        assert value not in logged


# --- a recent second factor before sensitive actions ---------------------------------------


async def stale(user) -> None:
    """Make the user's sessions' second factor older than the window."""
    await UserSession.get_pymongo_collection().update_many(
        {"user_id": user.id}, {"$set": {"second_factor_at": utcnow() - timedelta(hours=2)}}
    )


async def test_deleting_the_account_needs_a_recent_code(app, victim):
    user, secret, _ = victim
    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        await stale(user)
        asked = await http.post(
            "/account/delete",
            data={"confirm_email": user.email},
            headers={**HTML, "Referer": "http://testserver/account"},
        )
        assert asked.status_code == 303
        assert asked.headers["location"] == "/auth/two-factor?next=%2Faccount"
        assert await UserModel.get(user.id) is not None
        api = await http.post(
            "/account/delete",
            data={"confirm_email": user.email},
            headers={"Accept": "application/json"},
        )
        assert api.status_code == 403 and api.json()["code"] == "second_factor_required"
        # Unlinking a provider is changing how the account signs in: asked too.
        unlink = await http.post("/account/providers/github/unlink", headers=HTML)
        assert unlink.status_code == 303 and unlink.headers["location"].startswith(
            "/auth/two-factor"
        )

        page = await http.get("/auth/two-factor?next=/account", headers=HTML)
        assert "Confirm it is you" in page.text
        # The code that turned two-factor on is spent.
        assert (await give_code(http, code_at(secret))).status_code == 422
        assert (await give_code(http, code_at(secret, 1))).status_code == 303
        deleted = await http.post(
            "/account/delete", data={"confirm_email": user.email}, headers=HTML
        )
        assert deleted.status_code == 303 and deleted.headers["location"] == "/"
    assert await UserModel.get(user.id) is None
    assert await TwoFactorSecret.find_one({"user_id": user.id}) is None


async def test_users_without_two_factor_are_not_asked(app, user, signed_in_client):
    answer = await signed_in_client.post(
        "/account/delete", data={"confirm_email": user.email}, headers=HTML
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert await UserModel.get(user.id) is None


# --- an app's own role that needs two-factor -----------------------------------------------


role_router = APIRouter()


@role_router.get("/editor")
async def editor_page(user: Annotated[UserModel, Depends(require_role("editor"))]) -> dict:
    return {"editor": user.email}


@role_router.get("/reviewer")
async def reviewer_page(user: Annotated[UserModel, Depends(require_role("reviewer"))]) -> dict:
    return {"reviewer": user.email}


async def test_require_role_needs_two_factor_for_the_roles_named(vibetuner_settings):
    from vibetuner import create_app

    settings = type(vibetuner_settings)(
        _env_file=None,
        **{**vibetuner_settings.model_dump(), "two_factor_required_roles": "editor"},
    )
    application = create_app(settings=settings, routers=[role_router])
    async with application.router.lifespan_context(application):
        editor = UserModel(
            email="ed@example.com", email_verified_at=utcnow(), roles=["editor", "reviewer"]
        )
        await editor.insert()
        nobody = UserModel(email="no@example.com", email_verified_at=utcnow())
        await nobody.insert()
        async with browser(application) as http:
            set_session_cookie(http, settings, await signed_in_cookie(settings, nobody))
            assert (await http.get("/editor")).status_code == 403
        async with browser(application) as http:
            set_session_cookie(http, settings, await signed_in_cookie(settings, editor))
            # A role not named in the setting needs nothing more.
            assert (await http.get("/reviewer")).json() == {"reviewer": editor.email}
            refused = await http.get("/editor")
            assert refused.status_code == 403
            assert refused.json()["code"] == "second_factor_required"
            sent = await http.get("/editor", headers=HTML)
            assert sent.headers["location"] == "/account#two-factor"
            await turn_on(http)
            assert (await http.get("/editor")).json() == {"editor": editor.email}


async def test_starting_again_while_on_keeps_the_secret(app, victim):
    user, secret, _ = victim
    before = await TwoFactorSecret.find_one({"user_id": user.id})
    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        again = await http.post("/account/two-factor/start", headers=HTML)
        assert again.status_code == 303
        page = (await http.get("/account", headers=HTML)).text
        assert "Two-factor codes are already on." in page
    after = await TwoFactorSecret.find_one({"user_id": user.id})
    assert after.secret == before.secret and after.confirmed_at is not None


async def test_codes_set_up_before_the_address_changed_hands_do_not_survive_the_proof(
    app, victim, outbox
):
    # The former holder turned two-factor on; an admin then gave the account another
    # address (the admin's edit leaves it unproven, as here).
    user, secret, codes = victim
    await user.set({UserModel.email: "new-owner@example.com", UserModel.email_verified_at: None})
    async with browser(app) as new_owner:
        answer = await first_factor(app, new_owner, "new-owner@example.com", outbox)
        # The new owner is not asked for the former holder's codes ...
        assert answer.status_code == 303 and answer.headers["location"] == "/account"
        me = await new_owner.get("/auth/me")
        assert me.status_code == 200 and me.json()["id"] == str(user.id)
        # ... and can set up their own.
        await turn_on(new_owner)
    # The former holder's secret and recovery codes are gone.
    stored = await TwoFactorSecret.find({"user_id": user.id}).to_list()
    assert len(stored) == 1 and stored[0].recovery_codes
    async with browser(app) as former:
        await first_factor(app, former, "new-owner@example.com", outbox)
        for code in (code_at(secret), codes[0]):
            assert (await give_code(former, code)).status_code == 422
        assert (await former.get("/auth/me")).status_code == 401


async def test_nothing_is_set_up_while_the_address_is_unproven(app, user):
    # The former holder is still signed in after an admin gave the account another
    # address; a setup they began before is not finished, and none is begun.
    settings = app_context(app).settings
    async with browser(app) as holder:
        set_session_cookie(holder, settings, await signed_in_cookie(settings, user))
        assert (await holder.post("/account/two-factor/start", headers=HTML)).status_code == 303
        page = (await holder.get("/account", headers=HTML)).text
        secret = SECRET_RE.search(page).group(1).replace(" ", "")
        await user.set(
            {UserModel.email: "new-owner@example.com", UserModel.email_verified_at: None}
        )
        confirmed = await holder.post(
            "/account/two-factor/confirm", data={"code": code_at(secret)}, headers=HTML
        )
        assert confirmed.status_code == 403, confirmed.text[:300]
        assert not RECOVERY_RE.search(confirmed.text)
        started = await holder.post("/account/two-factor/start")
        assert started.status_code == 403 and started.json()["code"] == "email_not_confirmed"
    assert (
        await TwoFactorSecret.find({"user_id": user.id, "confirmed_at": {"$ne": None}}).count() == 0
    )
