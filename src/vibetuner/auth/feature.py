"""The sign-in feature: email magic links, OAuth / OpenID Connect providers, the account routes.

Pages are Jinja2 templates under ``auth/`` (an app overrides them with its own templates
of the same name). API clients -- requests that do not ask for HTML -- get JSON errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware

from vibetuner import errors
from vibetuner.auth import account, account_page, impersonation, signin_email, signin_oauth
from vibetuner.auth.crypto import cipher_from_settings
from vibetuner.auth.oauth_providers import OAuthProviders
from vibetuner.auth.session_auth import current_user
from vibetuner.auth.signin import AuthService
from vibetuner.context import AppContext
from vibetuner.features import ErrorAnswer, Feature, SignIn
from vibetuner.i18n import N_
from vibetuner.models import (
    Blob,
    EmailVerificationToken,
    OAuthAccount,
    RateLimitCounter,
    UserModel,
    UserSession,
)

if TYPE_CHECKING:
    from beanie import Document
    from fastapi import APIRouter


class AuthFeature(Feature):
    """Sign-in: ``/auth/login``, magic links, OAuth providers, ``/auth/me``, sign-out,
    and the ``/account`` page.

    At startup it builds the sign-in service and the providers from the settings, so a
    bad ``EMAIL_FROM`` or ``TOKEN_ENCRYPTION_KEY`` stops the app with a clear message
    instead of failing the first sign-in.
    """

    name = "auth"

    def errors(self) -> Mapping[type[errors.VibetunerError], ErrorAnswer]:
        return {
            errors.InvalidEmail: ErrorAnswer(422, N_("Invalid email address")),
            errors.MagicLinkRefused: ErrorAnswer(400, N_("This link cannot be used")),
            errors.NotSignedIn: ErrorAnswer(401, N_("Not signed in")),
            errors.AccountDisabled: ErrorAnswer(403, N_("Account disabled")),
            errors.OAuthSignInRefused: ErrorAnswer(409, N_("Sign-in refused")),
            errors.EmailNotConfirmed: ErrorAnswer(403, N_("Confirm your email address first")),
            errors.OAuthProviderUnreachable: ErrorAnswer(502, N_("Sign-in failed")),
            errors.OAuthFlowError: ErrorAnswer(400, N_("Sign-in failed")),
            errors.LastSignInMethod: ErrorAnswer(409, N_("Cannot remove the last way to sign in")),
            errors.CannotViewAs: ErrorAnswer(409, N_("Conflict")),
            errors.ViewAsRefused: ErrorAnswer(403, N_("Forbidden")),
        }

    def models(self) -> Sequence[type[Document]]:
        # Blob too: deleting an account removes the user's files (and picture).
        return [
            UserModel,
            OAuthAccount,
            EmailVerificationToken,
            UserSession,
            RateLimitCounter,
            Blob,
        ]

    def routers(self) -> Sequence[APIRouter]:
        return [
            signin_email.router,
            signin_oauth.router,
            account.router,
            account_page.router,
            impersonation.router,
        ]

    def middleware(self) -> Sequence[Middleware]:
        return [Middleware(impersonation.ViewAsAuditMiddleware)]

    def template_globals(self) -> Mapping[str, Any]:
        # viewing_as(): the viewed user's email while an admin views the app as them.
        return impersonation.template_globals()

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        if context.links is None:
            raise RuntimeError("the sign-in feature needs the app's links (create_app sets them)")
        settings = context.settings
        context.provide(OAuthProviders(settings, links=context.links))
        context.provide(
            AuthService(
                settings, context.require_mailer(), context.links, cipher_from_settings(settings)
            )
        )
        context.provide(
            SignIn(
                login_route="login_page", sign_out_route="sign_out", account_route="account_page"
            )
        )
        context.user_loader = current_user
        try:
            yield
        finally:
            context.user_loader = None
            context.withdraw(SignIn)
            context.withdraw(AuthService)
            context.withdraw(OAuthProviders)
