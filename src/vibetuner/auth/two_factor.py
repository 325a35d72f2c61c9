"""Two-factor codes on the web: the sign-in's second step, the account page's section,
and the checks that ask for a recent second factor.

After the first factor (an email link, a provider) a user with two-factor on holds a
half session (``PENDING_TOKEN_KEY`` in the cookie, ``pending_second_factor`` on the
server) that no signed-in route accepts; ``/auth/two-factor`` takes the code and swaps
it for a full session. The same page confirms a signed-in user's code before a
sensitive action (:func:`require_fresh_second_factor`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from vibetuner.auth import sessions
from vibetuner.auth import two_factor_codes as two_factor
from vibetuner.auth.account_sections import show_section
from vibetuner.auth.fresh_factor import (
    two_factor_missing,
)
from vibetuner.auth.impersonation import refuse_while_viewing_as
from vibetuner.auth.session_auth import (
    PENDING_TOKEN_KEY,
    RequireUser,
    current_session,
    login,
    this_session,
)
from vibetuner.context import AppContext
from vibetuner.errors import (
    EmailNotConfirmed,
    NotSignedIn,
    RateLimitExceeded,
    SecondFactorRequired,
    TwoFactorAlreadyOn,
    TwoFactorCodeRefused,
)
from vibetuner.i18n import N_
from vibetuner.i18n import gettext as _
from vibetuner.models.mixins import utcnow
from vibetuner.models.session import UserSession
from vibetuner.models.user import UserModel
from vibetuner.web.client_address import client_address
from vibetuner.web.context import Context, get_context
from vibetuner.web.flash import flash
from vibetuner.web.htmx import hx_redirect, is_htmx
from vibetuner.web.identity import login_path, wants_html
from vibetuner.web.pages import problem, render
from vibetuner.web.redirects import after_sign_in, safe_next

logger = logging.getLogger("vibetuner.auth")

STEP_PAGE = "auth/two_factor.html"
STEP_ROUTE = "two_factor_page"
SECTION = "two_factor"
CODE_FIELD = Annotated[str, Form(max_length=64)]

router = APIRouter(prefix="/auth", tags=["auth"], include_in_schema=False)
account_router = APIRouter(prefix="/account/two-factor", tags=["account"], include_in_schema=False)


# --- the half session of a sign-in ---------------------------------------------------------


async def pending_sign_in(request: Request) -> tuple[UserSession, UserModel] | None:
    """The half session this browser holds and its user, or None.

    None (and the cookie forgets it) once it expired (``TWO_FACTOR_STEP_SECONDS``), its
    user is gone or deactivated, or the user signed out everywhere since.
    """
    if "session" not in request.scope:
        return None
    token = request.session.get(PENDING_TOKEN_KEY)
    if not isinstance(token, str) or not token:
        return None
    key = sessions.hash_session_token(token)
    record = await UserSession.find_one({"_id": key, "pending_second_factor": True})
    user = await UserModel.load(record.user_id) if record is not None else None
    alive = (
        record is not None
        and user is not None
        and user.is_active
        and user.session_version == record.session_version
        and _aware(record.expires_at) > utcnow()
    )
    if not alive or record is None or user is None:
        await sessions.end_session(token)
        request.session.pop(PENDING_TOKEN_KEY, None)
        return None
    return record, user


def waiting_for_code(request: Request) -> bool:
    """True when this browser's last sign-in waits for its two-factor code."""
    return "session" in request.scope and PENDING_TOKEN_KEY in request.session


def sign_in_redirect(request: Request, target: str) -> RedirectResponse:
    """Where a sign-in goes after :func:`login`: the code step when it waits for one."""
    if waiting_for_code(request):
        step = str(request.app.url_path_for(STEP_ROUTE))
        return RedirectResponse(f"{step}?next={quote(target, safe='')}", status_code=303)
    return RedirectResponse(target, status_code=303)


# --- recent second factor ------------------------------------------------------------------


def require_role(role: str) -> Callable[..., Awaitable[UserModel]]:
    """A dependency: the signed-in user holding ``role``, else 403.

    A role named in ``TWO_FACTOR_REQUIRED_ROLES`` also needs two-factor on and a session
    that gave a code (browsers are sent to set it up or to give the code).
    """

    async def dependency(request: Request, user: RequireUser) -> UserModel:
        from fastapi import HTTPException

        if not user.has_role(role):
            raise HTTPException(status_code=403, detail="You do not have access to this page.")
        settings = get_context(request).settings
        found = await two_factor_missing(user, this_session(request), role, settings)
        if found is not None:
            raise found
        return user

    return dependency


