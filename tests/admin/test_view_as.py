"""View as user, attacked from the admin's browser: no way in that outlives the view, and
every write made meanwhile in the audit trail under the admin's name.

The provider is the real OpenID Connect process of the sign-in tests; the browser is an
httpx client carrying each redirect between the app and the provider.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.admin.conftest import make_user
from tests.auth.conftest import (  # noqa: F401  (fixtures)
    magic_link,
    oidc_provider,
    provider_browser,
    read_outbox,
)
from tests.auth.test_oauth import ENCRYPTION_KEY, authorize, start
from vibetuner.models import OAuthAccount, UserModel, UserSession
from vibetuner.models.audit import AuditLog
from vibetuner.testing import follow_sign_in_link


@pytest.fixture
def vibetuner_settings(vibetuner_settings: Any, oidc_provider: Any) -> Any:  # noqa: F811
    values = {
        **vibetuner_settings.model_dump(),
        "oidc_providers": [oidc_provider.settings()],
        "token_encryption_key": ENCRYPTION_KEY,
    }
    return type(vibetuner_settings)(_env_file=None, **values)


async def view_as(http: httpx.AsyncClient, member: Any) -> None:
    """Press "View as this user" in the admin, as the admin's browser."""
    started = await http.post(f"/admin/_api/users/row-action?name=view_as&pk={member.id}", data={})
    assert started.status_code == 303, started.text[:300]
    assert "data-view-as-banner" in (await http.get("/")).text


async def me(http: httpx.AsyncClient) -> Any:
    answer = await http.get("/auth/me", headers={"Accept": "application/json"})
    return answer.json().get("email") if answer.status_code == 200 else None


