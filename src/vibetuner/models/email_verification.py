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
# Expired and used tokens are kept this long, so a late click is told "expired" or
# "already used" rather than "not valid"; then MongoDB's TTL monitor removes them.
KEEP_AFTER_EXPIRY_SECONDS = 24 * 3600
TokenStatus = Literal["valid", "used", "expired", "unknown"]


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored in place of a raw token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class EmailVerificationToken(TimeStampMixin, Document):
    """A one-time token for ``email``. Only its SHA-256 is stored.

    MongoDB removes tokens a day after ``expires_at`` through a TTL index; ``consume``
    refuses expired ones itself.
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
                [("expires_at", pymongo.ASCENDING)],
                name="expires_ttl",
                expireAfterSeconds=KEEP_AFTER_EXPIRY_SECONDS,
            ),
        ]

    @classmethod
    async def issue(
        cls, email: str, *, purpose: str = "login", ttl: timedelta = timedelta(minutes=15)
    ) -> tuple[str, EmailVerificationToken]:
        """Create a token for ``email`` and return ``(raw_token, document)``.

        The raw token (32 random bytes, URL-safe) is returned only here. Older unused
        tokens of the same email and purpose are deleted, so only the newest link works.
        """
        raw = secrets.token_urlsafe(TOKEN_BYTES)
        record = cls(
            email=email, token_hash=hash_token(raw), purpose=purpose, expires_at=utcnow() + ttl
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
        Used tokens stay until their TTL so that ``status`` can tell "used" from "unknown".
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
    async def status(cls, token: str, *, purpose: str = "login") -> TokenStatus:
        """Why a token can or cannot be used, without consuming it."""
        if not _plausible(token):
            return "unknown"
        record = await cls.find_one({"token_hash": hash_token(token), "purpose": purpose})
        if record is None:
            return "unknown"
        if record.used_at is not None:
            return "used"
        return "expired" if record.expires_at <= utcnow() else "valid"


def _plausible(token: object) -> bool:
    return isinstance(token, str) and 0 < len(token) <= 256
