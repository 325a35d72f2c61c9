"""Connecting to MongoDB: URL handling and failing fast on an unreachable server."""

from __future__ import annotations

import sys

import pytest

from tests.blobs.test_config import startup_message
from vibetuner.config import Settings
from vibetuner.errors import ConfigurationError, DatabaseUnavailable
from vibetuner.mongo import connect, database_name, describe_hosts
from vibetuner.testing import free_port as closed_port


def test_describe_hosts_never_shows_credentials():
    assert (
        describe_hosts("mongodb://alice:s3cret@db.example.com:27018/app") == "db.example.com:27018"
    )
    assert describe_hosts("mongodb://u:p@h1:1,h2:2/?replicaSet=rs") == "h1:1,h2:2"
    assert "s3cret" not in describe_hosts("mongodb+srv://alice:s3cret@cluster.example.net/app")


def test_database_name_from_setting_url_or_default():
    assert database_name("mongodb://h/app_db?tls=true", None) == "app_db"
    assert database_name("mongodb://h/app_db", "override") == "override"
    assert database_name("mongodb://h:27017", None) == "vibetuner"
    assert database_name("mongodb://h:27017/", None) == "vibetuner"


async def test_unreachable_server_raises_a_clear_error_without_password():
    port = closed_port()
    settings = Settings(
        _env_file=None,
        mongodb_url=f"mongodb://bob:hunter2@127.0.0.1:{port}/x",
        mongodb_timeout_ms=300,
    )
    with pytest.raises(DatabaseUnavailable) as caught:
        await connect(settings)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "hunter2" not in message and "bob" not in message


async def test_invalid_url_is_a_configuration_error():
    settings = Settings(_env_file=None, mongodb_url="mongodb://bob:pw@host:notaport/x")
    with pytest.raises(ConfigurationError) as caught:
        await connect(settings)
    assert "pw" not in str(caught.value).replace("MONGODB_URL", "")


async def test_in_memory_when_no_url(caplog):
    mongo = await connect(Settings(_env_file=None, environment="test"))
    try:
        assert mongo.in_memory and await mongo.ping()
        assert any("in-memory database" in record.message for record in caplog.records)
    finally:
        await mongo.close()


@pytest.fixture
def without_memory_extra(monkeypatch):
    """The packages of vibetuner[memory] absent, as in a production install."""
    # A None entry in sys.modules makes the import raise ImportError, as when absent.
    monkeypatch.setitem(sys.modules, "mongomock", None)
    monkeypatch.setitem(sys.modules, "mongomock_motor", None)
    # Every module of the in-memory layer imports again, finding them gone.
    for name in list(sys.modules):
        if name.startswith(("vibetuner.mongo_memory", "vibetuner._compat.mongomock")):
            monkeypatch.delitem(sys.modules, name)


MISSING_MEMORY = (
    "MONGODB_URL is not set and the in-memory development database is not installed; "
    'install it with: pip install "vibetuner[memory]" (or set MONGODB_URL)'
)


async def test_in_memory_without_its_extra_names_the_extra(without_memory_extra):
    with pytest.raises(ConfigurationError) as caught:
        await connect(Settings(_env_file=None, environment="test"))
    assert str(caught.value) == MISSING_MEMORY


async def test_app_without_the_memory_extra_fails_at_startup_in_one_line(without_memory_extra):
    from vibetuner import create_app

    app = create_app(settings=Settings(_env_file=None, environment="test"))
    message = await startup_message(app)
    assert message["type"] == "lifespan.startup.failed"
    assert message["message"] == f"ConfigurationError: {MISSING_MEMORY}"


async def test_a_real_server_needs_no_memory_extra(without_memory_extra):
    # MONGODB_URL set: the in-memory packages are never imported (an unreachable
    # server fails as such, not with the missing extra).
    settings = Settings(
        _env_file=None, mongodb_url=f"mongodb://127.0.0.1:{closed_port()}", mongodb_timeout_ms=300
    )
    with pytest.raises(DatabaseUnavailable):
        await connect(settings)


def test_empty_mongodb_url_means_in_memory(monkeypatch):
    monkeypatch.setenv("MONGODB_URL", "")
    assert Settings(_env_file=None).mongodb_url is None


