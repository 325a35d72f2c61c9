"""The MongoDB connection: a real server when ``MONGODB_URL`` is set, else in memory."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from beanie import Document, init_beanie

from vibetuner.config import Settings
from vibetuner.errors import ConfigurationError, DatabaseUnavailable
from vibetuner.mongo_devfile import open_dev_database

if TYPE_CHECKING:
    from vibetuner.mongo_devfile import DevDatabaseFile

logger = logging.getLogger("vibetuner.mongo")

DEFAULT_DB_NAME = "vibetuner"
MEMORY_WARNING = (
    "MONGODB_URL is not set: using an in-memory database. Data is lost when the process "
    "stops. Set MONGODB_URL (for example mongodb://localhost:27017/myapp) to use a real server."
)


@dataclass
class Mongo:
    """An open connection: the client, the database and whether it is in memory."""

    client: Any
    database: Any
    in_memory: bool
    hosts: str
    #: The development database's file (in-memory database in development), else None.
    devfile: DevDatabaseFile | None = None

    async def ping(self) -> bool:
        """True when the database answers a ``ping``."""
        try:
            await self.database.command("ping")
        except Exception:  # any failure means "not reachable" to a health check
            return False
        return True

    async def close(self) -> None:
        """Save the development database if there is one, then close the client (idempotent)."""
        if self.devfile is not None:
            devfile, self.devfile = self.devfile, None
            await devfile.close()
        result = self.client.close()
        if hasattr(result, "__await__"):
            await result


def describe_hosts(url: str) -> str:
    """``host:port`` list of a MongoDB URL, without user name or password."""
    from pymongo.uri_parser import parse_uri

    try:
        parsed = parse_uri(url, warn=True)
    except Exception:
        # An SRV URL cannot be resolved offline; take the host part by hand.
        rest = url.split("://", 1)[-1].split("/", 1)[0]
        return rest.rsplit("@", 1)[-1]
    return ",".join(f"{host}:{port}" for host, port in parsed["nodelist"])


def database_name(url: str, configured: str | None) -> str:
    """``MONGODB_DB`` when set, else the database in the URL path, else ``vibetuner``."""
    if configured:
        return configured
    path = url.split("://", 1)[-1].split("/", 1)
    if len(path) == 2:
        name = path[1].split("?", 1)[0]
        if name:
            return name
    return DEFAULT_DB_NAME


MEMORY_INSTALL_HINT = 'pip install "vibetuner[memory]"'
# The in-memory database's packages: the `memory` extra, left out of production installs.
MEMORY_PACKAGES = frozenset({"mongomock", "mongomock_motor", "motor"})


def open_memory_client() -> Any:
    """A new in-memory client, or a ``ConfigurationError`` naming the extra it needs."""
    try:
        # Lazy: mongomock (the optional `memory` extra) only for the in-memory database.
        from vibetuner.mongo_memory_client import create_memory_client

        return create_memory_client()
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in MEMORY_PACKAGES:
            raise
        raise ConfigurationError(
            "MONGODB_URL is not set and the in-memory development database is not "
            f"installed; install it with: {MEMORY_INSTALL_HINT} (or set MONGODB_URL)"
        ) from None


async def connect(settings: Settings) -> Mongo:
    """Open the database named by the settings and check that it answers.

    Raises ``DatabaseUnavailable`` (host named, password never) when a real server
    cannot be reached within ``MONGODB_TIMEOUT_MS``.
    """
    if settings.mongodb_url is None:
        memory = open_memory_client()
        name = settings.mongodb_db or DEFAULT_DB_NAME
        mongo = Mongo(client=memory, database=memory[name], in_memory=True, hosts="memory")
        if settings.environment == "development":
            mongo.devfile = await open_dev_database(memory, settings.data_dir)
            mongo.hosts = f"memory, kept in {mongo.devfile.path}"
        else:
            logger.warning(MEMORY_WARNING)
        return mongo

    from pymongo import AsyncMongoClient
    from pymongo.errors import ConfigurationError as PyMongoConfigurationError
    from pymongo.errors import InvalidURI, PyMongoError

    url = settings.mongodb_url.get_secret_value()
    hosts = describe_hosts(url)
    timeout = settings.mongodb_timeout_ms
    try:
        client: Any = AsyncMongoClient(
            url,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout,
            connectTimeoutMS=timeout,
            appname=settings.app_name,
        )
    except (InvalidURI, PyMongoConfigurationError, ValueError) as exc:
        raise ConfigurationError(
            f"MONGODB_URL is not a valid MongoDB URL ({hosts}): {exc}"
        ) from None
    mongo = Mongo(
        client=client,
        database=client[database_name(url, settings.mongodb_db)],
        in_memory=False,
        hosts=hosts,
    )
    try:
        await client.admin.command("ping")
    except PyMongoError as exc:
        await mongo.close()
        reason = type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot reach MongoDB at {hosts} within {timeout} ms ({reason}); "
            "check that the server runs and that MONGODB_URL is right"
        ) from None
    return mongo


async def init_models(mongo: Mongo, models: Sequence[type[Document]]) -> None:
    """Register ``models`` with Beanie on ``mongo`` and build their indexes."""
    from pymongo.errors import PyMongoError

    try:
        await init_beanie(database=mongo.database, document_models=list(models))
    except PyMongoError as exc:
        raise DatabaseUnavailable(
            f"MongoDB at {mongo.hosts} failed while building indexes: {type(exc).__name__}: {exc}"
        ) from None