def _back_to(request: Request) -> str:
    """Where to come back after giving the code: this page, or the page that posted."""
    if request.method in ("GET", "HEAD"):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = request.headers.get("referer", "")
    try:
        parts = urlsplit(referer)
    except ValueError:
        parts = urlsplit("")
    own_host = parts.netloc.lower() == request.headers.get("host", "").lower()
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next(path, "/account") if own_host else "/account"


def _app_path(request: Request, name: str) -> str:
    """The path of the app's route ``name``, also from inside a mounted app (the admin)."""
    from starlette.routing import NoMatchFound

    try:
        return str(request.app.url_path_for(name))
    except NoMatchFound:
        links = get_context(request).links
        if links is None:
            raise
        return urlsplit(links.url(name)).path


async def second_factor_required_handler(request: Request, exc: Exception) -> Response:
    """Answer :class:`SecondFactorRequired`: browsers to the code page (or to turn two-factor
    on), API clients 403 JSON."""
    assert isinstance(exc, SecondFactorRequired)
    if not (wants_html(request) or is_htmx(request)):
        return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=403)
    if exc.setup:
        flash(request, _("Your role needs two-factor codes: turn them on below."), "info")
        target = _app_path(request, "account_page") + "#two-factor"
    else:
        flash(request, _("Confirm it is you with a code from your authenticator app."), "info")
        step = _app_path(request, STEP_ROUTE)
        target = f"{step}?next={quote(_back_to(request), safe='')}"
    return hx_redirect(target) if is_htmx(request) else RedirectResponse(target, status_code=303)


# --- the code page -------------------------------------------------------------------------


def _step_page(
    request: Request,
    *,
    mode: str,
    next_path: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    title = _("Two-factor code") if mode == "sign_in" else _("Confirm it is you")
    return render(
        request,
        STEP_PAGE,
        {"title": title, "mode": mode, "next": next_path, "error": error},
        status_code,
    )


@router.get("/two-factor", name=STEP_ROUTE)
async def two_factor_page(request: Request, next: str | None = None) -> Response:
    """Ask for the code: the second step of a sign-in, or a confirmation while signed in."""
    next_path = after_sign_in(request, next)
    if await pending_sign_in(request) is not None:
        return _step_page(request, mode="sign_in", next_path=next_path)
    active = await current_session(request)
    if active is not None and await two_factor.enabled(active.user.id):
        return _step_page(request, mode="confirm", next_path=next_path)
    if active is not None:  # nothing to confirm
        return RedirectResponse(next_path, status_code=303)
    flash(request, _("Sign in again: the sign-in waited too long for its code."), "info")
    return RedirectResponse(login_path(request) or "/", status_code=303)


@router.post("/two-factor", name="two_factor_submit")
async def submit_two_factor(
    request: Request, code: CODE_FIELD = "", next: Annotated[str, Form(max_length=2048)] = ""
) -> Response:
    """Check the code: finish the sign-in, or mark this session's second factor as fresh."""
    settings = get_context(request).settings
    next_path = after_sign_in(request, next)
    pending = await pending_sign_in(request)
    active = None if pending is not None else await current_session(request)
    if pending is None and (active is None or not await two_factor.enabled(active.user.id)):
        if active is not None:
            return RedirectResponse(next_path, status_code=303)
        if wants_html(request):
            flash(request, _("Sign in again: the sign-in waited too long for its code."), "info")
            return RedirectResponse(login_path(request) or "/", status_code=303)
        raise NotSignedIn("no sign-in is waiting for a code")
    user = pending[1] if pending is not None else active.user  # type: ignore[union-attr]
    mode = "sign_in" if pending is not None else "confirm"
    assert user.id is not None
    try:
        kind = await two_factor.verify(user.id, code, settings, client_ip=client_address(request))
    except RateLimitExceeded as exc:
        return _too_many(request, exc)
    except TwoFactorCodeRefused as exc:
        logger.info("two-factor code refused for user %s: %s", user.id, exc)
        if wants_html(request):
            error = _(
                "That code did not work. Type the code your app shows now, or a recovery code."
            )
            return _step_page(request, mode=mode, next_path=next_path, error=error, status_code=422)
        return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=422)
    if pending is not None:
        await sessions.end_session(request.session.pop(PENDING_TOKEN_KEY))
        await login(request, user, second_factor=True)
        logger.info("user %s gave the second factor (%s)", user.id, kind)
    else:
        await _mark_fresh(request)
    if kind == "recovery":
        left = await two_factor.recovery_codes_left(user.id)
        flash(
            request,
            _(
                "You used a recovery code; %(count)s left. Make new ones on your account page.",
                count=left,
            ),
            "info",
        )
    return RedirectResponse(next_path, status_code=303)


