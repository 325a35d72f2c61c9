"""The in-memory MongoDB: mongomock-motor plus what Beanie 2.2 needs from it.

Beanie 2 talks to PyMongo's async API, which mongomock-motor (built to imitate Motor)
does not fully match. ``apply_compat()`` closes the gaps:

* ``list_collection_names(authorizedCollections=..., nameOnly=...)`` is accepted;
* aggregation cursors can be awaited (PyMongo's ``await collection.aggregate(...)``);
* ``$lookup`` follows DBRef ``$id`` paths on either side and runs a sub-``pipeline``,
  the form Beanie emits for ``fetch_links`` (cyclic links included);
* queries step into DBRefs, so ``Model.find(Model.owner.id == user.id)`` (``owner.$id``)
  matches as it does on MongoDB;
* ``bulk_write(..., comment=...)`` is accepted (Beanie's ``BulkWriter``, ``replace_many``);
* inserting an existing ``_id`` reports the key, so Beanie's revision check raises
  ``RevisionIdWasChanged`` as it does on MongoDB;
* ``index_information()`` gives every index's key as a list of pairs, as PyMongo does;
* a lookup by ``_id`` reads the one document, one field matched to an ObjectId or a
  string reads an equality index, and the TTL scan runs only when it can find something
  (``mongo_memory_lookups``), so a signed-in request costs the same with ten sessions
  stored or ten thousand;
* what mongomock would silently get wrong or fail on obscurely -- collations, sessions
  and transactions, ``$text`` -- raises ``MemoryBackendUnsupported`` naming the way out
  (``UNSUPPORTED`` lists them; the README's table is made from it).

The patches are idempotent and only touch mongomock classes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from bson import DBRef, ObjectId

from vibetuner.errors import MemoryBackendUnsupported

_applied = False

REAL_SERVER = "run against a real MongoDB (set MONGODB_URL)"

#: What the in-memory database does not do: (key, feature, what happens, what to use).
UNSUPPORTED: tuple[tuple[str, str, str, str], ...] = (
    (
        "collation",
        "Collations (for example a case-insensitive unique index or query)",
        "refused with MemoryBackendUnsupported when the index or query is made",
        "store a normalised copy of the field (as `UserModel.email` is), or " + REAL_SERVER,
    ),
    (
        "sessions",
        "Sessions and multi-document transactions",
        "`start_session()` raises MemoryBackendUnsupported",
        REAL_SERVER + " replica set; `vibetuner db migrate` runs without `--transaction`",
    ),
    (
        "text",
        "Text search (`$text`)",
        "the query raises MemoryBackendUnsupported",
        "a regex or prefix query in development, or " + REAL_SERVER,
    ),
    (
        "bulk_sort",
        "`sort` on `UpdateOne` / `ReplaceOne` in a bulk write",
        "refused with MemoryBackendUnsupported",
        "select the document by a unique filter, or " + REAL_SERVER,
    ),
    (
        "index_speed",
        "Using indexes for lookups",
        "a query scans its collection (about 3 ms at 2,000 documents), except one that "
        "matches a single field to an ObjectId or a string (`_id`, an email, a link's id)",
        "keep development data small, or " + REAL_SERVER,
    ),
    (
        "document_size",
        "The 16 MB document limit",
        "larger documents are accepted",
        "test limits on a real MongoDB (the CI job with `TEST_MONGODB_URL`)",
    ),
)


def unsupported_table() -> str:
    """``UNSUPPORTED`` as the Markdown table in the README."""
    lines = [
        "| feature | on the in-memory database | instead |",
        "|---|---|---|",
        *(f"| {feature} | {happens} | {instead} |" for _, feature, happens, instead in UNSUPPORTED),
    ]
    return "\n".join(lines)


def _refuse(key: str) -> MemoryBackendUnsupported:
    _, feature, _, instead = next(row for row in UNSUPPORTED if row[0] == key)
    return MemoryBackendUnsupported(
        f"the in-memory database does not support this: {feature}. Instead: {instead}."
    )


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

    db_class.list_collection_names = list_collection_names

    for cursor_class in (
        mongomock_motor.AsyncCommandCursor,
        mongomock_motor.AsyncLatentCommandCursor,
    ):
        cursor_class.__await__ = _await_self

    mongomock.aggregate._PIPELINE_HANDLERS["$lookup"] = _handle_lookup_stage

    original_candidates = mongomock.filtering.iter_key_candidates

    def iter_key_candidates(key: str, doc: Any) -> Any:
        # Let queries step into DBRefs: {"owner.$id": ...} is how Beanie filters on a Link.
        if key:
            if isinstance(doc, DBRef):
                doc = _dbref_as_dict(doc)
            elif isinstance(doc, list):
                doc = [_dbref_as_dict(item) if isinstance(item, DBRef) else item for item in doc]
        return original_candidates(key, doc)

    mongomock.filtering.iter_key_candidates = iter_key_candidates
    from vibetuner.mongo_memory_lookups import apply_lookup_patches

    apply_lookup_patches()
    _patch_writes_and_indexes()
    _patch_refusals()
    _patch_leading_match()
    _applied = True


def _patch_leading_match() -> None:
    import mongomock.aggregate
    import mongomock.collection

    collection = mongomock.collection.Collection
    original_aggregate = collection.aggregate

    def aggregate(self: Any, pipeline: Any, session: Any = None, **kwargs: Any) -> Any:
        # mongomock starts every pipeline from a copy of the whole collection. One that
        # starts with $match starts from find() with that filter instead: the same
        # documents, copied only when they match, found by _id or an equality index when
        # the filter allows (a session by its key does not copy every session).
        first = pipeline[0] if isinstance(pipeline, list) and pipeline else None
        if isinstance(first, dict) and len(first) == 1 and isinstance(first.get("$match"), dict):
            matching = list(self.find(first["$match"]))
            rest = pipeline[1:]
            return mongomock.aggregate.process_pipeline(matching, self.database, rest, session)
        return original_aggregate(self, pipeline, session, **kwargs)

    collection.aggregate = aggregate


def _patch_writes_and_indexes() -> None:
    import mongomock.collection
    from pymongo.errors import DuplicateKeyError

    collection = mongomock.collection.Collection

    original_bulk_write = collection.bulk_write

    def bulk_write(self: Any, requests: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("comment", None)  # a note for the server's logs; no effect on results
        return original_bulk_write(self, requests, *args, **kwargs)

    collection.bulk_write = bulk_write

    # PyMongo 4.11+ passes ``sort`` (for updateOne/replaceOne) into bulk builders.
    builder = mongomock.collection.BulkOperationBuilder
    for name in ("add_replace", "add_update"):
        builder_method = getattr(builder, name)

        def without_sort(
            self: Any, *args: Any, _method: Any = builder_method, **kwargs: Any
        ) -> Any:
            if kwargs.pop("sort", None) is not None:
                raise _refuse("bulk_sort")
            return _method(self, *args, **kwargs)

        setattr(builder, name, without_sort)

    original_insert = collection._insert

    def insert(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        # Report the duplicate key as MongoDB does: Beanie reads it to tell a revision
        # conflict (RevisionIdWasChanged) from a unique-index violation.
        object_id = data.get("_id") if isinstance(data, dict) else None
        if object_id is not None and not isinstance(object_id, dict):
            if object_id in self._store:
                raise DuplicateKeyError(
                    "E11000 duplicate key error",
                    11000,
                    {"keyPattern": {"_id": 1}, "keyValue": {"_id": object_id}},
                )
        return original_insert(self, data, *args, **kwargs)

    collection._insert = insert

    original_information = collection.index_information

    def index_information(self: Any, *args: Any, **kwargs: Any) -> Any:
        found = original_information(self, *args, **kwargs)
        for info in found.values():
            info["key"] = list(info["key"])  # PyMongo gives a list of (field, direction)
        return found

    collection.index_information = index_information


def _patch_refusals() -> None:
    import mongomock.collection
    import mongomock.filtering
    import mongomock_motor

    collection = mongomock.collection.Collection

    original_create_indexes = collection.create_indexes

    def create_indexes(self: Any, indexes: Any, *args: Any, **kwargs: Any) -> Any:
        if any("collation" in getattr(index, "document", {}) for index in indexes):
            raise _refuse("collation")
        return original_create_indexes(self, indexes, *args, **kwargs)

    collection.create_indexes = create_indexes

    original_create_index = collection.create_index

    def create_index(self: Any, keys: Any, *args: Any, **kwargs: Any) -> Any:
        if "collation" in kwargs:
            raise _refuse("collation")
        return original_create_index(self, keys, *args, **kwargs)

    collection.create_index = create_index

    original_find = collection.find

    def find(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("collation") is not None:
            raise _refuse("collation")
        return original_find(self, *args, **kwargs)

    collection.find = find

    def collation(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise _refuse("collation")

    mongomock.collection.Cursor.collation = collation

    def start_session(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise _refuse("sessions")

    mongomock_motor.AsyncMongoMockClient.start_session = start_session

    original_filter_applies = mongomock.filtering.filter_applies

    def filter_applies(search_filter: Any, document: Any) -> Any:
        if isinstance(search_filter, dict) and "$text" in search_filter:
            raise _refuse("text")
        return original_filter_applies(search_filter, document)

    mongomock.filtering.filter_applies = filter_applies
    mongomock.collection.filter_applies = filter_applies


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
    for foreign_doc in _lookup_candidates(in_collection, foreign, options):
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
            joined = list(process_pipeline(joined, database, pipeline, None))
        doc[options["as"]] = joined
    return in_collection


# Up to this many distinct ids or strings, a $lookup asks for each one (by _id or an
# equality index) instead of reading the whole foreign collection.
LOOKUP_BY_VALUE_LIMIT = 32


def _lookup_candidates(
    in_collection: list[dict[str, Any]], foreign: Any, options: dict[str, Any]
) -> list[dict[str, Any]]:
    """The foreign documents a $lookup may join: all of them, or those with a local value."""
    wanted: set[Any] = set()
    for doc in in_collection:
        for value in values_at(doc, options["localField"]) or [None]:
            if not isinstance(value, (ObjectId, str)):
                return list(foreign.find())
            wanted.add(value)
    if len(wanted) > LOOKUP_BY_VALUE_LIMIT:
        return list(foreign.find())
    found: dict[Any, dict[str, Any]] = {}
    for value in wanted:
        for foreign_doc in foreign.find({options["foreignField"]: value}):
            found.setdefault(foreign_doc["_id"], foreign_doc)
    return list(found.values())


def _hashable(values: Iterable[Any]) -> Iterable[Any]:
    for value in values:
        try:
            hash(value)
        except TypeError:
            continue
        yield value
