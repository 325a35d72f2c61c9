"""View as user: an admin opens the app as another user, then comes back in one click.

The admin's own session token waits in the cookie (``STASHED_TOKEN_KEY``) while the
browser carries a new, short session of the user, marked with the admin's id
(``UserSession.impersonator_id``). Every page shows a banner with the way back; the
admin pages answer 404 meanwhile (the user is not an admin, and the gate also refuses
any browser holding a waiting admin session).

The view never becomes a way into the account: routes that change how the user signs
in, their sessions, or delete the account refuse with 403 (:func:`refuse_while_viewing_as`);
starting a sign-in (magic link, provider) ends the view first, so the admin is back in
their own session (:func:`leave_view_as`, and ``login`` itself); signing out ends both
sessions. Starting and ending are in the audit trail, and so is every unsafe request that
succeeds meanwhile, under the admin's name (:class:`ViewAsAuditMiddleware`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.auth import sessions
from vibetuner.auth.current import STASHED_TOKEN_KEY, current_session
from vibetuner.errors import CannotViewAs, ViewAsRefused
from vibetuner.models.user import UserModel
from vibetuner.services import audit
from vibetuner.web.client_address import client_address
from vibetuner.web.context import get_context
from vibetuner.web.identity import SCOPE_SESSION, SESSION_TOKEN_KEY
from vibetuner.web.redirects import safe_next

# Where "Back to the admin" leads (the admin page the admin came from).
RETURN_KEY = "vt_admin_return"
# The viewed user's email, for the banner on pages that do not load the user.
VIEWED_KEY = "vt_view_as_email"
# A view-as session ends after an hour at most.
VIEW_AS_MAX_AGE = 3600
# Requests that change nothing: not recorded while viewing as a user.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

router = APIRouter(prefix="/ui", tags=["ui"], include_in_schema=False)


def is_viewing_as(request: Request) -> bool:
    """True while this browser is an admin viewing the app as another user."""
    return _viewing(request.scope)


def _viewing(scope: Scope) -> bool:
    # The session is read without marking it used (``request.session`` would): the admin
    # gate asks this, and its 404 must not gain the "Vary: Cookie" a missing path lacks.
    session = scope.get("session")
    return isinstance(session, Mapping) and STASHED_TOKEN_KEY in session


def request_path(request: Request) -> str:
    """The request's path for the audit trail, secret path parameters masked.

    A sign-in link's token (``/auth/magic-link/{token}``) is a secret by its name, so it
    is recorded as ``********``.
    """
    path = request.url.path
    for name, value in (request.scope.get("path_params") or {}).items():
        if audit.is_secret_field(name) and str(value):
            path = path.replace(str(value), audit.MASK)
    return path[:300]


async def refuse_while_viewing_as(request: Request) -> None:
    """Dependency: 403 while an admin views the app as a user.

    On the routes that would outlive the view -- linking or unlinking sign-in methods,
    ending the user's sessions, deleting the account.
    """
    active = await current_session(request)
    opened_by_admin = active is not None and active.session.impersonator_id is not None
    if is_viewing_as(request) or opened_by_admin:
        raise ViewAsRefused(
            "not possible while viewing the app as another user; go back to your own account first"
        )


async def leave_view_as(request: Request) -> None:
    """Dependency of the routes that start a sign-in: a view-as ends first (audited).

    The admin is back in their own session, so nothing the sign-in does (linking a
    provider, a new session) can land on the viewed user.
    """
    if is_viewing_as(request):
        await stop_viewing_as(request)


async def start_viewing_as(
    request: Request, admin: UserModel, target: UserModel, *, return_to: str = "/"
) -> None:
    """Switch this browser from ``admin`` to a session of ``target``.

    Refused for oneself, another admin, and a deactivated user. ``return_to`` is where
    the way back leads.
    """

    if target.id == admin.id:
        raise CannotViewAs("You are already signed in as yourself.")
    if target.is_admin:
        raise CannotViewAs("Admins cannot be viewed as; demote them first.")
    if not target.is_active:
        raise CannotViewAs("This user is deactivated; activate them first.")
    if is_viewing_as(request):
        raise CannotViewAs("Go back to your own account first.")
    admin_token = request.session.get(SESSION_TOKEN_KEY)
    if not isinstance(admin_token, str):
        raise CannotViewAs("Sign in again first.")
    address = client_address(request)
    token = await sessions.start_session(
        target,
        get_context(request).settings,
        user_agent=request.headers.get("user-agent", ""),
        client_address=address,
        impersonator=admin,
        max_age=VIEW_AS_MAX_AGE,
    )
    request.session[STASHED_TOKEN_KEY] = admin_token
    request.session[SESSION_TOKEN_KEY] = token
    request.session[RETURN_KEY] = safe_next(return_to)
    request.session[VIEWED_KEY] = target.email
    request.scope.pop(SCOPE_SESSION, None)
    await audit.record(
        actor=admin,
        action="view_as",
        target_type="users",
        target_id=target.id,
        target_label=target.email,
        ip_prefix=sessions.ip_prefix(address),
    )


async def stop_viewing_as(request: Request) -> str:
    """End the user's session, restore the admin's, and return where to go next.

    The audit entry names the request that ended the view (the banner's button, a
    sign-out, a sign-in started during the view).
    """

    view = await current_session(request)
    viewed = view.user if view is not None else None
    token = request.session.get(SESSION_TOKEN_KEY)
    if isinstance(token, str):
        await sessions.end_session(token)
    admin_token = request.session.pop(STASHED_TOKEN_KEY, None)
    return_to = safe_next(request.session.pop(RETURN_KEY, "/"))
    request.session.pop(VIEWED_KEY, None)
    request.scope.pop(SCOPE_SESSION, None)
    active = None
    if isinstance(admin_token, str):
        active = await sessions.resolve_session(admin_token, get_context(request).settings)
    admin = active.user if active is not None else None
    admin_id = view.session.impersonator_id if view is not None else None
    if admin is None and admin_id is not None:  # signed out elsewhere: still named
        admin = await UserModel.get(admin_id)
    if admin is not None or viewed is not None:
        await audit.record(
            actor=admin,
            actor_id=admin_id,
            action="view_as_end",
            target_type="users",
            target_id=viewed.id if viewed is not None else "",
            target_label=viewed.email if viewed is not None else "",
            ip_prefix=sessions.ip_prefix(client_address(request)),
            method=request.method,
            path=request_path(request),
        )
    if active is None:  # the admin's own session ended meanwhile: signed out
        request.session.clear()
        return "/"
    request.session[SESSION_TOKEN_KEY] = admin_token
    return return_to


@router.post("/view-as/stop", name="stop_viewing_as")
async def stop_viewing_as_route(request: Request) -> Response:
    """The banner's "Back to your account" button."""
    target = await stop_viewing_as(request) if is_viewing_as(request) else "/"
    return RedirectResponse(target, status_code=303)


