"""The in-memory compatibility layer on its own: each gap Beanie 2.2 hits in mongomock-motor."""

from __future__ import annotations

from bson import DBRef, ObjectId

from vibetuner.mongo_memory_client import create_memory_client
from vibetuner.mongo_memory_lookups import values_at


async def test_list_collection_names_accepts_pymongo_options():
    db = create_memory_client()["compat"]
    await db["things"].insert_one({"a": 1})
    assert await db.list_collection_names(authorizedCollections=True, nameOnly=True) == ["things"]


async def test_aggregate_cursor_is_awaitable_like_pymongo():
    db = create_memory_client()["compat"]
    await db["things"].insert_many([{"n": 1}, {"n": 2}, {"n": 3}])
    cursor = await db["things"].aggregate([{"$match": {"n": {"$gte": 2}}}, {"$sort": {"n": -1}}])
    assert [doc["n"] for doc in await cursor.to_list(length=None)] == [3, 2]


async def test_datetimes_come_back_timezone_aware():
    from datetime import UTC, datetime

    db = create_memory_client()["compat"]
    await db["things"].insert_one({"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)})
    doc = await db["things"].find_one({})
    assert doc["at"].tzinfo is not None and doc["at"].utcoffset().total_seconds() == 0


async def test_lookup_through_dbref_ids_in_both_directions():
    db = create_memory_client()["compat"]
    user_id, other_id = ObjectId(), ObjectId()
    await db["users"].insert_many(
        [{"_id": user_id, "name": "ada"}, {"_id": other_id, "name": "bob"}]
    )
    await db["accounts"].insert_many(
        [
            {"_id": 1, "user": DBRef("users", user_id)},
            {"_id": 2, "user": DBRef("users", user_id)},
            {"_id": 3, "user": DBRef("users", other_id)},
        ]
    )
    forward = await (
        await db["accounts"].aggregate(
            [
                {
                    "$lookup": {
                        "from": "users",
                        "localField": "user.$id",
                        "foreignField": "_id",
                        "as": "u",
                    }
                }
            ]
        )
    ).to_list(None)
    assert {doc["_id"]: doc["u"][0]["name"] for doc in forward} == {1: "ada", 2: "ada", 3: "bob"}

    back = await (
        await db["users"].aggregate(
            [
                {
                    "$lookup": {
                        "from": "accounts",
                        "localField": "_id",
                        "foreignField": "user.$id",
                        "as": "a",
                    }
                }
            ]
        )
    ).to_list(None)
    assert {doc["name"]: sorted(a["_id"] for a in doc["a"]) for doc in back} == {
        "ada": [1, 2],
        "bob": [3],
    }


async def test_lookup_with_a_list_of_dbrefs_and_a_sub_pipeline():
    db = create_memory_client()["compat"]
    ids = [ObjectId(), ObjectId()]
    await db["accounts"].insert_many([{"_id": ids[0], "p": "a"}, {"_id": ids[1], "p": "b"}])
    await db["users"].insert_one({"_id": 1, "accounts": [DBRef("accounts", i) for i in ids]})
    pipeline = [
        {
            "$lookup": {
                "from": "accounts",
                "localField": "accounts.$id",
                "foreignField": "_id",
                "as": "joined",
                "pipeline": [{"$match": {"p": "b"}}, {"$addFields": {"seen": True}}],
            }
        }
    ]
    (doc,) = await (await db["users"].aggregate(pipeline)).to_list(None)
    assert [(a["p"], a["seen"]) for a in doc["joined"]] == [("b", True)]
    # The sub-pipeline must not change the stored documents.
    assert "seen" not in await db["accounts"].find_one({"_id": ids[1]})


async def test_queries_step_into_dbrefs():
    db = create_memory_client()["compat"]
    owner = ObjectId()
    await db["notes"].insert_many(
        [{"owner": DBRef("users", owner)}, {"owner": DBRef("users", ObjectId())}]
    )
    assert await db["notes"].count_documents({"owner.$id": owner}) == 1
    assert await db["notes"].count_documents({"owner": DBRef("users", owner)}) == 1


def test_values_at_reads_dbrefs_and_fans_out_over_lists():
    ref = DBRef("users", 5)
    assert values_at({"a": {"b": 1}}, "a.b") == [1]
    assert values_at({"u": ref}, "u.$id") == [5]
    assert values_at({"l": [DBRef("x", 1), DBRef("x", 2)]}, "l.$id") == [1, 2]
    assert values_at({"l": [{"v": [1, 2]}, {"v": 3}]}, "l.v") == [1, 2, 3]
    assert values_at({"a": 1}, "missing.path") == []
