"""Streams end with their session: a check of many sessions at once, and the signal
that tells every worker to check now.

An open stream was allowed when it connected; the session behind it can end later
(sign-out, "sign out everywhere", a revoked session, a deactivated user, expiry). Each
worker checks its streams' sessions every ``REALTIME_SESSION_CHECK`` seconds, in one
query for all of them, and at once when another worker (or itself) says a user's
sessions changed (``sessions_changed``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from vibetuner.models.mixins import utcnow

if TYPE_CHECKING:
    from vibetuner.config import Settings

logger = logging.getLogger("vibetuner.realtime")


async def live_sessions(keys: Iterable[str], settings: Settings) -> set[str]:
    """Which of the session ``keys`` (stored ids) are still live, read fresh.

    Live as ``resolve_session`` has it: the record exists, is within its absolute and
    idle lifetimes, and its user exists, is active and has not signed out everywhere.
    Two queries whatever the number of sessions.
    """
    from vibetuner.models.session import UserSession
    from vibetuner.models.user import UserModel

    wanted = list(set(keys))
    if not wanted:
        return set()
    projection = {"user_id": 1, "session_version": 1, "expires_at": 1, "last_seen_at": 1}
    cursor = UserSession.get_pymongo_collection().find({"_id": {"$in": wanted}}, projection)
    records: list[dict[str, Any]] = await cursor.to_list(None)
    user_ids = list({record["user_id"] for record in records})
    users: dict[Any, dict[str, Any]] = {}
    if user_ids:
        found = UserModel.get_pymongo_collection().find(
            {"_id": {"$in": user_ids}}, {"is_active": 1, "session_version": 1}
        )
        users = {user["_id"]: user for user in await found.to_list(None)}
    now = utcnow()
    idle = settings.session_idle_timeout
    live: set[str] = set()
    for record in records:
        user = users.get(record["user_id"])
        if user is None or not user.get("is_active", True):
            continue
        if user.get("session_version", 1) != record["session_version"]:
            continue
        if _aware(record["expires_at"]) <= now:
            continue
        if idle > 0 and _aware(record["last_seen_at"]) + timedelta(seconds=idle) <= now:
            continue
        live.add(str(record["_id"]))
    return live


def _aware(moment: datetime) -> datetime:
    # The in-memory database hands datetimes back without a zone; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)
