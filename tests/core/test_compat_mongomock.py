"""What ``vibetuner._compat.mongomock`` and the in-memory client rely on in mongomock and
mongomock-motor. Each test fails when that behaviour, name or signature changes, so an
upgrade that breaks the development database is caught here first."""

from __future__ import annotations

import inspect

import mongomock
import mongomock.aggregate
import mongomock.collection
import mongomock.filtering
import mongomock_motor
import pytest
from bson import DBRef
from pymongo import ReplaceOne, UpdateOne

from vibetuner.mongo_memory_client import create_memory_client
from vibetuner.mongo_memory_filters import IS_NULL, Exactly


def _sync_collection():
    return mongomock.MongoClient()["contract"]["things"]


def test_pipeline_stages_are_looked_up_in_the_private_table_at_run_time(monkeypatch):
    assert "$lookup" in mongomock.aggregate._PIPELINE_HANDLERS
    seen = []

    def stage(documents, database, options):
        seen.append(options)
        return [{**doc, "staged": True} for doc in documents]

    monkeypatch.setitem(mongomock.aggregate._PIPELINE_HANDLERS, "$lookup", stage)
    things = _sync_collection()
    things.insert_one({"_id": 1})
    assert list(things.aggregate([{"$lookup": {"x": 1}}])) == [{"_id": 1, "staged": True}]
    assert seen == [{"x": 1}]


def test_process_pipeline_runs_a_pipeline_over_a_list_of_documents():
    database = mongomock.MongoClient()["contract"]
    params = list(inspect.signature(mongomock.aggregate.process_pipeline).parameters)
    assert params == ["collection", "database", "pipeline", "session"]
    out = mongomock.aggregate.process_pipeline(
        [{"n": 1}, {"n": 2}], database, [{"$match": {"n": 2}}], None
    )
    assert list(out) == [{"n": 2}]


def test_filters_resolve_paths_through_iter_key_candidates_by_name(monkeypatch):
    calls = []
    original = mongomock.filtering.iter_key_candidates

    def spy(key, doc):
        calls.append(key)
        return original(key, doc)

    monkeypatch.setattr(mongomock.filtering, "iter_key_candidates", spy)
    assert mongomock.filtering.filter_applies({"a.b": 1}, {"a": {"b": 1}})
    assert "a.b" in calls


def test_queries_step_into_dbrefs_only_through_the_patch():
    create_memory_client()  # installs the patches
    ref = DBRef("users", 5, role="author")
    assert mongomock.filtering.filter_applies({"u.$id": 5}, {"u": ref})
    assert mongomock.filtering.filter_applies({"u.role": "author"}, {"u": ref})


def test_find_sorts_and_sort_stages_call_resolve_sort_key_by_name(monkeypatch):
    create_memory_client()
    calls = []
    original = mongomock.filtering.resolve_sort_key

    def spy(key, doc):
        calls.append(key)
        return original(key, doc)

    monkeypatch.setattr(mongomock.filtering, "resolve_sort_key", spy)
    things = _sync_collection()
    things.insert_many([{"n": 2}, {"n": 1}])
    assert [d["n"] for d in things.find({}, sort=[("n", 1)])] == [1, 2]
    assert [d["n"] for d in things.aggregate([{"$sort": {"n": -1}}])] == [2, 1]
    assert calls.count("n") >= 4
    assert list(inspect.signature(mongomock.filtering.resolve_key).parameters) == ["key", "doc"]


def test_eq_passes_a_missing_field_as_nothing_and_tests_each_element_of_an_array():
    # ``{"$type": "null"}`` is rewritten to ``{"$eq": IS_NULL}`` (mongomock does not
    # implement it): that is right only while ``$eq`` never hands a missing field over as
    # None and compares an array element by element.
    applies = mongomock.filtering.filter_applies
    assert applies({"v": {"$eq": IS_NULL}}, {"v": None})
    assert not applies({"v": {"$eq": IS_NULL}}, {})
    assert not applies({"v": {"$eq": IS_NULL}}, {"v": 0})
    assert applies({"v": {"$eq": IS_NULL}}, {"v": [1, None]})
    assert applies({"v": {"$not": {"$eq": IS_NULL}}}, {})
    assert applies({"a": {"$elemMatch": {"$eq": IS_NULL}}}, {"a": [1, None]})


