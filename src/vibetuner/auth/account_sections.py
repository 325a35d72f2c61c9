"""What the account page shows, section by section, and how a changed section answers.

The routes of each section (profile, sessions, passkeys, two-factor codes, API tokens)
render the page, or for htmx the one section they changed, from these values.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from vibetuner.auth import accounts, passkey_store, sessions
from vibetuner.auth import api_token_store as api_tokens
from vibetuner.auth import two_factor_codes as two_factor
from vibetuner.auth.current import session_providers, this_session
from vibetuner.auth.impersonation import is_viewing_as
from vibetuner.auth.oauth_providers import OAuthProviders
from vibetuner.auth.signin import linked_providers
from vibetuner.blobs.store import BlobStore
from vibetuner.context import AppContext
from vibetuner.i18n import gettext as _
from vibetuner.models.user import UserModel
from vibetuner.web.context import get_context
from vibetuner.web.htmx import is_htmx
from vibetuner.web.pages import render

PAGE = "account/index.html"
# Lifetimes offered for a new API token, in days (capped by API_TOKEN_MAX_DAYS).
LIFETIMES = (7, 30, 90, 365)


async def page_values(request: Request, context: AppContext, user: UserModel) -> dict[str, Any]:
    linked = await accounts_linked(request, user)
    offered = context.get(OAuthProviders).offered()
    this = this_session(request)
    listed = await sessions.list_sessions(user.id)  # type: ignore[arg-type]
    return {
        "title": _("Your account"),
        "user": user,
        "linked": [p for p in offered if p.name in linked]
        + [p for p in linked if p not in {o.name for o in offered}],
        "unlinked": [p for p in offered if p.name not in linked],
        # Until the address is proven nothing may be attached: the page offers the proof.
        "confirmed": user.email_verified_at is not None,
        "sessions": [(s, this is not None and s.id == this.id) for s in listed],
        "picture_max_mb": accounts.PICTURE_MAX_SIZE // (1024 * 1024),
        "pictures": context.find(BlobStore) is not None,
        **await passkey_values(context, user),
        **await two_factor_values(request, user),
        **await api_token_values(request, user),
    }


async def accounts_linked(request: Request, user: UserModel) -> list[str]:
    """Names of the providers linked to ``user``.

    A page view takes them from the session read (no second round trip); after a form
    post, which may have just linked or unlinked one, they are read again.
    """

    if request.method in ("GET", "HEAD"):
        read = session_providers(request)
        if read is not None:
            return read
    return await linked_providers(user)


async def answer(request: Request, context: AppContext, user: UserModel, section: str) -> Response:
    """Back to the page (a redirect), or the changed section for htmx."""
    if is_htmx(request):
        return await show_section(request, context, user, section)
    return RedirectResponse(request.app.url_path_for("account_page"), status_code=303)


async def show_section(
    request: Request, context: AppContext, user: UserModel, section: str, **extra: Any
) -> Response:
    """The account page (for htmx, only its ``section`` block) with ``extra`` values,
    such as a secret shown this once."""
    values = {**await page_values(request, context, user), **extra}
    return render(request, PAGE, values, block=section)


async def passkey_values(context: AppContext, user: UserModel) -> dict[str, Any]:
    """What the account page's passkey section shows."""
    offered = passkey_store.available(context.settings)
    keys = await passkey_store.list_passkeys(user.id) if offered and user.id else []
    return {
        "passkeys_offered": offered,
        "passkeys": keys,
        "passkeys_max": passkey_store.MAX_PASSKEYS,
    }


async def two_factor_values(request: Request, user: UserModel) -> dict[str, Any]:
    """What the account page's two-factor section shows."""
    settings = get_context(request).settings
    record = await two_factor.status(user.id)
    values: dict[str, Any] = {
        "two_factor_state": "off",
        "two_factor_qr": None,
        "two_factor_secret": None,
        "recovery_codes_left": 0,
        "new_recovery_codes": None,  # shown only in the answer that made them
    }
    if record is None:
        return values
    if record.confirmed_at is not None:
        values["two_factor_state"] = "on"
        values["recovery_codes_left"] = len(record.recovery_codes)
        return values
    session = this_session(request)
    if is_viewing_as(request) or (session is not None and session.impersonator_id is not None):
        # A setup not confirmed yet: its secret becomes the user's second factor, so an
        # admin viewing the app as them never sees it (the section reads "off").
        return values
    enrolment = await two_factor.enrolment(user, settings)
    if enrolment is not None:
        values["two_factor_state"] = "setup"
        values["two_factor_qr"] = Markup(two_factor.qr_svg(enrolment.uri))
        # In groups of four, as authenticator apps show a typed key.
        secret = enrolment.secret
        values["two_factor_secret"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return values


async def api_token_values(request: Request, user: UserModel) -> dict[str, Any]:
    """What the account page's API-token section shows."""
    settings = get_context(request).settings
    most = settings.api_token_max_days
    return {
        "api_tokens": await api_tokens.list_for_user(user.id),
        "api_token_scopes": settings.api_token_scopes,
        "api_token_lifetimes": sorted({d for d in LIFETIMES if d <= most} | {min(most, 90)}),
        "api_token_default_days": min(most, 90),
        "new_api_token": None,  # shown only in the answer that made it
    }
