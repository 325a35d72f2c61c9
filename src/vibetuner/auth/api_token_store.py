"""Personal API tokens: make, check, list and revoke them. Nothing here knows about HTTP.

A token is ``vt_`` and 32 random bytes; only its SHA-256 is stored, so a copy of the
database authenticates nobody. Scopes: ``read`` and ``write`` cover every
``<thing>:read`` and ``<thing>:write``; any other scope covers only itself.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from beanie import PydanticObjectId

from vibetuner.auth import rate_limit
from vibetuner.config import Settings
from vibetuner.errors import InsufficientScope, InvalidApiToken
from vibetuner.models.api_token import ApiToken
from vibetuner.models.mixins import utcnow
from vibetuner.models.user import UserModel

logger = logging.getLogger("vibetuner.auth")

PREFIX = "vt_"
TOKEN_BYTES = 32
# last_used_at is written at most this often (and whenever the address changes).
TOUCH_EVERY = timedelta(minutes=1)
GENERAL_SCOPES = ("read", "write")


@dataclass(frozen=True)
class NewToken:
    """A token just made: the secret to show once, and its record."""

    secret: str
    record: ApiToken


def hash_token(token: str) -> str:
    """The stored form of a token (its SHA-256, hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def covers(granted: list[str], needed: str) -> bool:
    """True when the scopes ``granted`` include ``needed``.

    ``read`` covers ``read`` and every ``<thing>:read``; ``write`` likewise for writes;
    any other scope covers only itself.
    """
    if needed in granted:
        return True
    action = needed.rpartition(":")[2]
    return action in GENERAL_SCOPES and action in granted


async def create(
    user: UserModel, name: str, scopes: list[str], days: int, settings: Settings
) -> NewToken:
    """Make a token for ``user``; raises ``ValueError`` with a readable reason."""
    if user.id is None:
        raise ValueError("the user is not saved")
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise ValueError("give the token a name of 1 to 100 characters")
    chosen = sorted(set(scopes))
    unknown = [scope for scope in chosen if scope not in settings.api_token_scopes]
    if unknown or not chosen:
        raise ValueError("choose one or more of the scopes offered")
    if not 1 <= days <= settings.api_token_max_days:
        raise ValueError(f"the lifetime must be 1 to {settings.api_token_max_days} days")
    secret = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    record = ApiToken(
        id=hash_token(secret),
        public_id=secrets.token_urlsafe(12),
        user_id=user.id,
        name=name,
        scopes=chosen,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    await record.insert()
    logger.info("user %s made API token %s (%s)", user.id, record.public_id, ",".join(chosen))
    return NewToken(secret, record)


async def authenticate(
    token: str, settings: Settings, *, client_address: str | None = None
) -> tuple[ApiToken, UserModel]:
    """The live token and its active user; raises :class:`InvalidApiToken`.

    Refused: an unknown (or revoked) token, one past ``expires_at``, one whose user is
    gone or deactivated, or whose address is unproven, and one made before the address
    was last proven (the account changed hands since: the token is deleted). The use is
    counted against ``API_TOKEN_RATE_PER_MINUTE`` (``RateLimitExceeded``) and noted (time
    and address) at most once a minute.
    """
    if not token.startswith(PREFIX) or len(token) > 200:
        raise InvalidApiToken("the token is not valid")
    found = await ApiToken.get_pymongo_collection().find_one({"_id": hash_token(token)})
    if found is None:
        raise InvalidApiToken("the token is not valid, or was revoked")
    record = ApiToken.model_validate(found)
    now = utcnow()
    if _aware(record.expires_at) <= now:
        raise InvalidApiToken("the token has expired")
    user = await UserModel.load(record.user_id)
    if user is None or not user.is_active:
        raise InvalidApiToken("the token's account is not active")
    proven_at = user.email_verified_at
    if proven_at is None:
        # Given another address that nobody proved yet: whoever holds the mailbox now
        # may not be whoever made the token.
        raise InvalidApiToken("the token's account has not confirmed its email address")
    if _aware(record.created_at) < _aware(proven_at):
        # Made by the former holder of the account (the proof should have removed it).
        await ApiToken.get_pymongo_collection().delete_one({"_id": record.id})
        logger.info(
            "removed API token %s made before its user proved the address", record.public_id
        )
        raise InvalidApiToken("the token is not valid, or was revoked")
    await rate_limit.enforce(
        "api-token", record.id, limit=settings.api_token_rate_per_minute, window_seconds=60
    )
    stale = record.last_used_at is None or now - _aware(record.last_used_at) >= TOUCH_EVERY
    if stale or record.last_used_address != client_address:
        await ApiToken.get_pymongo_collection().update_one(
            {"_id": record.id},
            {"$set": {"last_used_at": now, "last_used_address": client_address}},
        )
    return record, user


def check_scope(record: ApiToken, needed: str) -> None:
    """Raise :class:`InsufficientScope` unless ``record`` covers ``needed``."""
    if not covers(record.scopes, needed):
        raise InsufficientScope(f"the token lacks the scope {needed!r}")


async def list_for_user(user_id: PydanticObjectId | None) -> list[ApiToken]:
    """The user's tokens, newest first."""
    return await ApiToken.find({"user_id": user_id}).sort("-created_at").to_list()


async def revoke(user_id: PydanticObjectId | None, public_id: str) -> bool:
    """Delete the user's token named ``public_id``; False when the user has no such token."""
    result = await ApiToken.get_pymongo_collection().delete_one(
        {"user_id": user_id, "public_id": public_id}
    )
    return bool(result.deleted_count)


async def remove_all(user: UserModel) -> None:
    """Delete every token of ``user`` (the account is deleted)."""
    await ApiToken.get_pymongo_collection().delete_many({"user_id": user.id})


def _aware(moment: datetime) -> datetime:
    # The in-memory database hands datetimes back without a zone; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
