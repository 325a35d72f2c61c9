"""A user's two-factor (TOTP) secret and recovery codes; one document per user."""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import IndexModel


class TwoFactorSecret(Document):
    """The authenticator-app secret of one user.

    ``secret`` is encrypted (``fernet:...``), never stored in clear. Until
    ``confirmed_at`` is set the user has started turning two-factor on but not typed a
    code from the app yet: it does not count. ``last_step`` is the newest 30-second
    step whose code was accepted, so no code is accepted twice. ``recovery_codes`` hold
    the SHA-256 of each unused recovery code; a used one is pulled out.
    """

    user_id: PydanticObjectId
    secret: str = Field(max_length=500)
    confirmed_at: datetime | None = None
    last_step: int = 0
    recovery_codes: list[str] = Field(default_factory=list)
    created_at: datetime

    class Settings:
        name = "two_factor_secrets"
        indexes = [IndexModel([("user_id", pymongo.ASCENDING)], name="user_unique", unique=True)]
