"""Sign-in with OAuth / OpenID Connect providers: the redirect out and the callback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from vibetuner.auth.fresh_factor import require_fresh_second_factor
from vibetuner.auth.impersonation import leave_view_as
from vibetuner.auth.oauth_providers import OAuthProviders
from vibetuner.auth.session_auth import CurrentUser, login
from vibetuner.auth.signin import AuthService
from vibetuner.context import AppContext
from vibetuner.errors import (
    AccountDisabled,
    OAuthFlowError,
    OAuthProviderUnreachable,
    OAuthSignInRefused,
)
from vibetuner.i18n import N_
from vibetuner.web.context import Context
from vibetuner.web.pages import problem
from vibetuner.web.redirects import after_sign_in
from vibetuner.web.responses import documented_problem, redirect

logger = logging.getLogger("vibetuner.auth")

router = APIRouter(prefix="/auth", tags=["auth"])

NEXT_SESSION_KEY = "auth_next"

OAUTH_FAILED: dict[int | str, dict[str, Any]] = {
    400: documented_problem("The provider refused or the answer did not check out", html=True),
    404: documented_problem("No such provider is configured", html=True),
    502: documented_problem("The provider could not be reached", html=True),
}


def _offered(context: AppContext, provider: str) -> bool:
    return provider in context.get(OAuthProviders).providers


def _unknown_provider(request: Request) -> Response:
    return problem(
        request,
        404,
        N_("Unknown sign-in provider"),
        N_("This site does not offer sign-in with that provider."),
        code="unknown_provider",
        html=True,
    )


def _flow_failed(request: Request, exc: OAuthFlowError) -> Response:
    status_code = 502 if isinstance(exc, OAuthProviderUnreachable) else 400
    return problem(request, status_code, N_("Sign-in failed"), str(exc), code=exc.code, html=True)


@router.get(
    "/oauth/{provider}",
    summary="Start signing in with a provider",
    response_class=RedirectResponse,
    status_code=302,
    responses={302: redirect("To the provider's authorization page"), **OAUTH_FAILED},
    # Linking a provider while signed in changes how the account signs in.
    dependencies=[Depends(leave_view_as), Depends(require_fresh_second_factor)],
)
async def oauth_start(
    request: Request, context: Context, provider: str, next: str | None = None
) -> Response:
    """Redirect to the provider's authorization page."""
    if not _offered(context, provider):
        return _unknown_provider(request)
    request.session[NEXT_SESSION_KEY] = after_sign_in(request, next)
    try:
        redirect: Response = await context.get(OAuthProviders).start(request, provider)
        return redirect
    except OAuthFlowError as exc:
        return _flow_failed(request, exc)


@router.get(
    "/oauth/{provider}/callback",
    name="oauth_callback",
    summary="Finish signing in with a provider",
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: redirect("Signed in: sent to the page asked for at the start"),
        **OAUTH_FAILED,
        403: documented_problem("The account is disabled", html=True),
        409: documented_problem(
            "The identity cannot sign in here: the provider does not confirm the address, "
            "or the account's address is not confirmed yet",
            html=True,
        ),
    },
    # Before ``signed_in`` is read: an identity is never linked to a viewed user.
    dependencies=[Depends(leave_view_as)],
)
async def oauth_callback(
    request: Request, context: Context, signed_in: CurrentUser, provider: str
) -> Response:
    """Check the provider's answer, apply the account rules, sign in and redirect."""
    if not _offered(context, provider):
        return _unknown_provider(request)
    try:
        identity, token = await context.get(OAuthProviders).finish(request, provider)
    except OAuthFlowError as exc:
        return _flow_failed(request, exc)
    try:
        outcome = await context.get(AuthService).oauth_sign_in(identity, token, signed_in)
    except OAuthSignInRefused as exc:
        status_code = 400 if exc.reason in ("no_email", "bad_email") else 409
        return problem(
            request,
            status_code,
            N_("Sign-in refused"),
            exc.message,
            code=exc.code,
            html=True,
            values=exc.values,
        )
    except AccountDisabled as exc:
        return problem(
            request,
            403,
            N_("Account disabled"),
            N_("This account is disabled."),
            code=exc.code,
            html=True,
        )
    target = after_sign_in(request, request.session.pop(NEXT_SESSION_KEY, None))
    await login(request, outcome.user)
    logger.info("user %s signed in with %s (%s)", outcome.user.id, provider, outcome.action)
    from vibetuner.auth.two_factor import sign_in_redirect

    return sign_in_redirect(request, target)
