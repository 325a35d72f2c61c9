"""Connecting to MongoDB: URL handling and failing fast on an unreachable server."""

from __future__ import annotations

import pytest

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
    mongo = await connect(Settings(_env_file=None))
    try:
        assert mongo.in_memory and await mongo.ping()
        assert any("in-memory database" in record.message for record in caplog.records)
    finally:
        await mongo.close()


def test_empty_mongodb_url_means_in_memory(monkeypatch):
    monkeypatch.setenv("MONGODB_URL", "")
    assert Settings(_env_file=None).mongodb_url is None
