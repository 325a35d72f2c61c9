"""``$lookup`` on the in-memory database, with MongoDB's matching rules.

Beanie's ``fetch_links`` joins through a DBRef's ``$id`` (``owner.$id``, or
``attachments.$id`` over a list of links) and runs a sub-``pipeline`` on what it joined.
This stage answers as MongoDB does:

* values are compared as BSON values: ``True`` is not ``1`` (``1`` and ``1.0`` are
  equal), subdocuments and arrays compare by content, a DBRef as its subdocument;
* a missing ``localField`` or ``foreignField`` counts as null, so it joins documents
  whose field is null or missing;
* an array on either side matches by its elements;
* the joined documents come in the foreign collection's order;
* ``pipeline`` without ``localField``/``foreignField`` joins every foreign document.

``let`` (variables for the sub-pipeline) is refused with ``MemoryBackendUnsupported``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from bson import DBRef, Decimal128, ObjectId

from vibetuner._compat.mongomock import dbref_as_dict, run_pipeline
from vibetuner.mongo_memory import refuse


def values_at(doc: Any, path: str) -> list[Any]:
    """Every value at a dotted ``path`` in ``doc``, fanning out over arrays.

    A DBRef is read as its subdocument (so ``$id`` is its id). An empty list when
    nothing is there.
    """
    found = _reach(doc, path)
    flat: list[Any] = []
    for value in found:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _reach(doc: Any, path: str) -> list[Any]:
    current: list[Any] = [doc]
    for step in path.split("."):
        found: list[Any] = []
        for value in current:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, DBRef):
                    item = dbref_as_dict(item)
                if isinstance(item, dict) and step in item:
                    found.append(item[step])
        current = found
    return current


def _join_keys(doc: Any, path: str, *, whole_arrays: bool) -> set[Any]:
    """The comparable keys ``doc`` offers for ``path``: its values, or null when absent.

    An array gives its elements; on the foreign side also itself, since the join is the
    query ``{foreignField: value}``, which matches an equal array too.
    """
    found = _reach(doc, path)
    if not found:
        return {bson_key(None)}
    keys: set[Any] = set()
    for value in found:
        if isinstance(value, list):
            keys.update(bson_key(item) for item in value)
            if whole_arrays:
                keys.add(bson_key(value))
        else:
            keys.add(bson_key(value))
    return keys


def bson_key(value: Any) -> Any:
    """A hashable stand-in for ``value`` that is equal exactly when MongoDB's ``$eq`` is."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, Decimal128):
        return ("number", value.to_decimal())
    if isinstance(value, (int, float, Decimal)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, DBRef):
        value = dbref_as_dict(value)
    if isinstance(value, dict):
        return ("object", tuple((key, bson_key(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("array", tuple(bson_key(item) for item in value))
    if isinstance(value, ObjectId):  # and subclasses, such as Beanie's PydanticObjectId
        return ("objectId", ObjectId(value.binary))
    if isinstance(value, bytes):
        return ("binData", bytes(value))
    if isinstance(value, UUID):
        return ("uuid", value)
    if isinstance(value, datetime):
        offset = value.utcoffset()
        return (
            "date",
            value.replace(tzinfo=None) - offset if offset else value.replace(tzinfo=None),
        )
    try:
        hash(value)
    except TypeError:
        return (type(value).__name__, repr(value))
    return (type(value).__name__, value)


# The foreign collections one aggregation has read, by name, with their join indexes by
# field. Beanie's ``fetch_links`` nests a ``$lookup`` in the sub-pipeline of another, run
# once per joined document: reading the foreign collection once per aggregation (it
# cannot change meanwhile: mongomock runs the whole pipeline in one call) keeps a page
# that fetches links from costing collection size times collection size.
_read: ContextVar[dict[str, Any] | None] = ContextVar("vibetuner_lookup_reads", default=None)


@contextmanager
def _one_read_per_collection() -> Iterator[dict[str, Any]]:
    reads = _read.get()
    if reads is not None:
        yield reads
        return
    reads = {}
    token = _read.set(reads)
    try:
        yield reads
    finally:
        _read.reset(token)


def _foreign(reads: dict[str, Any], database: Any, name: str) -> list[dict[str, Any]]:
    if name not in reads:
        reads[name] = {"documents": list(database.get_collection(name).find()), "by": {}}
    documents: list[dict[str, Any]] = reads[name]["documents"]
    return documents


def _index(reads: dict[str, Any], name: str, field: str) -> dict[Any, list[int]]:
    """``{join key: [positions of the foreign documents offering it]}``."""
    built: dict[str, dict[Any, list[int]]] = reads[name]["by"]
    if field not in built:
        index: dict[Any, list[int]] = {}
        for position, document in enumerate(reads[name]["documents"]):
            for key in _join_keys(document, field, whole_arrays=True):
                index.setdefault(key, []).append(position)
        built[field] = index
    return built[field]


def lookup_stage(
    in_collection: list[dict[str, Any]], database: Any, options: dict[str, Any]
) -> list[dict[str, Any]]:
    """mongomock's ``$lookup`` stage handler: ``options`` is the stage's document."""
    from mongomock import OperationFailure

    if not isinstance(options, dict):
        raise OperationFailure("the $lookup stage must be an object")
    if "let" in options:
        raise refuse("let", "in $lookup")
    correlated = "localField" in options or "foreignField" in options
    names = ("from", "as", *(("localField", "foreignField") if correlated else ()))
    for name in names:
        if not isinstance(options.get(name), str):
            raise OperationFailure(f"$lookup needs a string '{name}'")
    pipeline = options.get("pipeline")
    if pipeline is None and not correlated:
        raise OperationFailure("$lookup needs 'localField' and 'foreignField', or 'pipeline'")
    if pipeline is not None and not isinstance(pipeline, list):
        raise OperationFailure("$lookup's 'pipeline' must be an array")

    with _one_read_per_collection() as reads:
        name = options["from"]
        foreign = _foreign(reads, database, name)  # natural order
        index = _index(reads, name, options["foreignField"]) if correlated else {}
        for doc in in_collection:
            if correlated:
                local = _join_keys(doc, options["localField"], whole_arrays=False)
                positions = sorted({p for key in local for p in index.get(key, ())})
                joined = [copy.deepcopy(foreign[position]) for position in positions]
            else:
                joined = copy.deepcopy(foreign)
            if pipeline:
                joined = run_pipeline(joined, database, pipeline)
            doc[options["as"]] = joined
    return in_collection
