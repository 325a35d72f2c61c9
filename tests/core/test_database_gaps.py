"""What an app needs from the database, on both backends: the in-memory one (always) and
a MongoDB-wire server through PyMongo's real client (with ``TEST_MONGODB_URL``).

What the in-memory database cannot do fails loudly there, with a message naming the way
out; ``UNSUPPORTED`` lists those cases, and the README's table is made from it.
"""

from __future__ import annotations

import pytest
from beanie import BulkWriter, Document
from beanie.exceptions import RevisionIdWasChanged
from pymongo import IndexModel, InsertOne
from pymongo.errors import DuplicateKeyError, OperationFailure

from vibetuner.errors import MemoryBackendUnsupported
from vibetuner.mongo import init_models

pytestmark = pytest.mark.parametrize("mongo_backend", ["memory", "mongodb"], indirect=True)


class Counter(Document):
    name: str
    hits: int = 0

    class Settings:
        name = "gap_counters"
        use_revision = True


class CaseInsensitive(Document):
    name: str

    class Settings:
        name = "gap_case_insensitive"
        indexes = [
            IndexModel(
                [("name", 1)],
                name="name_ci",
                unique=True,
                collation={"locale": "en", "strength": 2},
            )
        ]


@pytest.fixture
async def db(vibetuner_db):
    await init_models(vibetuner_db, [Counter])
    return vibetuner_db


async def test_bulk_write_takes_a_comment(db):
    collection = Counter.get_pymongo_collection()
    result = await collection.bulk_write([InsertOne({"name": "a"})], comment="from a test")
    assert result.inserted_count == 1


async def test_beanies_bulk_writer_and_replace_many(db):
    await Counter(name="one").insert()
    async with BulkWriter() as writer:
        await Counter.find(Counter.name == "one").update({"$set": {"hits": 5}}, bulk_writer=writer)
    assert (await Counter.find_one(Counter.name == "one")).hits == 5
    stored = await Counter.find_all().to_list()
    for counter in stored:
        counter.hits += 1
    await Counter.replace_many(stored)
    assert (await Counter.find_one(Counter.name == "one")).hits == 6


async def test_a_revision_conflict_is_reported_as_on_mongodb(db):
    counter = Counter(name="shared")
    await counter.insert()
    stale = await Counter.get(counter.id)
    counter.hits = 1
    await counter.save()
    stale.hits = 2
    with pytest.raises(RevisionIdWasChanged):
        await stale.save()
    assert (await Counter.get(counter.id)).hits == 1


async def test_index_information_has_pymongos_shape(db):
    await Counter(name="exists").insert()
    info = await Counter.get_pymongo_collection().index_information()
    assert info["_id_"]["key"] == [("_id", 1)]
    await Counter.get_pymongo_collection().create_index([("name", 1), ("hits", -1)], name="nc")
    info = await Counter.get_pymongo_collection().index_information()
    assert info["nc"]["key"] == [("name", 1), ("hits", -1)]


async def test_a_collation_fails_loudly_in_memory(db, mongo_backend):
    if mongo_backend == "memory":
        with pytest.raises(MemoryBackendUnsupported, match="MONGODB_URL"):
            await init_models(db, [CaseInsensitive])
        with pytest.raises(MemoryBackendUnsupported, match="Collations"):
            await Counter.get_pymongo_collection().find_one(
                {"name": "x"}, collation={"locale": "en", "strength": 2}
            )
        return
    # On a server the case-insensitive unique index holds.
    await init_models(db, [CaseInsensitive])
    await CaseInsensitive(name="Bob").insert()
    with pytest.raises(DuplicateKeyError):
        await CaseInsensitive.get_pymongo_collection().insert_one({"name": "bob"})


async def test_sessions_fail_loudly_in_memory(db, mongo_backend):
    if mongo_backend == "memory":
        with pytest.raises(MemoryBackendUnsupported, match="transactions"):
            db.client.start_session()
        return
    async with db.client.start_session() as session:
        assert await Counter.find_all(session=session).count() == 0


async def test_text_search_fails_loudly_in_memory(db, mongo_backend):
    await Counter(name="hello world").insert()
    collection = Counter.get_pymongo_collection()
    if mongo_backend == "memory":
        with pytest.raises(MemoryBackendUnsupported, match="regex"):
            await collection.find_one({"$text": {"$search": "hello"}})
        return
    # A server wants a text index first; without one it says so.
    with pytest.raises(OperationFailure):
        await collection.find_one({"$text": {"$search": "hello"}})
