"""Two-factor codes and the admin: a role that needs them, and "view as" after a recent code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.admin.conftest import make_user
from tests.auth.test_two_factor import HTML, code_at, turn_on
from vibetuner.models import UserSession
from vibetuner.models.audit import AuditLog
from vibetuner.models.mixins import utcnow


@pytest.fixture
def vibetuner_settings(vibetuner_settings: Any) -> Any:
    values = {**vibetuner_settings.model_dump(), "two_factor_required_roles": "admin"}
    return type(vibetuner_settings)(_env_file=None, **values)


async def test_an_admin_without_two_factor_is_sent_to_turn_it_on(browser_for):
    admin = await make_user(roles=["admin"])
    http = await browser_for(admin)
    for path in ("/admin/", "/admin", "/admin/users/list"):
        answer = await http.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/account#two-factor"
    # API-style requests get a plain refusal, never the admin.
    api = await http.get("/admin/", headers={"Accept": "application/json"})
    assert api.status_code == 403 and api.json()["code"] == "second_factor_required"

    await turn_on(http)  # the code that turns it on counts for this browser
    assert (await http.get("/admin/")).status_code == 200


async def test_another_session_of_the_admin_gives_a_code_first(browser_for):
    admin = await make_user(roles=["admin"])
    first = await browser_for(admin)
    secret, _ = await turn_on(first)
    # A session that never gave a code (signed in before two-factor was turned on).
    other = await browser_for(admin)
    asked = await other.get("/admin/users/list")
    assert asked.status_code == 303
    assert asked.headers["location"] == "/auth/two-factor?next=%2Fadmin%2Fusers%2Flist"
    answer = await other.post(
        "/auth/two-factor", data={"code": code_at(secret, 1), "next": "/admin/users/list"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/users/list"
    assert (await other.get("/admin/users/list")).status_code == 200


async def test_people_without_the_role_still_get_404(browser_for):
    member = await make_user()
    http = await browser_for(member)
    assert (await http.get("/admin/")).status_code == 404
    stranger = await browser_for(None)
    assert (await stranger.get("/admin/")).status_code == 404


async def test_viewing_as_a_user_needs_a_recent_code(browser_for):
    admin = await make_user(roles=["admin"])
    member = await make_user()
    http = await browser_for(admin)
    secret, _ = await turn_on(http)
    await UserSession.get_pymongo_collection().update_many(
        {"user_id": admin.id}, {"$set": {"second_factor_at": utcnow() - timedelta(hours=1)}}
    )
    detail = f"http://testserver/admin/users/detail/{member.id}"
    asked = await http.post(
        f"/admin/_api/users/row-action?name=view_as&pk={member.id}",
        data={},
        headers={**HTML, "Referer": detail},
    )
    assert asked.status_code == 303
    assert asked.headers["location"].startswith("/auth/two-factor?next=")
    assert "data-view-as-banner" not in (await http.get("/")).text
    assert await AuditLog.find_one({"action": "view_as"}) is None

    given = await http.post("/auth/two-factor", data={"code": code_at(secret, 1), "next": "/"})
    assert given.status_code == 303
    started = await http.post(f"/admin/_api/users/row-action?name=view_as&pk={member.id}", data={})
    assert started.status_code == 303 and started.headers["location"] == "/"
    assert "data-view-as-banner" in (await http.get("/")).text


async def test_admins_see_and_revoke_api_tokens(admin_app, browser_for):
    from vibetuner.auth import api_token_store as api_tokens
    from vibetuner.errors import InvalidApiToken
    from vibetuner.models.api_token import ApiToken
    from vibetuner.testing import app_context

    admin = await make_user(roles=["admin"])
    member = await make_user()
    member_http = await browser_for(member)
    made = await member_http.post(
        "/account/api-tokens", data={"name": "backup script", "scopes": ["read"], "days": "30"}
    )
    assert made.status_code == 200
    token = made.text.split("data-new-api-token>", 1)[1].split("<", 1)[0]
    record = await ApiToken.find_one({"user_id": member.id})

    http = await browser_for(admin)
    await turn_on(http)  # TWO_FACTOR_REQUIRED_ROLES=admin in this module
    listing = (await http.get("/admin/api-tokens/list")).text
    assert "backup script" in listing and record.public_id in listing
    assert record.id not in listing and token not in listing
    revoked = await http.post(
        f"/admin/_api/api-tokens/action?name=delete&pks={record.public_id}", data={}
    )
    assert revoked.status_code == 200
    assert await ApiToken.find_one({"user_id": member.id}) is None
    with pytest.raises(InvalidApiToken):
        await api_tokens.authenticate(token, app_context(admin_app).settings)
