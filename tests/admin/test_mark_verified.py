"""Proven addresses in the admin: "Mark email verified" is a proof of the mailbox, with the
same clean-up; roles wait for the proof; an address typed by an admin is unproven."""

from __future__ import annotations

from typing import Any

from tests.admin.conftest import as_form, form_fields, make_user, replace_field
from vibetuner.models import OAuthAccount, UserModel, UserSession
from vibetuner.models.audit import AuditLog


async def test_marking_an_address_verified_drops_what_was_attached_before(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("chief@example.com", roles=["admin"])
    # An account someone made with another person's address, through a provider that did
    # not verify it: their own provider account is linked and they are signed in.
    claimed = UserModel(email="ceo@corp.example", name="Not the CEO", locale="de")
    await claimed.insert()
    await OAuthAccount(
        provider="github", provider_user_id="4242", user=claimed, email="ceo@corp.example"
    ).insert()
    squatter = await browser_for(claimed)
    assert (await squatter.get("/auth/me")).status_code == 200

    http = await browser_for(admin)
    marked = await http.post(
        f"/admin/_api/users/action?name=mark_verified&pks={claimed.id}", data={}
    )
    assert marked.status_code == 200

    stored = await UserModel.get(claimed.id)
    assert stored.email_verified_at is not None
    assert stored.name is None and stored.locale is None
    # The link made before the proof cannot sign anyone in, and the session ended.
    assert await OAuthAccount.find(OAuthAccount.user.id == claimed.id).count() == 0
    assert await UserSession.find({"user_id": claimed.id}).count() == 0
    assert (await squatter.get("/auth/me")).status_code == 401
    (entry,) = await AuditLog.find({"action": "mark_verified"}).to_list()
    assert entry.changes["name"] == {"before": "Not the CEO", "after": None}
    assert entry.changes["email_verified_at"]["before"] is None

    # A verified account is left alone: its links stay.
    member = await make_user("member@example.com")
    await OAuthAccount(provider="github", provider_user_id="77", user=member).insert()
    again = await http.post(f"/admin/_api/users/action?name=mark_verified&pks={member.id}", data={})
    assert again.status_code == 200
    assert await OAuthAccount.find(OAuthAccount.user.id == member.id).count() == 1
    assert await AuditLog.find({"action": "mark_verified"}).count() == 1


async def test_no_new_roles_and_no_typed_verification_for_an_unproven_address(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("boss@example.com", roles=["admin"])
    claimed = UserModel(email="cfo@corp.example")
    await claimed.insert()
    http = await browser_for(admin)
    page = (await http.get(f"/admin/users/edit?pk={claimed.id}")).text
    fields = [(k, v) for k, v in form_fields(page, "email") if k != "email_verified_at"]
    with_role = [*fields, ("roles.0", "admin")]
    answer = await http.post(f"/admin/users/edit?pk={claimed.id}", data=as_form(with_role))
    assert answer.status_code in (200, 422)
    assert "has not been proven yet" in answer.text
    # A verification date typed (or forged) into the form is not taken: only a proof of
    # the mailbox, or the action, sets it.
    dated = [*fields, ("email_verified_at", "2020-01-01T00:00")]
    answer = await http.post(f"/admin/users/edit?pk={claimed.id}", data=as_form(dated))
    assert answer.status_code in (200, 303), answer.text[:500]
    stored = await UserModel.get(claimed.id)
    assert stored.roles == [] and stored.email_verified_at is None


async def test_a_new_address_typed_by_an_admin_is_unproven(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("desk@example.com", roles=["admin"])
    member = await make_user("old@example.com")
    http = await browser_for(admin)
    page = (await http.get(f"/admin/users/edit?pk={member.id}")).text
    fields = replace_field(form_fields(page, "email"), "email", "New@Example.com")
    answer = await http.post(f"/admin/users/edit?pk={member.id}", data=as_form(fields))
    assert answer.status_code in (200, 303), answer.text[:500]
    stored = await UserModel.get(member.id)
    assert stored.email == "new@example.com" and stored.email_verified_at is None
    (entry,) = await AuditLog.find({"action": "edit"}).to_list()
    assert entry.changes["email_verified_at"]["after"] is None
    # Only the case changed: the same address, still proven.
    page = (await http.get(f"/admin/users/edit?pk={admin.id}")).text
    fields = replace_field(form_fields(page, "email"), "email", "DESK@example.com")
    await http.post(f"/admin/users/edit?pk={admin.id}", data=as_form(fields))
    assert (await UserModel.get(admin.id)).email_verified_at is not None


async def test_an_address_changed_in_the_admin_takes_the_former_holders_ways_in(
    admin_app: Any, browser_for: Any
) -> None:
    from tests.auth.test_two_factor import turn_on
    from vibetuner.models.api_token import ApiToken
    from vibetuner.models.two_factor import TwoFactorSecret

    admin = await make_user("desk@example.com", roles=["admin"])
    member = await make_user("old@example.com")
    holder = await browser_for(member)
    await turn_on(holder)
    made = await holder.post(
        "/account/api-tokens", data={"name": "script", "scopes": ["read"], "days": "30"}
    )
    token = made.text.split("data-new-api-token>", 1)[1].split("<", 1)[0]
    assert token.startswith("vt_")

    async def token_works() -> bool:
        # The check require_scope makes on every API route (this app has none of its own;
        # tests/auth/test_api_tokens.py runs the same over HTTP).
        from vibetuner.auth import api_token_store
        from vibetuner.errors import InvalidApiToken
        from vibetuner.testing import app_context

        try:
            await api_token_store.authenticate(token, app_context(admin_app).settings)
        except InvalidApiToken:
            return False
        return True

    assert await token_works()
    # The address is given to someone else in the admin: unproven from now on.
    http = await browser_for(admin)
    page = (await http.get(f"/admin/users/edit?pk={member.id}")).text
    fields = replace_field(form_fields(page, "email"), "email", "new@example.com")
    answer = await http.post(f"/admin/users/edit?pk={member.id}", data=as_form(fields))
    assert answer.status_code in (200, 303), answer.text[:500]
    assert not await token_works()
    marked = await http.post(
        f"/admin/_api/users/action?name=mark_verified&pks={member.id}", data={}
    )
    assert marked.status_code == 200
    assert await ApiToken.find({"user_id": member.id}).count() == 0
    assert await TwoFactorSecret.find({"user_id": member.id}).count() == 0
    assert not await token_works()
