"""Model behaviour, run on the in-memory database and on a real MongoDB (TEST_MONGODB_URL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from beanie import Document, Link, PydanticObjectId
from pydantic import ValidationError

from vibetuner.errors import DuplicateEmail, DuplicateKey, DuplicateOAuthAccount
from vibetuner.models import (
    Blob,
    BlobStatus,
    EmailVerificationToken,
    OAuthAccount,
    TimeStampMixin,
    UserModel,
)
from vibetuner.models.email_verification import hash_token
from vibetuner.models.mixins import utcnow
from vibetuner.mongo import init_models

pytestmark = pytest.mark.parametrize("mongo_backend", ["memory", "mongodb"], indirect=True)


class Note(TimeStampMixin, Document):
    """An app model as an app author writes one."""

    title: str
    owner: Link[UserModel]

    class Settings:
        name = "test_notes"
        use_state_management = True


@pytest.fixture
async def db(vibetuner_db):
    await init_models(vibetuner_db, [UserModel, OAuthAccount, EmailVerificationToken, Blob, Note])
    return vibetuner_db


async def test_user_crud(db):
    user = UserModel(email="ada@example.com", name="Ada")
    await user.insert()
    loaded = await UserModel.get(user.id)
    assert loaded is not None and loaded.name == "Ada" and loaded.is_active
    assert loaded.session_version == 1
    await loaded.set({UserModel.name: "Ada L."})
    assert (await UserModel.get(user.id)).name == "Ada L."
    await loaded.delete()
    assert await UserModel.get(user.id) is None


async def test_email_is_validated_and_normalised(db):
    user = UserModel(email="  Grace.Hopper@Example.COM ")
    assert user.email == "grace.hopper@example.com"
    with pytest.raises(ValidationError, match="email"):
        UserModel(email="not-an-email")
    await user.insert()
    found = await UserModel.get_by_email("GRACE.HOPPER@example.com")
    assert found is not None and found.id == user.id
    assert await UserModel.get_by_email("nobody@example.com") is None
    assert await UserModel.get_by_email("garbage") is None


@pytest.mark.parametrize("variant", ["dup@example.com", "DUP@example.com", "Dup@EXAMPLE.com"])
async def test_unique_email_in_any_case(db, variant):
    await UserModel(email="dup@example.com").insert()
    with pytest.raises(DuplicateEmail) as caught:
        await UserModel(email=variant).insert()
    assert isinstance(caught.value, DuplicateKey)
    assert await UserModel.find({"email": "dup@example.com"}).count() == 1


async def test_changing_email_to_a_taken_one_is_a_domain_error(db):
    await UserModel(email="a@example.com").insert()
    other = UserModel(email="b@example.com")
    await other.insert()
    other.email = "a@example.com"
    with pytest.raises(DuplicateEmail):
        await other.save()
    assert (await UserModel.get(other.id)).email == "b@example.com"


async def test_unique_provider_account(db):
    user = UserModel(email="o@example.com")
    await user.insert()
    await OAuthAccount(provider="github", provider_user_id="42", user=user).insert()
    # The same id at another provider is a different account.
    await OAuthAccount(provider="google", provider_user_id="42", user=user).insert()
    with pytest.raises(DuplicateOAuthAccount):
        await OAuthAccount(provider="github", provider_user_id="42", user=user).insert()
    assert await OAuthAccount.find({"provider": "github"}).count() == 1


async def test_links_resolve_both_ways(db):
    user = UserModel(email="links@example.com")
    await user.insert()
    account = OAuthAccount(provider="github", provider_user_id="7", user=user, email=user.email)
    await account.insert()
    user.oauth_accounts.append(account)
    await user.save()
    blob = Blob(key="blobs/abc", backend="local", uploaded_by=user, filename="a.txt")
    await blob.insert()

    fetched_user = await UserModel.find_one(UserModel.id == user.id, fetch_links=True)
    assert [a.provider_user_id for a in fetched_user.oauth_accounts] == ["7"]
    assert isinstance(fetched_user.oauth_accounts[0], OAuthAccount)

    fetched_account = await OAuthAccount.find_one(OAuthAccount.id == account.id, fetch_links=True)
    assert isinstance(fetched_account.user, UserModel)
    assert fetched_account.user.email == "links@example.com"

    fetched_blob = await Blob.find_one(Blob.id == blob.id, fetch_links=True)
    assert isinstance(fetched_blob.uploaded_by, UserModel)
    assert fetched_blob.uploaded_by.id == user.id

    # Queries through the link field: accounts and blobs of one user.
    assert await OAuthAccount.find(OAuthAccount.user.id == user.id).count() == 1
    assert await Blob.find(Blob.uploaded_by.id == user.id).count() == 1


async def test_app_model_links_to_user(db):
    user = UserModel(email="notes@example.com")
    await user.insert()
    note = Note(title="hello", owner=user)
    await note.insert()
    loaded = await Note.find_one(Note.id == note.id, fetch_links=True)
    assert loaded.owner.email == "notes@example.com"


async def test_tokens_are_stored_but_never_dumped(db):
    user = UserModel(email="tok@example.com")
    await user.insert()
    account = OAuthAccount(
        provider="github",
        provider_user_id="9",
        user=user,
        access_token="at-secret",
        refresh_token="rt-secret",
    )
    await account.insert()
    raw = await OAuthAccount.get_pymongo_collection().find_one({"_id": account.id})
    assert raw["access_token"] == "at-secret" and raw["refresh_token"] == "rt-secret"
    loaded = await OAuthAccount.get(account.id)
    assert loaded.access_token.get_secret_value() == "at-secret"
    for text in (repr(loaded), str(loaded), loaded.model_dump_json(), str(loaded.model_dump())):
        assert "at-secret" not in text and "rt-secret" not in text
    assert "access_token" not in loaded.model_dump()


async def test_indexes(db):
    users = await UserModel.get_pymongo_collection().index_information()
    assert any(spec.get("unique") and dict(spec["key"]) == {"email": 1} for spec in users.values())
    accounts = await OAuthAccount.get_pymongo_collection().index_information()
    assert any(
        spec.get("unique") and dict(spec["key"]) == {"provider": 1, "provider_user_id": 1}
        for spec in accounts.values()
    )
    assert any(dict(spec["key"]) == {"user.$id": 1} for spec in accounts.values())
    tokens = await EmailVerificationToken.get_pymongo_collection().index_information()
    ttl = [spec for spec in tokens.values() if dict(spec["key"]) == {"expires_at": 1}]
    assert ttl and ttl[0]["expireAfterSeconds"] == 0
    blobs = await Blob.get_pymongo_collection().index_information()
    assert any(spec.get("unique") and dict(spec["key"]) == {"key": 1} for spec in blobs.values())
    assert any(dict(spec["key"]) == {"uploaded_by.$id": 1} for spec in blobs.values())


async def test_blob_key_is_unique(db):
    await Blob(key="blobs/same", backend="local").insert()
    with pytest.raises(DuplicateKey):
        await Blob(key="blobs/same", backend="local").insert()
    blob = await Blob.find_one(Blob.key == "blobs/same")
    assert blob.status == BlobStatus.PENDING and not blob.is_available


def _is_recent(value: datetime) -> bool:
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    return (
        datetime.now(UTC) - timedelta(seconds=30)
        < value
        <= datetime.now(UTC) + timedelta(seconds=1)
    )


async def _stamps(note: Note) -> tuple[datetime, datetime]:
    raw = await Note.get_pymongo_collection().find_one({"_id": note.id})
    return raw["db_insert_dt"], raw["db_update_dt"]


async def test_timestamps_on_insert(db):
    user = UserModel(email="ts@example.com")
    await user.insert()
    assert user.db_insert_dt == user.db_update_dt and _is_recent(user.db_insert_dt)
    loaded = await UserModel.get(user.id)
    assert loaded.db_insert_dt == user.db_insert_dt
    assert loaded.db_insert_dt.tzinfo is not None


async def test_timestamps_on_save_of_new_document(db):
    user = UserModel(email="save-new@example.com")
    await user.save()
    loaded = await UserModel.get(user.id)
    assert loaded.db_insert_dt is not None and _is_recent(loaded.db_update_dt)


@pytest.mark.parametrize("write", ["save", "replace", "save_changes", "set", "update"])
async def test_update_timestamp_on_each_write_path(db, write):
    user = UserModel(email=f"{write}@example.com")
    await user.insert()
    note = Note(title="v1", owner=user)
    await note.insert()
    inserted, updated = await _stamps(note)
    await asyncio.sleep(0.01)
    if write == "save":
        note.title = "v2"
        await note.save()
    elif write == "replace":
        note.title = "v2"
        await note.replace()
    elif write == "save_changes":
        note.title = "v2"
        await note.save_changes()
    elif write == "set":
        await note.set({Note.title: "v2"})
    else:
        from beanie.operators import Set

        await note.update(Set({Note.title: "v2"}))
    new_inserted, new_updated = await _stamps(note)
    assert (await Note.get(note.id)).title == "v2"
    assert new_inserted == inserted
    assert new_updated > updated


async def test_query_level_updates_do_not_touch_timestamps(db):
    """Documented limitation: Beanie fires no hooks on query-level writes."""
    user = UserModel(email="bulk@example.com")
    await user.insert()
    note = Note(title="v1", owner=user)
    await note.insert()
    _, updated = await _stamps(note)
    await asyncio.sleep(0.01)
    await Note.find(Note.id == note.id).update({"$set": {"title": "v2"}})
    _, after = await _stamps(note)
    assert after == updated


async def test_token_issue_stores_only_the_hash(db):
    raw, record = await EmailVerificationToken.issue("Token@Example.com")
    assert len(raw) >= 43
    stored = await EmailVerificationToken.get_pymongo_collection().find_one({"_id": record.id})
    assert stored["token_hash"] == hash_token(raw)
    assert raw not in str(stored)
    assert stored["email"] == "token@example.com"


async def test_token_consumed_once(db):
    raw, _ = await EmailVerificationToken.issue("once@example.com")
    assert await EmailVerificationToken.status(raw) == "valid"
    first = await EmailVerificationToken.consume(raw)
    assert first is not None and first.email == "once@example.com"
    assert await EmailVerificationToken.consume(raw) is None
    assert await EmailVerificationToken.status(raw) == "used"
    assert await EmailVerificationToken.consume("unknown-token") is None
    assert await EmailVerificationToken.status("unknown-token") == "unknown"
    assert await EmailVerificationToken.consume(raw, purpose="other") is None


async def test_token_concurrent_consumption(db):
    raw, _ = await EmailVerificationToken.issue("race@example.com")
    results = await asyncio.gather(*(EmailVerificationToken.consume(raw) for _ in range(20)))
    assert sum(result is not None for result in results) == 1


async def test_expired_token_refused(db):
    raw, record = await EmailVerificationToken.issue("late@example.com", ttl=timedelta(seconds=-1))
    assert await EmailVerificationToken.consume(raw) is None
    # Whether or not the TTL index has removed the record yet, the token reads as expired.
    assert await EmailVerificationToken.status(raw) == "expired"
    await EmailVerificationToken.get_pymongo_collection().delete_many({})
    assert await EmailVerificationToken.status(raw) == "expired"


async def test_unexpired_record_refused_once_its_expiry_passes(db):
    raw, record = await EmailVerificationToken.issue("later@example.com")
    await EmailVerificationToken.get_pymongo_collection().update_one(
        {"_id": record.id}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    assert await EmailVerificationToken.consume(raw) is None


async def test_forged_expiry_prefix_does_not_help(db):
    raw, _ = await EmailVerificationToken.issue("prefix@example.com")
    _, _, secret = raw.partition(".")
    assert await EmailVerificationToken.consume("zzzzzz." + secret) is None
    assert await EmailVerificationToken.status("zzzzzz." + secret) == "unknown"
    assert await EmailVerificationToken.status("not-a-token") == "unknown"


async def test_new_token_invalidates_older_unused_ones(db):
    old, _ = await EmailVerificationToken.issue("new@example.com")
    used, _ = await EmailVerificationToken.issue("other@example.com")
    new, _ = await EmailVerificationToken.issue("new@example.com")
    assert await EmailVerificationToken.consume(old) is None
    assert await EmailVerificationToken.consume(new) is not None
    assert await EmailVerificationToken.consume(used) is not None


async def test_sort_skip_limit(db):
    for index in range(5):
        await UserModel(email=f"u{index}@example.com", name=f"n{index}").insert()
    names = [
        u.name for u in await UserModel.find().sort(-UserModel.name).skip(1).limit(2).to_list()
    ]
    assert names == ["n3", "n2"]


async def test_sign_out_everywhere_bumps_version(db):
    user = UserModel(email="everywhere@example.com")
    await user.insert()
    await user.sign_out_everywhere()
    assert (await UserModel.get(user.id)).session_version == 2


async def test_oauth_links_migration_drops_the_users_copy(db):
    from vibetuner.migrations import run_framework_migrations

    user = UserModel(email="migrated@example.com")
    await user.insert()
    account = OAuthAccount(provider="github", provider_user_id="m1", user=user)
    await account.insert()
    users = UserModel.get_pymongo_collection()
    # A document from before: the relation stored on the user as well.
    await users.update_one({"_id": user.id}, {"$set": {"oauth_accounts": [account.to_ref()]}})

    database = users.database
    assert await run_framework_migrations(database) == ["0001_oauth_links_stored_once"]
    assert "oauth_accounts" not in await users.find_one({"_id": user.id})
    assert await run_framework_migrations(database) == []  # recorded: runs once
    fetched = await UserModel.find_one(UserModel.id == user.id, fetch_links=True)
    assert [a.provider_user_id for a in fetched.oauth_accounts] == ["m1"]


async def test_load_reads_a_user_like_get(db):
    user = UserModel(email="load@example.com", name="Load", email_verified_at=utcnow())
    await user.insert()
    loaded = await UserModel.load(user.id)
    fetched = await UserModel.get(user.id)
    assert isinstance(loaded, UserModel)
    assert loaded.model_dump(exclude={"oauth_accounts"}) == fetched.model_dump(
        exclude={"oauth_accounts"}
    )
    await loaded.set({UserModel.name: "Renamed"})  # a full document: updates work
    assert (await UserModel.get(user.id)).name == "Renamed"
    assert await UserModel.load(PydanticObjectId()) is None


async def test_lazily_parsed_documents_each_keep_their_own_values(db):
    # Every document gets its own empty ``_store``;
    # lazy parsing keeps the raw values there until a field is read.
    ada = await UserModel(email="ada@example.com", name="Ada").insert()
    await UserModel(email="bob@example.com", name="Bob").insert()
    await Note(title="first", owner=ada).insert()

    found = await UserModel.find(lazy_parse=True).sort("+email").to_list()
    assert [user.name for user in found] == ["Ada", "Bob"]
    assert found[0]._store is not found[1]._store
    found[0].name = "Ada L."
    assert found[1].name == "Bob"
    fresh = [UserModel(email=f"u{n}@example.com") for n in range(2)]
    assert fresh[0]._store is not fresh[1]._store
    (note,) = await Note.find(lazy_parse=True).to_list()
    assert note.title == "first" and note._store is not found[0]._store
