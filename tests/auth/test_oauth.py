"""OAuth / OpenID Connect sign-in against a real provider process on 127.0.0.1.

The app runs in process (httpx over ASGI); the test plays the browser, carrying each
redirect between the app and the provider. The app's own calls to the provider
(discovery, JWKS, token exchange, userinfo) go over real HTTP.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.auth.conftest import PROVIDER_USERS, link_path
from tests.auth.test_sessions import client_for
from vibetuner.auth.signin import AuthService
from vibetuner.models import OAuthAccount, UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.testing import app_context

ENCRYPTION_KEY = Fernet.generate_key().decode()


@pytest.fixture
def vibetuner_settings(vibetuner_settings, oidc_provider):
    values = {
        **vibetuner_settings.model_dump(),
        "oidc_providers": [oidc_provider.settings()],
        "github_client_id": oidc_provider.client_id,
        "github_client_secret": oidc_provider.client_secret,
        "token_encryption_key": ENCRYPTION_KEY,
    }
    return type(vibetuner_settings)(_env_file=None, **values)


@pytest.fixture
def github_at_provider(app, oidc_provider):
    """Point the app's GitHub client at the provider's GitHub-shaped endpoints."""
    from vibetuner.auth.oauth_providers import GitHubEndpoints, OAuthProviders

    issuer = oidc_provider.issuer
    endpoints = GitHubEndpoints(
        authorize_url=f"{issuer}/login/oauth/authorize",
        access_token_url=f"{issuer}/login/oauth/access_token",
        api_base_url=f"{issuer}/",
    )
    context = app_context(app)
    context.provide(OAuthProviders(context.settings, links=context.links, github=endpoints))


def with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


async def start(client, provider: str = "testidp", **params: str) -> str:
    """Begin the flow at the app; return the provider's authorization URL."""
    response = await client.get(f"/auth/oauth/{provider}", params=params)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def authorize(browser, url: str, who: str) -> str:
    """The provider's answer for ``who``: the callback URL on the app."""
    response = await browser.get(with_params(url, login_hint=who))
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def sign_in(client, browser, who: str, provider: str = "testidp", **params: str):
    callback = await authorize(browser, await start(client, provider, **params), who)
    assert callback.startswith(f"http://testserver/auth/oauth/{provider}/callback?")
    return await client.get(link_path(callback))


def fresh_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_authorization_request_uses_pkce_state_and_nonce(client, oidc_provider):
    url = await start(client)
    assert url.startswith(f"{oidc_provider.issuer}/authorize?")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 20
    assert len(query["nonce"][0]) >= 20
    assert query["redirect_uri"] == ["http://testserver/auth/oauth/testidp/callback"]
    assert "openid" in query["scope"][0].split()
    # The verifier stays with the app: it is never in the URL.
    assert "code_verifier" not in query


async def test_new_user_is_created_and_signed_in(client, provider_browser):
    response = await sign_in(client, provider_browser, "alice", next="/welcome")
    assert response.status_code == 303
    assert response.headers["location"] == "/welcome"

    me = (await client.get("/auth/me")).json()
    assert me["email"] == "alice@example.com"
    assert me["name"] == "Alice Example"
    assert me["picture"] == "https://pictures.example/alice.png"
    assert me["email_verified"] is True
    assert me["providers"] == ["testidp"]

    account = await OAuthAccount.find_one({"provider": "testidp"})
    assert account.provider_user_id == PROVIDER_USERS["alice"]["sub"]
    assert account.email_verified is True


