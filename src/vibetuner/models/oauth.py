"""Accounts at OAuth / OpenID Connect providers, linked to a user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Document, Link
from pydantic import Field, SecretStr, SerializerFunctionWrapHandler, model_serializer
from pymongo import IndexModel

from vibetuner.errors import DuplicateOAuthAccount
from vibetuner.models.mixins import DomainErrorsMixin, TimeStampMixin
from vibetuner.models.user import UserModel

TOKEN_FIELDS = ("access_token", "refresh_token")


class OAuthAccount(DomainErrorsMixin, TimeStampMixin, Document):
    """One provider identity (``provider`` + ``provider_user_id``) of a user.

    The provider tokens are ``SecretStr``, hidden from ``repr`` and left out of
    ``model_dump``/``model_dump_json``; Beanie still stores them. The sign-in service
    stores them encrypted when ``TOKEN_ENCRYPTION_KEY`` is set.
    """

    provider: str = Field(max_length=64)
    provider_user_id: str = Field(max_length=256)
    user: Link[UserModel]
    email: str | None = None
    email_verified: bool = False
    access_token: SecretStr | None = Field(default=None, repr=False)
    refresh_token: SecretStr | None = Field(default=None, repr=False)
    expires_at: datetime | None = None
    scope: str | None = None

    class Settings:
        name = "oauth_accounts"
        indexes = [
            IndexModel(
                [("provider", pymongo.ASCENDING), ("provider_user_id", pymongo.ASCENDING)],
                name="provider_account_unique",
                unique=True,
            ),
            IndexModel([("user.$id", pymongo.ASCENDING)], name="user"),
        ]

    @model_serializer(mode="wrap")
    def drop_tokens(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Beanie encodes documents for MongoDB with its own encoder, so the tokens are
        # still stored; every pydantic dump (APIs, logs, json) leaves them out.
        data: dict[str, Any] = handler(self)
        for name in TOKEN_FIELDS:
            data.pop(name, None)
        return data

    def duplicate_error(self) -> Exception:
        return DuplicateOAuthAccount(self.provider, self.provider_user_id)
