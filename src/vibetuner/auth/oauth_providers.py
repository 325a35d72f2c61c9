"""OAuth / OpenID Connect providers through Authlib's Starlette client.

Built in: ``google`` (OpenID Connect discovery), ``github`` (OAuth 2; the verified
primary email comes from ``/user/emails``) and every provider in ``OIDC_PROVIDERS``.
A provider is offered only when its client id and secret are set. Every flow uses
PKCE (S256) and a state; OpenID Connect flows also send and check a nonce.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from vibetuner.auth.signin import OAuthIdentity
from vibetuner.config import Settings
from vibetuner.errors import OAuthFlowError, OAuthProviderUnreachable
from vibetuner.services.links import LinkBuilder

logger = logging.getLogger("vibetuner.oauth")

GOOGLE_DISCOVERY_URL = "https://accounts.google.com/.well-known/openid-configuration"


@dataclass(frozen=True)
class GitHubEndpoints:
    """Where GitHub's OAuth and API live (GitHub Enterprise uses other hosts)."""

    authorize_url: str = "https://github.com/login/oauth/authorize"
    access_token_url: str = "https://github.com/login/oauth/access_token"
    api_base_url: str = "https://api.github.com/"


@dataclass(frozen=True)
class ProviderInfo:
    """A provider offered on the login page."""

    name: str
    label: str
    kind: str  # "oidc" or "github"