async def test_stored_tokens_are_encrypted_and_still_work(
    app, client, provider_browser, oidc_provider
):
    await sign_in(client, provider_browser, "alice")
    raw = await OAuthAccount.get_pymongo_collection().find_one({"provider": "testidp"})
    assert raw["access_token"].startswith("fernet:")
    account = await OAuthAccount.find_one({"provider": "testidp"})
    access_token = app_context(app).get(AuthService).reveal(account.access_token)
    assert access_token and access_token not in str(raw)
    userinfo = await provider_browser.get(
        f"{oidc_provider.issuer}/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == PROVIDER_USERS["alice"]["sub"]


async def test_returning_user_signs_in_to_the_same_account(app, client, provider_browser):
    await sign_in(client, provider_browser, "alice")
    first = (await client.get("/auth/me")).json()
    before = await OAuthAccount.get_pymongo_collection().find_one({"provider": "testidp"})

    async with fresh_client(app) as other:
        response = await sign_in(other, provider_browser, "alice")
        assert response.status_code == 303
        assert (await other.get("/auth/me")).json()["id"] == first["id"]

    assert await UserModel.find_all().count() == 1
    assert await OAuthAccount.find_all().count() == 1
    after = await OAuthAccount.get_pymongo_collection().find_one({"provider": "testidp"})
    assert after["access_token"] != before["access_token"]  # refreshed


async def test_signed_in_user_links_a_provider_account(app, user, provider_browser):
    async with await client_for(app, user) as browser:
        response = await sign_in(browser, provider_browser, "carol")
        assert response.status_code == 303
        me = (await browser.get("/auth/me")).json()
    assert me["id"] == str(user.id)
    assert me["email"] == user.email  # the account keeps its own address
    assert me["providers"] == ["testidp"]
    assert await UserModel.get_by_email("carol@example.com") is None


async def test_verified_email_links_to_the_existing_user(app, client, provider_browser):
    existing = UserModel(email="carol@example.com", email_verified_at=utcnow())
    await existing.insert()
    response = await sign_in(client, provider_browser, "carol")
    assert response.status_code == 303
    me = (await client.get("/auth/me")).json()
    assert me["id"] == str(existing.id)
    assert me["providers"] == ["testidp"]


async def test_unverified_email_is_not_linked_to_an_existing_user(client, provider_browser):
    existing = UserModel(email="bob@example.com", email_verified_at=utcnow())
    await existing.insert()
    response = await sign_in(client, provider_browser, "bob")
    assert response.status_code == 409
    assert "Sign in with an email link first" in response.text
    assert 'href="/auth/login"' in response.text
    assert (await client.get("/auth/me")).status_code == 401
    assert await OAuthAccount.find_all().count() == 0


async def test_unverified_email_never_starts_an_account(app, client, provider_browser, outbox):
    from tests.auth.conftest import follow_link, magic_link, request_link

    response = await sign_in(client, provider_browser, "bob")
    assert response.status_code == 409
    assert "Sign in with an email link first" in response.text
    assert (await client.get("/auth/me")).status_code == 401
    assert await UserModel.find_all().count() == 0
    assert await OAuthAccount.find_all().count() == 0

    # The way the page points to: sign in by email, then link the provider from there.
    await request_link(client, "bob@example.com", next="/account")
    assert (await follow_link(client, magic_link(outbox()[0]))).status_code == 303
    assert (await sign_in(client, provider_browser, "bob", next="/account")).status_code == 303
    mine = (await client.get("/auth/me")).json()
    assert mine["email_verified"] is True and mine["providers"] == ["testidp"]
    # From now on the provider account signs in on its own.
    async with fresh_client(app) as later:
        assert (await sign_in(later, provider_browser, "bob")).status_code == 303
        assert (await later.get("/auth/me")).json()["id"] == mine["id"]


async def unproven_account(
    email: str, provider: str, who: str, *, name: str | None = None
) -> UserModel:
    """An account an earlier release created through a provider that did not verify the
    address: unproven, with the provider's profile and link."""
    user = UserModel(email=email, name=name)
    await user.insert()
    claims = PROVIDER_USERS[who]
    subject = str(claims["github_id"]) if provider == "github" else claims["sub"]
    await OAuthAccount(
        provider=provider,
        provider_user_id=subject,
        user=user,
        email=claims["email"],
        email_verified=claims["email_verified"],
    ).insert()
    return user


async def test_verified_provider_takes_the_account_back_from_an_unverified_one(
    app, provider_browser, github_at_provider
):
    # An attacker signed in through a provider that does not verify addresses, with the
    # victim's address, back when that created an account with the attacker's profile.
    created = await unproven_account("bob@example.com", "testidp", "bob", name="Bob")
    attacker = await client_for(app, created)
    assert (await attacker.get("/auth/me")).status_code == 200

    # The mailbox owner later signs in with a provider that does verify the address.
    async with fresh_client(app) as owner:
        response = await sign_in(owner, provider_browser, "bob-owner", provider="github")
        assert response.status_code == 303
        mine = (await owner.get("/auth/me")).json()
    assert mine["id"] == str(created.id)
    assert mine["email_verified"] is True
    # The unverified link is gone, only the verified one is left ...
    assert mine["providers"] == ["github"]
    assert [a.provider for a in await OAuthAccount.find_all().to_list()] == ["github"]
    # ... the attacker's session ended, and their profile fields went with it.
    assert (await attacker.get("/auth/me")).status_code == 401
    await attacker.aclose()
    stored = await UserModel.get(created.id)
    assert stored.name == "Robert Owner" and stored.picture is None
    # The attacker's provider account cannot sign in to the account any more.
    async with fresh_client(app) as attacker:
        response = await sign_in(attacker, provider_browser, "bob")
        assert response.status_code == 409
        assert (await attacker.get("/auth/me")).status_code == 401


async def test_refusal_page_does_not_name_the_address(client, provider_browser):
    await UserModel(email="bob@example.com", email_verified_at=utcnow()).insert()
    response = await sign_in(client, provider_browser, "bob")
    assert response.status_code == 409
    assert "bob@example.com" not in response.text


async def test_linking_does_not_undo_a_concurrent_sign_out_everywhere(app, user):
    from vibetuner.auth.signin import OAuthIdentity

    # The request loaded the user; before it links the account, the user signs out
    # everywhere from another device. The link must not bring the old session_version
    # (nor any other stale field) back.
    stale = await UserModel.get(user.id)
    await UserModel.find_one(UserModel.id == user.id).inc({UserModel.session_version: 1})
    await UserModel.find_one(UserModel.id == user.id).set({UserModel.name: "Renamed"})
    identity = OAuthIdentity(
        provider="testidp", provider_user_id="race-1", email="race@example.com", email_verified=True
    )
    outcome = await app_context(app).get(AuthService).oauth_sign_in(identity, {}, stale)
    assert outcome.user.id == user.id
    stored = await UserModel.get(user.id)
    assert stored.session_version == user.session_version + 1
    assert stored.name == "Renamed"
    assert await OAuthAccount.find(OAuthAccount.user.id == user.id).count() == 1


async def test_provider_error_ends_on_a_clear_page(client, provider_browser):
    url = await start(client)
    callback = await authorize(provider_browser, url, "deny")
    assert "error=access_denied" in callback
    response = await client.get(link_path(callback))
    assert response.status_code == 400
    assert "cancelled" in response.text
    assert (await client.get("/auth/me")).status_code == 401


async def test_error_without_a_flow_is_400(client):
    response = await client.get(
        "/auth/oauth/testidp/callback", params={"error": "server_error", "state": "x"}
    )
    assert response.status_code == 400
    assert "refused the sign-in" in response.text
    bare = await client.get("/auth/oauth/testidp/callback")
    assert bare.status_code == 400
    assert "Please start again" in bare.text


async def test_state_mismatch_is_refused(app, client, provider_browser):
    callback = await authorize(provider_browser, await start(client), "alice")
    # Another browser (without the flow in its session) presents the callback.
    async with fresh_client(app) as attacker:
        response = await attacker.get(link_path(callback))
        assert response.status_code == 400
        assert "could not be matched" in response.text
        assert (await attacker.get("/auth/me")).status_code == 401
    # A forged state in the right browser is refused as well.
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    forged = f"/auth/oauth/testidp/callback?code={query['code'][0]}&state=forged"
    assert (await client.get(forged)).status_code == 400
    assert (await client.get("/auth/me")).status_code == 401


async def test_failed_token_exchange_is_400(client, provider_browser):
    callback = await authorize(provider_browser, await start(client), "alice")
    query = parse_qs(urlsplit(callback).query)
    tampered = f"/auth/oauth/testidp/callback?code=not-the-code&state={query['state'][0]}"
    response = await client.get(tampered)
    assert response.status_code == 400
    assert "did not complete the sign-in" in response.text
    assert (await client.get("/auth/me")).status_code == 401


async def test_replayed_callback_is_refused(app, client, provider_browser):
    callback = await authorize(provider_browser, await start(client), "alice")
    assert (await client.get(link_path(callback))).status_code == 303
    await client.post("/auth/logout")
    async with fresh_client(app) as other:
        assert (await other.get(link_path(callback))).status_code == 400


async def test_provider_without_email_is_refused(client, provider_browser):
    response = await sign_in(client, provider_browser, "nomail")
    assert response.status_code == 400
    assert "did not share an email address" in response.text
    assert await UserModel.find_all().count() == 0


async def test_github_uses_the_verified_primary_email(client, provider_browser, github_at_provider):
    url = await start(client, "github")
    assert "code_challenge_method=S256" in url
    response = await client.get(link_path(await authorize(provider_browser, url, "alice")))
    assert response.status_code == 303
    me = (await client.get("/auth/me")).json()
    assert me["email"] == "alice@example.com"
    assert me["email_verified"] is True
    assert me["providers"] == ["github"]
    account = await OAuthAccount.find_one({"provider": "github"})
    assert account.provider_user_id == "1001"


async def test_github_unverified_primary_is_not_linked(
    client, provider_browser, github_at_provider
):
    await UserModel(email="bob@example.com", email_verified_at=utcnow()).insert()
    response = await sign_in(client, provider_browser, "bob", provider="github")
    assert response.status_code == 409
    assert await OAuthAccount.find_all().count() == 0


async def test_login_page_offers_configured_providers_only(client):
    page = await client.get("/auth/login", params={"next": "/after"})
    assert 'href="/auth/oauth/testidp?next=/after"' in page.text
    assert "Test IdP" in page.text
    assert 'data-provider="github"' in page.text
    assert 'data-provider="google"' not in page.text
    assert (await client.get("/auth/oauth/google")).status_code == 404
    assert (await client.get("/auth/oauth/google/callback?code=x&state=y")).status_code == 404
    assert (await client.get("/auth/oauth/nope")).status_code == 404


async def test_missing_credentials_are_logged_once(vibetuner_settings, caplog):
    from vibetuner.testing import default_app

    caplog.set_level(logging.INFO, logger="vibetuner.oauth")
    application = default_app(settings=vibetuner_settings)
    async with application.router.lifespan_context(application):
        async with fresh_client(application) as http:
            for _ in range(3):
                await http.get("/auth/login")
    lines = [r.getMessage() for r in caplog.records if "Google sign-in is off" in r.getMessage()]
    assert len(lines) == 1
    assert "GOOGLE_CLIENT_ID" in lines[0]


async def test_unreachable_provider_gives_a_clear_page(app_with, vibetuner_settings):
    from tests.auth.conftest import free_port

    broken = {
        "name": "other",
        "client_id": "x",
        "client_secret": "y",
        "discovery_url": f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration",
    }
    async with app_with(vibetuner_settings, oidc_providers=[broken]) as client:
        response = await client.get("/auth/oauth/other")
    assert response.status_code == 502
    assert "cannot be reached" in response.text


async def test_google_is_offered_when_configured(app_with, vibetuner_settings):
    async with app_with(
        vibetuner_settings, google_client_id="id.apps.example", google_client_secret="s"
    ) as client:
        page = await client.get("/auth/login")
    assert 'data-provider="google"' in page.text
    assert ">Google<" in page.text


async def test_bad_encryption_key_stops_startup_with_a_clear_error(app_with, vibetuner_settings):
    from vibetuner.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="TOKEN_ENCRYPTION_KEY"):
        async with app_with(vibetuner_settings, token_encryption_key="not-a-fernet-key"):
            pass


