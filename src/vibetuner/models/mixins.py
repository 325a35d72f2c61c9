"""Mixins shared by vibetuner documents."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from beanie import Insert, Replace, Save, SaveChanges, Update, before_event
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from vibetuner.errors import DuplicateKey


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime, at MongoDB's millisecond precision."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class TimeStampMixin(BaseModel):
    """Adds ``db_insert_dt`` and ``db_update_dt`` (timezone-aware UTC) to a Document.

    Both are set on insert. ``db_update_dt`` is refreshed by the document-level writes
    ``save()``, ``replace()``, ``save_changes()``, ``set()`` and ``update()``.

    Query-level bulk writes -- ``Model.find(...).update(...)``, ``update_many`` and
    ``insert_many`` -- do not fire Beanie's event hooks, so they do not touch these
    fields; set ``db_update_dt`` yourself in such updates.

    The hook names must not start with ``_``: some Beanie releases skip such hooks.
    """

    db_insert_dt: datetime | None = None
    db_update_dt: datetime | None = None

    @before_event(Insert)
    def stamp_insert(self) -> None:
        now = utcnow()
        self.db_insert_dt = now
        self.db_update_dt = now

    @before_event(Save, Replace, SaveChanges, Update)
    def stamp_update(self) -> None:
        now = utcnow()
        # save() of a new document goes through an upsert, not an insert.
        if self.db_insert_dt is None:
            self.db_insert_dt = now
        self.db_update_dt = now


class DomainErrorsMixin:
    """Turns unique-index violations on document writes into a domain error.

    A document class overrides ``duplicate_error`` to name what was duplicated.
    """

    def duplicate_error(self) -> Exception:
        """The error raised when a write of this document breaks a unique index."""
        return DuplicateKey(f"{type(self).__name__} breaks a unique index")

    async def insert(self, *args: Any, **kwargs: Any) -> Any:
        with duplicate_key_as(self.duplicate_error):
            return await super().insert(*args, **kwargs)  # type: ignore[misc]

    async def save(self, *args: Any, **kwargs: Any) -> Any:
        with duplicate_key_as(self.duplicate_error):
            return await super().save(*args, **kwargs)  # type: ignore[misc]

    async def replace(self, *args: Any, **kwargs: Any) -> Any:
        with duplicate_key_as(self.duplicate_error):
            return await super().replace(*args, **kwargs)  # type: ignore[misc]

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        with duplicate_key_as(self.duplicate_error):
            return await super().update(*args, **kwargs)  # type: ignore[misc]


@contextmanager
def duplicate_key_as(make_error: Callable[[], Exception]) -> Iterator[None]:
    """Turn the driver's ``DuplicateKeyError`` into the domain error ``make_error()`` builds."""
    try:
        yield
    except DuplicateKeyError as exc:
        raise make_error() from exc
