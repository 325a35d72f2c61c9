"""The admin's "Mark email verified" is a proof of the mailbox, with the same clean-up."""

from __future__ import annotations

from typing import Any

from tests.admin.conftest import make_user
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
