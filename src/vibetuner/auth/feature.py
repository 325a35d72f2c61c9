"""The sign-in feature: email magic links, OAuth / OpenID Connect providers, passkeys,
two-factor codes, personal API tokens and the account routes.

Pages are Jinja2 templates under ``auth/`` (an app overrides them with its own templates
of the same name). API clients -- requests that do not ask for HTML -- get JSON errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware

from vibetuner import errors
from vibetuner.auth import (
    account,
    account_page,
    api_tokens,
    impersonation,
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
from vibetuner.features import ErrorAnswer, ExceptionHandler, Feature, SignIn
from vibetuner.i18n import N_
from vibetuner.models import (
    Blob,
    EmailVerificationToken,
    OAuthAccount,
    RateLimitCounter,
    UserModel,
    UserSession,
)
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
            errors.PasskeyRefused: ErrorAnswer(400, N_("Passkey refused")),
            errors.InvalidApiToken: ErrorAnswer(401, N_("Not signed in")),
            errors.InsufficientScope: ErrorAnswer(403, N_("Forbidden")),
            errors.TwoFactorCodeRefused: ErrorAnswer(422, N_("Code not accepted")),
            errors.TwoFactorAlreadyOn: ErrorAnswer(409, N_("Conflict")),
            errors.SecondFactorRequired: ErrorAnswer(403, N_("Confirm it is you")),
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
            Passkey,
            PasskeyChallenge,
            TwoFactorSecret,
            ApiToken,
        ]

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
            impersonation.router,
        ]

    def middleware(self) -> Sequence[Middleware]:
        return [Middleware(impersonation.ViewAsAuditMiddleware)]

    def template_globals(self) -> Mapping[str, Any]:
        # viewing_as(): the viewed user's email while an admin views the app as them.
        return impersonation.template_globals()

    def exception_handlers(self) -> Mapping[type[Exception] | int, ExceptionHandler]:
        # These answer with more than the table gives: the way to the code step, and the
        # WWW-Authenticate header of a refused bearer token.
        return {
            errors.SecondFactorRequired: two_factor.second_factor_required_handler,
            errors.InvalidApiToken: api_tokens.token_error_handler,
            errors.InsufficientScope: api_tokens.token_error_handler,
        }

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        # A job worker has no web app (no links to the sign-in pages): nobody signs in
        # there, so the sign-in services are the web app's only.
        links = context.links
        if links is not None:
            settings = context.settings
            context.provide(OAuthProviders(settings, links=links))
            context.provide(
                AuthService(
                    settings,
                    context.require_mailer(),
                    links,
                    cipher_from_settings(settings),
                    limiter=lambda: limiter_of(context),
                )
            )
            context.provide(
                SignIn(
                    login_route="login_page",
                    sign_out_route="sign_out",
                    account_route="account_page",
                )
            )
            context.user_loader = current_user
        # A deleted account's passkeys, two-factor secret and API tokens go with it, in a
        # job worker too (an account deleted in a job).
        cleaners = [remove_user_passkeys, remove_two_factor, remove_api_tokens]
        context.user_data_cleaners.extend(cleaners)
        try:
            yield
        finally:
            for cleaner in cleaners:
                context.user_data_cleaners.remove(cleaner)
            if links is not None:
                context.user_loader = None
                context.withdraw(SignIn)
                context.withdraw(AuthService)
                context.withdraw(OAuthProviders)
