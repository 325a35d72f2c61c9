"""Attacks on accounts through sign-in and the account page, run as an attacker would.

The app runs in process; the OpenID Connect provider is the real provider process of
``tests/auth/conftest.py``, where the attacker controls their own provider accounts:
the address they claim (verified or not), their name and their picture.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from beanie import PydanticObjectId
from bson import DBRef

from tests.auth.conftest import follow_link, magic_link, request_link
from tests.auth.test_oauth import ENCRYPTION_KEY, fresh_client, sign_in
from tests.auth.test_sessions import client_for
from vibetuner.auth.signin import AuthService
from vibetuner.models import Blob, OAuthAccount, UserModel
from vibetuner.testing import app_context, send_csrf_token

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
    b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def vibetuner_settings(vibetuner_settings, oidc_provider):
    values = {
        **vibetuner_settings.model_dump(),
        "oidc_providers": [oidc_provider.settings()],
        "token_encryption_key": ENCRYPTION_KEY,
    }
    return type(vibetuner_settings)(_env_file=None, **values)


def fresh_browser(app):
    """A browser with no session yet, that sends the CSRF token on its posts like a page."""
    return send_csrf_token(fresh_client(app), app_context(app).settings.session_cookie)


# --- pictures: only the user's own stored file is ever deleted ---------------------------


async def victims_file(app, user) -> str:
    """The victim uploads a private file; returns its id."""
    async with await client_for(app, user) as victim:
        uploaded = await victim.post("/blobs", files={"file": ("payslip.pdf", b"%PDF-private")})
        assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()["id"]


async def still_there(app, user, blob_id: str) -> bool:
    async with await client_for(app, user) as victim:
        response = await victim.get(f"/blobs/{blob_id}/content")
    return response.status_code == 200 and response.content == b"%PDF-private"


async def test_provider_picture_naming_a_stored_file_cannot_delete_it(
    app, user, oidc_provider, provider_browser
):
    blob_id = await victims_file(app, user)
    # The attacker sets their picture at the provider to the victim's file and signs up.
    await oidc_provider.put_user(
        provider_browser,
        "mallory-picture",
        email="mallory-picture@evil.example",
        email_verified=True,
        name="Mallory",
        picture=f"/blobs/{blob_id}/content",
    )
    async with fresh_browser(app) as attacker:
        assert (await sign_in(attacker, provider_browser, "mallory-picture")).status_code == 303
        me = (await attacker.get("/auth/me")).json()
        # A provider's picture is only ever a web address, never a reference to a file here.
        assert me["picture"] is None
        removed = await attacker.post("/account/picture/remove")
        assert removed.status_code == 303
    assert await still_there(app, user, blob_id)


async def test_a_stored_picture_reference_to_another_users_file_is_never_deleted(
    app, user, oidc_provider, provider_browser
):
    blob_id = await victims_file(app, user)
    await oidc_provider.put_user(
        provider_browser,
        "mallory-legacy",
        email="mallory-legacy@evil.example",
        email_verified=True,
    )
    async with fresh_browser(app) as attacker:
        assert (await sign_in(attacker, provider_browser, "mallory-legacy")).status_code == 303
        me = (await attacker.get("/auth/me")).json()
        # Stored before provider pictures were checked: the attacker's picture names the
        # victim's file.
        await UserModel.get_pymongo_collection().update_one(
            {"_id": PydanticObjectId(me["id"])},
            {"$set": {"picture": f"/blobs/{blob_id}/content"}},
        )
        # Replacing the picture drops the old one only when it is the attacker's own ...
        replaced = await attacker.post(
            "/account/picture", files={"picture": ("me.png", PNG, "image/png")}
        )
        assert replaced.status_code == 303
        assert await still_there(app, user, blob_id)
        own = (await UserModel.get(PydanticObjectId(me["id"]))).picture
        assert re.fullmatch(r"/blobs/[0-9a-f]{24}/content", own)
        # ... and removing it deletes that own picture, nothing else.
        await UserModel.get_pymongo_collection().update_one(
            {"_id": PydanticObjectId(me["id"])},
            {"$set": {"picture": f"/blobs/{blob_id}/content"}},
        )
        assert (await attacker.post("/account/picture/remove")).status_code == 303
        assert (await UserModel.get(PydanticObjectId(me["id"]))).picture is None
    assert await still_there(app, user, blob_id)
    # The attacker's own picture file is still theirs: it was not the picture being removed.
    assert await Blob.get(PydanticObjectId(own.split("/")[2])) is not None


async def test_provider_profile_fields_are_checked(app, oidc_provider, provider_browser):
    hostile = {
        "email": "odd-profile@evil.example",
        "email_verified": True,
        "name": "  Mallory \n\t Evil " + "x" * 300,
        "picture": "javascript:alert(1)",
    }
    await oidc_provider.put_user(provider_browser, "odd-profile", **hostile)
    async with fresh_browser(app) as attacker:
        assert (await sign_in(attacker, provider_browser, "odd-profile")).status_code == 303
        me = (await attacker.get("/auth/me")).json()
    assert me["picture"] is None
    assert me["name"].startswith("Mallory Evil x") and len(me["name"]) == 200
    await oidc_provider.put_user(
        provider_browser,
        "long-picture",
        email="long-picture@evil.example",
        email_verified=True,
        picture="https://pictures.example/" + "p" * 3000,
    )
    async with fresh_browser(app) as other:
        # Too long to store: left out, not a failed sign-in.
        assert (await sign_in(other, provider_browser, "long-picture")).status_code == 303
        assert (await other.get("/auth/me")).json()["picture"] is None
    assert await OAuthAccount.find_all().count() == 2


# --- a victim's address claimed through a provider that does not verify it --------------

VICTIM = "victim@corp.example"


async def attacker_accounts(oidc_provider, http, tag: str) -> tuple[str, str]:
    """The attacker's two provider accounts: m1 claims the victim's address without the
    provider verifying it, m2 has the attacker's own, verified address."""
    m1, m2 = f"m1-{tag}", f"m2-{tag}"
    await oidc_provider.put_user(http, m1, email=VICTIM, email_verified=False, name="Mallory")
    await oidc_provider.put_user(
        http, m2, email=f"mallory-{tag}@evil.example", email_verified=True, name="Mallory"
    )
    return m1, m2