class OAuthProviders:
    """The configured providers of one app, as Authlib clients."""

    def __init__(
        self,
        settings: Settings,
        *,
        links: LinkBuilder,
        github: GitHubEndpoints | None = None,
    ) -> None:
        self.settings = settings
        self.links = links
        self._registry: Any = None
        self.providers: dict[str, ProviderInfo] = {}
        self._register_google(settings)
        self._register_github(settings, github or GitHubEndpoints())
        for entry in settings.oidc_providers:
            if entry.name in self.providers:
                logger.warning("OIDC provider %r ignored: the name is already taken", entry.name)
                continue
            if not _client_secret(entry.client_id, entry.client_secret):
                logger.info(
                    "%s sign-in is off: its client_id or client_secret is empty", entry.name
                )
                continue
            self._register_oidc(
                entry.name,
                entry.label or entry.name.replace("-", " ").replace("_", " ").title(),
                client_id=entry.client_id,
                client_secret=entry.client_secret.get_secret_value(),
                discovery_url=entry.discovery_url,
                scopes=entry.scopes,
            )

    def _register_google(self, settings: Settings) -> None:
        secret = _client_secret(settings.google_client_id, settings.google_client_secret)
        if not secret:
            logger.info(
                "Google sign-in is off: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET to offer it"
            )
            return
        self._register_oidc(
            "google",
            "Google",
            client_id=settings.google_client_id or "",
            client_secret=secret,
            discovery_url=GOOGLE_DISCOVERY_URL,
            scopes="openid email profile",
        )

    def _register_github(self, settings: Settings, endpoints: GitHubEndpoints) -> None:
        secret = _client_secret(settings.github_client_id, settings.github_client_secret)
        if not secret:
            logger.info(
                "GitHub sign-in is off: set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET to offer it"
            )
            return
        self.registry.register(
            "github",
            client_id=settings.github_client_id,
            client_secret=secret,
            authorize_url=endpoints.authorize_url,
            access_token_url=endpoints.access_token_url,
            api_base_url=endpoints.api_base_url,
            client_kwargs={"scope": "read:user user:email", "code_challenge_method": "S256"},
        )
        self.providers["github"] = ProviderInfo("github", "GitHub", "github")

    def _register_oidc(
        self,
        name: str,
        label: str,
        *,
        client_id: str,
        client_secret: str,
        discovery_url: str,
        scopes: str,
    ) -> None:
        if "openid" not in scopes.split():
            scopes = f"openid {scopes}"
        self.registry.register(
            name,
            client_id=client_id,
            client_secret=client_secret,
            server_metadata_url=discovery_url,
            client_kwargs={"scope": scopes, "code_challenge_method": "S256"},
        )
        self.providers[name] = ProviderInfo(name, label, "oidc")

    # --- flows ---------------------------------------------------------------------------

    @property
    def registry(self) -> Any:
        """Authlib's client registry, loaded on first use so apps without providers skip it."""
        if self._registry is None:
            self._registry = authlib_client().OAuth()
        return self._registry

    def offered(self) -> list[ProviderInfo]:
        """The providers to show on the login page, in registration order."""
        return list(self.providers.values())

    def callback_url(self, name: str) -> str:
        """The redirect URI registered at the provider: ``BASE_URL/auth/oauth/<name>/callback``."""
        return self.links.url("oauth_callback", provider=name)

    async def start(self, request: Request, name: str) -> Response:
        """The redirect to the provider's authorization page (state, PKCE, nonce in the session)."""
        import httpx
        from authlib.common.errors import AuthlibBaseError

        client = self.registry.create_client(name)
        try:
            redirect: Response = await client.authorize_redirect(request, self.callback_url(name))
            return redirect
        except (httpx.HTTPError, AuthlibBaseError, ValueError, KeyError, RuntimeError) as exc:
            logger.warning("%s sign-in could not start: %s", name, type(exc).__name__)
            raise OAuthProviderUnreachable(
                f"{self.providers[name].label} cannot be reached right now. Try again in a moment."
            ) from None

    async def finish(self, request: Request, name: str) -> tuple[OAuthIdentity, dict[str, Any]]:
        """Check the callback, exchange the code and return who signed in plus the token."""
        label = self.providers[name].label
        error = request.query_params.get("error")
        if error:
            logger.info("%s sign-in ended by the provider: %s", name, error[:64])
            if error == "access_denied":
                raise OAuthFlowError(f"Sign-in with {label} was cancelled.")
            raise OAuthFlowError(f"{label} refused the sign-in ({error[:64]}).")
        client = self.registry.create_client(name)
        try:
            token = await client.authorize_access_token(request)
            if self.providers[name].kind == "github":
                identity = await self._github_identity(client, token)
            else:
                identity = await self._oidc_identity(client, name, token)
        except authlib_client().OAuthError as exc:
            logger.info("%s sign-in failed: %s", name, exc.error)
            if exc.error == "mismatching_state":
                raise OAuthFlowError(
                    f"The sign-in with {label} could not be matched to this browser (it expired or "
                    "was started elsewhere). Please start again."
                ) from None
            raise OAuthFlowError(f"{label} did not complete the sign-in ({exc.error}).") from None
        except Exception as exc:  # token exchange, id_token checks, malformed answers
            if not _provider_failure(exc):
                raise
            logger.warning("%s sign-in failed: %s", name, type(exc).__name__)
            raise OAuthFlowError(
                f"{label} did not complete the sign-in. Please try again."
            ) from None
        return identity, token

    async def _oidc_identity(self, client: Any, name: str, token: dict[str, Any]) -> OAuthIdentity:
        claims: dict[str, Any] = dict(token.get("userinfo") or {})
        if not claims.get("sub"):
            raise ValueError("the provider returned no id_token")
        if "email" not in claims:
            # Some providers put the email only in the userinfo answer.
            extra = await client.userinfo(token=token)
            if extra.get("sub") == claims["sub"]:
                claims = {**dict(extra), **claims}
        return OAuthIdentity(
            provider=name,
            provider_user_id=str(claims["sub"]),
            email=claims.get("email") or None,
            email_verified=_truthy(claims.get("email_verified")),
            name=claims.get("name") or None,
            picture=claims.get("picture") or None,
        )

    async def _github_identity(self, client: Any, token: dict[str, Any]) -> OAuthIdentity:
        profile_response = await client.get("user", token=token)
        profile_response.raise_for_status()
        profile = profile_response.json()
        emails_response = await client.get("user/emails", token=token)
        emails_response.raise_for_status()
        email, verified = None, False
        for entry in emails_response.json():
            if isinstance(entry, dict) and entry.get("primary"):
                email, verified = entry.get("email"), _truthy(entry.get("verified"))
                break
        return OAuthIdentity(
            provider="github",
            provider_user_id=str(profile["id"]),
            email=email,
            email_verified=verified,
            name=profile.get("name") or profile.get("login"),
            picture=profile.get("avatar_url"),
        )


def _client_secret(client_id: str | None, secret: SecretStr | None) -> str:
    """The client secret when both halves of a provider's credentials are set, else ``""``."""
    value = secret.get_secret_value() if secret is not None else ""
    return value if client_id and value else ""


def _truthy(value: Any) -> bool:
    # Some providers send "true" as a string.
    return value is True or (isinstance(value, str) and value.lower() == "true")


def authlib_client() -> Any:
    """``authlib.integrations.starlette_client``, imported quietly on first use.

    Authlib warns on import that its httpx client moves to httpx2; nothing a vibetuner
    user can act on. ``authlib.deprecate`` installs an "always" filter when imported, so
    it is imported first and our filter goes on top of it.
    """
    with warnings.catch_warnings():
        import authlib.deprecate

        warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
        import authlib.integrations.starlette_client as client
    return client


def _provider_failure(exc: Exception) -> bool:
    import httpx
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError

    return isinstance(
        exc, httpx.HTTPError | AuthlibBaseError | JoseError | ValueError | KeyError | TypeError
    )
