"""Document ids from untrusted text (URLs, cookies, forms)."""

from __future__ import annotations

from beanie import PydanticObjectId
from bson.errors import InvalidId


def parse_object_id(value: object) -> PydanticObjectId | None:
    """The ObjectId that ``value`` spells, or None when it is not one (never raises).

    Routes answer a malformed id like a missing document (404), not with a 422 that
    would tell a prober which ids are well-formed.
    """
    if isinstance(value, PydanticObjectId):
        return value
    if not isinstance(value, str) or len(value) != 24:
        return None
    try:
        return PydanticObjectId(value)
    except (InvalidId, TypeError, ValueError):
        return None
