"""Signed-in sessions, one document per browser, so the server can end any of them."""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import IndexModel


class UserSession(Document):
    """One signed-in browser of a user.

    ``id`` is the SHA-256 of the token in the browser's cookie: the raw token is never
    stored, so a copy of the database signs nobody in. ``public_id`` names the session
    on the sessions page (revoking one). MongoDB removes the document once
    ``expires_at`` -- sign-in time plus ``SESSION_MAX_AGE``, never pushed back -- has
    passed (TTL index); the app refuses it itself from that moment, and after
    ``SESSION_IDLE_TIMEOUT`` without a request.
    """

    id: str = Field(min_length=64, max_length=64)  # type: ignore[assignment]
    public_id: str = Field(max_length=32)
    user_id: PydanticObjectId
    session_version: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str = Field(default="", max_length=300)
    ip_prefix: str = Field(default="", max_length=64)
    # Set when an admin opened the app as this user ("view as user"): that admin's id.
    impersonator_id: PydanticObjectId | None = None
    # Signed in with the first factor only, waiting for the two-factor code: no signed-in
    # request accepts it (the sign-in's second step replaces it with a full session).
    pending_second_factor: bool = False
    # When this session last gave a second factor (sign-in, or confirming before a
    # sensitive action); None when it never did.
    second_factor_at: datetime | None = None

    class Settings:
        name = "user_sessions"
        indexes = [
            IndexModel([("user_id", pymongo.ASCENDING)], name="user"),
            IndexModel([("public_id", pymongo.ASCENDING)], name="public_id_unique", unique=True),
            IndexModel(
                [("expires_at", pymongo.ASCENDING)], name="expires_ttl", expireAfterSeconds=0
            ),
        ]
