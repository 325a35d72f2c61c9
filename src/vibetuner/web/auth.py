"""The sign-in feature: email magic links, OAuth / OpenID Connect providers, the account routes.

Pages are Jinja2 templates under ``auth/`` (an app overrides them with its own templates
of the same name). API clients -- requests that do not ask for HTML -- get JSON errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from vibetuner.context import AppContext
from vibetuner.features import ExceptionHandler, Feature

if TYPE_CHECKING:
    from beanie import Document
    from fastapi import APIRouter


class AuthFeature(Feature):
    """Sign-in: ``/auth/login``, magic links, OAuth providers, passkeys, ``/auth/me``,
    sign-out, and the ``/account`` page.

    At startup it builds the sign-in service and the providers from the settings, so a
    bad ``EMAIL_FROM`` or ``TOKEN_ENCRYPTION_KEY`` stops the app with a clear message
    instead of failing the first sign-in.
    """

    name = "auth"

    def models(self) -> Sequence[type[Document]]:
        from vibetuner.models.api_token import ApiToken
        from vibetuner.models.passkey import Passkey, PasskeyChallenge
        from vibetuner.models.two_factor import TwoFactorSecret

        return [Passkey, PasskeyChallenge, TwoFactorSecret, ApiToken]

    def routers(self) -> Sequence[APIRouter]:
        from vibetuner.web import (
            account,
            account_page,
            api_tokens,
            passkeys,
            signin_email,
            signin_oauth,
            two_factor,
        )

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
        from vibetuner.errors import InsufficientScope, InvalidApiToken, SecondFactorRequired
        from vibetuner.web.api_tokens import token_error_handler
        from vibetuner.web.two_factor import second_factor_required_handler

        return {
            SecondFactorRequired: second_factor_required_handler,
            InvalidApiToken: token_error_handler,
            InsufficientScope: token_error_handler,
        }

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        from vibetuner.services.auth import AuthService
        from vibetuner.services.crypto import cipher_from_settings
        from vibetuner.services.passkeys import remove_user_passkeys
        from vibetuner.web.oauth_providers import OAuthProviders

        if context.links is None:
            raise RuntimeError("the sign-in feature needs the app's links (create_app sets them)")
        settings = context.settings
        context.oauth = OAuthProviders(settings, links=context.links)
        from vibetuner.ratelimit.state import limiter_of

        context.auth = AuthService(
            settings,
            context.require_mailer(),
            context.links,
            cipher_from_settings(settings),
            limiter=lambda: limiter_of(context),
        )
        # A deleted account's passkeys go with it.
        context.user_data_cleaners.append(remove_user_passkeys)
        from vibetuner.services.api_tokens import remove_all as remove_api_tokens
        from vibetuner.services.two_factor import remove as remove_two_factor

        # A deleted account's two-factor secret and API tokens go with it.
        context.user_data_cleaners.extend([remove_two_factor, remove_api_tokens])
        try:
            yield
        finally:
            context.user_data_cleaners.remove(remove_user_passkeys)
            context.auth = None
            context.oauth = None
