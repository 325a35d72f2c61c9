"""vibetuner's own data migrations, run by ``vibetuner db migrate`` before the app's.

Each step is idempotent and recorded by name in the ``vibetuner_migrations``
collection, so it runs once per database even when interrupted and started again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

LOG_COLLECTION = "vibetuner_migrations"

Step = Callable[[Any], Awaitable[None]]


async def oauth_links_stored_once(database: Any) -> None:
    """Drop ``users.oauth_accounts``: the relation now lives only in each account's ``user``.

    Every account already carries its ``user`` link (it was stored both ways), so the
    array on the user holds nothing that is not kept elsewhere.
    """
    await database["users"].update_many(
        {"oauth_accounts": {"$exists": True}}, {"$unset": {"oauth_accounts": ""}}
    )


STEPS: tuple[tuple[str, Step], ...] = (("0001_oauth_links_stored_once", oauth_links_stored_once),)


async def run_framework_migrations(database: Any) -> list[str]:
    """Apply the steps this database has not had yet; return their names."""
    log = database[LOG_COLLECTION]
    applied: list[str] = []
    for name, step in STEPS:
        if await log.find_one({"_id": name}) is not None:
            continue
        await step(database)
        await log.insert_one({"_id": name, "applied_at": datetime.now(UTC)})
        applied.append(name)
    return applied
