"""What a signed-in request's reads cost on the in-memory database as it fills up.

Each signed-in request reads its session and its user by ``_id``. This times those two
reads (through Beanie's client, as ``resolve_session`` makes them) in a database holding
``--small`` users and sessions, then one holding ``--large``, in the same run; the
session collection has its TTL index, as in the app. A query on another field is timed
too, for reference: it still scans.

Target: the ``_id`` reads at ``--large`` documents cost at most 1.5x what they cost at
``--small``. Usage: ``python bench/memory_db.py [--small N] [--large N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import report  # noqa: E402

TARGET = 1.5


async def seeded(count: int) -> tuple[object, str, object]:
    """A fresh in-memory database with ``count`` users, each with one session."""
    from beanie import init_beanie

    from vibetuner.config import Settings
    from vibetuner.models import UserModel, core_document_models
    from vibetuner.mongo_memory import create_memory_client
    from vibetuner.services.sessions import hash_session_token, start_session

    client = create_memory_client()
    await init_beanie(database=client["bench"], document_models=core_document_models())
    settings = Settings()
    token = ""
    for number in range(count):
        user = UserModel(email=f"user{number}@example.com", name=f"User {number}")
        await user.insert()
        token = await start_session(user, settings)
    return client, hash_session_token(token), user.id


async def time_reads(count: int, repeats: int) -> tuple[float, float]:
    """Median seconds of (session + user by ``_id``, a user by email) at ``count`` documents."""
    from vibetuner.models import UserModel, UserSession

    client, session_key, user_id = await seeded(count)
    sessions = UserSession.get_pymongo_collection()
    users = UserModel.get_pymongo_collection()
    email = f"user{count - 1}@example.com"
    by_id, by_email = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(50):
            session = await sessions.find_one({"_id": session_key})
            user = await users.find_one({"_id": session["user_id"]})
        by_id.append((time.perf_counter() - start) / 50)
        assert user is not None and user["_id"] == user_id
        start = time.perf_counter()
        for _ in range(50):
            assert await users.find_one({"email": email}) is not None
        by_email.append((time.perf_counter() - start) / 50)
    client.close()
    return statistics.median(by_id), statistics.median(by_email)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    # Settings() in development keeps a session key under DATA_DIR: not in this checkout.
    os.environ.pop("MONGODB_URL", None)
    with tempfile.TemporaryDirectory(prefix="vibetuner-bench-") as data_dir:
        os.environ["DATA_DIR"] = data_dir
        small_id, small_email = asyncio.run(time_reads(args.small, args.repeats))
        large_id, large_email = asyncio.run(time_reads(args.large, args.repeats))
    print(
        f"session + user by _id: {small_id * 1e6:.0f} us at {args.small} documents, "
        f"{large_id * 1e6:.0f} us at {args.large}\n"
        f"user by email: {small_email * 1e6:.0f} us at {args.small}, "
        f"{large_email * 1e6:.0f} us at {args.large}"
    )
    ok = report(
        [
            (
                f"_id reads at {args.large} / {args.small} documents (us)",
                large_id * 1e6,
                small_id * 1e6,
                TARGET,
                "<=",
            ),
            (
                f"email lookup at {args.large} / {args.small} documents (us)",
                large_email * 1e6,
                small_email * 1e6,
                TARGET,
                "<=",
            ),
        ]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
