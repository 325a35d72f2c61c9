"""A recent second factor: what sensitive actions and roles ask of a session.

A user with two-factor codes on must have given one within ``TWO_FACTOR_FRESH_SECONDS``
before deleting the account, viewing the app as someone else or changing how they sign
in; the roles of ``TWO_FACTOR_REQUIRED_ROLES`` need a session that gave one at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import Depends, Request

from vibetuner.auth import two_factor_codes as two_factor
from vibetuner.auth.current import current_session
from vibetuner.config import Settings
from vibetuner.errors import SecondFactorRequired
from vibetuner.models.mixins import utcnow
from vibetuner.models.session import UserSession
from vibetuner.models.user import UserModel
from vibetuner.web.context import get_context


def is_fresh(session: UserSession, settings: Settings) -> bool:
    """True when ``session`` gave a second factor within ``TWO_FACTOR_FRESH_SECONDS``."""
    at = session.second_factor_at
    if at is None:
        return False
    return utcnow() - _aware(at) <= timedelta(seconds=settings.two_factor_fresh_seconds)


async def require_fresh_second_factor(request: Request) -> None:
    """Dependency of sensitive actions: a user with two-factor on must have given a code
    within ``TWO_FACTOR_FRESH_SECONDS``.

    Otherwise :class:`SecondFactorRequired`: browsers go to the code page and come back,
    API clients get 403 ``second_factor_required``. Users without two-factor, and
    requests without a session (the route's own sign-in check answers), pass.
    """
    active = await current_session(request)
    if active is None or not await two_factor.enabled(active.user.id):
        return
    if not is_fresh(active.session, get_context(request).settings):
        raise SecondFactorRequired("confirm it is you with a code from your authenticator app")


RequireFreshSecondFactor = Depends(require_fresh_second_factor)


async def two_factor_missing(
    user: UserModel, session: UserSession | None, role: str, settings: Settings
) -> SecondFactorRequired | None:
    """Why ``user`` may not use ``role`` in ``session`` yet, or None when they may.

    Only for the roles of ``TWO_FACTOR_REQUIRED_ROLES``: the user must have two-factor
    on and the session must have given a code.
    """
    if role not in settings.two_factor_required_roles or not user.has_role(role):
        return None
    if not await two_factor.enabled(user.id):
        return SecondFactorRequired(
            f"the {role} role needs two-factor codes: turn them on first", setup=True
        )
    if session is None or session.second_factor_at is None:
        return SecondFactorRequired("confirm it is you with a code from your authenticator app")
    return None


def _aware(moment: datetime) -> datetime:
    # The in-memory database hands datetimes back without a zone; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
