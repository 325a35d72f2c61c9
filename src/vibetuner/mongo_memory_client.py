"""The in-memory client: mongomock-motor's classes, shaped like PyMongo's async client.

Subclasses of mongomock-motor's public client, database, collection and cursor classes
(built through its public ``mock_mongo_client`` argument) add what Beanie and an app's
own PyMongo calls expect, and check every call's options first:

* ``session=`` takes a session of this client (``start_session()``): one process, one
  copy of the data, so its operations simply run; ``start_transaction()`` is refused;
* ``collation=`` is refused (mongomock would ignore it and answer differently);
* ``hint=`` must name an existing index, as on MongoDB; it changes no answer here;
* ``sort=`` on ``update_one`` / ``replace_one`` picks the document to change;
* ``array_filters=`` and ``let=`` are refused, and so are views;
* equality in a filter keeps BSON types apart (``True`` is not ``1``);
* what mongomock does not implement raises ``MemoryBackendUnsupported`` naming the way
  out, instead of its ``NotImplementedError``;
* ``await client.close()``, ``async with client``, ``is_mongos``, awaitable
  ``aggregate()``, ``list_collection_names`` with PyMongo's options, PyMongo's shape of
  ``index_information()``, ``bulk_write(comment=...)`` and the duplicate ``_id`` of a
  revision conflict reported with its key (Beanie's ``RevisionIdWasChanged``).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import mongomock
import mongomock_motor
from pymongo.errors import DuplicateKeyError, InvalidOperation, OperationFailure

from vibetuner._compat import mongomock as compat
from vibetuner.errors import MemoryBackendUnsupported
from vibetuner.mongo_memory import refuse, unsupported_call
from vibetuner.mongo_memory_filters import mentions, strict_filter, strict_pipeline
from vibetuner.mongo_memory_lookups import lookup_stage

# mongomock-motor's stubs present its classes as Motor's, whose signatures these
# subclasses do not follow (they follow PyMongo's async API): typed as Any here.
AsyncMongoMockClient: Any = mongomock_motor.AsyncMongoMockClient
AsyncMongoMockDatabase: Any = mongomock_motor.AsyncMongoMockDatabase
AsyncMongoMockCollection: Any = mongomock_motor.AsyncMongoMockCollection
AsyncCursor: Any = mongomock_motor.AsyncCursor
AsyncLatentCommandCursor: Any = mongomock_motor.AsyncLatentCommandCursor


class _Ready:
    """An awaitable holding a value already known.

    ``close()`` returns one, so both ``client.close()`` and PyMongo's async
    ``await client.close()`` work; ``is_mongos`` and ``is_primary`` too, which PyMongo's
    async client gives as awaitable properties.
    """

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield


class MemorySession:
    """A session of the in-memory client: its operations run directly.

    Code written for a replica set (``async with client.start_session() as s`` and
    ``session=s``) runs unchanged; transactions are refused.
    """

    def __init__(self, client: MemoryClient) -> None:
        self.client = client
        self.has_ended = False
        self.in_transaction = False

    async def start_transaction(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: the in-memory database has no transactions."""
        raise refuse("transactions")

    async def with_transaction(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: the in-memory database has no transactions."""
        raise refuse("transactions")

    async def end_session(self) -> None:
        """End the session; using it afterwards is an error, as with PyMongo."""
        self.has_ended = True

    async def __aenter__(self) -> MemorySession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.end_session()


def _check_session(client: MemoryClient, options: dict[str, Any]) -> None:
    session = options.pop("session", None)
    if session is None:
        return
    if not isinstance(session, MemorySession) or session.client is not client:
        raise InvalidOperation("can only use a session with the client that started it")
    if session.has_ended:
        raise InvalidOperation("cannot use ended session")


class MemoryClient(AsyncMongoMockClient):
    """An in-memory client (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        self._sync = mongomock.MongoClient(**kwargs)
        super().__init__(mock_mongo_client=self._sync)

    def get_database(self, name: str | None = None, **kwargs: Any) -> MemoryDatabase:
        return MemoryDatabase(self, self._sync.get_database(name, **kwargs))

    def __getitem__(self, name: str) -> MemoryDatabase:
        return self.get_database(name)

    def start_session(self, **kwargs: Any) -> MemorySession:
        """A session whose operations run directly (no transactions)."""
        return MemorySession(self)

    def close(self) -> _Ready:
        """Close the client; the result may be awaited, as PyMongo's async ``close()``."""
        self._sync.close()
        return _Ready()

    async def __aenter__(self) -> MemoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_mongos(self) -> _Ready:
        """``await client.is_mongos``: one in-process server, never a mongos router."""
        return _Ready(False)

    @property
    def is_primary(self) -> _Ready:
        """``await client.is_primary``: the one in-process server takes writes."""
        return _Ready(True)


class MemoryDatabase(AsyncMongoMockDatabase):
    """A database of the in-memory client."""

    def get_collection(self, name: str, **kwargs: Any) -> MemoryCollection:
        return MemoryCollection(self, self.delegate.get_collection(name, **kwargs))

    def __getitem__(self, name: str) -> MemoryCollection:
        return self.get_collection(name)

    async def list_collection_names(self, **kwargs: Any) -> list[str]:
        _check_session(self.client, kwargs)
        # PyMongo options that do not change the answer on one in-process server.
        for name in ("authorizedCollections", "nameOnly", "comment"):
            kwargs.pop(name, None)
        names: list[str] = self.delegate.list_collection_names(**kwargs)
        return names

    async def create_collection(self, name: str, **kwargs: Any) -> MemoryCollection:
        _check_session(self.client, kwargs)
        if "viewOn" in kwargs or "pipeline" in kwargs:
            raise refuse("views")
        if kwargs.get("collation") is not None:
            raise refuse("collation")
        with _translated():
            self.delegate.create_collection(name, **kwargs)
        return self.get_collection(name)

    async def drop_collection(self, name: Any, **kwargs: Any) -> Any:
        _check_session(self.client, kwargs)
        return self.delegate.drop_collection(name, **kwargs)

    async def command(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        _check_session(self.client, kwargs)
        if isinstance(command, dict) and "viewOn" in command:
            raise refuse("views")
        with _translated():
            return await super().command(command, *args, **kwargs)

    def aggregate(self, pipeline: Any, *args: Any, **kwargs: Any) -> MemoryCommandCursor:
        _check_session(self.client, kwargs)
        _check_common(kwargs)
        with _translated(pipeline):
            cursor = self.delegate.aggregate(strict_pipeline(pipeline), *args, **kwargs)
        return MemoryCommandCursor(cursor)


class _translated:
    """Turns mongomock's ``NotImplementedError`` into ``MemoryBackendUnsupported``.

    With ``query`` (a filter or pipeline) holding ``$expr``, mongomock's ``KeyError`` or
    ``TypeError`` (a field some document lacks) becomes one too.
    """

    def __init__(self, query: Any = None) -> None:
        self.query = query

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        if isinstance(error, MemoryBackendUnsupported):
            return
        if isinstance(error, NotImplementedError):
            if mentions(self.query, "$text"):
                raise refuse("text") from None
            raise unsupported_call(str(error)) from None
        if isinstance(error, (KeyError, TypeError)) and mentions(self.query, "$expr"):
            raise refuse("expr", f"{type(error).__name__}: {error}") from None


def _check_common(options: dict[str, Any]) -> None:
    """Refuse options the in-memory database would ignore or get wrong."""
    if options.get("collation") is not None:
        raise refuse("collation")
    options.pop("collation", None)
    if options.get("let") is not None:
        raise refuse("let")
    options.pop("let", None)
    if options.get("array_filters") is not None:
        raise refuse("array_filters")
    options.pop("array_filters", None)
    options.pop("comment", None)  # a note for the server's logs; no effect on answers


class MemoryCollection(AsyncMongoMockCollection):
    """A collection of the in-memory client."""

    def __init__(self, database: MemoryDatabase, collection: Any) -> None:
        super().__init__(database, collection)
        self._sync = collection

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        _check_session(self.database.client, options)
        _check_common(options)
        hint = options.pop("hint", None)
        if hint is not None:
            self._check_hint(hint)
        return options

    def _check_hint(self, hint: Any) -> None:
        """MongoDB refuses a hint that names no index of the collection."""
        indexes = self._sync.index_information()
        if isinstance(hint, str):
            if hint in indexes:
                return
        else:
            keys = list(hint.items()) if isinstance(hint, dict) else list(hint)
            wanted = [(field, direction) for field, direction in keys]
            if any(list(index["key"]) == wanted for index in indexes.values()):
                return
        raise OperationFailure(
            "error processing query: planner returned error :: caused by :: "
            "hint provided does not correspond to an existing index",
            2,
        )

    # --- reads -----------------------------------------------------------------------

    def find(self, filter: Any = None, *args: Any, **kwargs: Any) -> MemoryCursor:
        options = self._options(kwargs)
        with _translated(filter):
            cursor = self._sync.find(strict_filter(filter), *args, **options)
        return MemoryCursor(self, cursor, filter)

    async def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Any:
        if filter is not None and not isinstance(filter, dict):
            filter = {"_id": filter}  # as PyMongo: a bare value is an _id
        cursor = self.find(filter, *args, **kwargs).limit(-1)
        async for document in cursor:
            return document
        return None

    async def count_documents(self, filter: Any, **kwargs: Any) -> int:
        options = self._options(kwargs)
        with _translated(filter):
            count: int = self._sync.count_documents(strict_filter(filter), **options)
        return count

    async def estimated_document_count(self, **kwargs: Any) -> int:
        options = self._options(kwargs)
        count: int = self._sync.estimated_document_count(**options)
        return count

    async def distinct(self, key: str, filter: Any = None, **kwargs: Any) -> list[Any]:
        options = self._options(kwargs)
        with _translated(filter):
            values: list[Any] = self._sync.distinct(key, strict_filter(filter), **options)
        return values

    def aggregate(self, pipeline: Any, *args: Any, **kwargs: Any) -> MemoryCommandCursor:
        options = self._options(kwargs)
        with _translated(pipeline):
            cursor = self._sync.aggregate(strict_pipeline(pipeline), *args, **options)
        return MemoryCommandCursor(cursor)

    # --- writes ----------------------------------------------------------------------

    async def insert_one(self, document: Any, **kwargs: Any) -> Any:
        options = self._options(kwargs)
        with _translated(), _with_id_key(self._sync, document):
            return self._sync.insert_one(document, **options)

    async def insert_many(self, documents: Any, **kwargs: Any) -> Any:
        options = self._options(kwargs)
        documents = list(documents)
        with _translated(), _with_id_key(self._sync, *documents):
            return self._sync.insert_many(documents, **options)

    async def update_one(
        self, filter: Any, update: Any, upsert: bool = False, **kwargs: Any
    ) -> Any:
        return self._write_one("update_one", filter, update, upsert, kwargs)

    async def replace_one(
        self, filter: Any, replacement: Any, upsert: bool = False, **kwargs: Any
    ) -> Any:
        return self._write_one("replace_one", filter, replacement, upsert, kwargs)

    async def update_many(
        self, filter: Any, update: Any, upsert: bool = False, **kwargs: Any
    ) -> Any:
        options = self._options(kwargs)
        with _translated(filter), _with_id_key(self._sync, filter):
            return self._sync.update_many(
                self._write_filter(filter, upsert), update, upsert=upsert, **options
            )

    def _write_one(
        self, method: str, filter: Any, document: Any, upsert: bool, kwargs: dict[str, Any]
    ) -> Any:
        sort = kwargs.pop("sort", None)
        options = self._options(kwargs)
        if sort is not None:
            # PyMongo 4.11+: change the first document in this order.
            with _translated():
                first = self._sync.find_one(strict_filter(filter), {"_id": 1}, sort=_pairs(sort))
            if first is not None:
                filter = {"_id": first["_id"]}
        with _translated(filter), _with_id_key(self._sync, filter, document):
            return getattr(self._sync, method)(
                self._write_filter(filter, upsert), document, upsert=upsert, **options
            )

    def _write_filter(self, filter: Any, upsert: bool) -> Any:
        """The filter to hand mongomock for a write.

        With ``upsert`` mongomock builds the new document from the filter's values, so it
        gets the caller's own filter; when that would match a document the strict filter
        does not (``1`` for ``True``), a clause that matches nothing makes it insert.
        """
        strict = strict_filter(filter)
        if not upsert or strict is filter:
            return strict
        if self._sync.find_one(strict, {"_id": 1}) is not None:
            return {"_id": {"$in": [doc["_id"] for doc in self._sync.find(strict, {"_id": 1})]}}
        nothing = {"_id": {"$exists": False}}
        if "$and" in filter:
            return {**filter, "$and": [*filter["$and"], nothing]}
        return {**filter, "$and": [nothing]}

    async def delete_one(self, filter: Any, **kwargs: Any) -> Any:
        options = self._options(kwargs)
        with _translated(filter):
            return self._sync.delete_one(strict_filter(filter), **options)

    async def delete_many(self, filter: Any, **kwargs: Any) -> Any:
        options = self._options(kwargs)
        with _translated(filter):
            return self._sync.delete_many(strict_filter(filter), **options)

    async def find_one_and_delete(self, filter: Any, *args: Any, **kwargs: Any) -> Any:
        options = self._options(kwargs)
        with _translated(filter):
            return self._sync.find_one_and_delete(strict_filter(filter), *args, **options)

    async def find_one_and_replace(
        self, filter: Any, replacement: Any, *args: Any, **kwargs: Any
    ) -> Any:
        options = self._options(kwargs)
        upsert = bool(options.get("upsert"))
        with _translated(filter), _with_id_key(self._sync, filter, replacement):
            return self._sync.find_one_and_replace(
                self._write_filter(filter, upsert), replacement, *args, **options
            )

    async def find_one_and_update(self, filter: Any, update: Any, *args: Any, **kwargs: Any) -> Any:
        options = self._options(kwargs)
        upsert = bool(options.get("upsert"))
        with _translated(filter), _with_id_key(self._sync, filter):
            return self._sync.find_one_and_update(
                self._write_filter(filter, upsert), update, *args, **options
            )

    async def bulk_write(self, requests: Any, *args: Any, **kwargs: Any) -> Any:
        options = self._options(kwargs)
        with _translated():
            return self._sync.bulk_write(requests, *args, **options)

    # --- indexes ---------------------------------------------------------------------

    async def create_index(self, keys: Any, **kwargs: Any) -> str:
        options = self._options(kwargs)
        with _translated():
            name: str = self._sync.create_index(keys, **options)
        return name

    async def create_indexes(self, indexes: Any, **kwargs: Any) -> list[str]:
        options = self._options(kwargs)
        indexes = list(indexes)
        if any("collation" in getattr(index, "document", {}) for index in indexes):
            raise refuse("collation")
        with _translated():
            names: list[str] = self._sync.create_indexes(indexes, **options)
        return names

    async def index_information(self, **kwargs: Any) -> dict[str, Any]:
        _check_session(self.database.client, kwargs)
        found: dict[str, Any] = self._sync.index_information()
        for info in found.values():
            info["key"] = list(info["key"])  # PyMongo gives a list of (field, direction)
        return found

    async def drop(self, **kwargs: Any) -> None:
        _check_session(self.database.client, kwargs)
        kwargs.pop("comment", None)
        self._sync.drop(**kwargs)

    async def drop_index(self, index: Any, **kwargs: Any) -> None:
        _check_session(self.database.client, kwargs)
        kwargs.pop("comment", None)
        self._sync.drop_index(index, **kwargs)

    async def drop_indexes(self, **kwargs: Any) -> None:
        _check_session(self.database.client, kwargs)
        kwargs.pop("comment", None)
        self._sync.drop_indexes(**kwargs)


def _pairs(sort: Any) -> list[tuple[str, int]]:
    if isinstance(sort, dict):
        return list(sort.items())
    if isinstance(sort, str):
        return [(sort, 1)]
    return [tuple(item) for item in sort]


class _with_id_key:
    """Report a duplicate ``_id`` with its key, as MongoDB does.

    mongomock names the key only for unique indexes it knows, not ``_id``. Beanie reads
    ``keyValue`` to tell a revision conflict (``RevisionIdWasChanged``) from a
    unique-index violation.
    """

    def __init__(self, collection: Any, *documents: Any) -> None:
        self.collection = collection
        self.documents = documents

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        if not isinstance(error, DuplicateKeyError) or (error.details or {}).get("keyValue"):
            return
        for document in self.documents:
            object_id = document.get("_id") if isinstance(document, dict) else None
            if object_id is None or isinstance(object_id, dict):
                continue
            if self.collection.find_one({"_id": object_id}, {"_id": 1}) is not None:
                raise DuplicateKeyError(
                    "E11000 duplicate key error",
                    11000,
                    {"keyPattern": {"_id": 1}, "keyValue": {"_id": object_id}},
                ) from None


class MemoryCursor(AsyncCursor):
    """A ``find`` cursor of the in-memory client."""

    def __init__(self, collection: MemoryCollection, cursor: Any, filter: Any) -> None:
        super().__init__(cursor)
        self._collection = collection
        self._cursor = cursor
        self._filter = filter

    def collation(self, *args: Any, **kwargs: Any) -> MemoryCursor:
        raise refuse("collation")

    def hint(self, index: Any) -> MemoryCursor:
        self._collection._check_hint(index)
        return self

    def clone(self) -> MemoryCursor:
        return MemoryCursor(self._collection, self._cursor.clone(), self._filter)

    async def next(self) -> Any:
        with _translated(self._filter):
            try:
                return next(self._cursor)
            except StopIteration:
                raise StopAsyncIteration() from None

    __anext__ = next

    async def to_list(self, length: int | None = None) -> list[Any]:
        documents = []
        with _translated(self._filter):
            for document in self._cursor:
                documents.append(document)
                if length and len(documents) >= length:
                    break
        return documents


class MemoryCommandCursor(AsyncLatentCommandCursor):
    """An aggregation cursor that can also be awaited, as PyMongo's ``aggregate()`` is."""

    def __await__(self) -> Generator[Any, None, MemoryCommandCursor]:
        return self
        yield


def create_memory_client() -> Any:
    """A new, empty in-memory client (timezone-aware, like the real client we create)."""
    apply_compat()
    return MemoryClient(tz_aware=True)


def apply_compat() -> None:
    """Install the changes to mongomock itself (once; see ``vibetuner._compat.mongomock``)."""
    compat.apply(lookup_stage, refuse)
