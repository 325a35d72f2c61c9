"""Lookups on the in-memory database that do not grow with the collection.

mongomock answers every query by scanning its collection, and before every read it
scans the collection again for documents past a TTL index. A signed-in request reads a
session and a user by ``_id``, so with a few thousand sessions in the development
database every request paid two full scans. ``apply_lookup_patches()`` changes this,
without changing any answer:

* a filter that is exactly ``{"_id": <ObjectId or str>}`` reads the one document from
  the collection's store, which mongomock already keys by ``_id``;
* a filter that is exactly ``{"field.path": <ObjectId or str>}`` (an email, a link's
  ``owner.$id``) reads an equality index of that path, built on the first such query
  after a write to the collection; where a document holds an array on that path the
  query scans, as before;
* the TTL scan runs only when it can find something: after a write to the collection,
  or once the earliest expiry it saw last time has passed. Expired documents are still
  gone on the first read after they expire, as mongomock has them (MongoDB itself
  removes them within a minute);
* the copy of each document handed out keeps the stored immutable values (strings,
  numbers, dates, ObjectIds) instead of copying each one with ``copy.copy``, and giving
  its dates their UTC zone (the client is timezone-aware) skips those values by type.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from bson import DBRef, ObjectId

from vibetuner.mongo_memory import _dbref_as_dict


def apply_lookup_patches() -> None:
    """Patch mongomock's collection and store classes (``apply_compat`` calls it once)."""
    _patch_equality_lookups()
    _patch_ttl_expiry()
    _patch_result_copies()


