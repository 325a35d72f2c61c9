"""One-time tokens sent by email (magic links, address verification)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Literal

import pymongo
from beanie import Document
from pydantic import Field
from pymongo import IndexModel, ReturnDocument

from vibetuner.models.mixins import TimeStampMixin, utcnow
from vibetuner.models.user import Email

TOKEN_BYTES = 32
TokenStatus = Literal["valid", "used", "expired", "unknown"]


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored in place of a raw token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class EmailVerificationToken(TimeStampMixin, Document):
    """A one-time token for ``email``. Only its SHA-256 is stored.

    MongoDB removes expired tokens through a TTL index on ``expires_at``
    (``expireAfterSeconds=0``); ``consume`` also refuses them itself, since the TTL
    monitor runs only once a minute. The raw token starts with its expiry time, so a
    token whose record is gone can still be recognised as expired rather than unknown.
    """

    email: Email
    token_hash: str = Field(min_length=64, max_length=64)
    purpose: str = Field(default="login", max_length=64)
    expires_at: datetime
    used_at: datetime | None = None

    class Settings:
        name = "email_verification_tokens"
        indexes = [
            IndexModel([("token_hash", pymongo.ASCENDING)], name="token_hash_unique", unique=True),
            IndexModel(
                [("email", pymongo.ASCENDING), ("purpose", pymongo.ASCENDING)], name="email"
            ),
            IndexModel(
                [("expires_at", pymongo.ASCENDING)], name="expires_ttl", expireAfterSeconds=0
            ),
        ]

    @classmethod
    async def issue(
        cls, email: str, *, purpose: str = "login", ttl: timedelta = timedelta(minutes=15)
    ) -> tuple[str, EmailVerificationToken]:
        """Create a token for ``email`` and return ``(raw_token, document)``.

        The raw token -- its expiry in base 36, a dot, then 32 random bytes, URL-safe -- is
        returned only here. Older unused tokens of the same email and purpose are deleted,
        so only the newest link works.
        """
        expires_at = utcnow() + ttl
        raw = f"{_base36(int(expires_at.timestamp()))}.{secrets.token_urlsafe(TOKEN_BYTES)}"
        record = cls(
            email=email, token_hash=hash_token(raw), purpose=purpose, expires_at=expires_at
        )
        await cls.get_pymongo_collection().delete_many(
            {"email": record.email, "purpose": purpose, "used_at": None}
        )
        await record.insert()
        return raw, record

    @classmethod
    async def consume(cls, token: str, *, purpose: str = "login") -> EmailVerificationToken | None:
        """Mark the token used and return its record; None if unknown, used or expired.

        One ``find_one_and_update`` matches only an unused, unexpired token and marks it
        used in the same step, so of many concurrent requests exactly one gets the record.
        Used tokens stay until they expire so that ``status`` can say "used".
        """
        if not _plausible(token):
            return None
        now = utcnow()
        raw = await cls.get_pymongo_collection().find_one_and_update(
            {
                "token_hash": hash_token(token),
                "purpose": purpose,
                "used_at": None,
                "expires_at": {"$gt": now},
            },
            {"$set": {"used_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return None if raw is None else cls.model_validate(raw)

    @classmethod
    async def peek(cls, token: str, *, purpose: str = "login") -> EmailVerificationToken | None:
        """The record of a usable token (unused, unexpired) without consuming it, else None."""
        if not _plausible(token):
            return None
        return await cls.find_one(
            {
                "token_hash": hash_token(token),
                "purpose": purpose,
                "used_at": None,
                "expires_at": {"$gt": utcnow()},
            }
        )

    @classmethod
    async def status(cls, token: str, *, purpose: str = "login") -> TokenStatus:
        """Why a token can or cannot be used, without consuming it."""
        if not _plausible(token):
            return "unknown"
        record = await cls.find_one({"token_hash": hash_token(token), "purpose": purpose})
        if record is None:
            # Removed by the TTL index, or never issued: the token's prefix tells which.
            expiry = _expiry_of(token)
            return "expired" if expiry is not None and expiry <= utcnow().timestamp() else "unknown"
        if record.used_at is not None:
            return "used"
        return "expired" if record.expires_at <= utcnow() else "valid"


def _plausible(token: object) -> bool:
    return isinstance(token, str) and 0 < len(token) <= 256


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


def _expiry_of(token: str) -> int | None:
    """The expiry (Unix seconds) written at the start of a token, if it has one."""
    prefix, dot, _ = token.partition(".")
    if not dot or not 0 < len(prefix) <= 8:
        return None
    try:
        return int(prefix, 36)
    except ValueError:
        return None
