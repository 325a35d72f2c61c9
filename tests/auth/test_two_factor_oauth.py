"""Two-factor codes after a provider sign-in, and before linking a provider.

The provider is the real OpenID Connect process of ``tests/auth/conftest.py``.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from tests.auth.test_oauth import ENCRYPTION_KEY, sign_in
from tests.auth.test_two_factor import HTML, browser, code_at, give_code, turn_on
from vibetuner.models import UserSession
from vibetuner.models.mixins import utcnow


@pytest.fixture
def vibetuner_settings(vibetuner_settings, oidc_provider):
    values = {
        **vibetuner_settings.model_dump(),
        "oidc_providers": [oidc_provider.settings()],
        "token_encryption_key": ENCRYPTION_KEY,
    }
    return type(vibetuner_settings)(_env_file=None, **values)


async def test_a_provider_sign_in_asks_for_the_code_too(app, provider_browser):
    async with browser(app) as owner:
        assert (await sign_in(owner, provider_browser, "alice")).status_code == 303
        secret, _ = await turn_on(owner)
    async with browser(app) as attacker:
        # Holding the provider account is the first factor only.
        answer = await sign_in(attacker, provider_browser, "alice")
        assert answer.status_code == 303
        assert urlsplit(answer.headers["location"]).path == "/auth/two-factor"
        assert (await attacker.get("/auth/me")).status_code == 401
        assert (await give_code(attacker, code_at(secret, 1), next="/")).status_code == 303
        assert (await attacker.get("/auth/me")).json()["email"] == "alice@example.com"


async def test_linking_a_provider_needs_a_recent_code(app, user, provider_browser):
    from vibetuner.testing import app_context, set_session_cookie, signed_in_cookie

    settings = app_context(app).settings
    async with browser(app) as http:
        set_session_cookie(http, settings, await signed_in_cookie(settings, user))
        secret, _ = await turn_on(http)
        await UserSession.get_pymongo_collection().update_many(
            {"user_id": user.id}, {"$set": {"second_factor_at": utcnow() - timedelta(hours=1)}}
        )
        asked = await http.get("/auth/oauth/testidp?next=/account", headers=HTML)
        assert asked.status_code == 303
        assert asked.headers["location"] == (
            "/auth/two-factor?next=%2Fauth%2Foauth%2Ftestidp%3Fnext%3D%2Faccount"
        )
        assert (await give_code(http, code_at(secret, 1))).status_code == 303
        again = await http.get("/auth/oauth/testidp?next=/account", headers=HTML)
        assert again.status_code == 302  # on to the provider
