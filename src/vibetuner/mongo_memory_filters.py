"""Filters rewritten so that mongomock's equality keeps BSON types apart.

mongomock compares a filter's values with Python's ``==``, where ``True == 1`` and
``False == 0``; MongoDB never matches a boolean to a number. ``strict_filter`` wraps each
boolean and number a filter compares for equality (a plain value, ``$eq``, ``$ne``,
``$in``, ``$nin``, ``$all``, inside subdocuments and arrays) in ``Exactly``, whose
equality also checks the kind. Order comparisons (``$gt`` ...) already keep types apart
in mongomock. ``{"$type": "null"}``, which mongomock does not implement, becomes an
``$eq`` with ``IS_NULL``, a value equal only to ``None``: mongomock's ``$eq`` never
matches a missing field to anything but ``None`` itself, and tests each element of an
array, so it matches what MongoDB's ``$type: "null"`` does. The filter handed back is a
new object; an unchanged filter is returned as is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bson import Decimal128

_NUMBERS = (int, float, Decimal, Decimal128)
_EQUALITY_LISTS = ("$in", "$nin", "$all")


class Exactly:
    """A boolean or a number that equals only values of the same BSON kind."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Exactly):
            other = other.value
        if isinstance(self.value, bool):
            return isinstance(other, bool) and other == self.value
        if isinstance(other, bool) or not isinstance(other, _NUMBERS):
            return False
        return bool(other == self.value)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return repr(self.value)


class IsNull:
    """Equal to ``None`` only (not to a missing field, which mongomock never passes as None)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return other is None

    def __ne__(self, other: object) -> bool:
        return other is not None

    def __hash__(self) -> int:
        return hash(None)

    def __repr__(self) -> str:
        return "IS_NULL"


IS_NULL = IsNull()
# $type's names and numbers for null.
_NULL_TYPES = ("null", 10)


def _exact(value: Any) -> Any:
    if isinstance(value, bool) or (isinstance(value, _NUMBERS) and not isinstance(value, bool)):
        return Exactly(value)
    if isinstance(value, list):
        return [_exact(item) for item in value]
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    return value


def _is_operators(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(str(k).startswith("$") for k in value)


def _strict_operators(operators: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in operators.items():
        if name in ("$eq", "$ne"):
            out[name] = _exact(value)
        elif name in _EQUALITY_LISTS and isinstance(value, list):
            out[name] = [_exact(item) for item in value]
        elif name == "$not" and _is_operators(value):
            out[name] = _strict_operators(value)
        elif name == "$elemMatch" and isinstance(value, dict):
            out[name] = _strict_operators(value) if _is_operators(value) else _strict(value)
        elif name == "$type" and value in _NULL_TYPES and "$eq" not in operators:
            # (With an $eq of its own, the $type stays, and mongomock refuses it loudly.)
            out["$eq"] = IS_NULL
        else:
            out[name] = value
    return out


def _strict(filter: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in filter.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            out[key] = [_strict(item) if isinstance(item, dict) else item for item in value]
        elif str(key).startswith("$"):
            out[key] = value  # $expr, $text, $comment, $where: not equality on a field
        elif _is_operators(value):
            out[key] = _strict_operators(value)
        else:
            out[key] = _exact(value)
    return out


def _contains_exactly(value: Any) -> bool:
    if isinstance(value, (Exactly, IsNull)):
        return True
    if isinstance(value, dict):
        return any(_contains_exactly(item) for item in value.values())
    if isinstance(value, list):
        return any(_contains_exactly(item) for item in value)
    return False


def strict_filter(filter: Any) -> Any:
    """``filter`` with its equality values wrapped in ``Exactly`` (see the module)."""
    if not isinstance(filter, dict) or not filter:
        return filter
    strict = _strict(filter)
    return strict if _contains_exactly(strict) else filter


def strict_pipeline(pipeline: Any) -> Any:
    """``pipeline`` with the filter of each top-level ``$match`` stage made strict."""
    if not isinstance(pipeline, list):
        return pipeline
    return [
        {"$match": strict_filter(stage["$match"])}
        if isinstance(stage, dict) and len(stage) == 1 and "$match" in stage
        else stage
        for stage in pipeline
    ]


def mentions(value: Any, operator: str) -> bool:
    """Whether ``operator`` appears as a key anywhere in a filter or pipeline."""
    if isinstance(value, dict):
        return operator in value or any(mentions(item, operator) for item in value.values())
    if isinstance(value, list):
        return any(mentions(item, operator) for item in value)
    return False
