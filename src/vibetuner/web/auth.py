"""Sign-in routes: login page, magic links, OAuth flows, sign-out and ``/auth/me``.

Pages are Jinja2 templates under ``auth/`` (an app overrides them with its own
templates of the same name). API clients -- requests that do not ask for HTML -- get
JSON errors instead of pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from vibetuner.config import Settings
from vibetuner.models.user import UserModel
from vibetuner.services.auth import (
    AccountDisabled,
    AuthService,
    InvalidEmail,
    MagicLinkRefused,
    OAuthSignInRefused,
    linked_providers,
)
from vibetuner.services.email import EmailDeliveryError, Mailer, backend_from_settings
from vibetuner.services.rate_limit import RateLimitExceeded
from vibetuner.templating import app_environment
from vibetuner.web.body_limits import declared_length
from vibetuner.web.client_address import client_address
from vibetuner.web.deps import current_user, wants_html
from vibetuner.web.redirects import safe_next
from vibetuner.web.responses import (
    HTML,
    SIGN_IN_REQUIRED,
    ValidationProblem,
    redirect,
)
from vibetuner.web.responses import problem as documented_problem
from vibetuner.web.routers import FlatRouter
from vibetuner.web.sessions import login, logout

logger = logging.getLogger("vibetuner.auth")

router = FlatRouter(prefix="/auth", tags=["auth"])

LOGIN_URL = "/auth/login"
NEXT_SESSION_KEY = "auth_next"
MAX_FORM_BYTES = 16 * 1024

LINK_REFUSED = {
    "used": ("This link was already used", "Each sign-in link works only once. Ask for a new one."),
    "expired": ("This link has expired", "Sign-in links expire after a while. Ask for a new one."),
    "unknown": (
        "This link is not valid",
        "The link is not one we sent, or a newer link replaced it. Ask for a new one.",
    ),
}


class MagicLinkSent(BaseModel):
    """``POST /auth/magic-link`` to an API client: the same for every valid address."""

    status: Literal["sent"]
    detail: str


class SignedOut(BaseModel):
    """``POST /auth/logout`` and ``/auth/logout-everywhere`` to an API client."""

    status: Literal["signed_out"]


class MeResponse(BaseModel):
    """The signed-in user as ``GET /auth/me`` returns it (no tokens, no internals)."""

    id: str
    email: str
    name: str | None = None
    picture: str | None = None
    email_verified: bool
    providers: list[str]


@dataclass
class AuthState:
    """What the routes need, built once per app."""

    service: AuthService
    providers: Any  # OAuthProviders; typed loosely so authlib loads only when used


def init_auth(app: Any) -> AuthState:
    """Build the sign-in services of ``app`` from its settings (called at startup).

    Bad settings (``EMAIL_FROM``, ``TOKEN_ENCRYPTION_KEY``) fail here, at startup, with
    a ``ConfigurationError`` that says what to fix.
    """
    from vibetuner.services.crypto import cipher_from_settings
    from vibetuner.services.oauth import OAuthProviders

    settings: Settings = app.state.settings
    mailer = Mailer(backend_from_settings(settings), app_environment(app), settings.email_from)
    providers = OAuthProviders(settings)
    service = AuthService(settings, mailer, cipher_from_settings(settings))
    state = AuthState(service=service, providers=providers)
    app.state.auth = state
    return state


def auth_state(request: Request) -> AuthState:
    """The app's sign-in services, built on first use when startup did not build them."""
    state = getattr(request.app.state, "auth", None)
    return state if state is not None else init_auth(request.app)


# --- responses -------------------------------------------------------------------------------


