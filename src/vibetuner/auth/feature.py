"""The sign-in feature: email magic links, OAuth / OpenID Connect providers, the account routes.

Pages are Jinja2 templates under ``auth/`` (an app overrides them with its own templates
of the same name). API clients -- requests that do not ask for HTML -- get JSON errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from vibetuner.auth import account, account_page, signin_email, signin_oauth
from vibetuner.auth.crypto import cipher_from_settings
from vibetuner.auth.oauth_providers import OAuthProviders
from vibetuner.auth.session_auth import current_user
from vibetuner.auth.signin import AuthService
from vibetuner.context import AppContext
from vibetuner.features import Feature

if TYPE_CHECKING:
    from fastapi import APIRouter


class AuthFeature(Feature):
    """Sign-in: ``/auth/login``, magic links, OAuth providers, ``/auth/me``, sign-out,
    and the ``/account`` page.

    At startup it builds the sign-in service and the providers from the settings, so a
    bad ``EMAIL_FROM`` or ``TOKEN_ENCRYPTION_KEY`` stops the app with a clear message
    instead of failing the first sign-in.
    """

    name = "auth"

    def routers(self) -> Sequence[APIRouter]:

        return [signin_email.router, signin_oauth.router, account.router, account_page.router]

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:

        if context.links is None:
            raise RuntimeError("the sign-in feature needs the app's links (create_app sets them)")
        settings = context.settings
        context.oauth = OAuthProviders(settings, links=context.links)
        context.auth = AuthService(
            settings, context.require_mailer(), context.links, cipher_from_settings(settings)
        )
        context.user_loader = current_user
        try:
            yield
        finally:
            context.user_loader = None
            context.auth = None
            context.oauth = None
