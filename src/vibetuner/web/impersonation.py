"""View as user: an admin opens the app as another user, then comes back in one click.

The admin's own session token waits in the cookie (``STASHED_TOKEN_KEY``) while the
browser carries a new, short session of the user, marked with the admin's id
(``UserSession.impersonator_id``). Every page shows a banner with the way back; the
admin pages answer 404 meanwhile (the user is not an admin, and the gate also refuses
any browser holding a waiting admin session). Signing out ends both sessions. Starting
and ending are recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import Scope

from vibetuner.errors import CannotViewAs
from vibetuner.models.user import UserModel
from vibetuner.services import audit, sessions
from vibetuner.web.redirects import safe_next
from vibetuner.web.session_auth import (
    _SCOPE_SESSION,
    SESSION_TOKEN_KEY,
    STASHED_TOKEN_KEY,
    current_user,
)

# Where "Back to the admin" leads (the admin page the admin came from).
RETURN_KEY = "vt_admin_return"
# The viewed user's email, for the banner on pages that do not load the user.
VIEWED_KEY = "vt_view_as_email"
# A view-as session ends after an hour at most.
VIEW_AS_MAX_AGE = 3600

router = APIRouter(prefix="/ui", tags=["ui"], include_in_schema=False)


def is_viewing_as(request: Request) -> bool:
    """True while this browser is an admin viewing the app as another user."""
    return _viewing(request.scope)


def _viewing(scope: Scope) -> bool:
    # The session is read without marking it used (``request.session`` would): the admin
    # gate asks this, and its 404 must not gain the "Vary: Cookie" a missing path lacks.
    session = scope.get("session")
    return isinstance(session, Mapping) and STASHED_TOKEN_KEY in session


async def start_viewing_as(
    request: Request, admin: UserModel, target: UserModel, *, return_to: str = "/"
) -> None:
    """Switch this browser from ``admin`` to a session of ``target``.

    Refused for oneself, another admin, and a deactivated user. ``return_to`` is where
    the way back leads.
    """
    from vibetuner.web.client_address import client_address
    from vibetuner.web.context import get_context

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
    request.scope.pop(_SCOPE_SESSION, None)
    await audit.record(
        actor=admin,
        action="view_as",
        target_type="users",
        target_id=target.id,
        target_label=target.email,
        ip_prefix=sessions.ip_prefix(address),
    )


async def stop_viewing_as(request: Request) -> str:
    """End the user's session, restore the admin's, and return where to go next."""
    from vibetuner.web.context import get_context

    viewed = await current_user(request)
    token = request.session.get(SESSION_TOKEN_KEY)
    if isinstance(token, str):
        await sessions.end_session(token)
    admin_token = request.session.pop(STASHED_TOKEN_KEY, None)
    return_to = safe_next(request.session.pop(RETURN_KEY, "/"))
    request.session.pop(VIEWED_KEY, None)
    request.scope.pop(_SCOPE_SESSION, None)
    active = None
    if isinstance(admin_token, str):
        active = await sessions.resolve_session(admin_token, get_context(request).settings)
    if active is None:  # the admin's own session ended meanwhile: signed out
        request.session.clear()
        return "/"
    request.session[SESSION_TOKEN_KEY] = admin_token
    await audit.record(
        actor=active.user,
        action="view_as_end",
        target_type="users",
        target_id=viewed.id if viewed is not None else "",
        target_label=viewed.email if viewed is not None else "",
    )
    return return_to


@router.post("/view-as/stop", name="stop_viewing_as")
async def stop_viewing_as_route(request: Request) -> Response:
    """The banner's "Back to your account" button."""
    target = await stop_viewing_as(request) if is_viewing_as(request) else "/"
    return RedirectResponse(target, status_code=303)


@jinja2.pass_context
def _viewing_as(context: Any) -> str:
    request = context.get("request")
    if request is None or not is_viewing_as(request):
        return ""
    return str(request.session.get(VIEWED_KEY) or "?")


def template_globals() -> dict[str, Any]:
    """``viewing_as()``: the viewed user's email while an admin views the app as them."""
    return {"viewing_as": _viewing_as}
