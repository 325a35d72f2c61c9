"""Sign-in by email: the login page, asking for a magic link and following it."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from vibetuner.auth.impersonation import leave_view_as
from vibetuner.auth.oauth_providers import OAuthProviders
from vibetuner.auth.passkey_store import available as passkeys_available
from vibetuner.auth.session_auth import current_user, login
from vibetuner.auth.signin import AuthService
from vibetuner.errors import (
    AccountDisabled,
    InvalidEmail,
    MagicLinkRefused,
)
from vibetuner.i18n import N_
from vibetuner.i18n import gettext as _
from vibetuner.web.client_address import client_address
from vibetuner.web.context import Context
from vibetuner.web.forms import read_small_body
from vibetuner.web.identity import wants_html
from vibetuner.web.pages import problem, render
from vibetuner.web.redirects import after_sign_in
from vibetuner.web.responses import HTML, ValidationProblem, documented_problem, redirect

logger = logging.getLogger("vibetuner.auth")

router = APIRouter(prefix="/auth", tags=["auth"])

LINK_REFUSED = {
    "used": (
        N_("This link was already used"),
        N_("Each sign-in link works only once. Ask for a new one."),
    ),
    "expired": (
        N_("This link has expired"),
        N_("Sign-in links expire after a while. Ask for a new one."),
    ),
    "unknown": (
        N_("This link is not valid"),
        N_("The link is not one we sent, or a newer link replaced it. Ask for a new one."),
    ),
}


class MagicLinkSent(BaseModel):
    """``POST /auth/magic-link`` to an API client: the same for every valid address."""

    status: Literal["sent"]
    detail: str


@router.get("/login", response_class=HTMLResponse, summary="Sign-in page")
async def login_page(request: Request, context: Context, next: str | None = None) -> Response:
    """The email form plus one button per configured provider; keeps a safe ``next``."""
    await current_user(request)  # for the page header
    return _login_form(request, context, next=after_sign_in(request, next))


def _login_form(
    request: Request,
    context: Context,
    *,
    next: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    providers = context.get(OAuthProviders).offered()
    return render(
        request,
        "auth/login.html",
        {
            "title": _("Sign in"),
            "providers": providers,
            "next": next,
            "email": email,
            "error": error,
            "passkeys_offered": passkeys_available(context.settings),
        },
        status_code,
    )


# The body is read by hand (form or JSON, with tight limits), so it is described here.
MAGIC_LINK_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["email"],
    "properties": {
        "email": {"type": "string", "format": "email", "maxLength": 320},
        # Untyped on purpose: anything that is not a same-site path is ignored, not refused.
        "next": {"description": "Where to go after signing in (a path on this site)"},
    },
}


@router.post(
    "/magic-link",
    summary="Email a sign-in link",
    response_model=MagicLinkSent,
    responses={
        200: {"content": dict(HTML), "description": "Sent (browsers: a 'check your inbox' page)"},
        400: documented_problem("Malformed form body"),
        413: documented_problem("The form is larger than 16 KiB", html=True),
        422: {
            "model": ValidationProblem,
            "content": dict(HTML),
            "description": "Missing or invalid email address",
        },
        429: documented_problem("Too many links requested; see Retry-After", html=True),
        502: documented_problem("The email could not be sent; no link was created", html=True),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": MAGIC_LINK_FORM},
                "application/json": {"schema": MAGIC_LINK_FORM},
            },
        }
    },
    dependencies=[Depends(leave_view_as)],
)
async def request_magic_link(request: Request, context: Context) -> Response:
    """Issue and send a sign-in link; the answer is the same whether or not an account exists.

    Too many links, an email that cannot be sent and a body too large are raised and
    answered by the error table (429 with ``Retry-After``, 502, 413).
    """
    body = await read_small_body(request)
    raw_email = body.get("email")
    next_path = after_sign_in(request, body.get("next"))
    html = wants_html(request)
    if not isinstance(raw_email, str) or not raw_email.strip():
        return _invalid_email(
            request, context, html, "", N_("Enter your email address."), next_path
        )
    client_ip = client_address(request)  # behind TRUSTED_PROXIES; IPv6 per /64
    try:
        address = await context.get(AuthService).send_magic_link(
            raw_email, next_path=next_path, client_ip=client_ip
        )
    except InvalidEmail as exc:
        # Not an error page: the form again, with the address and what is wrong with it.
        message = N_("That email address is not valid: %(reason)s")
        return _invalid_email(
            request, context, html, raw_email, message, next_path, {"reason": str(exc)}
        )
    if html:
        ttl_minutes = max(1, context.settings.magic_link_ttl_seconds // 60)
        return render(
            request,
            "auth/check_inbox.html",
            {
                "title": _("Check your inbox"),
                "email": address,
                "ttl_minutes": ttl_minutes,
                "next": next_path,
            },
        )
    return JSONResponse(
        {
            "status": "sent",
            "detail": f"If {address} can receive email, a sign-in link is on its way.",
        }
    )


def _invalid_email(
    request: Request,
    context: Context,
    html: bool,
    email: str,
    message: str,
    next_path: str,
    values: dict[str, str] | None = None,
) -> Response:
    if html:
        # Shown back in the form: without control characters (NUL, CR, LF ...).
        shown = "".join(c for c in email[:320] if c.isprintable())
        error = _(message, **values) if values else _(message)
        return _login_form(
            request, context, next=next_path, email=shown, error=error, status_code=422
        )
    message = message % values if values else message
    return JSONResponse(
        {
            "detail": [{"loc": ["body", "email"], "msg": message, "type": "value_error"}],
            "code": InvalidEmail.code,
        },
        status_code=422,
    )


def _link_refused(request: Request, exc: MagicLinkRefused) -> Response:
    title, message = LINK_REFUSED.get(exc.status, LINK_REFUSED["unknown"])
    sign_in = str(request.app.url_path_for("login_page"))
    return problem(
        request,
        400,
        title,
        message,
        code=exc.code,
        html=True,
        link=(sign_in, N_("Get a new sign-in link")),
    )


@router.get(
    "/magic-link/{token}",
    name="magic_link",
    summary="Open a sign-in link: a page that asks to confirm",
    response_class=HTMLResponse,
    responses={
        200: {"content": dict(HTML), "description": "'Sign in as ...?' with a button"},
        400: documented_problem("The link is unknown, used or expired", html=True),
    },
)
async def confirm_magic_link(
    request: Request, context: Context, token: str, next: str | None = None
) -> Response:
    """Show whose account the link signs into; nothing is used up until the button is pressed.

    Mail scanners that open links in advance therefore cannot use them up, and a link
    mailed by someone else shows the account it would sign into.
    """
    try:
        email = await context.get(AuthService).magic_link_email(token)
    except MagicLinkRefused as exc:
        return _link_refused(request, exc)
    return render(
        request,
        "auth/confirm.html",
        {"title": _("Confirm sign-in"), "email": email, "next": after_sign_in(request, next)},
    )


@router.post(
    "/magic-link/{token}",
    name="magic_link_confirm",
    summary="Use a sign-in link (the confirmation button)",
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: redirect("Signed in: sent to `next` (a safe, same-site path)"),
        400: documented_problem("The link is unknown, used or expired", html=True),
        403: documented_problem("The account is disabled, or a cross-site request", html=True),
    },
    dependencies=[Depends(leave_view_as)],
)
async def follow_magic_link(
    request: Request, context: Context, token: str, next: str | None = None
) -> Response:
    """Consume the link (once), sign in (creating the user if new) and redirect to ``next``."""
    try:
        user = await context.get(AuthService).sign_in_with_magic_link(token)
    except MagicLinkRefused as exc:
        return _link_refused(request, exc)
    except AccountDisabled as exc:
        return problem(
            request,
            403,
            N_("Account disabled"),
            N_("This account is disabled."),
            code=exc.code,
            html=True,
        )
    await login(request, user)
    logger.info("user %s signed in with an email link", user.id)
    from vibetuner.auth.two_factor import sign_in_redirect

    return sign_in_redirect(request, after_sign_in(request, next))