def dev_settings(tmp_path):
    return Settings(_env_file=None, environment="development", data_dir=tmp_path / "data")


async def test_the_development_database_survives_a_restart(tmp_path):
    from vibetuner.mongo_devfile import FILE_NAME

    first = await connect(dev_settings(tmp_path))
    assert first.devfile is not None and first.devfile.owner
    await first.database["notes"].insert_many([{"n": n, "title": f"note {n}"} for n in range(3)])
    await first.close()
    assert (tmp_path / "data" / FILE_NAME).is_file()

    second = await connect(dev_settings(tmp_path))
    try:
        found = await second.database["notes"].find({}).sort("n", 1).to_list(length=None)
        assert [doc["title"] for doc in found] == ["note 0", "note 1", "note 2"]
    finally:
        await second.close()


async def test_changes_are_saved_while_running(tmp_path):
    import asyncio

    from vibetuner.mongo_devfile import FILE_NAME, SAVE_INTERVAL

    mongo = await connect(dev_settings(tmp_path))
    try:
        await mongo.database["notes"].insert_one({"title": "kept"})
        path = tmp_path / "data" / FILE_NAME
        for _ in range(50):
            if path.is_file() and b"kept" in path.read_bytes():
                break
            await asyncio.sleep(SAVE_INTERVAL / 5)
        assert b"kept" in path.read_bytes()  # a crash now would lose nothing
        assert not path.with_suffix(".tmp").exists()
    finally:
        await mongo.close()


async def test_a_second_process_reads_but_does_not_overwrite(tmp_path, caplog):
    owner = await connect(dev_settings(tmp_path))
    try:
        await owner.database["notes"].insert_one({"title": "from the server"})
        await owner.devfile.save()
        reader = await connect(dev_settings(tmp_path))
        try:
            assert not reader.devfile.owner
            assert await reader.database["notes"].count_documents({}) == 1
            assert any("cannot keep changes" in r.message for r in caplog.records)
            await reader.database["notes"].insert_one({"title": "lost"})
        finally:
            await reader.close()
    finally:
        await owner.close()
    again = await connect(dev_settings(tmp_path))
    try:
        titles = [d["title"] async for d in again.database["notes"].find({})]
        assert titles == ["from the server"]
    finally:
        await again.close()


async def test_an_unreadable_file_is_set_aside_not_lost(tmp_path):
    from vibetuner.mongo_devfile import FILE_NAME

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / FILE_NAME).write_bytes(b"\x05\x00not bson at all")
    mongo = await connect(dev_settings(tmp_path))
    try:
        assert await mongo.database["notes"].count_documents({}) == 0
    finally:
        await mongo.close()
    assert (tmp_path / "data" / "devdb.unreadable").read_bytes() == b"\x05\x00not bson at all"


def test_the_development_session_key_is_made_once(tmp_path):
    from vibetuner.services.keys import signing_key

    settings = dev_settings(tmp_path)
    first = signing_key(settings)
    assert signing_key(dev_settings(tmp_path)) == first  # the next process: the same key
    key_file = tmp_path / "data" / "session_key"
    assert key_file.read_text() == first and len(first) >= 32
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_db_reset_wipes_the_development_database(tmp_path, monkeypatch):
    import asyncio

    from typer.testing import CliRunner

    from vibetuner.cli import app as cli_app

    async def fill() -> None:
        mongo = await connect(dev_settings(tmp_path))
        await mongo.database["notes"].insert_one({"title": "to be wiped"})
        await mongo.close()

    asyncio.run(fill())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MONGODB_URL", raising=False)
    result = CliRunner().invoke(cli_app, ["db", "reset", "--yes"])
    assert result.exit_code == 0, result.output
    assert "wiped" in result.output
    assert not (tmp_path / "data" / "devdb.bson").exists()

    monkeypatch.setenv("MONGODB_URL", "mongodb://127.0.0.1:1/app")
    refused = CliRunner().invoke(cli_app, ["db", "reset", "--yes"])
    assert refused.exit_code == 2 and "MONGODB_URL is set" in refused.output
