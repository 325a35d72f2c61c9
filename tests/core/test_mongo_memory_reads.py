"""Reads by ``_id``, the copies handed out and TTL expiry on the in-memory database."""

from __future__ import annotations

from datetime import datetime, timedelta

import mongomock
import pytest
from beanie import PydanticObjectId
from bson import DBRef, ObjectId
from pymongo import IndexModel
from pymongo.errors import DuplicateKeyError

from vibetuner.mongo_memory_client import create_memory_client


async def test_a_lookup_by_id_finds_the_document_and_hands_out_a_copy():
    things = create_memory_client()["lookups"]["things"]
    oid = ObjectId()
    await things.insert_many([{"_id": oid, "tags": ["a"]}, {"_id": "key", "n": 1}])

    found = await things.find_one({"_id": oid})
    assert found == {"_id": oid, "tags": ["a"]}
    found["tags"].append("changed")  # the caller's copy, not the stored document
    assert (await things.find_one({"_id": oid}))["tags"] == ["a"]
    assert await things.find_one({"_id": PydanticObjectId(oid)}) is not None
    assert (await things.find_one({"_id": "key"}))["n"] == 1
    assert await things.find_one({"_id": "missing"}) is None
    assert await things.find_one({"_id": ObjectId()}) is None
    assert await things.find_one({"_id": "key"}, {"n": 0}) == {"_id": "key"}


async def test_documents_handed_out_share_nothing_mutable_with_the_store():
    things = create_memory_client()["lookups"]["things"]
    ref = DBRef("users", ObjectId())
    stored = {
        "_id": "doc",
        "profile": {
            "name": "Ada",
            "langs": ["en", {"code": "es"}],
            "seen": [{"at": datetime(2026, 1, 2, 3, 4, 5)}],
        },
        "blob": b"\x00\x01",
        "at": datetime(2026, 1, 2, 3, 4, 5),
        "owner": ref,
    }
    await things.insert_one(stored)

    for found in (
        await things.find_one({"_id": "doc"}),
        await things.find_one({"blob": b"\x00\x01"}),
    ):
        assert found["profile"]["langs"] == ["en", {"code": "es"}]
        assert found["owner"] == ref and found["blob"] == b"\x00\x01"
        # Dates come back in UTC, at any depth, as from the timezone-aware real client.
        for at in (found["at"], found["profile"]["seen"][0]["at"]):
            assert at.utcoffset() == timedelta(0)
            assert at.replace(tzinfo=None) == datetime(2026, 1, 2, 3, 4, 5)
        found["profile"]["name"] = "changed"
        found["profile"]["langs"][1]["code"] = "changed"
        found["profile"]["langs"].append("changed")
    again = await things.find_one({"_id": "doc"})
    assert again["profile"]["name"] == "Ada"
    assert again["profile"]["langs"] == ["en", {"code": "es"}]


async def test_an_id_match_keeps_types_apart():
    things = create_memory_client()["lookups"]["things"]
    await things.insert_many([{"_id": 1}, {"_id": "1"}])
    assert await things.find_one({"_id": 1}) == {"_id": 1}
    assert await things.find_one({"_id": "1"}) == {"_id": "1"}
    found = await things.find({"_id": {"$in": [1, "1"]}}).to_list(None)
    assert sorted(str(doc["_id"]) for doc in found) == ["1", "1"]


async def test_updates_and_deletes_by_id_see_the_current_document():
    things = create_memory_client()["lookups"]["things"]
    await things.insert_one({"_id": "a", "n": 1})
    await things.update_one({"_id": "a"}, {"$inc": {"n": 1}})
    assert (await things.find_one({"_id": "a"}))["n"] == 2
    assert (await things.delete_one({"_id": "a"})).deleted_count == 1
    assert await things.find_one({"_id": "a"}) is None
    assert await things.count_documents({}) == 0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch):
    """mongomock's clock for TTL indexes (its documented hook), moved on by the test."""
    now = [datetime.utcnow().replace(microsecond=0)]
    monkeypatch.setattr(mongomock, "utcnow", lambda: now[0])
    return now


