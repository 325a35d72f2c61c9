"""What an app needs from the database, on both backends: the in-memory one (always) and
a MongoDB-wire server through PyMongo's real client (with ``TEST_MONGODB_URL``).

What the in-memory database cannot do fails loudly there, with a message naming the way
out; ``UNSUPPORTED`` lists those cases, and the table on the documentation site's
database page is made from it. Each test makes the same calls on both backends: where
the in-memory database answers, the answers must be equal; where it refuses, the
server's answer is checked instead.
"""

from __future__ import annotations

import pytest
from beanie import BulkWriter, Document
from beanie.exceptions import RevisionIdWasChanged
from bson import DBRef, ObjectId
from pymongo import IndexModel, InsertOne, UpdateOne
from pymongo.errors import DuplicateKeyError, InvalidOperation, OperationFailure

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


CI = {"locale": "en", "strength": 2}


def _raw(db, name: str):
    """A PyMongo collection of the test's database, by name."""
    return db.database[name]


async def _ids(cursor) -> list:
    return [doc["_id"] for doc in await cursor.to_list(None)]


async def test_collation_in_aggregate_and_find_one_and_modify(db, mongo_backend):
    people = _raw(db, "gap_people")
    await people.insert_many([{"_id": 1, "name": "Bob"}, {"_id": 2, "name": "alice"}])
    calls = {
        "aggregate": lambda: people.aggregate([{"$match": {"name": "bob"}}], collation=CI),
        "update": lambda: people.find_one_and_update(
            {"name": "bob"}, {"$set": {"seen": True}}, collation=CI
        ),
        "replace": lambda: people.find_one_and_replace(
            {"name": "bob"}, {"name": "Bob"}, collation=CI
        ),
        "delete": lambda: people.find_one_and_delete({"name": "bob"}, collation=CI),
        "count": lambda: people.count_documents({"name": "bob"}, collation=CI),
    }
    if mongo_backend == "memory":
        for call in calls.values():
            with pytest.raises(MemoryBackendUnsupported, match="Collations.*MONGODB_URL"):
                await call()
        assert await people.count_documents({}) == 2  # nothing was changed
        return
    assert await _ids(await calls["aggregate"]()) == [1]
    assert (await calls["update"]())["_id"] == 1
    assert (await calls["replace"]())["_id"] == 1
    assert await calls["count"]() == 1
    assert (await calls["delete"]())["_id"] == 1


async def test_sort_on_an_array_field(db, mongo_backend):
    things = _raw(db, "gap_sorted")
    await things.insert_many(
        [{"_id": "a", "n": [3, 1, 2]}, {"_id": "b", "n": [2]}, {"_id": "c", "n": 0}]
    )
    singles = await _ids(things.find({"_id": {"$ne": "a"}}, sort=[("n", 1)]))
    assert singles == ["c", "b"]  # one-element arrays sort by their element, on both
    if mongo_backend == "memory":
        with pytest.raises(
            MemoryBackendUnsupported, match="array of different values.*MONGODB_URL"
        ):
            await things.find({}, sort=[("n", 1)]).to_list(None)
        with pytest.raises(MemoryBackendUnsupported, match="MONGODB_URL"):
            await (await things.aggregate([{"$sort": {"n": -1}}])).to_list(None)
        return
    assert await _ids(things.find({}, sort=[("n", 1)])) == ["c", "a", "b"]  # a by its 1
    assert await _ids(things.find({}, sort=[("n", -1)])) == ["a", "b", "c"]  # a by its 3


BOOLS_AND_NUMBERS = [
    {"_id": 1, "v": True},
    {"_id": 2, "v": 1},
    {"_id": 3, "v": 1.0},
    {"_id": 4, "v": False},
    {"_id": 5, "v": 0},
    {"_id": 6, "v": [1, 5]},
    {"_id": 7, "v": [True]},
    {"_id": 8, "v": {"x": True}},
    {"_id": 9, "v": {"x": 1}},
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"v": True}, [1, 7]),
        ({"v": 1}, [2, 3, 6]),
        ({"v": False}, [4]),
        ({"v": 0}, [5]),
        ({"v": {"$eq": True}}, [1, 7]),
        ({"v": {"$in": [True, 0]}}, [1, 5, 7]),
        ({"v": {"$ne": True}}, [2, 3, 4, 5, 6, 8, 9]),
        ({"v": {"$nin": [1, False]}}, [1, 5, 7, 8, 9]),
        ({"v": {"x": True}}, [8]),
        ({"v": {"x": 1}}, [9]),
        ({"v.x": 1}, [9]),
        ({"v": {"$all": [True]}}, [1, 7]),
        ({"$or": [{"v": True}, {"v": 0}]}, [1, 5, 7]),
        ({"v": {"$elemMatch": {"$eq": 1}}}, [6]),
    ],
)
async def test_true_is_not_one(db, query, expected):
    things = _raw(db, "gap_bools")
    await things.insert_many(BOOLS_AND_NUMBERS)
    assert sorted(await _ids(things.find(query))) == expected
    assert await things.count_documents(query) == len(expected)
    pipeline = [{"$match": query}, {"$sort": {"_id": 1}}]
    assert await _ids(await things.aggregate(pipeline)) == expected


