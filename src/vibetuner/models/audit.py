"""The audit trail: one document per change made through the admin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import IndexModel

from vibetuner.models.mixins import utcnow


class AuditLog(Document):
    """Who did what to which record, when, and the fields it changed.

    The actor and the target are copied in (id, email, label), not linked, so an entry
    stays readable after either is deleted. ``changes`` maps each changed field to
    ``{"before": ..., "after": ...}`` with secrets already masked. ``method`` and
    ``path`` name the request, for entries about one (a write made while an admin
    views the app as a user, the end of such a view).
    """

    at: datetime = Field(default_factory=utcnow)
    actor_id: PydanticObjectId | None = None
    actor_email: str = Field(default="", max_length=320)
    # "create", "edit", "delete", an action's name ("deactivate", "view_as", ...), or
    # "view_as_write" / "view_as_end" (a request made while viewing as a user).
    action: str = Field(max_length=64)
    target_type: str = Field(max_length=64)
    target_id: str = Field(default="", max_length=128)
    target_label: str = Field(default="", max_length=300)
    changes: dict[str, Any] = Field(default_factory=dict)
    ip_prefix: str = Field(default="", max_length=64)
    method: str = Field(default="", max_length=16)
    path: str = Field(default="", max_length=300)
    # The id of the request that made the change (X-Request-ID), to find its log lines.
    request_id: str = Field(default="", max_length=128)

    class Settings:
        name = "audit_log"
        indexes = [
            IndexModel([("at", pymongo.DESCENDING)], name="at"),
            IndexModel(
                [("target_type", pymongo.ASCENDING), ("target_id", pymongo.ASCENDING)],
                name="target",
            ),
            IndexModel([("actor_id", pymongo.ASCENDING)], name="actor"),
        ]