def test_the_bulk_builder_takes_no_sort_but_pymongo_passes_one():
    create_memory_client()
    for name in ("add_update", "add_replace", "add_delete"):
        patched = getattr(mongomock.collection.BulkOperationBuilder, name)
        original = inspect.signature(patched).parameters["_method"].default
        params = inspect.signature(original).parameters
        assert "sort" not in params and "collation" in params
    # PyMongo hands sort= to the builder; with the patch the bulk write runs.
    things = _sync_collection()
    things.insert_one({"_id": 1, "n": 1})
    result = things.bulk_write(
        [UpdateOne({"_id": 1}, {"$set": {"n": 2}}), ReplaceOne({"_id": 1}, {"n": 3})]
    )
    assert result.modified_count == 2


def test_the_bulk_builder_ignores_a_collation():
    # Why a collation in a bulk write is refused: mongomock accepts it and matches
    # case-sensitively anyway.
    things = mongomock.MongoClient()["contract"]["plain"]
    things.insert_one({"_id": 1, "name": "Bob"})
    builder = things.initialize_ordered_bulk_op()
    original = inspect.signature(type(builder).add_update).parameters["_method"].default
    original(
        builder, {"name": "bob"}, {"$set": {"x": 1}}, collation={"locale": "en", "strength": 2}
    )
    assert builder.execute()["nMatched"] == 0


def test_mongomock_compares_filter_values_with_python_equality():
    # Why filters are made strict: mongomock matches True to 1 ...
    applies = mongomock.filtering.filter_applies
    assert applies({"v": True}, {"v": 1})
    # ... and a wrapped value's own equality is what it uses, in every equality form.
    assert not applies({"v": Exactly(True)}, {"v": 1})
    assert applies({"v": Exactly(True)}, {"v": True})
    assert applies({"v": Exactly(1)}, {"v": [5, 1.0]})
    assert not applies({"v": {"$in": [Exactly(1)]}}, {"v": True})
    assert applies({"v": {"$ne": Exactly(1)}}, {"v": True})
    assert applies({"v": {"x": Exactly(1)}}, {"v": {"x": 1}})


def test_an_upsert_is_seeded_from_the_filters_plain_top_level_fields():
    things = _sync_collection()
    things.insert_one({"_id": 1, "a": 1})
    never = {"_id": {"$exists": False}}
    things.update_one({"a": True, "$and": [never]}, {"$set": {"b": 1}}, upsert=True)
    assert things.count_documents({}) == 2
    (new,) = [doc for doc in things.find({}) if doc["_id"] != 1]
    assert new["a"] is True and new["b"] == 1 and "$and" not in new


def test_mongomock_motor_builds_on_the_objects_it_is_given():
    sync = mongomock.MongoClient()
    client = mongomock_motor.AsyncMongoMockClient(mock_mongo_client=sync)
    database = mongomock_motor.AsyncMongoMockDatabase(client, sync["contract"])
    assert database.delegate is sync["contract"]
    collection = mongomock_motor.AsyncMongoMockCollection(database, sync["contract"]["things"])
    assert collection.database is database
    params = inspect.signature(mongomock_motor.AsyncCursor.__init__).parameters
    assert list(params) == ["self", "cursor"]
    params = inspect.signature(mongomock_motor.AsyncLatentCommandCursor.__init__).parameters
    assert list(params) == ["self", "cursor"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.update_one({}, {"$set": {"n.$[x]": 1}}, array_filters=[{"x": 1}]),
        lambda c: c.find_one({"$text": {"$search": "x"}}),
    ],
)
def test_what_mongomock_does_not_implement_raises_not_implemented_error(call):
    # The in-memory client turns exactly this error into MemoryBackendUnsupported.
    things = _sync_collection()
    things.insert_one({"_id": 1, "n": [1]})
    with pytest.raises(NotImplementedError):
        call(things)
