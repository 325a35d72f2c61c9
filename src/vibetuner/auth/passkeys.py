"""Passkey routes: signing in with one (``/auth/passkeys``), adding, renaming and removing
them on the account page (``/account/passkeys``).

The ceremonies are JSON requests sent by ``vibetuner-passkeys.js`` (WebAuthn has no
form-only version); renaming and removing are plain forms like the rest of the account
page. None of them is in the OpenAPI schema: they serve this site's pages only.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response

from vibetuner.auth import passkey_store as passkeys
from vibetuner.auth import rate_limit
from vibetuner.auth.account_sections import answer
from vibetuner.auth.fresh_factor import require_fresh_second_factor
from vibetuner.auth.impersonation import leave_view_as, refuse_while_viewing_as
from vibetuner.auth.session_auth import RequireUser, login, this_session
from vibetuner.auth.two_factor import sign_in_redirect
from vibetuner.context import AppContext
from vibetuner.errors import (
    AccountDisabled,
    EmailNotConfirmed,
    PasskeyRefused,
    RateLimitExceeded,
    UploadTooLarge,
)
from vibetuner.i18n import N_
from vibetuner.i18n import gettext as _
from vibetuner.models.user import UserModel
from vibetuner.web.body_limits import body_limit
from vibetuner.web.client_address import client_address
from vibetuner.web.context import Context
from vibetuner.web.flash import flash
from vibetuner.web.forms import read_small_body
from vibetuner.web.pages import problem
from vibetuner.web.redirects import after_sign_in

logger = logging.getLogger("vibetuner.auth")

# The session cookie's random value that binds a challenge to this browser session.
BINDING_KEY = "vt_passkey"
# A registration answer carries an attestation object; an assertion is far smaller.
REGISTER_LIMIT = 64 * 1024

sign_in_router = APIRouter(prefix="/auth/passkeys", tags=["auth"], include_in_schema=False)
account_router = APIRouter(
    prefix="/account/passkeys",
    tags=["account"],
    include_in_schema=False,
    dependencies=[Depends(refuse_while_viewing_as)],
    # Also the rename form, which FastAPI would otherwise parse whatever its size.
    route_class=body_limit(REGISTER_LIMIT),
)


def binding(request: Request) -> str:
    """This browser session's binding value, made on first use."""
    value = request.session.get(BINDING_KEY)
    if not isinstance(value, str) or len(value) < 32:
        value = secrets.token_urlsafe(32)
        request.session[BINDING_KEY] = value
    return value


def _json(text: str) -> Response:
    return Response(text, media_type="application/json", headers={"Cache-Control": "no-store"})


