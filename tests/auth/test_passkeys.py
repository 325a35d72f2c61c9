"""Passkeys over HTTP: adding one, signing in with it, and the attacks on both.

The app runs in process; ``SoftAuthenticator`` answers the server's options as a browser
with a platform authenticator would, and plays the attacker where a test says so (a
replayed answer, another origin, another browser's challenge, another user's passkey).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.auth.passkey_authenticator import SoftAuthenticator
from vibetuner.models import UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.models.passkey import Passkey, PasskeyChallenge
from vibetuner.models.session import UserSession
from vibetuner.testing import app_context, fetch_csrf_token, send_csrf_token

ORIGIN = "http://testserver"
HTML = {"Accept": "text/html"}


def browser(app):
    """A browser with no session yet, that sends the CSRF token on its posts like a page."""
    import httpx

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)
    return send_csrf_token(http, app_context(app).settings.session_cookie)


async def add_passkey(http, authenticator: SoftAuthenticator, name: str = "My laptop"):
    """Add a passkey as the account page's script does; returns the server's answer."""
    options = await http.post("/account/passkeys/options", json={})
    assert options.status_code == 200, options.text
    credential = authenticator.create(options.json())
    return await http.post("/account/passkeys", json={"credential": credential, "name": name})


async def sign_in_options(http) -> dict:
    answer = await http.post("/auth/passkeys/options", json={})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def passkey_sign_in(http, credential, next_path: str = "/account"):
    answer = await http.post("/auth/passkeys", json={"credential": credential, "next": next_path})
    # A sign-in starts a new session with a new CSRF secret: the next post fetches a token.
    http.headers.pop("X-CSRF-Token", None)
    return answer


@pytest.fixture
async def registered(app, user, client_for):
    """``user`` with one passkey on a software authenticator: (authenticator, passkey)."""
    authenticator = SoftAuthenticator(ORIGIN)
    account = await client_for(user)
    added = await add_passkey(account, authenticator)
    assert added.status_code == 200, added.text
    [passkey] = await Passkey.find({"user_id": user.id}).to_list()
    return authenticator, passkey


async def me(http):
    return await http.get("/auth/me")


# --- the working path --------------------------------------------------------------------


async def test_add_a_passkey_then_sign_in_with_it_typing_no_email(app, user, client_for):
    authenticator = SoftAuthenticator(ORIGIN)
    account = await client_for(user)
    options = await account.post("/account/passkeys/options", json={})
    assert options.status_code == 200
    body = options.json()
    # The relying party is BASE_URL's host; the passkey is discoverable (no address later).
    assert body["rp"] == {"id": "testserver", "name": app_context(app).settings.app_name}
    assert body["authenticatorSelection"]["residentKey"] == "required"
    assert body["user"]["name"] == user.email
    credential = authenticator.create(body)
    added = await account.post(
        "/account/passkeys", json={"credential": credential, "name": "  Work\tlaptop "}
    )
    assert added.status_code == 200, added.text
    assert added.json() == {"status": "added", "redirect": "/account"}

    page = await account.get("/account", headers=HTML)
    assert "Work laptop" in page.text and "not used yet" in page.text
    assert 'id="passkeys"' in page.text

    async with browser(app) as visitor:
        login_page = await visitor.get("/auth/login", headers=HTML)
        assert 'autocomplete="email webauthn"' in login_page.text
        assert "data-passkey-sign-in" in login_page.text
        options = await sign_in_options(visitor)
        # Discoverable credentials: the server names none, the authenticator picks.
        assert options["rpId"] == "testserver" and options["allowCredentials"] == []
        signed_in = await passkey_sign_in(visitor, authenticator.get(options))
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json() == {"status": "signed_in", "redirect": "/account"}
        who = await me(visitor)
        assert who.status_code == 200 and who.json()["email"] == user.email

        # The same revocable server-side session as the other ways in.
        sessions = await UserSession.find({"user_id": user.id}).to_list()
        assert len(sessions) == 2  # the account page's and this one
        listed = (await visitor.get("/auth/sessions")).json()
        [current] = [s for s in listed if s["current"]]
        await account.delete(f"/auth/sessions/{current['id']}")
        assert (await me(visitor)).status_code == 401

    stored = await Passkey.find_one({"user_id": user.id})
    assert stored is not None and stored.sign_count == 1 and stored.last_used_at is not None
    page = await account.get("/account", headers=HTML)
    assert "last used" in page.text


async def test_an_unnamed_passkey_is_called_after_its_browser(app, user, client_for):
    account = await client_for(user)
    chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
    for agent, expected in ((chrome, "Chrome on Linux"), ("python-httpx/0.28", "Passkey")):
        options = await account.post("/account/passkeys/options", json={})
        credential = SoftAuthenticator(ORIGIN).create(options.json())
        added = await account.post(
            "/account/passkeys",
            json={"credential": credential, "name": " \t "},
            headers={"User-Agent": agent},
        )
        assert added.status_code == 200, added.text
        stored = await Passkey.find_one({"credential_id": credential["id"]})
        assert stored.name == expected


async def test_signing_in_starts_a_new_session_and_keeps_next_on_this_site(app, registered):
    authenticator, _ = registered
    async with browser(app) as visitor:
        await visitor.get("/auth/login", headers=HTML)
        before = visitor.cookies[app_context(app).settings.session_cookie]
        options = await sign_in_options(visitor)
        answer = await passkey_sign_in(visitor, authenticator.get(options), "https://evil.example/")
        assert answer.json()["redirect"] == "/"
        assert visitor.cookies[app_context(app).settings.session_cookie] != before


async def test_rename_and_remove_from_the_account_page(app, user, client_for, registered):
    _, passkey = registered
    account = await client_for(user)
    renamed = await account.post(
        f"/account/passkeys/{passkey.credential_id}/rename", data={"name": "Phone"}, headers=HTML
    )
    assert renamed.status_code == 303
    assert (await Passkey.get(passkey.id)).name == "Phone"
    # The page's htmx request gets the section back, with the flash message out of band.
    swapped = await account.post(
        f"/account/passkeys/{passkey.credential_id}/rename",
        data={"name": "Pocket phone"},
        headers={**HTML, "HX-Request": "true"},
    )
    assert swapped.status_code == 200
    assert swapped.text.lstrip().startswith('<section id="passkeys"')
    assert "Pocket phone" in swapped.text and "The passkey was renamed." in swapped.text
    assert "vibetuner-passkeys" not in swapped.text  # the page has the script already
    removed = await account.post(f"/account/passkeys/{passkey.credential_id}/remove", headers=HTML)
    assert removed.status_code == 303
    assert await Passkey.get(passkey.id) is None
    page = await account.get("/account", headers=HTML)
    assert "You have no passkeys yet." in page.text


# --- attacks on signing in ---------------------------------------------------------------


async def test_a_replayed_assertion_is_refused(app, user, registered):
    authenticator, passkey = registered
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        captured = authenticator.get(options)
        assert (await passkey_sign_in(visitor, captured)).status_code == 200

    # The attacker replays the captured answer, in a browser of their own ...
    async with browser(app) as attacker:
        await sign_in_options(attacker)  # a session with challenges of its own
        replayed = await passkey_sign_in(attacker, captured)
        assert replayed.status_code == 400
        assert replayed.json()["code"] == "passkey_challenge_unknown"
        assert (await me(attacker)).status_code == 401

    # ... and in the victim's browser session, before it signed in: the challenge is gone.
    async with browser(app) as victim:
        options = await sign_in_options(victim)
        first = authenticator.get(options)
        assert (await passkey_sign_in(victim, first)).status_code == 200
        signed_out = await victim.post("/auth/logout", headers={"Accept": "application/json"})
        assert signed_out.status_code == 200
        victim.headers.pop("X-CSRF-Token", None)
        again = await passkey_sign_in(victim, first)
        assert again.status_code == 400 and again.json()["code"] == "passkey_challenge_unknown"
        assert (await me(victim)).status_code == 401


async def test_a_signature_counter_that_does_not_go_up_is_refused(app, registered):
    # An answer signed with a counter already seen, on a fresh challenge: a copied
    # authenticator (or an old signature replayed onto a new challenge).
    authenticator, passkey = registered
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        assert (await passkey_sign_in(visitor, authenticator.get(options))).status_code == 200
    stored = await Passkey.get(passkey.id)
    async with browser(app) as attacker:
        options = await sign_in_options(attacker)
        stale = authenticator.get(options, sign_count=stored.sign_count)
        answer = await passkey_sign_in(attacker, stale)
        assert answer.status_code == 400 and answer.json()["code"] == "passkey_counter"
        assert (await me(attacker)).status_code == 401
    assert (await Passkey.get(passkey.id)).sign_count == stored.sign_count


async def test_an_assertion_made_for_another_origin_is_refused(app, registered):
    # A phishing site relays this site's challenge; the browser writes its own origin.
    authenticator, _ = registered
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        phished = authenticator.get(options, origin="https://testserver.evil.example")
        answer = await passkey_sign_in(visitor, phished)
        assert answer.status_code == 400 and answer.json()["code"] == "passkey_not_verified"
        assert (await me(visitor)).status_code == 401
        # Refused answers use the challenge up too.
        again = await passkey_sign_in(visitor, authenticator.get(options))
        assert again.json()["code"] == "passkey_challenge_unknown"


@pytest.mark.parametrize("record", ["kept", "removed by the TTL index"])
async def test_an_expired_challenge_is_refused(app, registered, monkeypatch, record):
    from vibetuner.auth import passkey_store as passkeys

    authenticator, _ = registered
    ttl = app_context(app).settings.passkey_challenge_ttl_seconds
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        answer = authenticator.get(options)
        if record != "kept":
            await PasskeyChallenge.get_pymongo_collection().delete_many({})
        # The ceremony took longer than PASSKEY_CHALLENGE_TTL_SECONDS.
        later = utcnow() + timedelta(seconds=ttl + 1)
        monkeypatch.setattr(passkeys, "utcnow", lambda: later)
        refused = await passkey_sign_in(visitor, answer)
        assert refused.status_code == 400 and refused.json()["code"] == "passkey_challenge_expired"
        assert "expired" in refused.json()["detail"]
        assert (await me(visitor)).status_code == 401


async def test_a_challenge_from_another_session_is_refused(app, user, registered):
    authenticator, _ = registered
    async with browser(app) as victim, browser(app) as attacker:
        options = await sign_in_options(victim)
        await sign_in_options(attacker)
        # The attacker's browser sends an answer to the victim's challenge.
        stolen = authenticator.get(options)
        answer = await passkey_sign_in(attacker, stolen)
        assert answer.status_code == 400 and answer.json()["code"] == "passkey_challenge_unknown"
        assert (await me(attacker)).status_code == 401
        # The victim's own browser still can use it: the attempt did not burn it.
        assert (await passkey_sign_in(victim, stolen)).status_code == 200
        assert (await me(victim)).json()["email"] == user.email


async def test_an_assertion_with_another_users_handle_is_refused(app, user, registered):
    authenticator, _ = registered
    other = UserModel(email="other@example.com", email_verified_at=utcnow())
    await other.insert()
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        forged = authenticator.get(options, user_handle=other.id.binary)
        answer = await passkey_sign_in(visitor, forged)
        assert answer.status_code == 400 and answer.json()["code"] == "passkey_not_verified"


async def test_an_unknown_passkey_is_refused(app):
    authenticator = SoftAuthenticator(ORIGIN)
    authenticator.create({"rp": {"id": "testserver"}, "user": {"id": "AAAA"}, "challenge": "AAAA"})
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        answer = await passkey_sign_in(visitor, authenticator.get(options))
        assert answer.status_code == 400 and answer.json()["code"] == "passkey_unknown_passkey"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"credential": "not an object"},
        {"credential": {}},
        {"credential": {"id": 1, "rawId": [], "response": None, "type": "public-key"}},
        {
            "credential": {
                "id": "x",
                "rawId": "x",
                "type": "public-key",
                "response": {
                    "clientDataJSON": "!!!",
                    "authenticatorData": "AA",
                    "signature": "AA",
                    "userHandle": "%%%",
                },
            }
        },
        {
            "credential": {
                "id": "AA",
                "rawId": "AA",
                "type": "public-key",
                "response": {
                    "clientDataJSON": "e30",  # {}
                    "authenticatorData": "AA",
                    "signature": "AA",
                },
            }
        },
    ],
)
async def test_malformed_answers_are_a_400_not_a_crash(app, body):
    async with browser(app) as visitor:
        await sign_in_options(visitor)
        answer = await visitor.post("/auth/passkeys", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"].startswith("passkey_")


async def test_a_deactivated_user_cannot_sign_in_with_a_passkey(app, user, registered):
    authenticator, _ = registered
    await user.set({UserModel.is_active: False})
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        answer = await passkey_sign_in(visitor, authenticator.get(options))
        assert answer.status_code == 403 and answer.json()["code"] == "account_disabled"
        assert (await me(visitor)).status_code == 401


# --- attacks on adding and removing ------------------------------------------------------


async def test_an_unproven_account_cannot_add_a_passkey(app, client_for):
    # Whoever made the account may not own the mailbox: nothing may be attached to it.
    unproven = UserModel(email="claimed@example.com")
    await unproven.insert()
    account = await client_for(unproven)
    page = await account.get("/account", headers=HTML)
    assert "data-passkey-register" not in page.text
    assert "Confirm your email address to add a passkey" in page.text
    options = await account.post("/account/passkeys/options", json={})
    assert options.status_code == 403 and options.json()["code"] == "email_not_confirmed"
    # Nor with a challenge issued before: there is none for this user, and no passkey.
    authenticator = SoftAuthenticator(ORIGIN)
    forged = authenticator.create(
        {"rp": {"id": "testserver"}, "user": {"id": "AAAA"}, "challenge": "AAAA"}
    )
    added = await account.post("/account/passkeys", json={"credential": forged, "name": "x"})
    assert added.status_code == 403
    assert await Passkey.find({"user_id": unproven.id}).count() == 0


async def test_a_passkey_made_for_another_origin_is_not_added(app, user, client_for):
    account = await client_for(user)
    options = await account.post("/account/passkeys/options", json={})
    credential = SoftAuthenticator(ORIGIN).create(options.json(), origin="https://evil.example")
    added = await account.post("/account/passkeys", json={"credential": credential, "name": "x"})
    assert added.status_code == 400 and added.json()["code"] == "passkey_not_verified"
    assert await Passkey.find({"user_id": user.id}).count() == 0


async def test_a_registration_answer_cannot_be_replayed(app, user, client_for):
    account = await client_for(user)
    authenticator = SoftAuthenticator(ORIGIN)
    options = await account.post("/account/passkeys/options", json={})
    credential = authenticator.create(options.json())
    body = {"credential": credential, "name": "x"}
    assert (await account.post("/account/passkeys", json=body)).status_code == 200
    again = await account.post("/account/passkeys", json=body)
    assert again.status_code == 400 and again.json()["code"] == "passkey_challenge_unknown"
    # A second answer for the same authenticator key on a new challenge: already there.
    options = await account.post("/account/passkeys/options", json={})
    assert [c["id"] for c in options.json()["excludeCredentials"]] == [credential["id"]]


async def test_oversize_bodies_are_refused_before_they_are_read(app, user, client_for, registered):
    _, passkey = registered
    account = await client_for(user)
    huge = {"name": "x" * (200 * 1024)}
    renamed = await account.post(f"/account/passkeys/{passkey.credential_id}/rename", data=huge)
    assert renamed.status_code == 413
    added = await account.post("/account/passkeys", json={"credential": {"id": "x" * (200 * 1024)}})
    assert added.status_code == 413
    async with browser(app) as visitor:
        await sign_in_options(visitor)
        signed_in = await visitor.post("/auth/passkeys", json={"credential": {"x": "y" * 20000}})
        assert signed_in.status_code == 413
    assert (await Passkey.get(passkey.id)).name == passkey.name


async def test_another_users_credential_id_cannot_be_removed_or_renamed(
    app, registered, client_for
):
    _, victims = registered
    attacker = UserModel(email="attacker@example.com", email_verified_at=utcnow())
    await attacker.insert()
    account = await client_for(attacker)  # a fresh sign-in: the recent-sign-in rule holds
    removed = await account.post(f"/account/passkeys/{victims.credential_id}/remove")
    assert removed.status_code == 404 and removed.json()["code"] == "passkey_not_found"
    renamed = await account.post(
        f"/account/passkeys/{victims.credential_id}/rename", data={"name": "pwned"}
    )
    assert renamed.status_code == 404
    kept = await Passkey.get(victims.id)
    assert kept is not None and kept.name == victims.name


async def test_removing_a_passkey_asks_for_a_recent_sign_in(app, user, client_for, registered):
    _, passkey = registered
    account = await client_for(user)
    # This browser signed in longer ago than RECENT_SIGN_IN_SECONDS.
    long_ago = utcnow() - timedelta(seconds=app_context(app).settings.recent_sign_in_seconds + 5)
    await UserSession.get_pymongo_collection().update_many(
        {"user_id": user.id}, {"$set": {"created_at": long_ago}}
    )
    refused = await account.post(f"/account/passkeys/{passkey.credential_id}/remove")
    assert refused.status_code == 403 and refused.json()["code"] == "recent_sign_in_required"
    page = await account.post(f"/account/passkeys/{passkey.credential_id}/remove", headers=HTML)
    assert page.status_code == 403 and "/auth/login?next=/account" in page.text
    assert await Passkey.get(passkey.id) is not None


async def test_an_admin_viewing_as_the_user_cannot_add_rename_or_remove(vibetuner_settings):
    # A passkey added during a view would be a way in that outlives it.
    import httpx

    from tests.admin.conftest import build_admin_app, make_user
    from vibetuner.testing import set_session_cookie, signed_in_cookie

    application = build_admin_app(vibetuner_settings)
    async with application.router.lifespan_context(application):
        admin = await make_user(roles=["admin"])
        member = await make_user()
        settings = app_context(application).settings
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url=ORIGIN
        ) as http:
            set_session_cookie(http, settings, await signed_in_cookie(settings, member))
            send_csrf_token(http, settings.session_cookie_name)
            assert (await add_passkey(http, SoftAuthenticator(ORIGIN))).status_code == 200
        [passkey] = await Passkey.find({"user_id": member.id}).to_list()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url=ORIGIN
        ) as http:
            set_session_cookie(http, settings, await signed_in_cookie(settings, admin))
            send_csrf_token(http, settings.session_cookie_name)
            started = await http.post(
                f"/admin/_api/users/row-action?name=view_as&pk={member.id}", data={}
            )
            assert started.status_code == 303, started.text[:300]
            page = (await http.get("/account", headers=HTML)).text
            assert member.email in page and passkey.name in page
            assert "data-passkey-register" not in page and "/remove" not in page
            for path in (
                "/account/passkeys/options",
                "/account/passkeys",
                f"/account/passkeys/{passkey.credential_id}/remove",
                f"/account/passkeys/{passkey.credential_id}/rename",
            ):
                answer = await http.post(path, json={})
                assert answer.status_code == 403, (path, answer.text)
                assert answer.json()["code"] == "view_as_refused"
        kept = await Passkey.get(passkey.id)
        assert kept is not None and kept.name == passkey.name


# --- proofs of the address and deleted accounts -----------------------------------------


async def test_a_passkey_added_before_the_address_was_proven_again_does_not_sign_in(
    app, user, registered
):
    # The address changed hands (an admin changed it): the new owner's first proof comes
    # after the passkey was added, so the passkey is someone else's.
    authenticator, passkey = registered
    await user.set({UserModel.email_verified_at: None})
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        answer = await passkey_sign_in(visitor, authenticator.get(options))
        assert answer.status_code == 400 and answer.json()["code"] == "passkey_email_not_confirmed"
    await user.set({UserModel.email_verified_at: utcnow() + timedelta(seconds=1)})
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        answer = await passkey_sign_in(visitor, authenticator.get(options))
        assert answer.status_code == 400 and answer.json()["code"] == "passkey_unknown_passkey"
        assert (await me(visitor)).status_code == 401
    assert await Passkey.get(passkey.id) is None


async def test_the_first_proof_of_the_mailbox_removes_passkeys(app, user, registered):
    from vibetuner.auth.signin import claim_mailbox

    _, passkey = registered
    await user.set({UserModel.email_verified_at: None})
    await claim_mailbox(user)
    assert await Passkey.get(passkey.id) is None


async def test_deleting_the_account_removes_its_passkeys(app, user, client_for, registered):
    _, passkey = registered
    account = await client_for(user)
    deleted = await account.post("/account/delete", data={"confirm_email": user.email})
    assert deleted.status_code == 303
    assert await Passkey.get(passkey.id) is None


# --- the relying party follows BASE_URL --------------------------------------------------


async def test_relying_party_and_origin_follow_base_url(app_with, vibetuner_settings):
    async with app_with(vibetuner_settings, base_url="https://App.Example.com:8443") as http:
        options = (await http.post("/auth/passkeys/options", json={})).json()
        assert options["rpId"] == "app.example.com"


@pytest.mark.parametrize(
    ("base_url", "rp_id", "origin"),
    [
        ("https://app.example.com", "app.example.com", "https://app.example.com"),
        ("https://App.Example.com:443/", "app.example.com", "https://app.example.com"),
        ("http://localhost:8000", "localhost", "http://localhost:8000"),
        ("https://example.com:8443/base", "example.com", "https://example.com:8443"),
    ],
)
def test_the_origin_is_written_as_browsers_write_it(vibetuner_settings, base_url, rp_id, origin):
    from vibetuner.auth.passkey_store import relying_party

    settings = type(vibetuner_settings)(
        _env_file=None, **{**vibetuner_settings.model_dump(), "base_url": base_url}
    )
    assert (relying_party(settings).id, relying_party(settings).origin) == (rp_id, origin)


async def test_no_passkeys_on_an_ip_address_or_when_turned_off(app_with, vibetuner_settings):
    for changes in ({"base_url": "http://127.0.0.1:8000"}, {"passkeys": False}):
        async with app_with(vibetuner_settings, **changes) as http:
            page = await http.get("/auth/login", headers=HTML)
            assert "data-passkey-sign-in" not in page.text
            assert 'autocomplete="email"' in page.text
            answer = await http.post("/auth/passkeys/options", json={})
            assert answer.status_code == 404 and answer.json()["code"] == "passkeys_unavailable"


async def test_refusals_are_in_the_readers_language(app, registered):
    authenticator, _ = registered
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        answer = authenticator.get(options, origin="https://evil.example")
        refused = await visitor.post(
            "/auth/passkeys",
            json={"credential": answer},
            headers={"Accept-Language": "de"},
        )
        assert refused.status_code == 400
        assert refused.json() == {
            "detail": "Die Antwort des Passkeys konnte nicht geprüft werden. Versuche es erneut.",
            "code": "passkey_not_verified",
        }


async def test_the_sign_in_ceremonies_a_client_address_starts_are_limited(
    app_with, vibetuner_settings
):
    async with app_with(vibetuner_settings, passkey_rate_per_ip=3) as http:
        for _ in range(3):
            assert (await http.post("/auth/passkeys/options", json={})).status_code == 200
        limited = await http.post("/auth/passkeys/options", json={})
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) > 0


async def test_the_same_answer_sent_twice_at_once_signs_in_once(app, registered):
    import asyncio

    authenticator, _ = registered
    async with browser(app) as visitor:
        options = await sign_in_options(visitor)
        await fetch_csrf_token(visitor)  # the page's token, sent by both
        answer = authenticator.get(options)
        body = {"credential": answer, "next": "/"}
        first, second = await asyncio.gather(
            visitor.post("/auth/passkeys", json=body), visitor.post("/auth/passkeys", json=body)
        )
        assert sorted([first.status_code, second.status_code]) == [200, 400]
        refused = first if first.status_code == 400 else second
        assert refused.json()["code"] == "passkey_challenge_unknown"


async def test_a_passkey_sign_in_while_viewing_as_ends_the_view_first(vibetuner_settings):
    # The admin signs in with their own passkey from the browser that views the member:
    # nothing of the sign-in lands on the member, and the view's end is audited.
    import httpx

    from tests.admin.conftest import build_admin_app, make_user
    from vibetuner.models.audit import AuditLog
    from vibetuner.testing import set_session_cookie, signed_in_cookie

    application = build_admin_app(vibetuner_settings)
    async with application.router.lifespan_context(application):
        admin = await make_user("lead@example.com", roles=["admin"])
        member = await make_user("member@example.com")
        settings = app_context(application).settings
        authenticator = SoftAuthenticator(ORIGIN)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url=ORIGIN
        ) as http:
            set_session_cookie(http, settings, await signed_in_cookie(settings, admin))
            send_csrf_token(http, settings.session_cookie_name)
            assert (await add_passkey(http, authenticator)).status_code == 200
            started = await http.post(
                f"/admin/_api/users/row-action?name=view_as&pk={member.id}", data={}
            )
            assert started.status_code == 303, started.text[:300]
            assert (await me(http)).json()["email"] == "member@example.com"
            http.headers.pop("X-CSRF-Token", None)
            options = await sign_in_options(http)
            answer = await passkey_sign_in(http, authenticator.get(options))
            assert answer.status_code == 200, answer.text[:300]
            assert (await me(http)).json()["email"] == "lead@example.com"
            assert "data-view-as-banner" not in (await http.get("/", headers=HTML)).text
        assert await UserSession.find({"user_id": member.id}).count() == 0
        assert await Passkey.find({"user_id": member.id}).count() == 0
        ended = await AuditLog.find_one({"action": "view_as_end"})
        assert ended is not None and ended.actor_email == "lead@example.com"
        assert ended.path == "/auth/passkeys"