def _patch_equality_lookups() -> None:
    import mongomock.collection

    collection = mongomock.collection.Collection
    original_iter_documents = collection._iter_documents

    def _iter_documents(self: Any, filter: Any) -> Any:
        if type(filter) is dict and len(filter) == 1:
            ((path, value),) = filter.items()
            # Only where Python's equality is MongoDB's: not numbers (True == 1 in
            # Python, not in MongoDB), not str subclasses such as Beanie's expressions.
            if (isinstance(value, ObjectId) or type(value) is str) and path[:1] != "$":
                store = self._store
                store._remove_expired_documents()
                documents = store._documents
                if path == "_id":
                    # One dict lookup is atomic; mongomock's reader lock guards iteration.
                    document = documents.get(value)
                    return iter(() if document is None else (document,))
                index = _equality_index(store, path)
                if index is not None:
                    keys = index.get(value, ())
                    return iter([documents[key] for key in keys if key in documents])
        return original_iter_documents(self, filter)

    collection._iter_documents = _iter_documents

    # Updates change stored documents in place, out of the store's sight: count them as
    # writes so the next read looks for newly expired documents.
    original_update = collection._update

    def _update(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original_update(self, *args, **kwargs)
        finally:
            _changed(self._store)

    collection._update = _update

    # mongomock checks unique indexes with a query right after changing a document in
    # place, before ``_update`` returns: the check must not read an index built before.
    original_ensure_uniques = collection._ensure_uniques

    def _ensure_uniques(self: Any, new_data: Any) -> Any:
        _changed(self._store)
        return original_ensure_uniques(self, new_data)

    collection._ensure_uniques = _ensure_uniques


def _changed(store: Any) -> None:
    store._vt_writes = getattr(store, "_vt_writes", 0) + 1


# What a path leads to in one document, besides a value to index.
_ABSENT = object()  # nothing there that could equal an ObjectId or a str
_UNINDEXABLE = object()  # an array on the way (MongoDB matches its elements) or a str subclass


def _equality_index(store: Any, path: str) -> dict[Any, list[Any]] | None:
    """``{value: [_id, ...]}`` for ``path`` over the store, in store order; None when a
    document holds something the index cannot answer for exactly (then the query scans).

    Built on the first query after a write to the collection, kept until the next one.
    """
    writes = getattr(store, "_vt_writes", 0)
    built = store.__dict__.setdefault("_vt_indexes", {})
    found = built.get(path)
    if found is not None and found[0] == writes:
        return found[1]  # type: ignore[no-any-return]
    steps = path.split(".")
    index: dict[Any, list[Any]] | None = {}
    with store._rwlock.reader():
        entries = list(store._documents.items())
    for key, document in entries:
        value = _value_at(document, steps)
        if value is _UNINDEXABLE:
            index = None
            break
        if value is not _ABSENT:
            index.setdefault(value, []).append(key)
    built[path] = (writes, index)
    return index


def _value_at(document: Any, steps: list[str]) -> Any:
    """The ObjectId or str at ``steps`` in ``document``, ``_ABSENT`` or ``_UNINDEXABLE``."""
    current = document
    for step in steps:
        if isinstance(current, DBRef):
            current = _dbref_as_dict(current)  # as queries step into DBRefs
        if isinstance(current, dict):
            current = current.get(step, _ABSENT)
            if current is _ABSENT:
                return _ABSENT
        elif isinstance(current, (list, tuple)):
            return _UNINDEXABLE
        else:
            return _ABSENT
    if type(current) is str or isinstance(current, ObjectId):
        return current
    if isinstance(current, (list, tuple, str)):
        return _UNINDEXABLE
    return _ABSENT  # numbers, dates, None, subdocuments never equal an ObjectId or a str


def _patch_ttl_expiry() -> None:
    import mongomock
    import mongomock.store

    store_class = mongomock.store.CollectionStore

    for name in ("__setitem__", "__delitem__", "create_index", "drop_index", "drop"):
        original = getattr(store_class, name)

        def counted(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            try:
                return _original(self, *args, **kwargs)
            finally:
                _changed(self)

        setattr(store_class, name, counted)

    original_remove = store_class._remove_expired_documents

    def _remove_expired_documents(self: Any) -> None:
        if not self._ttl_indexes:
            return
        now = mongomock.utcnow()
        checked = getattr(self, "_vt_checked", None)
        writes = getattr(self, "_vt_writes", 0)
        if checked is not None and checked[0] == writes and now < checked[1]:
            return  # nothing written since the last scan, and nothing due yet
        original_remove(self)
        self._vt_checked = (getattr(self, "_vt_writes", 0), _next_expiry(self, now))

    store_class._remove_expired_documents = _remove_expired_documents


def _next_expiry(store: Any, now: datetime) -> datetime:
    """The earliest moment a document of ``store`` can expire (mongomock's own rules)."""
    import mongomock.store

    earliest = timedelta.max
    with store._rwlock.reader():
        documents = list(store._documents.values())
    for index in list(store._ttl_indexes.values()):
        try:
            after = timedelta(seconds=int(index["expireAfterSeconds"]))
        except (TypeError, ValueError):
            continue  # mongomock ignores it too
        if len(index["key"]) > 1:
            continue  # compound keys never expire documents, here or in MongoDB
        field = next(iter(index["key"]))[0]
        for document in documents:
            value = mongomock.store._get_min_datetime_from_value(document.get(field))
            try:
                left = value + after - now
            except (TypeError, OverflowError):
                continue  # not a date (or datetime.max): mongomock never expires it
            earliest = min(earliest, left)
    try:
        return now + earliest
    except OverflowError:
        return datetime.max


# Values whose copy is the value itself: ``copy.copy`` returns them unchanged or an equal
# immutable object. Exact types only; subclasses take mongomock's way.
_KEPT_AS_IS = frozenset({str, int, float, bool, type(None), bytes, ObjectId, datetime})


def _patch_result_copies() -> None:
    import mongomock.collection

    def _copy_field(obj: Any, container: Any) -> Any:
        if type(obj) in _KEPT_AS_IS:
            return obj
        if isinstance(obj, list):
            return [_copy_field(item, container) for item in obj]
        if isinstance(obj, dict):
            new = container()
            for key, value in obj.items():
                new[key] = _copy_field(value, container)
            return new
        return copy.copy(obj)

    # Module-level in mongomock.collection: every caller there looks it up at call time.
    mongomock.collection._copy_field = _copy_field

    import mongomock.helpers

    utc = mongomock.helpers.utc
    plain = _KEPT_AS_IS - {datetime}

    def make_datetime_timezone_aware_in_document(value: Any) -> Any:
        kind = type(value)
        if kind in plain:
            return value
        if kind is datetime:
            return value.replace(tzinfo=utc)
        if isinstance(value, dict):
            return {k: make_datetime_timezone_aware_in_document(v) for k, v in value.items()}
        if isinstance(value, (tuple, list)):
            return [make_datetime_timezone_aware_in_document(item) for item in value]
        if isinstance(value, datetime):
            return value.replace(tzinfo=utc)
        return value

    # Looked up through the module by the cursor of a timezone-aware client.
    mongomock.helpers.make_datetime_timezone_aware_in_document = (
        make_datetime_timezone_aware_in_document
    )