def _too_many(request: Request, exc: RateLimitExceeded) -> Response:
    minutes = max(1, (exc.retry_after + 59) // 60)
    return problem(
        request,
        429,
        N_("Too many codes"),
        N_("Too many codes were tried. Try again in %(minutes)s minute(s)."),
        code=exc.code,
        headers={"Retry-After": str(exc.retry_after)},
        values={"minutes": minutes},
    )


async def _mark_fresh(request: Request) -> None:
    session = this_session(request)
    if session is not None:
        await UserSession.get_pymongo_collection().update_one(
            {"_id": session.id}, {"$set": {"second_factor_at": utcnow()}}
        )


# --- the account page's section ------------------------------------------------------------


async def _back_to_account(request: Request, context: AppContext, user: UserModel) -> Response:
    if is_htmx(request):
        return await show_section(request, context, user, SECTION)
    return RedirectResponse(
        str(request.app.url_path_for("account_page")) + "#two-factor", status_code=303
    )


def _refused(request: Request, exc: TwoFactorCodeRefused) -> Response:
    return problem(
        request,
        422,
        N_("Code not accepted"),
        N_("That code did not work. Type the code your app shows now."),
        code=exc.code,
        link=("/account#two-factor", N_("Back to your account")),
    )


GUARDS = [Depends(refuse_while_viewing_as)]


def _require_proven(user: UserModel) -> None:
    """Nothing is set up while the address is unproven: whoever is signed in may not be
    its owner (an admin gave the account another address)."""
    if user.email_verified_at is None:
        raise EmailNotConfirmed("confirm your email address before you set up two-factor codes")


@account_router.post("/start", name="two_factor_start", dependencies=GUARDS)
async def start(request: Request, context: Context, user: RequireUser) -> Response:
    """Make a new secret and show its QR code; two-factor is on once a code confirms it."""
    _require_proven(user)
    try:
        await two_factor.begin(user, context.settings)
    except TwoFactorAlreadyOn:
        flash(request, _("Two-factor codes are already on."), "info")
    return await _back_to_account(request, context, user)


@account_router.post("/confirm", name="two_factor_confirm", dependencies=GUARDS)
async def confirm(
    request: Request, context: Context, user: RequireUser, code: CODE_FIELD = ""
) -> Response:
    """Turn two-factor on with the first code; shows the recovery codes, this once."""
    _require_proven(user)
    try:
        codes = await two_factor.confirm(
            user, code, context.settings, client_ip=client_address(request)
        )
    except RateLimitExceeded as exc:
        return _too_many(request, exc)
    except TwoFactorCodeRefused as exc:
        return _refused(request, exc)
    await _mark_fresh(request)  # this browser just gave a code
    logger.info("user %s turned two-factor codes on", user.id)
    flash(request, _("Two-factor codes are on. Keep your recovery codes somewhere safe."))
    return await show_section(request, context, user, SECTION, new_recovery_codes=codes)


@account_router.post("/cancel", name="two_factor_cancel", dependencies=GUARDS)
async def cancel(request: Request, context: Context, user: RequireUser) -> Response:
    """Stop turning two-factor on (the unconfirmed secret is dropped)."""
    await two_factor.cancel(user)
    return await _back_to_account(request, context, user)


@account_router.post("/recovery-codes", name="two_factor_recovery_codes", dependencies=GUARDS)
async def recovery_codes(
    request: Request, context: Context, user: RequireUser, code: CODE_FIELD = ""
) -> Response:
    """Replace the recovery codes (after a code from the app); shows the new ones once."""
    _require_proven(user)
    try:
        codes = await two_factor.regenerate_recovery_codes(
            user, code, context.settings, client_ip=client_address(request)
        )
    except RateLimitExceeded as exc:
        return _too_many(request, exc)
    except TwoFactorCodeRefused as exc:
        return _refused(request, exc)
    await _mark_fresh(request)
    flash(request, _("New recovery codes were made; the old ones no longer work."))
    return await show_section(request, context, user, SECTION, new_recovery_codes=codes)


@account_router.post("/disable", name="two_factor_disable", dependencies=GUARDS)
async def disable(
    request: Request, context: Context, user: RequireUser, code: CODE_FIELD = ""
) -> Response:
    """Turn two-factor off, after a code from the app (or a recovery code)."""
    try:
        await two_factor.disable(user, code, context.settings, client_ip=client_address(request))
    except RateLimitExceeded as exc:
        return _too_many(request, exc)
    except TwoFactorCodeRefused as exc:
        return _refused(request, exc)
    logger.info("user %s turned two-factor codes off", user.id)
    flash(request, _("Two-factor codes are off."))
    return await _back_to_account(request, context, user)


def _aware(moment: datetime) -> datetime:
    # The in-memory database hands datetimes back without a zone; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