async def test_second_verified_link_does_not_take_the_victims_account(
    app, oidc_provider, provider_browser, outbox
):
    m1, m2 = await attacker_accounts(oidc_provider, provider_browser, "issue")
    async with fresh_browser(app) as attacker:
        # 1. Sign in with m1, which claims the victim's address, unverified.
        first = await sign_in(attacker, provider_browser, m1)
        assert first.status_code == 409
        assert await UserModel.get_by_email(VICTIM) is None
        # 2. Link m2 from the account page, as if still signed in.
        await sign_in(attacker, provider_browser, m2, next="/account")
        attackers_own = (await attacker.get("/auth/me")).json()
        assert attackers_own["email"] == "mallory-issue@evil.example"

    # 3. The victim proves the mailbox by email.
    async with fresh_browser(app) as victim:
        await request_link(victim, VICTIM)
        assert (await follow_link(victim, magic_link(outbox()[-1]))).status_code == 303
        victims = (await victim.get("/auth/me")).json()
    assert victims["providers"] == [] and victims["name"] is None

    # 4. Neither of the attacker's provider accounts leads into the victim's account.
    for who in (m2, m1):
        async with fresh_browser(app) as attacker:
            await sign_in(attacker, provider_browser, who)
            me = await attacker.get("/auth/me")
            assert me.status_code == 401 or me.json()["id"] != victims["id"]
    assert (
        await OAuthAccount.find(OAuthAccount.user.id == PydanticObjectId(victims["id"])).count()
        == 0
    )


async def test_nothing_attached_to_an_unproven_account_survives_the_proof(
    app, oidc_provider, provider_browser, outbox
):
    # The state an earlier release could leave: the attacker's m1 created the victim's
    # account unproven (with the attacker's name, picture and language), and m2 (the
    # attacker's own verified address) was linked to it from the account page.
    m1, m2 = await attacker_accounts(oidc_provider, provider_browser, "legacy")
    m3 = "m3-legacy"
    await oidc_provider.put_user(provider_browser, m3, email="m3@evil.example", email_verified=True)
    account = UserModel(
        email=VICTIM, name="Mallory", picture="https://evil.example/me.png", locale="de"
    )
    await account.insert()
    for who, email, verified in ((m1, VICTIM, False), (m2, "mallory-legacy@evil.example", True)):
        await OAuthAccount(
            provider="testidp",
            provider_user_id=who,
            user=account,
            email=email,
            email_verified=verified,
        ).insert()
    attacker = await client_for(app, account)
    assert (await attacker.get("/auth/me")).status_code == 200

    # While the address is unproven, nothing more can be attached ...
    linked = await sign_in(attacker, provider_browser, m3, next="/account")
    assert linked.status_code == 409
    # (in German: the language the attacker chose for the account)
    assert "Bestätige deine E-Mail-Adresse, bevor du testidp verknüpfst" in linked.text
    assert await OAuthAccount.find({"provider_user_id": m3}).count() == 0
    renamed = await attacker.post("/account/profile", data={"name": "Victim's boss"})
    assert renamed.status_code == 403
    assert renamed.json()["code"] == "email_not_confirmed"
    pictured = await attacker.post(
        "/account/picture", files={"picture": ("me.png", PNG, "image/png")}
    )
    assert pictured.status_code == 403
    assert await Blob.find_all().count() == 0
    page = await attacker.get("/account", headers={"Accept": "text/html"})
    assert "noch nicht bestätigt" in page.text and 'action="/account/profile"' not in page.text
    # ... and neither provider account signs in to it.
    for who in (m1, m2):
        async with fresh_browser(app) as other:
            refused = await sign_in(other, provider_browser, who)
            assert refused.status_code == 409
            assert (await other.get("/auth/me")).status_code == 401

    # The victim proves the mailbox.
    async with fresh_browser(app) as victim:
        await request_link(victim, VICTIM)
        assert (await follow_link(victim, magic_link(outbox()[-1]))).status_code == 303
        mine = (await victim.get("/auth/me")).json()
    assert mine["id"] == str(account.id) and mine["email_verified"] is True
    assert mine["providers"] == [] and mine["name"] is None and mine["picture"] is None
    assert (await UserModel.get(account.id)).locale is None
    assert await OAuthAccount.find_all().count() == 0
    assert (await attacker.get("/auth/me")).status_code == 401
    await attacker.aclose()
    for who in (m2, m1):
        async with fresh_browser(app) as again:
            await sign_in(again, provider_browser, who)
            me = await again.get("/auth/me")
            assert me.status_code == 401 or me.json()["id"] != str(account.id)