async def test_writes_keep_true_and_one_apart(db):
    things = _raw(db, "gap_bool_writes")
    await things.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": True}])
    result = await things.update_many({"v": True}, {"$set": {"hit": "yes"}})
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert await _ids(things.find({"hit": "yes"})) == [2]
    assert (await things.delete_one({"v": 1})).deleted_count == 1
    assert await _ids(things.find({})) == [2]
    # An upsert that matches nothing inserts, seeded from the filter, exactly typed.
    await things.insert_one({"_id": 3, "w": 1})
    result = await things.update_one({"w": True}, {"$set": {"new": 1}}, upsert=True)
    assert result.upserted_id is not None
    stored = await things.find_one({"_id": result.upserted_id})
    assert stored["w"] is True and stored["new"] == 1
    assert (await things.find_one({"_id": 3})) == {"_id": 3, "w": 1}
    # And one that matches updates that document only.
    result = await things.update_one({"w": 1}, {"$set": {"n": 2}}, upsert=True)
    assert (result.matched_count, result.upserted_id) == (1, None)
    assert (await things.find_one({"_id": 3}))["n"] == 2


async def _lookup(collection, **stage):
    cursor = await collection.aggregate(
        [{"$lookup": {"as": "joined", **stage}}, {"$sort": {"_id": 1}}]
    )
    return {doc["_id"]: [j["_id"] for j in doc["joined"]] for doc in await cursor.to_list(None)}


async def test_lookup_matches_as_mongodb(db):
    local, foreign = _raw(db, "gap_local"), _raw(db, "gap_foreign")
    await foreign.insert_many(
        [
            {"_id": "f1", "k": 1},
            {"_id": "f2", "k": True},
            {"_id": "f3"},  # no k: joins a missing or null localField
            {"_id": "f4", "k": None},
            {"_id": "f5", "k": {"a": 1, "b": 2}},
            {"_id": "f6", "k": [7, 8]},
            {"_id": "f7", "k": 2},
        ]
    )
    await local.insert_many(
        [
            {"_id": 1, "k": 1},
            {"_id": 2, "k": True},
            {"_id": 3},
            {"_id": 4, "k": {"a": 1, "b": 2}},
            {"_id": 5, "k": 8},
            {"_id": 6, "k": [2, 1]},  # joined in the foreign collection's order: f1, f7
            {"_id": 7, "k": 1.0},
        ]
    )
    assert await _lookup(
        local, **{"from": "gap_foreign", "localField": "k", "foreignField": "k"}
    ) == {
        1: ["f1"],
        2: ["f2"],
        3: ["f3", "f4"],
        4: ["f5"],
        5: ["f6"],
        6: ["f1", "f7"],
        7: ["f1"],
    }


async def test_lookup_with_a_pipeline_and_let(db, mongo_backend):
    local, foreign = _raw(db, "gap_local2"), _raw(db, "gap_foreign2")
    await foreign.insert_many([{"_id": "x", "n": 1}, {"_id": "y", "n": 2}])
    await local.insert_many([{"_id": 1, "n": 2}])
    uncorrelated = await _lookup(
        local, **{"from": "gap_foreign2", "pipeline": [{"$match": {"n": {"$gte": 2}}}]}
    )
    assert uncorrelated == {1: ["y"]}
    with_let = {
        "from": "gap_foreign2",
        "let": {"wanted": "$n"},
        "pipeline": [{"$match": {"$expr": {"$eq": ["$n", "$$wanted"]}}}],
    }
    if mongo_backend == "memory":
        with pytest.raises(MemoryBackendUnsupported, match="let.*MONGODB_URL"):
            await _lookup(local, **with_let)
        return
    assert await _lookup(local, **with_let) == {1: ["y"]}


