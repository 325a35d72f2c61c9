"""Passkeys (WebAuthn credentials) of users, and the challenges of their ceremonies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import IndexModel

# A credential id is at most 1023 bytes (WebAuthn level 3): 1364 characters in base64url.
CREDENTIAL_ID_MAX = 1364
NAME_MAX = 64


class Passkey(Document):
    """One passkey of a user: the public key a WebAuthn authenticator registered.

    Only public material is stored: the credential id (base64url, unique) and its public
    key (COSE, base64url). ``sign_count`` is the authenticator's signature counter at the
    last sign-in; a sign-in whose counter does not go up is refused (a replayed answer, or
    a copied authenticator), unless the authenticator keeps no counter (always 0).
    """

    user_id: PydanticObjectId
    credential_id: str = Field(min_length=1, max_length=CREDENTIAL_ID_MAX)
    public_key: str = Field(min_length=1, max_length=4096)
    sign_count: int = Field(default=0, ge=0)
    name: str = Field(min_length=1, max_length=NAME_MAX)
    # How the browser may reach the authenticator ("internal", "hybrid", "usb" ...).
    transports: list[str] = Field(default_factory=list)
    aaguid: str = Field(default="", max_length=36)
    # Synced to other devices by its provider (a "multi-device" credential).
    backed_up: bool = False
    created_at: datetime
    last_used_at: datetime | None = None

    class Settings:
        name = "passkeys"
        indexes = [
            IndexModel(
                [("credential_id", pymongo.ASCENDING)], name="credential_unique", unique=True
            ),
            IndexModel([("user_id", pymongo.ASCENDING)], name="user"),
        ]


class PasskeyChallenge(Document):
    """A challenge handed to a browser for one passkey ceremony, usable once.

    ``id`` is the SHA-256 of the challenge, ``binding`` the SHA-256 of a random value
    kept in the browser's session cookie: only the browser session that asked for the
    challenge can use it. Using it deletes it; MongoDB removes unused ones once
    ``expires_at`` has passed (TTL index), and the app refuses them itself from that moment.
    """

    id: str = Field(min_length=64, max_length=64)  # type: ignore[assignment]
    purpose: Literal["register", "sign_in"]
    binding: str = Field(min_length=64, max_length=64)
    # For "register": the signed-in user the new passkey is for.
    user_id: PydanticObjectId | None = None
    expires_at: datetime

    class Settings:
        name = "passkey_challenges"
        indexes = [
            IndexModel(
                [("expires_at", pymongo.ASCENDING)], name="expires_ttl", expireAfterSeconds=0
            ),
        ]
