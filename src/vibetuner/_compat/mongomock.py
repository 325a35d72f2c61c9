"""The places the in-memory database reaches into mongomock itself.

Everything else the development database adds (PyMongo's async API, sessions, option
checks, refusals) lives in subclasses of mongomock-motor's public classes
(``vibetuner.mongo_memory_client``). What remains here cannot be done from outside:
mongomock evaluates filters, sort keys and pipeline stages with module-level functions
and tables, and offers no registration API for any of them. ``apply()`` installs the
four patches once and ``run_pipeline`` is the fifth use;
``tests/core/test_compat_mongomock.py`` fails when what each relies on changes, and
``pyproject.toml`` keeps mongomock below 5 and mongomock-motor below 0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bson import DBRef

_applied = False


def dbref_as_dict(ref: DBRef) -> dict[str, Any]:
    """A DBRef as the subdocument MongoDB stores: ``$ref``, ``$id``, ``$db`` and extra fields."""
    return dict(ref.as_doc())


def apply(
    lookup_stage: Callable[[list[dict[str, Any]], Any, dict[str, Any]], list[dict[str, Any]]],
    refuse: Callable[..., Exception],
) -> None:
    """Install the patches (idempotent); ``refuse(key, detail)`` makes the errors raised."""
    global _applied
    if _applied:
        return
    import mongomock.aggregate
    import mongomock.collection
    import mongomock.filtering

    # 1. ``$lookup``. mongomock's own stage cannot follow a DBRef's ``$id`` (Beanie's
    # ``fetch_links``) and joins by Python equality. Pipeline stages are looked up in a
    # private table at run time; there is no public way to add or replace one.
    mongomock.aggregate._PIPELINE_HANDLERS["$lookup"] = lookup_stage

    # 2. Queries step into DBRefs ({"owner.$id": ...} is how Beanie filters on a Link).
    # mongomock resolves every dotted path through this module function, called by name.
    original_candidates = mongomock.filtering.iter_key_candidates

    def iter_key_candidates(key: str, doc: Any) -> Any:
        if key:
            if isinstance(doc, DBRef):
                doc = dbref_as_dict(doc)
            elif isinstance(doc, list):
                doc = [dbref_as_dict(item) if isinstance(item, DBRef) else item for item in doc]
        return original_candidates(key, doc)

    mongomock.filtering.iter_key_candidates = iter_key_candidates

    # 3. Sorting on an array. MongoDB sorts by the smallest element ascending and the
    # largest descending; mongomock by the first. Its sort key function sees no direction
    # (``find`` sorts and ``$sort`` call it by name), so an array whose elements differ is
    # refused instead of answered wrongly.
    original_sort_key = mongomock.filtering.resolve_sort_key

    def resolve_sort_key(key: str, doc: Any) -> Any:
        value = mongomock.filtering.resolve_key(key, doc)
        if isinstance(value, (list, tuple)) and any(item != value[0] for item in value[1:]):
            raise refuse("array_sort", f"sort on {key!r}")
        return original_sort_key(key, doc)

    mongomock.filtering.resolve_sort_key = resolve_sort_key

    # 4. Bulk writes. PyMongo 4.11+ hands ``sort=`` to every bulk update and replacement
    # (None when unused), which mongomock's bulk builder does not take; and the builder
    # ignores ``collation=``. PyMongo calls these methods from its private
    # ``_add_to_bulk``, so the builder is the only place to see each operation's options.
    builder = mongomock.collection.BulkOperationBuilder
    for name in ("add_replace", "add_update", "add_delete"):
        builder_method = getattr(builder, name)

        def checked(self: Any, *args: Any, _method: Any = builder_method, **kwargs: Any) -> Any:
            if kwargs.pop("sort", None) is not None:
                raise refuse("bulk_sort")
            if kwargs.get("collation") is not None:
                raise refuse("collation", "in a bulk write")
            return _method(self, *args, **kwargs)

        setattr(builder, name, checked)
    _applied = True


def run_pipeline(documents: list[dict[str, Any]], database: Any, pipeline: list[Any]) -> Any:
    """Run an aggregation ``pipeline`` over ``documents`` (a ``$lookup`` sub-pipeline).

    ``mongomock.aggregate.process_pipeline`` is what ``aggregate`` itself runs; it is not
    documented, and there is no public way to run a pipeline over a list of documents.
    """
    from mongomock.aggregate import process_pipeline

    return list(process_pipeline(documents, database, pipeline, None))