async def test_dbref_extra_fields_are_kept(db):
    things, users = _raw(db, "gap_refs"), _raw(db, "gap_ref_users")
    user = ObjectId()
    await users.insert_one({"_id": user, "name": "ada"})
    await things.insert_one({"_id": 1, "owner": DBRef("gap_ref_users", user, role="author")})
    stored = await things.find_one({"_id": 1})
    assert stored["owner"] == DBRef("gap_ref_users", user, role="author")
    assert stored["owner"].role == "author"
    assert await things.count_documents({"owner.role": "author"}) == 1
    joined = await _lookup(
        things, **{"from": "gap_ref_users", "localField": "owner.$id", "foreignField": "_id"}
    )
    assert joined == {1: [user]}


async def test_hints_must_name_an_index(db):
    things = _raw(db, "gap_hints")
    await things.insert_many([{"_id": 1, "n": 1}, {"_id": 2, "n": 2}])
    await things.create_index([("n", 1)], name="by_n")
    assert await _ids(things.find({"n": 2}, hint="by_n")) == [2]
    assert await _ids(things.find({"n": 2}).hint([("n", 1)])) == [2]
    assert await things.count_documents({}, hint="_id_") == 2
    result = await things.update_one({"n": 1}, {"$set": {"m": 1}}, hint="by_n")
    assert result.modified_count == 1
    assert (await things.delete_one({"n": 1}, hint={"n": 1})).deleted_count == 1
    for call in (
        lambda: things.find({"n": 2}, hint="nope").to_list(None),
        lambda: things.find({}).hint([("m", 1)]).to_list(None),
        lambda: things.count_documents({}, hint="nope"),
        lambda: things.update_one({"n": 2}, {"$set": {"m": 1}}, hint="nope"),
        lambda: things.delete_many({}, hint="nope"),
    ):
        with pytest.raises(OperationFailure, match="hint"):
            await call()
    assert await _ids(things.find({})) == [2]


async def test_type_null(db):
    things = _raw(db, "gap_types")
    await things.insert_many(
        [{"_id": 1, "v": None}, {"_id": 2}, {"_id": 3, "v": [1, None]}, {"_id": 4, "v": 0}]
    )
    assert sorted(await _ids(things.find({"v": {"$type": "null"}}))) == [1, 3]
    assert sorted(await _ids(things.find({"v": {"$type": 10}}))) == [1, 3]
    assert sorted(await _ids(things.find({"v": {"$not": {"$type": "null"}}}))) == [2, 4]
    assert await things.count_documents({"v": {"$type": "null"}}) == 2
    matched = await things.aggregate([{"$match": {"v": {"$type": "null"}}}, {"$sort": {"_id": 1}}])
    assert await _ids(matched) == [1, 3]
    assert sorted(await _ids(things.find({"v": None}))) == [1, 2, 3]


async def test_expr_on_a_missing_field(db, mongo_backend):
    things = _raw(db, "gap_expr")
    await things.insert_many([{"_id": 1, "a": 2, "b": 1}, {"_id": 2, "a": 1}])
    query = {"$expr": {"$gt": ["$a", "$b"]}}
    if mongo_backend == "memory":
        with pytest.raises(MemoryBackendUnsupported, match=r"\$expr.*MONGODB_URL"):
            await things.find(query).to_list(None)
        return
    # Missing sorts below every number: both documents have a > b.
    assert sorted(await _ids(things.find(query))) == [1, 2]


async def test_views(db, mongo_backend):
    await _raw(db, "gap_view_source").insert_many([{"_id": 1, "n": 1}, {"_id": 2, "n": 2}])
    create = db.database.create_collection(
        "gap_view", viewOn="gap_view_source", pipeline=[{"$match": {"n": 2}}]
    )
    if mongo_backend == "memory":
        with pytest.raises(MemoryBackendUnsupported, match="Views.*MONGODB_URL"):
            await create
        return
    await create
    assert "gap_view" in await db.database.list_collection_names()


async def test_array_filters(db, mongo_backend):
    things = _raw(db, "gap_array_filters")
    await things.insert_one({"_id": 1, "n": [1, 5, 9]})
    update = lambda: things.update_one(  # noqa: E731
        {"_id": 1}, {"$set": {"n.$[big]": 0}}, array_filters=[{"big": {"$gt": 4}}]
    )
    if mongo_backend == "memory":
        with pytest.raises(MemoryBackendUnsupported, match="array_filters.*MONGODB_URL"):
            await update()
        assert (await things.find_one({"_id": 1}))["n"] == [1, 5, 9]
        return
    await update()
    assert (await things.find_one({"_id": 1}))["n"] == [1, 0, 0]


