"""Two `vibetuner db migrate` at once: one waits for the other, no step runs twice.

On the in-memory database two processes cannot share data at all (the dev server owns
the development database, and `db migrate` refuses to write while it runs), so the
runs race here as two tasks on one database; with ``TEST_MONGODB_URL`` (the wire
server run, or a real MongoDB) also as two processes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vibetuner.cli.db import CommandError, migrate_locked
from vibetuner.migrations import LOCK_COLLECTION, LOCK_ID, MigrationLock
from vibetuner.testing import real_mongodb_url

SLOW_MIGRATION = textwrap.dedent(
    """
    import asyncio

    from beanie import Document, free_fall_migration


    class Run(Document):
        by: str = ""

        class Settings:
            name = "mig_runs"


    class Forward:
        @free_fall_migration(document_models=[Run])
        async def slow_step(self, session):
            import os

            await Run(by=str(os.getpid())).insert(session=session)
            await asyncio.sleep(1.0)


    class Backward:
        pass
    """
)


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20260101_slow.py").write_text(SLOW_MIGRATION)
    return folder


async def test_two_runs_at_once_apply_each_step_once(vibetuner_db: Any, migrations: Path) -> None:
    first, second = await asyncio.gather(
        migrate_locked(vibetuner_db, migrations, wait=30),
        migrate_locked(vibetuner_db, migrations, wait=30),
    )
    assert sorted([first, second]) == [[], ["20260101_slow.py"]]
    assert await vibetuner_db.database["mig_runs"].count_documents({}) == 1
    # The lock is gone once both are done.
    assert await vibetuner_db.database[LOCK_COLLECTION].find_one({"_id": LOCK_ID}) is None


async def test_a_held_lock_makes_the_other_run_give_up_with_one_line(
    vibetuner_db: Any, migrations: Path
) -> None:
    holder = MigrationLock(vibetuner_db.database, owner="web-1:42")
    assert await holder.try_acquire()
    try:
        with pytest.raises(CommandError, match=r"another `vibetuner db migrate` \(web-1:42\)"):
            await migrate_locked(vibetuner_db, migrations, wait=0.3)
    finally:
        await holder.release()
    assert await vibetuner_db.database["mig_runs"].count_documents({}) == 0


async def test_a_dead_holders_lock_is_taken_over_after_its_expiry(vibetuner_db: Any) -> None:
    locks = vibetuner_db.database[LOCK_COLLECTION]
    await locks.insert_one(
        {
            "_id": LOCK_ID,
            "owner": "crashed:1",
            "since": datetime.now(UTC) - timedelta(minutes=5),
            "expires_at": datetime.now(UTC) - timedelta(seconds=1),
        }
    )
    lock = MigrationLock(vibetuner_db.database, owner="fresh:2")
    assert await lock.try_acquire()
    assert (await locks.find_one({"_id": LOCK_ID}))["owner"] == "fresh:2"
    # A live lock is not: the next one must wait.
    assert not await MigrationLock(vibetuner_db.database, owner="third:3").try_acquire()
    await lock.release()
    assert await locks.find_one({"_id": LOCK_ID}) is None


async def test_the_holder_keeps_its_lock_alive_while_it_runs(vibetuner_db: Any) -> None:
    lock = MigrationLock(vibetuner_db.database, owner="slow:1", ttl=0.6)
    await lock.acquire(wait=1)
    try:
        await asyncio.sleep(1.5)  # past the first expiry: renewed meanwhile
        assert not await MigrationLock(vibetuner_db.database, ttl=0.6).try_acquire()
    finally:
        await lock.release()


@pytest.mark.skipif(real_mongodb_url() is None, reason="two processes need a shared MongoDB")
def test_two_processes_at_once_on_a_shared_database(tmp_path: Path, migrations: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[tool.vibetuner]\napp = "x:app"\nmigrations = "{migrations}"\n'
    )
    database = f"vibetuner_test_{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONGODB_")}
    env.update(
        {"MONGODB_URL": str(real_mongodb_url()), "MONGODB_DB": database, "ENVIRONMENT": "test"}
    )
    command = [sys.executable, "-m", "vibetuner.cli", "db", "migrate"]
    runs = [
        subprocess.Popen(
            command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    applied = [out for out, _ in outputs if "Applied 1 migration(s)" in out]
    assert len(applied) == 1, outputs
    waited = [err for _, err in outputs if "Waiting for another `vibetuner db migrate`" in err]
    assert len(waited) == 1, outputs

    async def count() -> int:
        from pymongo import AsyncMongoClient

        client: Any = AsyncMongoClient(real_mongodb_url())
        try:
            runs_stored: int = await client[database]["mig_runs"].count_documents({})
            return runs_stored
        finally:
            await client.drop_database(database)
            await client.close()

    assert asyncio.run(count()) == 1