async def test_key_rotation_keeps_old_tokens_readable():
    from vibetuner.auth.crypto import TokenCipher

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = TokenCipher([old_key]).encrypt("provider-token")
    rotated = TokenCipher([new_key, old_key])
    assert rotated.decrypt(sealed) == "provider-token"
    assert TokenCipher([new_key]).decrypt(rotated.encrypt("x")) == "x"


async def test_oidc_provider_without_credentials_is_not_offered(app_with, vibetuner_settings):
    blank = {"name": "blank", "client_id": "", "client_secret": "", "discovery_url": "http://x"}
    async with app_with(vibetuner_settings, oidc_providers=[blank]) as client:
        page = await client.get("/auth/login")
        assert 'data-provider="blank"' not in page.text
        assert 'data-provider="testidp"' not in page.text
        assert (await client.get("/auth/oauth/blank")).status_code == 404


async def test_refreshing_tokens_never_writes_back_a_removed_link(app, user):
    from vibetuner.auth.signin import OAuthIdentity

    # A sign-in found the link; before it stores the new tokens, the user unlinks it.
    account = OAuthAccount(provider="testidp", provider_user_id="gone-1", user=user)
    await account.insert()
    await OAuthAccount.find({"_id": account.id}).delete()
    identity = OAuthIdentity(
        provider="testidp", provider_user_id="gone-1", email="gone@example.com"
    )
    refreshed = (
        await app_context(app)
        .get(AuthService)
        ._refresh_account(account, identity, {"access_token": "new-token"})
    )
    assert refreshed is False
    assert await OAuthAccount.find_all().count() == 0