async def _ttl_collection():
    sessions = create_memory_client()["lookups"]["sessions"]
    await sessions.create_indexes([IndexModel("expires_at", expireAfterSeconds=0)])
    return sessions


async def test_a_document_is_gone_on_the_first_read_after_it_expires(clock):
    sessions = await _ttl_collection()
    await sessions.insert_one({"_id": "s", "expires_at": clock[0] + timedelta(hours=1)})
    assert await sessions.find_one({"_id": "s"}) is not None  # the scan saw nothing due

    clock[0] += timedelta(minutes=59)
    assert await sessions.find_one({"_id": "s"}) is not None
    clock[0] += timedelta(minutes=1)
    assert await sessions.find_one({"_id": "s"}) is None
    assert await sessions.count_documents({}) == 0


async def test_an_update_that_moves_the_expiry_into_the_past_takes_effect_at_once(clock):
    sessions = await _ttl_collection()
    await sessions.insert_many(
        [
            {"_id": "kept", "expires_at": clock[0] + timedelta(days=1)},
            {"_id": "ended", "expires_at": clock[0] + timedelta(days=1)},
        ]
    )
    assert await sessions.count_documents({}) == 2
    await sessions.update_one(
        {"_id": "ended"}, {"$set": {"expires_at": clock[0] - timedelta(seconds=1)}}
    )
    assert await sessions.find_one({"_id": "ended"}) is None
    assert await sessions.find_one({"_id": "kept"}) is not None


async def test_expired_inserts_go_and_non_dates_never_expire(clock):
    sessions = await _ttl_collection()
    assert await sessions.find_one({"_id": "x"}) is None  # a scan of the empty collection
    await sessions.insert_many(
        [
            {"_id": "old", "expires_at": clock[0] - timedelta(seconds=1)},
            {"_id": "text", "expires_at": "tomorrow"},
            {"_id": "none"},
            {"_id": "list", "expires_at": [clock[0] + timedelta(hours=2), clock[0]]},
        ]
    )
    assert {doc["_id"] for doc in await sessions.find({}).to_list(None)} == {"text", "none"}
    clock[0] += timedelta(days=365)
    assert await sessions.count_documents({}) == 2


async def test_a_ttl_index_made_after_the_documents_expires_them(clock):
    things = create_memory_client()["lookups"]["things"]
    await things.insert_one({"_id": "a", "at": clock[0] - timedelta(minutes=5)})
    assert await things.find_one({"_id": "a"}) is not None  # no TTL index yet
    await things.create_indexes([IndexModel("at", expireAfterSeconds=60)])
    assert await things.find_one({"_id": "a"}) is None


async def test_unique_indexes_refuse_duplicates_after_reads():
    users = create_memory_client()["lookups"]["users"]
    await users.create_indexes([IndexModel("email", unique=True)])
    await users.insert_many([{"_id": 1, "email": "a@x"}, {"_id": 2, "email": "b@x"}])
    assert await users.find_one({"email": "a@x"}) is not None  # an index of email now

    with pytest.raises(DuplicateKeyError):
        await users.update_one({"_id": 2}, {"$set": {"email": "a@x"}})
    with pytest.raises(DuplicateKeyError):
        await users.update_many({"email": "b@x"}, {"$set": {"email": "a@x"}})
    with pytest.raises(DuplicateKeyError):
        await users.replace_one({"_id": 2}, {"email": "a@x"})
    with pytest.raises(DuplicateKeyError):
        await users.insert_one({"_id": 3, "email": "b@x"})
    with pytest.raises(DuplicateKeyError):
        await users.update_one({"email": "new@x"}, {"$set": {"email": "a@x"}}, upsert=True)
    assert [doc["_id"] for doc in await users.find({"email": "a@x"}).to_list(None)] == [1]
    assert [doc["_id"] for doc in await users.find({"email": "b@x"}).to_list(None)] == [2]
