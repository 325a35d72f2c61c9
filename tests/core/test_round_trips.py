"""What a request costs the database: the commands the real client sends, per route.

Runs on a real server only (``TEST_MONGODB_URL``; CI runs it on the wire server):
PyMongo's command monitoring sees each command the app's client sends. A signed-in
request reads its session, its user and the user's provider names in one aggregation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from vibetuner.testing import app_context

pytestmark = pytest.mark.parametrize("mongo_backend", ["mongodb"], indirect=True)

HTML = {"Accept": "text/html"}


@pytest.fixture
async def app(vibetuner_settings: Any) -> AsyncIterator[Any]:
    from vibetuner import create_app
    from vibetuner.admin import AdminFeature
    from vibetuner.app import default_features

    application = create_app(
        settings=vibetuner_settings, features=[*default_features(), AdminFeature()]
    )
    async with application.router.lifespan_context(application):
        yield application
        mongo = app_context(application).mongo
        await mongo.client.drop_database(mongo.database.name)


async def sent_by(mongo_commands: Any, request: Any) -> list[str]:
    """The commands one request sends, after a first untimed one (warm caches, CSRF)."""
    await request()
    with mongo_commands() as sent:
        answer = await request()
    assert answer.status_code < 400, (answer.status_code, answer.text[:300])
    return [str(command) for command in sent]


SIGNED_IN = ["aggregate user_sessions"]


async def test_a_signed_in_request_is_one_round_trip(signed_in_client, mongo_commands):
    me = await sent_by(mongo_commands, lambda: signed_in_client.get("/auth/me"))
    assert me == SIGNED_IN
    providers = (await signed_in_client.get("/auth/me")).json()["providers"]
    assert providers == []


async def test_an_anonymous_page_sends_nothing(client, mongo_commands):
    assert await sent_by(mongo_commands, lambda: client.get("/auth/login", headers=HTML)) == []


async def test_the_account_page(signed_in_client, mongo_commands):
    sent = await sent_by(mongo_commands, lambda: signed_in_client.get("/account", headers=HTML))
    # The session (with user and providers), then the page's own lists: sessions,
    # passkeys, the two-factor state and the API tokens.
    assert sent == [
        *SIGNED_IN,
        "find user_sessions",
        "find passkeys",
        "find two_factor_secrets",
        "find api_tokens",
    ]


async def test_an_upload(signed_in_client, mongo_commands):
    async def upload() -> Any:
        return await signed_in_client.post("/blobs", files={"file": ("a.txt", b"abc")})

    sent = await sent_by(mongo_commands, upload)
    assert sent[0] == SIGNED_IN[0]
    # The blob's record: written pending, then marked stored once the bytes are safe.
    assert sent[1:] == ["insert blobs", "findAndModify blobs"]


async def test_the_admin_user_list(app, user, client_for, mongo_commands):
    await user.set({"roles": ["admin"]})
    http = await client_for(user)
    sent = await sent_by(mongo_commands, lambda: http.get("/admin/users/list", headers=HTML))
    # starlette-admin's page of users and their count.
    assert sent == [*SIGNED_IN, "aggregate users", "count users"]