async def test_update_and_replace_one_with_sort(db, mongo_backend):
    things = _raw(db, "gap_update_sort")
    await things.insert_many([{"_id": i, "group": "g", "n": i} for i in (1, 2, 3)])
    if mongo_backend == "mongodb":
        try:
            await things.update_one({"_id": 0}, {"$set": {"x": 1}}, sort={"n": 1})
        except OperationFailure as exc:
            # Servers before MongoDB 8.0 (and the wire test server) do not know the option.
            assert "sort" in str(exc)
            return
    await things.update_one({"group": "g"}, {"$set": {"last": True}}, sort={"n": -1})
    assert await _ids(things.find({"last": True})) == [3]
    await things.replace_one({"group": "g"}, {"group": "g", "n": 0, "first": True}, sort={"n": 1})
    assert await _ids(things.find({"first": True})) == [1]
    result = await things.update_one(
        {"group": "none"}, {"$set": {"n": 9}}, sort={"n": 1}, upsert=True
    )
    assert result.upserted_id is not None


async def test_a_client_closes_and_is_one_server(mongo_backend, vibetuner_settings):
    from vibetuner.mongo import connect

    mongo = await connect(vibetuner_settings)
    client = mongo.client
    async with client:
        assert await client.is_mongos is False
        assert await client.is_primary is True
        await client["probe"]["things"].insert_one({"_id": 1})
        assert await client["probe"]["things"].count_documents({}) == 1
        await client.drop_database("probe")
    await client.close()  # PyMongo's async close, twice is fine
    if mongo_backend == "memory":
        client.close()  # the synchronous style of mongomock-motor still works


async def test_sessions_run_operations_and_refuse_transactions(db, mongo_backend):
    async with db.client.start_session() as session:
        await Counter(name="in a session").insert(session=session)
        assert await Counter.find_all(session=session).count() == 1
        collection = Counter.get_pymongo_collection()
        await collection.update_one(
            {"name": "in a session"}, {"$inc": {"hits": 1}}, session=session
        )
        found = await collection.find_one({"name": "in a session"}, session=session)
        assert found["hits"] == 1
        if mongo_backend == "memory":
            with pytest.raises(MemoryBackendUnsupported, match="transactions.*MONGODB_URL"):
                await session.start_transaction()
    assert await Counter.find_all().count() == 1
    # As with PyMongo, an ended session cannot be used again.
    with pytest.raises(InvalidOperation, match="(?i)ended session"):
        await Counter.get_pymongo_collection().find_one({}, session=session)


async def test_sort_in_a_bulk_update_is_refused_in_memory(db, mongo_backend):
    things = _raw(db, "gap_bulk_sort")
    await things.insert_many([{"_id": 1, "n": 1}, {"_id": 2, "n": 2}])
    write = lambda: things.bulk_write(  # noqa: E731
        [UpdateOne({}, {"$set": {"hit": True}}, sort={"n": -1})]
    )
    if mongo_backend == "memory":
        with pytest.raises(MemoryBackendUnsupported, match="bulk write.*MONGODB_URL"):
            await write()
        assert await things.count_documents({"hit": True}) == 0
        return
    try:
        await write()
    except OperationFailure as exc:
        assert "sort" in str(exc)  # servers before MongoDB 8.0 do not know the option
        return
    assert await _ids(things.find({"hit": True})) == [2]


async def test_a_collation_in_a_bulk_write(db, mongo_backend):
    people = _raw(db, "gap_bulk_collation")
    await people.insert_one({"_id": 1, "name": "Bob"})
    write = lambda: people.bulk_write(  # noqa: E731
        [UpdateOne({"name": "bob"}, {"$set": {"seen": True}}, collation=CI)]
    )
    if mongo_backend == "memory":
        with pytest.raises(MemoryBackendUnsupported, match="Collations.*MONGODB_URL"):
            await write()
        assert await people.count_documents({"seen": True}) == 0
        return
    assert (await write()).modified_count == 1


async def test_find_one_takes_a_bare_id(db):
    things = _raw(db, "gap_bare_id")
    await things.insert_many([{"_id": 1, "n": "one"}, {"_id": 2, "n": "two"}])
    assert (await things.find_one(2))["n"] == "two"
    assert await things.find_one(3) is None
