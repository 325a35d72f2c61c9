"""The in-memory MongoDB: mongomock-motor plus what Beanie 2.2 needs from it.

Beanie 2 talks to PyMongo's async API, which mongomock-motor (built to imitate Motor)
does not fully match. ``apply_compat()`` closes the gaps:

* ``list_collection_names(authorizedCollections=..., nameOnly=...)`` is accepted;
* aggregation cursors can be awaited (PyMongo's ``await collection.aggregate(...)``);
* ``$lookup`` follows DBRef ``$id`` paths on either side and runs a sub-``pipeline``,
  the form Beanie emits for ``fetch_links`` (cyclic links included);
* queries step into DBRefs, so ``Model.find(Model.owner.id == user.id)`` (``owner.$id``)
  matches as it does on MongoDB.

The patches are idempotent and only touch mongomock classes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from bson import DBRef

_applied = False


def create_memory_client() -> Any:
    """A new, empty in-memory client (timezone-aware, like the real client we create)."""
    apply_compat()
    from mongomock_motor import AsyncMongoMockClient

    return AsyncMongoMockClient(tz_aware=True)


def apply_compat() -> None:
    """Patch mongomock / mongomock-motor once so Beanie 2.2 runs on them."""
    global _applied
    if _applied:
        return
    import mongomock.aggregate
    import mongomock.filtering
    import mongomock_motor

    db_class = mongomock_motor.AsyncMongoMockDatabase
    original_list_names = db_class.list_collection_names

    async def list_collection_names(self: Any, *args: Any, **kwargs: Any) -> list[str]:
        # PyMongo options mongomock does not know; they do not change the answer here.
        kwargs.pop("authorizedCollections", None)
        kwargs.pop("nameOnly", None)
        return await original_list_names(self, *args, **kwargs)

    db_class.list_collection_names = list_collection_names  # type: ignore[method-assign]

    for cursor_class in (
        mongomock_motor.AsyncCommandCursor,
        mongomock_motor.AsyncLatentCommandCursor,
    ):
        cursor_class.__await__ = _await_self  # type: ignore[union-attr]

    mongomock.aggregate._PIPELINE_HANDLERS["$lookup"] = _handle_lookup_stage

    original_candidates = mongomock.filtering.iter_key_candidates

    def iter_key_candidates(key: str, doc: Any) -> Any:
        # Let queries step into DBRefs: {"owner.$id": ...} is how Beanie filters on a Link.
        if key:
            if isinstance(doc, DBRef):
                doc = _dbref_as_dict(doc)
            elif isinstance(doc, list):
                doc = [_dbref_as_dict(item) if isinstance(item, DBRef) else item for item in doc]
        return original_candidates(key, doc)  # type: ignore[no-untyped-call]

    mongomock.filtering.iter_key_candidates = iter_key_candidates
    _applied = True


def _dbref_as_dict(ref: DBRef) -> dict[str, Any]:
    return {
        "$ref": ref.collection,
        "$id": ref.id,
        **({"$db": ref.database} if ref.database else {}),
    }


def _await_self(self: Any) -> Any:
    # PyMongo's async aggregate() is a coroutine that returns the cursor.
    async def cursor() -> Any:
        return self

    return cursor().__await__()


def values_at(doc: Any, path: str) -> list[Any]:
    """Every value at a dotted ``path`` in ``doc``, fanning out over arrays.

    A ``$id`` step reads the id of a DBRef (or of a ``{"$id": ...}`` mapping).
    """
    current: list[Any] = [doc]
    for step in path.split("."):
        found: list[Any] = []
        for value in current:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, DBRef):
                    if step == "$id":
                        found.append(item.id)
                elif isinstance(item, dict) and step in item:
                    found.append(item[step])
        current = found
    flat: list[Any] = []
    for value in current:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _handle_lookup_stage(
    in_collection: list[dict[str, Any]], database: Any, options: dict[str, Any]
) -> list[dict[str, Any]]:
    from mongomock import OperationFailure
    from mongomock.aggregate import process_pipeline

    if "let" in options:
        raise NotImplementedError("$lookup with 'let' is not supported by the in-memory database")
    for name in ("from", "localField", "foreignField", "as"):
        if not isinstance(options.get(name), str):
            raise OperationFailure(f"$lookup needs a string '{name}'")

    foreign = database.get_collection(options["from"])
    by_value: dict[Any, list[dict[str, Any]]] = {}
    for foreign_doc in foreign.find():
        for value in _hashable(values_at(foreign_doc, options["foreignField"])):
            by_value.setdefault(value, []).append(foreign_doc)

    pipeline = options.get("pipeline") or []
    for doc in in_collection:
        matches: dict[Any, dict[str, Any]] = {}
        for value in _hashable(values_at(doc, options["localField"]) or [None]):
            for match in by_value.get(value, []):
                if match["_id"] not in matches:
                    matches[match["_id"]] = copy.deepcopy(match)
        joined = list(matches.values())
        if pipeline:
            joined = list(process_pipeline(joined, database, pipeline, None))  # type: ignore[no-untyped-call]
        doc[options["as"]] = joined
    return in_collection


def _hashable(values: Iterable[Any]) -> Iterable[Any]:
    for value in values:
        try:
            hash(value)
        except TypeError:
            continue
        yield value