def _error(
    status_code: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """``{"detail", "code"}`` with the message in the reader's language: the page's script
    shows it as it is."""
    detail = _(message, **values) if values else _(message)
    return JSONResponse({"detail": detail, "code": code}, status_code=status_code, headers=headers)


def _unavailable() -> Response:
    return _error(404, "passkeys_unavailable", N_("Passkeys are not offered on this site."))


def _refused(exc: PasskeyRefused) -> Response:
    return _error(400, f"passkey_{exc.reason}", exc.message, values=exc.values)


def _unconfirmed(exc: EmailNotConfirmed) -> Response:
    message = N_(
        "Confirm your email address first: sign in with a link sent to it, then add a passkey."
    )
    return _error(403, exc.code, message)


async def _credential_body(request: Request, limit: int) -> tuple[dict[str, Any], Any] | Response:
    try:
        body = await read_small_body(request, limit)
    except UploadTooLarge as exc:
        return _error(413, exc.code, N_("The request is too large."))
    credential = body.get("credential")
    if not isinstance(credential, dict):
        return _refused(PasskeyRefused("bad_request", passkeys.MALFORMED))
    return body, credential


# --- signing in --------------------------------------------------------------------------


@sign_in_router.post("/options", name="passkey_sign_in_options")
async def sign_in_options(request: Request, context: Context) -> Response:
    """A challenge for signing in with a passkey (the browser's autofill or its dialog)."""
    settings = context.settings
    if not passkeys.available(settings):
        return _unavailable()
    address = client_address(request)
    if address:
        try:
            await rate_limit.enforce(
                "passkey-ip",
                address,
                limit=settings.passkey_rate_per_ip,
                window_seconds=settings.magic_link_rate_window_seconds,
            )
        except RateLimitExceeded as exc:
            return _error(
                429,
                exc.code,
                N_("Too many passkey requests came from your network. Try again in a while."),
                headers={"Retry-After": str(exc.retry_after)},
            )
    return _json(await passkeys.sign_in_options(settings, binding(request)))


@sign_in_router.post("", name="passkey_sign_in", dependencies=[Depends(leave_view_as)])
async def sign_in(request: Request, context: Context) -> Response:
    """Check the browser's passkey answer and sign its user in (a new server-side session).

    JSON body: ``credential`` (the ``PublicKeyCredential`` as JSON) and ``next``. Answers
    ``{"status": "signed_in", "redirect": next}``, or 400 with ``code`` ``passkey_*``.
    """
    settings = context.settings
    if not passkeys.available(settings):
        return _unavailable()
    read = await _credential_body(request, 16 * 1024)
    if isinstance(read, Response):
        return read
    body, credential = read
    try:
        result = await passkeys.authenticate(settings, binding(request), credential)
    except PasskeyRefused as exc:
        return _refused(exc)
    except AccountDisabled as exc:
        return _error(403, exc.code, N_("This account is disabled."))
    next_path = after_sign_in(request, body.get("next"))
    # A user-verifying passkey (PIN or biometrics) is two factors; else the code step follows.
    await login(request, result.user, second_factor=result.user_verified)
    next_path = sign_in_redirect(request, next_path).headers["location"]
    flash(request, _("Signed in with your passkey “%(name)s”.", name=result.passkey.name))
    logger.info(
        "user %s signed in with a passkey (user verified: %s)",
        result.user.id,
        "yes" if result.user_verified else "no",
    )
    return JSONResponse({"status": "signed_in", "redirect": next_path})


# --- the account page --------------------------------------------------------------------


@account_router.post(
    "/options", name="account_passkey_options", dependencies=[Depends(require_fresh_second_factor)]
)
async def registration_options(request: Request, context: Context, user: RequireUser) -> Response:
    """A challenge for adding a passkey to the signed-in user's account."""
    if not passkeys.available(context.settings):
        return _unavailable()
    try:
        options = await passkeys.registration_options(context.settings, user, binding(request))
    except EmailNotConfirmed as exc:
        return _unconfirmed(exc)
    except PasskeyRefused as exc:
        return _refused(exc)
    return _json(options)


@account_router.post("", name="account_passkey_add")
async def add(request: Request, context: Context, user: RequireUser) -> Response:
    """Check the browser's new passkey and keep it, under the name given (JSON ``name``)."""
    if not passkeys.available(context.settings):
        return _unavailable()
    read = await _credential_body(request, REGISTER_LIMIT)
    if isinstance(read, Response):
        return read
    body, credential = read
    from vibetuner.user_agents import browser_name

    # Unnamed: called after the browser it was made in ("Chrome on Linux"), if known.
    default = browser_name(request.headers.get("user-agent"))
    if not default or default == browser_name(""):
        default = "Passkey"
    try:
        passkey = await passkeys.register(
            context.settings, user, binding(request), credential, body.get("name"), default
        )
    except EmailNotConfirmed as exc:
        return _unconfirmed(exc)
    except PasskeyRefused as exc:
        return _refused(exc)
    flash(request, _("Your passkey “%(name)s” was added.", name=passkey.name))
    return JSONResponse(
        {"status": "added", "redirect": str(request.app.url_path_for("account_page"))}
    )


async def _answer(request: Request, context: AppContext, user: UserModel) -> Response:
    return await answer(request, context, user, "passkeys")


def _not_found(request: Request) -> Response:
    return problem(
        request,
        404,
        N_("No such passkey"),
        N_("That passkey is not one of yours, or it was removed already."),
        code="passkey_not_found",
    )


@account_router.post("/{credential_id}/rename", name="account_passkey_rename")
async def rename(
    request: Request,
    context: Context,
    user: RequireUser,
    credential_id: str,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Give one of the user's passkeys another name."""
    if user.id is None or not await passkeys.rename(user.id, credential_id, name):
        return _not_found(request)
    flash(request, _("The passkey was renamed."))
    return await _answer(request, context, user)


def signed_in_recently(request: Request, seconds: int) -> bool:
    """True when this browser's session started (was signed in) at most ``seconds`` ago."""
    session = this_session(request)
    if session is None:
        return False
    started = session.created_at
    started = started if started.tzinfo is not None else started.replace(tzinfo=UTC)
    return datetime.now(UTC) - started <= timedelta(seconds=seconds)


@account_router.post(
    "/{credential_id}/remove",
    name="account_passkey_remove",
    dependencies=[Depends(require_fresh_second_factor)],
)
async def remove(
    request: Request, context: Context, user: RequireUser, credential_id: str
) -> Response:
    """Remove one of the user's passkeys; needs a recent sign-in (``RECENT_SIGN_IN_SECONDS``)."""
    if not signed_in_recently(request, context.settings.recent_sign_in_seconds):
        account = request.app.url_path_for("account_page")
        sign_in = request.app.url_path_for("login_page")
        minutes = max(1, context.settings.recent_sign_in_seconds // 60)
        return problem(
            request,
            403,
            N_("Sign in again first"),
            N_(
                "Removing a passkey needs a sign-in from the last %(minutes)s minutes. "
                "Sign in again, then remove it."
            ),
            code="recent_sign_in_required",
            link=(f"{sign_in}?next={account}", N_("Sign in again")),
            values={"minutes": str(minutes)},
        )
    if user.id is None or not await passkeys.remove(user.id, credential_id):
        return _not_found(request)
    flash(request, _("The passkey was removed; it no longer signs you in."))
    return await _answer(request, context, user)
