"""The admin's "sign out everywhere" and "deactivate" close the user's open streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.realtime.conftest import cookies_for, new_user, open_stream, running
from vibetuner.realtime import user_channel


@pytest.fixture
async def app(vibetuner_settings: Any) -> AsyncIterator[Any]:
    from vibetuner import AdminFeature, create_app
    from vibetuner.app import default_features
    from vibetuner.realtime import RealtimeFeature

    application = create_app(
        settings=vibetuner_settings,
        features=[*default_features(), AdminFeature(), RealtimeFeature()],
    )
    async with running(application):
        yield application


@pytest.mark.parametrize("action", ["sign_out_everywhere", "deactivate"])
async def test_the_admins_action_closes_the_users_streams(app, base_url, client_for, action):
    admin = await new_user()
    await admin.set({"roles": ["admin"]})
    member = await new_user()
    admin_http = await client_for(admin)
    async with httpx.AsyncClient(base_url=base_url, cookies=await cookies_for(app, member)) as http:
        response, stream = await open_stream(http, f"/realtime?channel={user_channel(member)}")
        assert response.status_code == 200
        done = await admin_http.post(
            f"/admin/_api/users/action?name={action}&pks={member.id}", data={}
        )
        assert done.status_code == 200, done.text
        assert await stream.next(seconds=3) is None
        again, _ = await open_stream(http, f"/realtime?channel={user_channel(member)}")
        assert again.status_code == 401
