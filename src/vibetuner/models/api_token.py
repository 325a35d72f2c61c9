"""Personal API tokens: one document per token a user made for a script or another app."""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import IndexModel


class ApiToken(Document):
    """A token that authenticates API requests as its user, within its scopes.

    ``id`` is the SHA-256 of the token: the token itself is shown to the user once and
    never stored. ``public_id`` names it on the account page and in the admin (revoking
    it). Revoking deletes the document; MongoDB also removes it once ``expires_at`` has
    passed (TTL index), and the app refuses it from that moment itself.
    """

    id: str = Field(min_length=64, max_length=64)  # type: ignore[assignment]
    public_id: str = Field(max_length=32)
    user_id: PydanticObjectId
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=list)
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None
    # The client address of the last use (as the rate limits count it: IPv6 per /64).
    last_used_address: str | None = Field(default=None, max_length=64)

    class Settings:
        name = "api_tokens"
        indexes = [
            IndexModel([("user_id", pymongo.ASCENDING)], name="user"),
            IndexModel([("public_id", pymongo.ASCENDING)], name="public_id_unique", unique=True),
            IndexModel(
                [("expires_at", pymongo.ASCENDING)], name="expires_ttl", expireAfterSeconds=0
            ),
        ]
