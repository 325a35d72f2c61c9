"""Server-side sessions: start, check, end and list the signed-in browsers of a user.

The browser's cookie holds a random token; the database holds only its SHA-256, with
the user, the times and where the session came from. Every request checks the record,
so ending a session (sign-out, sign-out everywhere, revoking one, deactivating the
user) takes effect on that browser's very next request.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from vibetuner.config import Settings
from vibetuner.models.mixins import utcnow
from vibetuner.models.oauth import OAuthAccount
from vibetuner.models.session import UserSession
from vibetuner.models.user import UserModel
from vibetuner.realtime.hub import sessions_changed

TOKEN_BYTES = 32
# last_seen_at is written at most this often: not a write on every request.
TOUCH_EVERY = timedelta(minutes=1)


def hash_session_token(token: str) -> str:
    """The stored form of a session token (its SHA-256, hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ip_prefix(address: str | None) -> str:
    """Where a session came from, coarsely: an IPv4 /24 or an IPv6 /48, never the full address.

    ``address`` is an address or, as ``client_address`` gives IPv6 clients, a network.
    """
    if not address:
        return ""
    try:
        parsed = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return ""
    prefix = 24 if parsed.version == 4 else 48
    if parsed.prefixlen < prefix:
        return ""  # wider than the prefix shown: not one client's network
    return str(parsed.supernet(new_prefix=prefix))


async def start_session(
    user: UserModel,
    settings: Settings,
    *,
    user_agent: str = "",
    client_address: str | None = None,
    impersonator: UserModel | None = None,
    max_age: int | None = None,
    pending_second_factor: bool = False,
    second_factor_at: datetime | None = None,
) -> str:
    """Record a new session of ``user`` and return the token for the browser's cookie.

    ``impersonator`` marks a session an admin opened as ``user``; ``max_age`` shortens
    the session's life below ``SESSION_MAX_AGE``. ``pending_second_factor`` makes a
    half sign-in that waits for a two-factor code (it signs nothing in);
    ``second_factor_at`` records when the session gave a second factor.
    """
    if user.id is None:
        raise ValueError("cannot start a session for a user that is not saved")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    lifetime = (
        settings.session_max_age if max_age is None else min(max_age, settings.session_max_age)
    )
    await UserSession(
        id=hash_session_token(token),
        public_id=secrets.token_urlsafe(12),
        user_id=user.id,
        session_version=user.session_version,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=lifetime),
        user_agent=user_agent[:300],
        ip_prefix=ip_prefix(client_address),
        impersonator_id=impersonator.id if impersonator is not None else None,
        pending_second_factor=pending_second_factor,
        second_factor_at=second_factor_at,
    ).insert()
    return token


class ActiveSession:
    """A session that checked out, its user, and the names of the user's linked providers.

    The session record is kept as read (the check needs four of its fields) and turned
    into a ``UserSession`` only when asked for: this runs on every signed-in request.
    """

    __slots__ = ("_raw", "_session", "user", "providers")

    def __init__(self, raw: dict[str, Any], user: UserModel, providers: list[str]) -> None:
        self._raw = raw
        self._session: UserSession | None = None
        self.user = user
        self.providers = providers

    @property
    def session(self) -> UserSession:
        """The session record as a ``UserSession``."""
        if self._session is None:
            self._session = UserSession.model_validate(self._raw)
        return self._session


def session_with_user(key: str) -> list[dict[str, Any]]:
    """The aggregation that reads a session, its user and the user's provider names.

    One command, so a signed-in request costs one round trip to the database whatever
    it then shows of the user. Everything is read fresh: ending a session, deactivating
    the user or signing out everywhere takes effect on the next request in every worker.
    """

    return [
        # A half sign-in that still waits for its two-factor code is never a session.
        {"$match": {"_id": key, "pending_second_factor": {"$ne": True}}},
        {"$limit": 1},
        {
            "$lookup": {
                "from": UserModel.get_collection_name(),
                "localField": "user_id",
                "foreignField": "_id",
                "as": "vt_user",
            }
        },
        {
            "$lookup": {
                "from": OAuthAccount.get_collection_name(),
                "localField": "user_id",
                "foreignField": "user.$id",
                "as": "vt_links",
            }
        },
        # Only the provider names leave the server (never the stored tokens).
        {"$addFields": {"vt_providers": "$vt_links.provider"}},
        {"$project": {"vt_links": 0}},
    ]


async def resolve_session(token: str, settings: Settings) -> ActiveSession | None:
    """The live session of ``token``, its user and the user's providers, or None.

    None when there is no such record, it is past its absolute or idle expiry, the user
    is gone or deactivated, or the user signed out everywhere since (``session_version``).
    A dead record is deleted on the way. One aggregation reads it all.
    """
    key = hash_session_token(token)
    collection = UserSession.get_pymongo_collection()
    found = await (await collection.aggregate(session_with_user(key))).to_list(1)
    if not found:
        return None
    raw = found[0]
    users = raw.pop("vt_user")
    providers = sorted({str(name) for name in raw.pop("vt_providers", None) or ()})
    now = utcnow()
    idle = settings.session_idle_timeout
    last_seen = _aware(raw["last_seen_at"])
    expired = _aware(raw["expires_at"]) <= now or (
        idle > 0 and last_seen + timedelta(seconds=idle) <= now
    )
    user = None if expired or not users else UserModel.model_validate(users[0])
    if user is None or not user.is_active or user.session_version != raw["session_version"]:
        await collection.delete_one({"_id": key})
        return None
    if now - last_seen >= TOUCH_EVERY:
        # At most once a minute per session: not a second round trip on every request.
        await collection.update_one({"_id": key}, {"$set": {"last_seen_at": now}})
        raw["last_seen_at"] = now
    return ActiveSession(raw, user, providers)


async def end_session(token: str) -> None:
    """Delete the session of ``token`` (sign-out); a missing one is fine."""
    key = hash_session_token(token)
    await UserSession.get_pymongo_collection().delete_one({"_id": key})
    await sessions_changed(session_key=key)


async def end_all_sessions(user_id: PydanticObjectId) -> int:
    """Delete every session of a user; returns how many there were."""
    result = await UserSession.get_pymongo_collection().delete_many({"user_id": user_id})
    await sessions_changed(user_id=user_id)
    return int(result.deleted_count)


async def list_sessions(user_id: PydanticObjectId) -> list[UserSession]:
    """The user's sessions, most recently used first (not half sign-ins waiting for a code)."""
    query = {"user_id": user_id, "pending_second_factor": {"$ne": True}}
    return await UserSession.find(query).sort("-last_seen_at").to_list()


async def revoke_session(user_id: PydanticObjectId, public_id: str) -> bool:
    """End the user's session named ``public_id``; False when the user has no such session."""
    result = await UserSession.get_pymongo_collection().delete_one(
        {"user_id": user_id, "public_id": public_id}
    )
    if result.deleted_count:
        await sessions_changed(user_id=user_id)
    return bool(result.deleted_count)


def _aware(moment: datetime) -> datetime:
    # The in-memory database hands datetimes back without a zone; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)


async def sign_out_everywhere(user: UserModel) -> None:
    """End every session of ``user`` (see ``UserModel.sign_out_everywhere``) and close
    their open event streams, in every worker."""
    await user.sign_out_everywhere()
    await sessions_changed(user_id=user.id)
