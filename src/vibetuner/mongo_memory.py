"""The in-memory MongoDB: mongomock-motor, answering as MongoDB does or refusing loudly.

``create_memory_client()`` (``vibetuner.mongo_memory_client``) gives a ``MemoryClient``:
mongomock-motor's client shaped like PyMongo's async client, with sessions that run
their operations directly. ``$lookup`` follows DBRef ids and MongoDB's matching rules
(``vibetuner.mongo_memory_lookups``), equality keeps BSON types apart
(``vibetuner.mongo_memory_filters``), and the few changes to mongomock itself are in
``vibetuner._compat.mongomock``.

What mongomock would silently get wrong or fail on obscurely raises
``MemoryBackendUnsupported`` naming the way out: ``UNSUPPORTED`` lists those cases, and
the table on the documentation site's database page is made from it.
"""

from __future__ import annotations

from vibetuner.errors import MemoryBackendUnsupported

REAL_SERVER = "run against a real MongoDB (set MONGODB_URL)"

#: What the in-memory database does not do: (key, feature, what happens, what to use).
UNSUPPORTED: tuple[tuple[str, str, str, str], ...] = (
    (
        "collation",
        "Collations (for example a case-insensitive unique index or query)",
        "refused with MemoryBackendUnsupported wherever one is given (indexes, queries, "
        "updates, bulk writes, `aggregate`, `find_one_and_*`)",
        "store a normalised copy of the field (as `UserModel.email` is), or " + REAL_SERVER,
    ),
    (
        "transactions",
        "Multi-document transactions",
        "`start_session()` works and its operations run directly; `start_transaction()` "
        "raises MemoryBackendUnsupported",
        REAL_SERVER + " replica set; `vibetuner db migrate` runs without `--transaction`",
    ),
    (
        "text",
        "Text search (`$text`)",
        "the query raises MemoryBackendUnsupported",
        "a regex or prefix query in development, or " + REAL_SERVER,
    ),
    (
        "array_sort",
        "Sorting on a field that holds an array of different values",
        "refused with MemoryBackendUnsupported (MongoDB sorts by the smallest element "
        "ascending, the largest descending)",
        "sort on a single-valued field, or " + REAL_SERVER,
    ),
    (
        "bulk_sort",
        "`sort` on `UpdateOne` / `ReplaceOne` in a bulk write",
        "refused with MemoryBackendUnsupported (`update_one(sort=)` and `replace_one(sort=)` work)",
        "select the document by a unique filter, or " + REAL_SERVER,
    ),
    (
        "array_filters",
        "`array_filters` (`$[name]` in updates)",
        "refused with MemoryBackendUnsupported",
        "read, change and write the array back, or " + REAL_SERVER,
    ),
    (
        "let",
        "`let` variables (in updates, `aggregate`, `$lookup`)",
        "refused with MemoryBackendUnsupported",
        "put the values in the query itself, or " + REAL_SERVER,
    ),
    (
        "views",
        "Views (`create_collection(viewOn=...)`)",
        "refused with MemoryBackendUnsupported",
        "run the view's pipeline with `aggregate`, or " + REAL_SERVER,
    ),
    (
        "expr",
        "`$expr` over a field some documents lack",
        "refused with MemoryBackendUnsupported (mongomock cannot evaluate it)",
        "add `{field: {$exists: true}}` before it, or " + REAL_SERVER,
    ),
    (
        "index_speed",
        "Using indexes for lookups",
        "every query scans its collection",
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
    """``UNSUPPORTED`` as a Markdown table (the documentation site's database page shows it)."""
    lines = [
        "| feature | on the in-memory database | instead |",
        "|---|---|---|",
        *(f"| {feature} | {happens} | {instead} |" for _, feature, happens, instead in UNSUPPORTED),
    ]
    return "\n".join(lines)


def refuse(key: str, detail: str = "") -> MemoryBackendUnsupported:
    """The error for ``UNSUPPORTED`` row ``key``: what is not supported and the way out."""
    _, feature, _, instead = next(row for row in UNSUPPORTED if row[0] == key)
    said = f" ({detail})" if detail else ""
    return MemoryBackendUnsupported(
        f"the in-memory database does not support this: {feature}{said}. Instead: {instead}."
    )


def unsupported_call(detail: str) -> MemoryBackendUnsupported:
    """The error for something mongomock does not implement (its message is ``detail``)."""
    return MemoryBackendUnsupported(
        f"the in-memory database does not support this call ({detail}). Instead: {REAL_SERVER}."
    )