class ViewAsAuditMiddleware:
    """Records every unsafe request that succeeds while an admin views the app as a user.

    One entry per request (``view_as_write``): the admin (from the session's
    ``impersonator_id``), the user, the method and the path. It is written before the
    response starts, so no write made during the view answers success unrecorded.
    Requests that end the view (the way back, signing out, a sign-in) record
    ``view_as_end`` instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or not _viewing(scope):
            await self.app(scope, receive, send)
            return

        async def send_recorded(message: Message) -> None:
            if (
                message["type"] == "http.response.start"
                and message["status"] < 400
                and _viewing(scope)
            ):
                await record_write(Request(scope, receive))
            await send(message)

        await self.app(scope, receive, send_recorded)


async def record_write(request: Request) -> None:
    """Add the ``view_as_write`` entry for this request of a view-as session."""

    active = await current_session(request)
    if active is None or active.session.impersonator_id is None:
        return  # the view's session ended meanwhile: nothing was done as the user
    admin = await UserModel.get(active.session.impersonator_id)
    await audit.record(
        actor=admin,
        actor_id=active.session.impersonator_id,
        action="view_as_write",
        target_type="users",
        target_id=active.user.id,
        target_label=active.user.email,
        ip_prefix=sessions.ip_prefix(client_address(request)),
        method=request.method,
        path=request_path(request),
    )


@jinja2.pass_context
def _viewing_as(context: Any) -> str:
    request = context.get("request")
    if request is None or not is_viewing_as(request):
        return ""
    return str(request.session.get(VIEWED_KEY) or "?")


def template_globals() -> dict[str, Any]:
    """``viewing_as()``: the viewed user's email while an admin views the app as them."""
    return {"viewing_as": _viewing_as}
