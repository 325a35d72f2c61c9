"""On the in-memory database, an aggregation that starts with ``$match`` reads only the
matching documents, and a ``$lookup`` on ids or strings reads only the documents it joins:
the answers are the same as when both read whole collections, and they no longer grow
with what else is stored (a signed-in request's session read among thousands of users)."""

from __future__ import annotations

from typing import Any

import mongomock.aggregate
import pytest
from bson import DBRef, ObjectId

from vibetuner import mongo_memory
from vibetuner.mongo_memory import apply_compat

USERS = [ObjectId() for _ in range(6)]


def seeded() -> Any:
    """The in-memory database's collections, used directly (the async client wraps them)."""
    apply_compat()
    db = mongomock.MongoClient(tz_aware=True)["pipelines"]
    db["users"].insert_many(
        [
            {"_id": uid, "email": f"u{i}@example.com", "tags": ["t1"] if i % 2 else ["t2", "t1"]}
            | ({"n": i} if i != 3 else {})
            for i, uid in enumerate(USERS)
        ]
    )
    db["accounts"].insert_many(
        [
            {"provider": "github", "user": DBRef("users", USERS[0])},
            {"provider": "google", "user": DBRef("users", USERS[0])},
            {"provider": "github", "user": DBRef("users", USERS[1])},
            {"provider": "none"},
        ]
    )
    db["sessions"].insert_many(
        [
            {"_id": "s-a", "user_id": USERS[0], "team": [USERS[1], USERS[2]]},
            {"_id": "s-b", "user_id": USERS[4], "team": []},
            {"_id": "s-c", "user_id": None, "team": [USERS[5]]},
            {"_id": "s-d", "owner_email": "u2@example.com"},
        ]
    )
    return db


def lookup(source: str, local: str, foreign: str, into: str = "joined") -> dict[str, Any]:
    return {"$lookup": {"from": source, "localField": local, "foreignField": foreign, "as": into}}


PIPELINES = [
    ("sessions", [{"$match": {"_id": "s-a"}}, lookup("users", "user_id", "_id")]),
    (
        "sessions",
        [
            {"$match": {"_id": "s-a"}},
            lookup("users", "user_id", "_id", "user"),
            lookup("accounts", "user_id", "user.$id", "links"),
            {"$addFields": {"providers": "$links.provider"}},
            {"$project": {"links": 0}},
        ],
    ),
    ("sessions", [{"$match": {"_id": "missing"}}, lookup("users", "user_id", "_id")]),
    ("sessions", [lookup("users", "team", "_id")]),
    ("sessions", [lookup("users", "user_id", "_id")]),  # a None and a missing local value
    ("sessions", [lookup("users", "owner_email", "email")]),
    ("users", [{"$match": {"email": "u2@example.com"}}]),
    ("users", [{"$match": {"tags": "t2"}}, {"$sort": {"_id": 1}}]),
    ("users", [{"$match": {"n": {"$gte": 2}}}, {"$sort": {"n": -1}}, {"$limit": 2}]),
    ("users", [{"$match": {}}, {"$count": "all"}]),
    ("users", [{"$sort": {"email": 1}}, {"$match": {"n": 1}}]),
    ("users", [{"$match": {"_id": USERS[0]}}, lookup("accounts", "_id", "user.$id")]),
    ("accounts", [{"$match": {"provider": "github"}}, lookup("users", "user.$id", "_id")]),
]


def scanned(db: Any, name: str, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answer mongomock gives reading whole collections (its own aggregate's way)."""
    documents = list(db[name].find())
    return list(mongomock.aggregate.process_pipeline(documents, db, pipeline, None))


@pytest.mark.parametrize(("name", "pipeline"), PIPELINES)
def test_the_same_answers_as_reading_whole_collections(name, pipeline, monkeypatch):
    db = seeded()
    fast = list(db[name].aggregate(pipeline))
    monkeypatch.setattr(mongo_memory, "LOOKUP_BY_VALUE_LIMIT", -1)  # every $lookup scans
    assert fast == scanned(db, name, pipeline)
    assert fast == list(db[name].aggregate(pipeline))


def test_a_session_read_does_not_read_every_session_and_user(monkeypatch):
    db = seeded()
    db["users"].insert_many([{"email": f"other{i}@example.com"} for i in range(500)])
    db["sessions"].insert_many([{"user_id": ObjectId()} for _ in range(500)])
    fed: list[int] = []
    original = mongomock.aggregate.process_pipeline

    def counted(collection: Any, *args: Any, **kwargs: Any) -> Any:
        fed.append(len(collection))
        return original(collection, *args, **kwargs)

    monkeypatch.setattr(mongomock.aggregate, "process_pipeline", counted)
    read = mongo_memory._lookup_candidates
    candidates: list[int] = []

    def noted(*args: Any) -> list[dict[str, Any]]:
        found = read(*args)
        candidates.append(len(found))
        return found

    monkeypatch.setattr(mongo_memory, "_lookup_candidates", noted)
    pipeline = PIPELINES[1][1]
    [session] = db["sessions"].aggregate(pipeline)
    assert session["user"][0]["_id"] == USERS[0] and session["providers"] == ["github", "google"]
    assert fed == [1]  # the one session, not 504
    assert candidates == [1, 2]  # its user and its two links, not every user and link