async def test_a_link_kept_from_before_the_proof_no_longer_signs_in(
    app, oidc_provider, provider_browser
):
    from datetime import timedelta

    from vibetuner.models.mixins import utcnow

    # What an earlier release's proof left behind: the victim proved the address, but
    # the attacker's verified m2, linked while the account was unproven, stayed.
    _, m2 = await attacker_accounts(oidc_provider, provider_browser, "kept")
    proven = utcnow()
    account = UserModel(email=VICTIM, email_verified_at=proven)
    await account.insert()
    await OAuthAccount.get_pymongo_collection().insert_one(
        {
            "provider": "testidp",
            "provider_user_id": m2,
            "user": DBRef("users", account.id),
            "email": "mallory-kept@evil.example",
            "email_verified": True,
            "db_insert_dt": proven - timedelta(minutes=5),
        }
    )
    async with fresh_browser(app) as attacker:
        refused = await sign_in(attacker, provider_browser, m2)
        assert refused.status_code == 409
        assert "linked before" in refused.text
        assert (await attacker.get("/auth/me")).status_code == 401
    assert await OAuthAccount.find_all().count() == 0
    # The victim's own links, made after the proof, keep working.
    await oidc_provider.put_user(
        provider_browser, "victim-own", email=VICTIM, email_verified=True, name="Victim"
    )
    async with fresh_browser(app) as victim:
        assert (await sign_in(victim, provider_browser, "victim-own")).status_code == 303
    async with fresh_browser(app) as victim:
        assert (await sign_in(victim, provider_browser, "victim-own")).status_code == 303
        assert (await victim.get("/auth/me")).json()["id"] == str(account.id)


# --- the answer to an unverified address tells nothing about accounts -------------------


def comparable(response) -> tuple[int, str, list[str]]:
    """Status, body and header names, without the per-response nonce, CSRF token and
    request id."""
    body = re.sub(r'(nonce|content|value)="[A-Za-z0-9_\-=.:]{16,}"', r'\1="x"', response.text)
    body = body.replace(response.headers.get("x-request-id", "\0"), "request-id")
    return response.status_code, body, sorted(response.headers.keys())


async def test_unverified_address_answers_the_same_with_or_without_an_account(
    app, oidc_provider, provider_browser
):
    from vibetuner.models.mixins import utcnow

    await oidc_provider.put_user(
        provider_browser, "prober", email="target@corp.example", email_verified=False
    )

    async def probe():
        async with fresh_browser(app) as prober:
            response = await sign_in(prober, provider_browser, "prober")
            signed_in = (await prober.get("/auth/me")).status_code == 200
        return comparable(response), signed_in

    nobody, signed_in = await probe()
    assert not signed_in
    assert await UserModel.find_all().count() == 0  # no account was started either
    target = UserModel(email="target@corp.example", email_verified_at=utcnow())
    await target.insert()
    somebody, signed_in = await probe()
    assert not signed_in
    assert somebody == nobody
    # Nor whether that account is unproven or disabled.
    await target.set({"email_verified_at": None})
    assert (await probe())[0] == nobody
    await target.set({"email_verified_at": utcnow(), "is_active": False})
    assert (await probe())[0] == nobody
    assert nobody[0] == 409


async def test_a_sign_in_racing_the_proof_is_refused(app):
    from vibetuner.auth import signin as auth
    from vibetuner.errors import OAuthSignInRefused

    # The attacker's provider sign-in found its link to the unproven account; the owner's
    # proof runs before that sign-in loads the user, which it then finds proven.
    account = UserModel(email=VICTIM)
    await account.insert()
    await OAuthAccount(provider="testidp", provider_user_id="racer", user=account).insert()
    found = await OAuthAccount.find_one({"provider_user_id": "racer"})
    await asyncio.sleep(0.01)  # the link is older than the proof (times are in ms)
    proven = await auth.claim_mailbox(account)
    assert proven.email_verified_at is not None
    with pytest.raises(OAuthSignInRefused) as refused:
        await auth._check_sign_in_link(proven, found)
    assert refused.value.reason == "linked_before_confirmation"
    # Run from the start, the rule finds no link, and the address is not verified.
    identity = auth.OAuthIdentity(provider="testidp", provider_user_id="racer", email=VICTIM)
    with pytest.raises(OAuthSignInRefused) as again:
        await app_context(app).get(AuthService).oauth_sign_in(identity, {}, None)
    assert again.value.reason == "unverified_email"
    assert await OAuthAccount.find_all().count() == 0
