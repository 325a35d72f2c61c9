"""Recording the audit trail: snapshots, field diffs with secrets masked, entries."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from beanie import Document, Link, PydanticObjectId
from beanie.odm.fields import LinkTypes
from pydantic import TypeAdapter

from vibetuner.models.audit import AuditLog
from vibetuner.models.user import UserModel
from vibetuner.request_id import current_request_id

MASK = "********"
# Field names whose values never enter the trail (nor any admin page).
SECRET_FIELD = re.compile(
    r"(^|_)(token|tokens|secret|password|hash|api_key|private_key|session_key|credentials?)($|_)",
    re.IGNORECASE,
)
# Bookkeeping that changes on every save and says nothing about the change.
IGNORED_FIELDS = frozenset({"revision_id", "db_update_dt"})
BACK_LINKS = frozenset(
    {
        LinkTypes.BACK_DIRECT,
        LinkTypes.BACK_LIST,
        LinkTypes.OPTIONAL_BACK_DIRECT,
        LinkTypes.OPTIONAL_BACK_LIST,
    }
)
_DATETIME = TypeAdapter(datetime)


def is_secret_field(name: str) -> bool:
    """True for field names that hold secrets (``access_token``, ``token_hash``, ...)."""
    return bool(SECRET_FIELD.search(name))


def snapshot(document: Document | None) -> dict[str, Any]:
    """The stored fields of ``document`` as JSON-ready values (empty for None).

    Each value is written the same way whatever state the document was loaded in, so
    a diff shows changes only: a back link (``UserModel.oauth_accounts``) is not stored
    and left out; a link is the linked document's id, fetched or not; a datetime is
    UTC (the database hands back naive UTC, a form posts it without a zone).
    """
    if document is None:
        return {}
    links = type(document).get_link_fields() or {}
    back = {name for name, info in links.items() if info.link_type in BACK_LINKS}
    data: dict[str, Any] = document.model_dump(
        mode="json", by_alias=False, exclude=IGNORED_FIELDS | back
    )
    for name in data:
        value = getattr(document, name, None)
        if name in links:
            data[name] = _link_ids(value)
        elif isinstance(value, datetime):
            moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
            data[name] = _DATETIME.dump_python(moment, mode="json")
    return data


def _link_ids(value: Any) -> Any:
    """A link's value as the linked id(s): from a ``Link``, a fetched document, a list."""
    if isinstance(value, list):
        return [_link_ids(item) for item in value]
    if isinstance(value, Link):
        return str(value.ref.id)
    if isinstance(value, Document):
        return str(value.id)
    return value


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
    method: str = "",
    path: str = "",
    actor_id: PydanticObjectId | None = None,
) -> AuditLog:
    """Store one audit entry and return it.

    ``method`` and ``path`` name the request the entry is about; ``actor_id`` names an
    actor whose user record is gone (``actor`` None).
    """
    entry = AuditLog(
        actor_id=actor.id if actor is not None else actor_id,
        actor_email=actor.email if actor is not None else "",
        action=action[:64],
        target_type=target_type[:64],
        target_id=str(target_id)[:128],
        target_label=target_label[:300],
        changes=changes or {},
        ip_prefix=ip_prefix,
        method=method[:16],
        path=path[:300],
        request_id=current_request_id() or "",
    )
    await entry.insert()
    return entry
