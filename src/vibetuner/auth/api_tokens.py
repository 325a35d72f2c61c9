"""Personal API tokens on the web: ``require_scope`` for API routes, and the account page's
section where users make, see and revoke them.

An API route authenticates with ``Depends(require_scope("notes:write"))``: the request
must carry ``Authorization: Bearer <token>`` with a live token whose scopes cover the
one named. Such requests arrive without their cookies (:mod:`vibetuner.web.bearer`), so
the CSRF check does not concern them and a browser's session never mixes in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vibetuner.auth import api_token_store as api_tokens
from vibetuner.auth.account_sections import show_section
from vibetuner.auth.fresh_factor import require_fresh_second_factor
from vibetuner.auth.impersonation import refuse_while_viewing_as
from vibetuner.auth.session_auth import RequireUser
from vibetuner.errors import EmailNotConfirmed, InsufficientScope, InvalidApiToken
from vibetuner.i18n import N_
from vibetuner.i18n import gettext as _
from vibetuner.models.user import UserModel
from vibetuner.request_id import set_user_id
from vibetuner.web.client_address import client_address
from vibetuner.web.context import Context, get_context
from vibetuner.web.flash import flash
from vibetuner.web.htmx import is_htmx
from vibetuner.web.pages import problem

SECTION = "api_tokens"
# The lifetimes offered on the account page, in days (up to API_TOKEN_MAX_DAYS).
# Where require_scope keeps the token it checked, for the route and the logs.
SCOPE_TOKEN = "vibetuner.api_token"

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="API token",
    description="A personal API token from the account page: `Authorization: Bearer vt_...`",
)

account_router = APIRouter(prefix="/account/api-tokens", tags=["account"], include_in_schema=False)


def require_scope(scope: str) -> Callable[..., Awaitable[UserModel]]:
    """A dependency: the user of the request's API token, when the token covers ``scope``.

    401 (``invalid_token``) without a live token, 403 (``insufficient_scope``) when its
    scopes do not cover ``scope``, 429 past ``API_TOKEN_RATE_PER_MINUTE``. The API docs
    show the route with the bearer scheme.
    """

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> UserModel:
        if credentials is None:
            raise InvalidApiToken("send a personal API token: Authorization: Bearer <token>")
        record, user = await api_tokens.authenticate(
            credentials.credentials,
            get_context(request).settings,
            client_address=client_address(request),
        )
        api_tokens.check_scope(record, scope)
        request.scope[SCOPE_TOKEN] = record
        set_user_id(user.id)  # for this request's log lines
        return user

    return dependency


async def token_error_handler(request: Request, exc: Exception) -> Response:
    """``invalid_token`` (401) and ``insufficient_scope`` (403), with ``WWW-Authenticate``."""
    if isinstance(exc, InsufficientScope):
        status, error = 403, "insufficient_scope"
    else:
        status, error = 401, "invalid_token"
    return JSONResponse(
        {"detail": str(exc), "code": error},
        status_code=status,
        headers={"WWW-Authenticate": f'Bearer error="{error}"'},
    )


# --- the account page's section ------------------------------------------------------------


GUARDS = [Depends(refuse_while_viewing_as)]


@account_router.post(
    "", name="api_token_create", dependencies=[*GUARDS, Depends(require_fresh_second_factor)]
)
async def create_token(
    request: Request,
    context: Context,
    user: RequireUser,
    name: Annotated[str, Form(max_length=100)] = "",
    scopes: Annotated[list[str] | None, Form(max_length=40)] = None,
    days: Annotated[int, Form(ge=1, le=3650)] = 90,
) -> Response:
    """Make a token; the answer shows it this once (only its hash is kept)."""
    if user.email_verified_at is None:
        raise EmailNotConfirmed("confirm your email address before you make API tokens")
    try:
        made = await api_tokens.create(user, name, scopes or [], days, context.settings)
    except ValueError as exc:
        return problem(
            request,
            422,
            N_("Token not made"),
            N_("Give the token a name, one or more scopes and a lifetime: %(reason)s."),
            code="invalid_api_token_form",
            values={"reason": str(exc)},
            link=("/account#api-tokens", N_("Back to your account")),
        )
    flash(request, _("Copy the token now: it is not shown again."))
    return await show_section(request, context, user, SECTION, new_api_token=made.secret)


@account_router.post("/{public_id}/revoke", name="api_token_revoke", dependencies=GUARDS)
async def revoke_token(
    request: Request, context: Context, user: RequireUser, public_id: str
) -> Response:
    """Revoke a token: the next request with it is refused."""
    if not await api_tokens.revoke(user.id, public_id):
        return problem(
            request,
            404,
            N_("No such token"),
            N_("That token was already revoked."),
            code="api_token_not_found",
            link=("/account#api-tokens", N_("Back to your account")),
        )
    flash(request, _("The token was revoked."))
    if is_htmx(request):
        return await show_section(request, context, user, SECTION)
    return RedirectResponse(
        str(request.app.url_path_for("account_page")) + "#api-tokens", status_code=303
    )
