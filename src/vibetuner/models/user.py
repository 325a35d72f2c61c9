"""The user account."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

import pymongo
from beanie import BackLink, Document, PydanticObjectId
from pydantic import AfterValidator, Field
from pymongo import IndexModel

from vibetuner.errors import DuplicateEmail
from vibetuner.models.mixins import DomainErrorsMixin, TimeStampMixin
from vibetuner.models.session import UserSession

if TYPE_CHECKING:
    from vibetuner.models.oauth import OAuthAccount


ADMIN_ROLE = "admin"
ROLE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"


def normalize_email(value: str) -> str:
    """Validate an email address and return the form stored and looked up.

    The whole address is lower-cased, so lookups are case-insensitive. Raises
    ``ValueError`` with a readable reason when the address is not valid.
    """
    if not isinstance(value, str):
        raise ValueError("email must be a string")
    return _normalize(value)


# Every user loaded from the database is validated again; the same few addresses come
# back on every request, and email-validator's checks are not cheap.
@lru_cache(maxsize=4096)
def _normalize(value: str) -> str:
    # Imported on first use: compiling its patterns costs ~30 ms, more than this package.
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return checked.normalized.lower()


Email = Annotated[str, AfterValidator(normalize_email)]


class UserModel(DomainErrorsMixin, TimeStampMixin, Document):
    """A person who can sign in. ``email`` is unique and stored lower-cased."""

    email: Email
    name: str | None = Field(default=None, max_length=200)
    picture: str | None = Field(default=None, max_length=2048)
    # The language the user chose (a locale code such as "es"); None follows the browser.
    locale: str | None = Field(default=None, max_length=20)
    # Stored once, as each account's ``user`` link; resolved by ``fetch_links=True``.
    oauth_accounts: list[BackLink[OAuthAccount]] = Field(
        default_factory=list, json_schema_extra={"original_field": "user"}
    )
    is_active: bool = True
    # What the user may do beyond their own data ("admin" reaches the back office).
    # Documents stored before roles existed read as no roles: nothing to migrate.
    roles: list[str] = Field(default_factory=list)
    email_verified_at: datetime | None = None
    last_login_at: datetime | None = None
    session_version: int = 1

    class Settings:
        name = "users"
        indexes = [IndexModel([("email", pymongo.ASCENDING)], name="email_unique", unique=True)]

    def has_role(self, role: str) -> bool:
        """True when the user holds ``role``."""
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        """True for users with the ``admin`` role."""
        return ADMIN_ROLE in self.roles

    def duplicate_error(self) -> Exception:
        return DuplicateEmail(self.email)

    @classmethod
    async def load(cls, user_id: PydanticObjectId) -> UserModel | None:
        """The user with this id, or None: one ``find_one``, validated like ``get``.

        This runs on every signed-in request; Beanie's ``get`` spends about 30 us more
        per call building its query, with the same result for a document like this one
        (no state management, links left unfetched).
        """
        raw = await cls.get_pymongo_collection().find_one({"_id": user_id})
        return None if raw is None else cls.model_validate(raw)

    @classmethod
    async def get_by_email(cls, email: str, **kwargs: Any) -> UserModel | None:
        """The user with this email (any letter case), or None. Invalid addresses give None."""
        try:
            normalized = normalize_email(email)
        except ValueError:
            return None
        return await cls.find_one({"email": normalized}, **kwargs)

    async def sign_out_everywhere(self) -> None:
        """End every session of this user: delete them, and bump ``session_version`` so a
        session being created at this very moment is refused too."""

        await self.inc({UserModel.session_version: 1})
        await UserSession.get_pymongo_collection().delete_many({"user_id": self.id})
