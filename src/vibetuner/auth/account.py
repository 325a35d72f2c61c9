"""The signed-in account: ``/auth/me``, sign-out and sign-out everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from vibetuner.auth import sessions
from vibetuner.auth.impersonation import refuse_while_viewing_as
from vibetuner.auth.session_auth import (
    CurrentUser,
    RequireUser,
    current_session,
    logout,
    this_session,
)
from vibetuner.i18n import N_, gettext
from vibetuner.web.context import get_context
from vibetuner.web.flash import flash
from vibetuner.web.identity import wants_html
from vibetuner.web.pages import problem
from vibetuner.web.responses import SIGN_IN_REQUIRED, documented_problem, redirect

router = APIRouter(prefix="/auth", tags=["auth"])


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


def same_origin(request: Request) -> bool:
    """False when ``Origin`` (or else ``Referer``) names another site than this one.

    Requests with neither header (API clients, some privacy settings) pass; SameSite=Lax
    cookies already keep other sites' form posts from carrying the session.
    """
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
    settings = get_context(request).settings
    allowed = {_origin_of(settings.base_url), *settings.csrf_trusted_origins}
    host = request.headers.get("host")
    if host:
        allowed.add(f"{request.url.scheme}://{host}".lower())
    return origin in allowed


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _signed_out(request: Request, message: str) -> Response:
    if wants_html(request):
        # Said on the page the browser lands on (the session is empty now, so this is
        # the only thing left in it).
        flash(request, gettext(message))
        return RedirectResponse("/", status_code=303)
    return JSONResponse({"status": "signed_out"})


def _cross_site(request: Request) -> Response:
    return problem(
        request,
        403,
        N_("Request refused"),
        N_("This request came from another site and was refused."),
        code="cross_site_request",
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
    """End this browser's session, on the server too."""
    if not same_origin(request):
        return _cross_site(request)
    await logout(request)
    return _signed_out(request, N_("You are signed out."))


@router.post(
    "/logout-everywhere",
    summary="Sign out of every browser",
    response_model=SignedOut,
    responses={
        **SIGN_OUT_RESPONSES,
        401: documented_problem("Not signed in", html=True),
        403: documented_problem("Another site's request, or viewing as a user", html=True),
    },
    dependencies=[Depends(refuse_while_viewing_as)],
)
async def sign_out_everywhere(request: Request, user: CurrentUser) -> Response:
    """End every session of the signed-in user (deletes them; bumps ``session_version``)."""
    if not same_origin(request):
        return _cross_site(request)
    if user is None:
        return problem(
            request, 401, "Not signed in", "You are not signed in.", code="not_signed_in"
        )
    await sessions.sign_out_everywhere(user)
    await logout(request)
    return _signed_out(request, N_("You are signed out of every browser."))


async def me(request: Request) -> Response:
    """The signed-in user's public fields and linked providers; 401 when signed out."""
    active = await current_session(request)
    if active is None:
        return JSONResponse({"detail": "Not signed in.", "code": "not_signed_in"}, status_code=401)
    user = active.user
    body = MeResponse(
        id=str(user.id),
        email=user.email,
        name=user.name,
        picture=user.picture,
        email_verified=user.email_verified_at is not None,
        providers=active.providers,  # read with the session: no second round trip
    )
    # pydantic writes the JSON itself, faster than model_dump() and then json.dumps().
    return Response(body.model_dump_json(), media_type="application/json")


router.add_api_route(
    "/me",
    me,
    methods=["GET"],
    response_model=MeResponse,
    summary="The signed-in user",
    responses={401: SIGN_IN_REQUIRED[401]},
)


class SessionOut(BaseModel):
    """One signed-in browser of the user, as ``GET /auth/sessions`` lists it."""

    id: str
    current: bool
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str
    ip_prefix: str


@router.get(
    "/sessions",
    response_model=list[SessionOut],
    summary="The signed-in user's sessions",
    responses={**SIGN_IN_REQUIRED},
)
async def my_sessions(request: Request, user: RequireUser) -> list[SessionOut]:
    """Every browser signed in as this user, most recently used first; ``current`` is this one."""
    this = this_session(request)
    return [
        SessionOut(
            id=session.public_id,
            current=this is not None and session.id == this.id,
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            expires_at=session.expires_at,
            user_agent=session.user_agent,
            ip_prefix=session.ip_prefix,
        )
        for session in await sessions.list_sessions(user.id)  # type: ignore[arg-type]
    ]


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    summary="Sign one of the user's sessions out",
    responses={
        **SIGN_IN_REQUIRED,
        403: documented_problem("An admin viewing the app as the user", html=True),
        404: documented_problem("No such session of this user"),
    },
    dependencies=[Depends(refuse_while_viewing_as)],
)
async def revoke_my_session(session_id: str, user: RequireUser) -> Response:
    """End the session ``session_id`` (this browser's too, if it is this one)."""
    if user.id is None or not await sessions.revoke_session(user.id, session_id):
        return JSONResponse(
            {"detail": "No such session.", "code": "session_not_found"}, status_code=404
        )
    return Response(status_code=204)
