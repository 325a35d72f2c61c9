"""The sign-in feature: email magic links, OAuth / OpenID Connect providers, the account routes.

Pages are Jinja2 templates under ``auth/`` (an app overrides them with its own templates
of the same name). API clients -- requests that do not ask for HTML -- get JSON errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from vibetuner.auth import (
    account,
    account_page,
    api_tokens,
    passkeys,
    signin_email,
    signin_oauth,
    two_factor,
)
from vibetuner.auth.api_token_store import remove_all as remove_api_tokens
from vibetuner.auth.crypto import cipher_from_settings
from vibetuner.auth.oauth_providers import OAuthProviders
from vibetuner.auth.passkey_store import remove_user_passkeys
from vibetuner.auth.session_auth import current_user
from vibetuner.auth.signin import AuthService
from vibetuner.auth.two_factor_codes import remove as remove_two_factor
from vibetuner.context import AppContext
from vibetuner.errors import InsufficientScope, InvalidApiToken, SecondFactorRequired
from vibetuner.features import ExceptionHandler, Feature
from vibetuner.models.api_token import ApiToken
from vibetuner.models.passkey import Passkey, PasskeyChallenge
from vibetuner.models.two_factor import TwoFactorSecret
from vibetuner.ratelimit.state import limiter_of

if TYPE_CHECKING:
    from beanie import Document
    from fastapi import APIRouter


class AuthFeature(Feature):
    """Sign-in: ``/auth/login``, magic links, OAuth providers, passkeys, two-factor codes,
    ``/auth/me``, sign-out, the ``/account`` page and personal API tokens.

    At startup it builds the sign-in service and the providers from the settings, so a
    bad ``EMAIL_FROM`` or ``TOKEN_ENCRYPTION_KEY`` stops the app with a clear message
    instead of failing the first sign-in.
    """

    name = "auth"

    def models(self) -> Sequence[type[Document]]:
        return [Passkey, PasskeyChallenge, TwoFactorSecret, ApiToken]

    def routers(self) -> Sequence[APIRouter]:
        return [
            signin_email.router,
            signin_oauth.router,
            passkeys.sign_in_router,
            account.router,
            passkeys.account_router,
            account_page.router,
            two_factor.router,
            two_factor.account_router,
            api_tokens.account_router,
        ]

    def exception_handlers(self) -> Mapping[type[Exception] | int, ExceptionHandler]:
        return {
            SecondFactorRequired: two_factor.second_factor_required_handler,
            InvalidApiToken: api_tokens.token_error_handler,
            InsufficientScope: api_tokens.token_error_handler,
        }

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        if context.links is None:
            raise RuntimeError("the sign-in feature needs the app's links (create_app sets them)")
        settings = context.settings
        context.oauth = OAuthProviders(settings, links=context.links)
        context.auth = AuthService(
            settings,
            context.require_mailer(),
            context.links,
            cipher_from_settings(settings),
            limiter=lambda: limiter_of(context),
        )
        context.user_loader = current_user
        # A deleted account's passkeys, two-factor secret and API tokens go with it.
        cleaners = [remove_user_passkeys, remove_two_factor, remove_api_tokens]
        context.user_data_cleaners.extend(cleaners)
        try:
            yield
        finally:
            for cleaner in cleaners:
                context.user_data_cleaners.remove(cleaner)
            context.user_loader = None
            context.auth = None
            context.oauth = None
