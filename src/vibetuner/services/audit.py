"""Recording the audit trail: snapshots, field diffs with secrets masked, entries."""

from __future__ import annotations

import re
from typing import Any

from beanie import Document

from vibetuner.models.audit import AuditLog
from vibetuner.models.user import UserModel

MASK = "********"
# Field names whose values never enter the trail (nor any admin page).
SECRET_FIELD = re.compile(
    r"(^|_)(token|tokens|secret|password|hash|api_key|private_key|session_key|credentials?)($|_)",
    re.IGNORECASE,
)
# Bookkeeping that changes on every save and says nothing about the change.
IGNORED_FIELDS = frozenset({"revision_id", "db_update_dt"})


def is_secret_field(name: str) -> bool:
    """True for field names that hold secrets (``access_token``, ``token_hash``, ...)."""
    return bool(SECRET_FIELD.search(name))


def snapshot(document: Document | None) -> dict[str, Any]:
    """The stored fields of ``document`` as JSON-ready values (empty for None)."""
    if document is None:
        return {}
    data: dict[str, Any] = document.model_dump(mode="json", by_alias=False)
    return {name: value for name, value in data.items() if name not in IGNORED_FIELDS}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before": old, "after": new}}`` for each field that differs.

    A secret field that changed is recorded as changed, with both values masked.
    """
    changes: dict[str, dict[str, Any]] = {}
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if is_secret_field(name):
            old, new = (MASK if old is not None else None), (MASK if new is not None else None)
        changes[name] = {"before": old, "after": new}
    return changes


async def record(
    *,
    actor: UserModel | None,
    action: str,
    target_type: str,
    target_id: object = "",
    target_label: str = "",
    changes: dict[str, dict[str, Any]] | None = None,
    ip_prefix: str = "",
) -> AuditLog:
    """Store one audit entry and return it."""
    entry = AuditLog(
        actor_id=actor.id if actor is not None else None,
        actor_email=actor.email if actor is not None else "",
        action=action[:64],
        target_type=target_type[:64],
        target_id=str(target_id)[:128],
        target_label=target_label[:300],
        changes=changes or {},
        ip_prefix=ip_prefix,
    )
    await entry.insert()
    return entry
