"""The parts of Beanie that ``vibetuner/_compat/beanie.py`` relies on behave as it expects."""

from __future__ import annotations

import pymongo
import pytest
from beanie import Document, Indexed
from beanie.migrations.database import DBHandler

from vibetuner._compat.beanie import declared_indexes, present_indexes, use_for_migrations
from vibetuner.cli.db import run_migrations
from vibetuner.mongo import init_models


class Gadget(Document):
    serial: Indexed(str, unique=True)  # type: ignore[valid-type]
    kind: str
    size: int

    class Settings:
        name = "compat_gadgets"
        indexes = [[("kind", pymongo.ASCENDING), ("size", pymongo.DESCENDING)]]


def keys(index: object) -> list[tuple[str, int]]:
    return list(index.index.document["key"].items())  # type: ignore[attr-defined]


async def test_declared_indexes_are_what_init_beanie_builds(vibetuner_db):
    await init_models(vibetuner_db, [Gadget])
    declared = declared_indexes(Gadget)
    assert sorted(keys(i) for i in declared) == [[("kind", 1), ("size", -1)], [("serial", 1)]]
    info = await Gadget.get_pymongo_collection().index_information()
    present = present_indexes(dict(info))
    assert all(any(index.same_fields(p) for p in present) for index in declared)

    def plain(index: object) -> dict[str, object]:
        # What identifies an index (some servers add "ns" and an explicit unique: false).
        document = dict(index.index.document)  # type: ignore[attr-defined]
        return {
            "name": document["name"],
            "key": document["key"],
            "unique": bool(document.get("unique")),
        }

    assert [plain(i) for i in declared] == [
        plain(next(p for p in present if p.same_fields(i))) for i in declared
    ]


MIGRATION = """
from beanie import Document, free_fall_migration


class Gadget(Document):
    serial: str
    kind: str = "?"

    class Settings:
        name = "compat_gadgets"


class Forward:
    @free_fall_migration(document_models=[Gadget])
    async def name_the_kind(self, session):
        async for gadget in Gadget.find_all():
            gadget.kind = "named"
            await gadget.save()


class Backward:
    pass
"""


async def test_the_migration_runner_works_on_the_database_it_is_given(vibetuner_db, tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20260101000000_name_the_kind.py").write_text(MIGRATION)
    await init_models(vibetuner_db, [Gadget])
    await Gadget(serial="g-1", kind="raw", size=1).insert()

    use_for_migrations(vibetuner_db.client, vibetuner_db.database)
    assert DBHandler.get_cli() is vibetuner_db.client
    assert DBHandler.get_db() is vibetuner_db.database
    # What `vibetuner db migrate` runs: Beanie's runner, on the database set above.
    assert await run_migrations(vibetuner_db, folder) == ["20260101000000_name_the_kind.py"]
    raw = await vibetuner_db.database["compat_gadgets"].find_one({"serial": "g-1"})
    assert raw["kind"] == "named"


@pytest.fixture(autouse=True)
def forget_migration_database():
    yield
    for name in ("client", "database"):
        if name in vars(DBHandler):
            delattr(DBHandler, name)