def render(
    request: Request,
    name: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render template ``name`` with the app name and ``context``."""
    settings: Settings = request.app.state.settings
    values = {"request": request, "app_name": settings.app_name, "title": "", **context}
    html = app_environment(request.app).get_template(name).render(values)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def problem(
    request: Request,
    status_code: int,
    title: str,
    message: str,
    *,
    html: bool | None = None,
    headers: dict[str, str] | None = None,
    link: tuple[str, str] = (LOGIN_URL, "Back to sign-in"),
) -> Response:
    """An error answer: a page for browsers, ``{"detail": message}`` for API clients."""
    if html if html is not None else wants_html(request):
        return render(
            request,
            "auth/message.html",
            status_code,
            headers,
            title=title,
            message=message,
            link_url=link[0],
            link_text=link[1],
        )
    return JSONResponse({"detail": message}, status_code=status_code, headers=headers)


def _login_redirect(request: Request, next_value: Any) -> str:
    return safe_next(next_value, request.app.state.settings.login_redirect)


# --- login page and magic links -------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse, summary="Sign-in page")
async def login_page(request: Request, next: str | None = None) -> Response:
    """The email form plus one button per configured provider; keeps a safe ``next``."""
    state = auth_state(request)
    return render(
        request,
        "auth/login.html",
        title="Sign in",
        providers=state.providers.offered(),
        next=_login_redirect(request, next),
        email="",
        error=None,
    )


class FormTooLarge(Exception):
    """The request body is over ``MAX_FORM_BYTES``."""


async def _read_body(request: Request) -> dict[str, Any]:
    # Read at most MAX_FORM_BYTES whatever the encoding: form.max_part_size only limits
    # multipart bodies, and request.json() would read anything.
    declared = declared_length(request)
    if declared is not None and declared > MAX_FORM_BYTES:
        raise FormTooLarge
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_FORM_BYTES:
            raise FormTooLarge
    request._body = bytes(received)  # Starlette's json() and form() read the cached body
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            return {}
        return data if isinstance(data, dict) else {}
    form = await request.form(max_files=0, max_fields=20, max_part_size=MAX_FORM_BYTES)
    return {key: value for key, value in form.items() if isinstance(value, str)}


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
)
async def request_magic_link(request: Request) -> Response:
    """Issue and send a sign-in link; the answer is the same whether or not an account exists."""
    state = auth_state(request)
    settings: Settings = request.app.state.settings
    try:
        body = await _read_body(request)
    except FormTooLarge:
        return problem(request, 413, "Too large", "The form is too large.")
    raw_email = body.get("email")
    next_path = _login_redirect(request, body.get("next"))
    html = wants_html(request)
    if not isinstance(raw_email, str) or not raw_email.strip():
        return _invalid_email(request, html, "", "Enter your email address.", next_path)
    client_ip = client_address(request)  # behind TRUSTED_PROXIES; IPv6 per /64
    try:
        address = await state.service.send_magic_link(
            raw_email, next_path=next_path, client_ip=client_ip
        )
    except InvalidEmail as exc:
        return _invalid_email(
            request, html, raw_email, f"That email address is not valid: {exc}", next_path
        )
    except RateLimitExceeded as exc:
        minutes = max(1, (exc.retry_after + 59) // 60)
        return problem(
            request,
            429,
            "Too many sign-in links",
            f"Too many sign-in links were requested. Try again in {minutes} minute(s).",
            html=html,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except EmailDeliveryError:
        return problem(
            request,
            502,
            "We could not send the email",
            "The sign-in email could not be sent right now, so no link was created. "
            "Please try again in a few minutes.",
            html=html,
        )
    ttl_minutes = max(1, settings.magic_link_ttl_seconds // 60)
    if html:
        return render(
            request,
            "auth/check_inbox.html",
            title="Check your inbox",
            email=address,
            ttl_minutes=ttl_minutes,
            next=next_path,
        )
    return JSONResponse(
        {
            "status": "sent",
            "detail": f"If {address} can receive email, a sign-in link is on its way.",
        }
    )


def _invalid_email(
    request: Request, html: bool, email: str, message: str, next_path: str
) -> Response:
    if html:
        return render(
            request,
            "auth/login.html",
            422,
            title="Sign in",
            providers=auth_state(request).providers.offered(),
            next=next_path,
            # Shown back in the form: without control characters (NUL, CR, LF ...).
            email="".join(c for c in email[:320] if c.isprintable()),
            error=message,
        )
    return JSONResponse(
        {"detail": [{"loc": ["body", "email"], "msg": message, "type": "value_error"}]},
        status_code=422,
    )


@router.get(
    "/magic-link/{token}",
    summary="Follow a sign-in link",
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: redirect("Signed in: sent to `next` (a safe, same-site path)"),
        400: documented_problem("The link is unknown, used or expired", html=True),
        403: documented_problem("The account is disabled", html=True),
    },
)
async def follow_magic_link(request: Request, token: str, next: str | None = None) -> Response:
    """Consume the link (once), sign in (creating the user if new) and redirect to ``next``."""
    state = auth_state(request)
    try:
        user = await state.service.sign_in_with_magic_link(token)
    except MagicLinkRefused as exc:
        title, message = LINK_REFUSED[exc.status]
        return problem(
            request, 400, title, message, html=True, link=(LOGIN_URL, "Get a new sign-in link")
        )
    except AccountDisabled:
        return problem(request, 403, "Account disabled", "This account is disabled.", html=True)
    await login(request, user)
    logger.info("user %s signed in with an email link", user.id)
    return RedirectResponse(_login_redirect(request, next), status_code=303)


# --- sign-out --------------------------------------------------------------------------------


def same_origin(request: Request) -> bool:
    """False when ``Origin`` (or else ``Referer``) names another site than this one.

    Requests with neither header (API clients, some privacy settings) pass; SameSite=Lax
    cookies already keep other sites' form posts from carrying the session.
    """
    settings: Settings = request.app.state.settings
    source = request.headers.get("origin")
    if source is None:
        source = request.headers.get("referer")
        if source is None:
            return True
    try:
        parts = urlsplit(source)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 host)
        return False
    if not parts.scheme or not parts.netloc:
        return False  # "null" or garbage
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    allowed = {_origin_of(settings.base_url), *settings.csrf_trusted_origins}
    host = request.headers.get("host")
    if host:
        allowed.add(f"{request.url.scheme}://{host}".lower())
    return origin in allowed


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _signed_out(request: Request) -> Response:
    if wants_html(request):
        return RedirectResponse("/", status_code=303)
    return JSONResponse({"status": "signed_out"})


def _cross_site(request: Request) -> Response:
    return problem(
        request, 403, "Request refused", "This request came from another site and was refused."
    )


SIGN_OUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    303: redirect("Signed out (browsers): sent to the home page"),
    403: documented_problem("The request came from another site", html=True),
}


@router.post(
    "/logout",
    summary="Sign out of this browser",
    response_model=SignedOut,
    responses=SIGN_OUT_RESPONSES,
)
async def sign_out(request: Request) -> Response:
    """Clear this session."""
    if not same_origin(request):
        return _cross_site(request)
    logout(request)
    return _signed_out(request)


@router.post(
    "/logout-everywhere",
    summary="Sign out of every browser",
    response_model=SignedOut,
    responses={**SIGN_OUT_RESPONSES, 401: documented_problem("Not signed in", html=True)},
)
async def sign_out_everywhere(request: Request) -> Response:
    """End every session of the signed-in user (bumps ``session_version``)."""
    if not same_origin(request):
        return _cross_site(request)
    user = await current_user(request)
    if user is None:
        return problem(request, 401, "Not signed in", "You are not signed in.")
    await user.sign_out_everywhere()
    logout(request)
    return _signed_out(request)


# --- OAuth -----------------------------------------------------------------------------------


def _unknown_provider(request: Request, provider: str) -> Response:
    return problem(
        request,
        404,
        "Unknown sign-in provider",
        "This site does not offer sign-in with that provider.",
        html=True,
    )


OAUTH_FAILED: dict[int | str, dict[str, Any]] = {
    400: documented_problem("The provider refused or the answer did not check out", html=True),
    404: documented_problem("No such provider is configured", html=True),
    502: documented_problem("The provider could not be reached", html=True),
}


@router.get(
    "/oauth/{provider}",
    summary="Start signing in with a provider",
    response_class=RedirectResponse,
    status_code=302,
    responses={302: redirect("To the provider's authorization page"), **OAUTH_FAILED},
)
async def oauth_start(request: Request, provider: str, next: str | None = None) -> Response:
    """Redirect to the provider's authorization page."""
    from vibetuner.services.oauth import OAuthFlowError

    providers = auth_state(request).providers
    if provider not in providers.providers:
        return _unknown_provider(request, provider)
    request.session[NEXT_SESSION_KEY] = _login_redirect(request, next)
    try:
        return await providers.start(request, provider)
    except OAuthFlowError as exc:
        return problem(request, exc.status_code, "Sign-in failed", str(exc), html=True)


@router.get(
    "/oauth/{provider}/callback",
    summary="Finish signing in with a provider",
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: redirect("Signed in: sent to the page asked for at the start"),
        **OAUTH_FAILED,
        403: documented_problem("The account is disabled", html=True),
        409: documented_problem("The identity cannot be linked to this account", html=True),
    },
)
async def oauth_callback(request: Request, provider: str) -> Response:
    """Check the provider's answer, apply the account rules, sign in and redirect."""
    from vibetuner.services.oauth import OAuthFlowError

    state = auth_state(request)
    if provider not in state.providers.providers:
        return _unknown_provider(request, provider)
    try:
        identity, token = await state.providers.finish(request, provider)
    except OAuthFlowError as exc:
        return problem(request, exc.status_code, "Sign-in failed", str(exc), html=True)
    signed_in = await current_user(request)
    try:
        outcome = await state.service.oauth_sign_in(identity, token, signed_in)
    except OAuthSignInRefused as exc:
        status_code = 409 if exc.reason in ("unverified_email", "already_linked") else 400
        return problem(request, status_code, "Sign-in refused", str(exc), html=True)
    except AccountDisabled:
        return problem(request, 403, "Account disabled", "This account is disabled.", html=True)
    target = _login_redirect(request, request.session.pop(NEXT_SESSION_KEY, None))
    await login(request, outcome.user)
    logger.info("user %s signed in with %s (%s)", outcome.user.id, provider, outcome.action)
    return RedirectResponse(target, status_code=303)


# --- current user ----------------------------------------------------------------------------


@router.get(
    "/me",
    response_model=MeResponse,
    summary="The signed-in user",
    responses={401: SIGN_IN_REQUIRED[401]},
)
async def me(request: Request) -> Response:
    """The signed-in user's public fields and linked providers; 401 when signed out."""
    user: UserModel | None = await current_user(request)
    if user is None:
        return JSONResponse({"detail": "Not signed in."}, status_code=401)
    body = MeResponse(
        id=str(user.id),
        email=user.email,
        name=user.name,
        picture=user.picture,
        email_verified=user.email_verified_at is not None,
        providers=await linked_providers(user),
    )
    # pydantic writes the JSON itself, faster than model_dump() and then json.dumps().
    return Response(body.model_dump_json(), media_type="application/json")