async def provider_sign_in(app: Any, browser: httpx.AsyncClient, who: str) -> Any:
    """A fresh browser signing in with the provider as ``who``: whose account it opens."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as fresh:
        callback = await authorize(browser, await start(fresh), who)
        await fresh.get(callback.split("testserver", 1)[1])
        return await me(fresh)


async def test_linking_a_provider_while_viewing_leaves_no_way_into_the_account(
    admin_app: Any,
    browser_for: Any,
    provider_browser: Any,  # noqa: F811
) -> None:
    admin = await make_user("lead@example.com", roles=["admin"])
    member = await make_user("member@example.com")
    http = await browser_for(admin)
    await view_as(http, member)

    # The account page offers linking a provider: the admin follows it with an identity
    # of their own at the provider (carol's).
    callback = await authorize(provider_browser, await start(http), "carol")
    finished = await http.get(callback.split("testserver", 1)[1])
    assert finished.status_code == 303

    # Starting the sign-in ended the view first: the admin is back as themselves.
    assert await me(http) == "lead@example.com"
    assert "data-view-as-banner" not in (await http.get("/")).text
    assert await OAuthAccount.find({"user.$id": member.id}).count() == 0
    assert await UserSession.find({"user_id": member.id}).count() == 0
    # A fresh browser signing in with that identity never lands in the member's account.
    assert await provider_sign_in(admin_app, provider_browser, "carol") != "member@example.com"
    ended = await AuditLog.find_one({"action": "view_as_end"})
    assert ended is not None and ended.actor_email == "lead@example.com"
    assert ended.target_label == "member@example.com"
    assert (ended.method, ended.path) == ("GET", "/auth/oauth/testidp")


async def test_a_callback_arriving_while_viewing_links_nothing_to_the_viewed_user(
    admin_app: Any,
    browser_for: Any,
    provider_browser: Any,  # noqa: F811
) -> None:
    admin = await make_user("lead@example.com", roles=["admin"])
    member = await make_user("member@example.com")
    http = await browser_for(admin)
    # The flow starts as the admin, the view begins, then the provider answers.
    authorize_url = await start(http)
    await view_as(http, member)
    callback = await authorize(provider_browser, authorize_url, "carol")
    await http.get(callback.split("testserver", 1)[1])

    assert await OAuthAccount.find({"user.$id": member.id}).count() == 0
    assert await UserSession.find({"user_id": member.id}).count() == 0
    assert await me(http) == "lead@example.com"
    assert await provider_sign_in(admin_app, provider_browser, "carol") != "member@example.com"


async def test_a_magic_link_asked_for_while_viewing_ends_the_view_first(
    admin_app: Any, browser_for: Any, vibetuner_settings: Any
) -> None:
    admin = await make_user("lead@example.com", roles=["admin"])
    member = await make_user("member@example.com")
    http = await browser_for(admin)
    await view_as(http, member)

    asked = await http.post("/auth/magic-link", data={"email": "member@example.com"})
    assert asked.status_code == 200
    assert "data-view-as-banner" not in asked.text
    assert await me(http) == "lead@example.com"
    assert await UserSession.find({"user_id": member.id}).count() == 0
    (ended,) = await AuditLog.find({"action": "view_as_end"}).to_list()
    assert (ended.actor_email, ended.method, ended.path) == (
        "lead@example.com",
        "POST",
        "/auth/magic-link",
    )


async def test_following_a_sign_in_link_while_viewing_ends_the_view_first(
    admin_app: Any, browser_for: Any, vibetuner_settings: Any
) -> None:
    admin = await make_user("lead@example.com", roles=["admin"])
    member = await make_user("member@example.com")
    # A link the admin holds (asked for from another browser), opened during the view.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=admin_app), base_url="http://testserver"
    ) as other:
        assert (await other.post("/auth/magic-link", data={"email": "x@example.com"})).is_success
    (message,) = read_outbox(vibetuner_settings.email_file_dir)
    link = magic_link(message)
    http = await browser_for(admin)
    await view_as(http, member)

    assert (await follow_sign_in_link(http, link)).status_code == 303
    assert await me(http) == "x@example.com"
    assert await UserSession.find({"user_id": member.id}).count() == 0
    (ended,) = await AuditLog.find({"action": "view_as_end"}).to_list()
    assert ended.actor_email == "lead@example.com" and ended.method == "POST"
    assert "/auth/magic-link/" in ended.path and ended.path.endswith("/********")


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
async def test_sign_in_methods_sessions_and_the_account_are_out_of_reach(
    admin_app: Any, browser_for: Any, accept: str
) -> None:
    admin = await make_user("lead@example.com", roles=["admin"])
    member = await make_user("member@example.com")
    await OAuthAccount(
        provider="other", provider_user_id="m-1", user=member, email=member.email
    ).insert()
    member_http = await browser_for(member)  # the member's own browser
    assert await me(member_http) == "member@example.com"
    (own,) = await UserSession.find({"user_id": member.id}).to_list()
    http = await browser_for(admin)
    await view_as(http, member)
    viewing = await UserSession.find_one({"user_id": member.id, "impersonator_id": admin.id})
    assert viewing is not None
    before = await AuditLog.find().count()
    # The account page does not offer them during the view (the member's own page does).
    offered = ["/providers/other/unlink", "/auth/oauth/testidp", "/revoke", "logout-everywhere"]
    own_page = (await member_http.get("/account", headers={"Accept": "text/html"})).text
    assert all(part in own_page for part in offered) and "/account/delete" in own_page
    page = (await http.get("/account")).text
    assert "member@example.com" in page
    assert not any(part in page for part in [*offered, "/account/delete"])

    attempts = [
        ("POST", "/account/providers/other/unlink", {}),
        ("POST", "/account/delete", {"confirm_email": "member@example.com"}),
        ("POST", f"/account/sessions/{own.public_id}/revoke", {}),
        ("POST", f"/account/sessions/{viewing.public_id}/revoke", {}),
        ("DELETE", f"/auth/sessions/{own.public_id}", None),
        ("POST", "/auth/logout-everywhere", {}),
    ]
    for method, path, form in attempts:
        answer = await http.request(method, path, data=form, headers={"Accept": accept})
        assert answer.status_code == 403, (method, path, answer.status_code, answer.text[:300])
        if accept == "application/json":
            assert answer.json()["code"] == "view_as_refused"
            assert "viewing" in answer.json()["detail"]
        else:
            assert answer.headers["content-type"].startswith("text/html")
            assert "viewing" in answer.text

    # Nothing changed: the link, the account, both sessions, the view itself.
    await member.sync()
    assert await UserModel.get(member.id) is not None and member.session_version == 1
    assert await OAuthAccount.find({"user.$id": member.id}).count() == 1
    assert await me(member_http) == "member@example.com"
    assert "data-view-as-banner" in (await http.get("/")).text
    assert await AuditLog.find().count() == before  # refusals wrote nothing


async def test_every_write_made_while_viewing_is_audited_under_the_admin(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("lead@example.com", roles=["admin"])
    member = await make_user("member@example.com")
    http = await browser_for(admin)
    await view_as(http, member)

    renamed = await http.post("/account/profile", data={"name": "Renamed by admin"})
    assert renamed.status_code == 303
    uploaded = await http.post(
        "/blobs",
        files={"file": ("note.txt", b"hello", "text/plain")},
        headers={"Accept": "application/json"},
    )
    assert uploaded.status_code == 201
    blob_id = uploaded.json()["id"]
    assert (await http.delete(f"/blobs/{blob_id}")).status_code == 204
    assert (await http.delete(f"/blobs/{blob_id}")).status_code == 404  # failed: not a write
    await http.get("/account")  # reads are not recorded

    writes = await AuditLog.find({"action": "view_as_write"}).sort("at").to_list()
    assert [(e.method, e.path) for e in writes] == [
        ("POST", "/account/profile"),
        ("POST", "/blobs"),
        ("DELETE", f"/blobs/{blob_id}"),
    ]
    for entry in writes:
        assert (entry.actor_id, entry.actor_email) == (admin.id, "lead@example.com")
        assert (entry.target_type, entry.target_id) == ("users", str(member.id))
        assert entry.target_label == "member@example.com"

    # Signing out during the view ends both sessions, and says so in the trail.
    assert (await http.post("/auth/logout", data={})).status_code in (200, 303)
    assert await UserSession.find().count() == 0
    (ended,) = await AuditLog.find({"action": "view_as_end"}).to_list()
    assert (ended.actor_email, ended.method, ended.path) == (
        "lead@example.com",
        "POST",
        "/auth/logout",
    )
    assert await AuditLog.find({"action": "view_as_write"}).count() == 3


async def test_the_audit_names_the_admin_of_the_view_not_a_guess(
    admin_app: Any, browser_for: Any
) -> None:
    # Two admins view two users at once; each write is filed under its own admin.
    first, second = await make_user(roles=["admin"]), await make_user(roles=["admin"])
    one, two = await make_user(), await make_user()
    http_one, http_two = await browser_for(first), await browser_for(second)
    await view_as(http_one, one)
    await view_as(http_two, two)
    assert (await http_two.post("/account/profile", data={"name": "Two"})).status_code == 303
    assert (await http_one.post("/account/profile", data={"name": "One"})).status_code == 303
    entries = await AuditLog.find({"action": "view_as_write"}).sort("at").to_list()
    assert [(e.actor_id, e.target_id) for e in entries] == [
        (second.id, str(two.id)),
        (first.id, str(one.id)),
    ]


async def test_the_way_back_after_the_admin_was_signed_out_elsewhere(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("lead@example.com", roles=["admin"])
    member = await make_user("member@example.com")
    http = await browser_for(admin)
    await view_as(http, member)
    # The admin's own session (waiting in the cookie) is revoked from another browser.
    await UserSession.get_pymongo_collection().delete_many({"user_id": admin.id})

    back = await http.post("/ui/view-as/stop", data={})
    assert back.status_code == 303 and back.headers["location"] == "/"
    assert await me(http) is None  # signed out: nothing of either session is left
    assert await UserSession.find().count() == 0
    (ended,) = await AuditLog.find({"action": "view_as_end"}).to_list()
    assert (ended.actor_id, ended.actor_email) == (admin.id, "lead@example.com")
    assert ended.target_label == "member@example.com"


async def test_a_session_opened_by_an_admin_is_refused_without_the_waiting_one(
    admin_app: Any, browser_for: Any
) -> None:
    # A cookie holding only the view's session (the admin's part dropped) still cannot
    # delete the account: the refusal reads the session record, not only the cookie.
    from vibetuner.auth.sessions import start_session
    from vibetuner.testing import app_context, session_cookie, set_session_cookie
    from vibetuner.web.identity import SESSION_TOKEN_KEY

    admin = await make_user(roles=["admin"])
    member = await make_user("member@example.com")
    settings = app_context(admin_app).settings
    token = await start_session(member, settings, impersonator=admin, max_age=3600)
    http = await browser_for(None)
    set_session_cookie(http, settings, session_cookie(settings, {SESSION_TOKEN_KEY: token}))
    assert await me(http) == "member@example.com"
    refused = await http.post(
        "/account/delete",
        data={"confirm_email": "member@example.com"},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 403 and refused.json()["code"] == "view_as_refused"
    assert await UserModel.get(member.id) is not None


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
async def test_two_factor_and_api_tokens_are_out_of_reach(
    admin_app: Any, browser_for: Any, accept: str
) -> None:
    import pyotp

    from tests.auth.test_two_factor import code_at, turn_on
    from vibetuner.models.api_token import ApiToken
    from vibetuner.models.two_factor import TwoFactorSecret

    admin = await make_user("lead@example.com", roles=["admin"])
    member = await make_user("member@example.com")
    member_http = await browser_for(member)
    secret, codes = await turn_on(member_http)
    made = await member_http.post(
        "/account/api-tokens", data={"name": "script", "scopes": ["read"], "days": "30"}
    )
    assert made.status_code == 200
    (token,) = await ApiToken.find({"user_id": member.id}).to_list()
    stored = (await TwoFactorSecret.find_one({"user_id": member.id})).model_dump()
    http = await browser_for(admin)
    await view_as(http, member)
    before = await AuditLog.find().count()

    # A code from the member's app is typed by the admin (read over their shoulder).
    attempts = [
        ("/account/two-factor/disable", {"code": code_at(secret)}),
        ("/account/two-factor/recovery-codes", {"code": codes[0]}),
        ("/account/two-factor/cancel", {}),
        ("/account/two-factor/start", {}),
        ("/account/two-factor/confirm", {"code": code_at(secret)}),
        ("/account/api-tokens", {"name": "mine now", "scopes": ["read"], "days": "365"}),
        (f"/account/api-tokens/{token.public_id}/revoke", {}),
    ]
    for path, form in attempts:
        answer = await http.post(path, data=form, headers={"Accept": accept})
        assert answer.status_code == 403, (path, answer.status_code, answer.text[:300])
        assert "vt_" not in answer.text and "data-recovery-codes" not in answer.text
    assert (await TwoFactorSecret.find_one({"user_id": member.id})).model_dump() == stored
    assert await ApiToken.find({"user_id": member.id}).count() == 1
    assert await AuditLog.find().count() == before

    # The member starts setting up codes anew elsewhere: the view never shows the secret
    # the member's app will use.
    await TwoFactorSecret.find({"user_id": member.id}).delete()
    started = await member_http.post("/account/two-factor/start")
    assert started.status_code == 303
    page = (await member_http.get("/account")).text
    pending = re.search(r"data-two-factor-secret>([A-Z2-7 ]+)<", page).group(1).replace(" ", "")
    viewed = (await http.get("/account")).text
    assert "member@example.com" in viewed
    assert pending not in viewed.replace(" ", "") and "vt-qr" not in viewed
    assert "data-two-factor-secret" not in viewed
    assert pyotp.TOTP(pending).now() not in viewed
