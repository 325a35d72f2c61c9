"""Worker liveness: running workers beat, ``vibetuner jobs health`` checks the beats.

A ``vibetuner run worker`` process writes the time into a sorted set in Redis (one
member per process) every quarter of ``JOBS_HEARTBEAT_TIMEOUT``; without Redis the web
process that runs the jobs writes it to ``DATA_DIR/jobs-heartbeat``. The beat comes from
the event loop that runs the jobs, so a worker whose loop is blocked (a job calling
something synchronous that never returns) stops beating and is reported as dead, as is
one that lost Redis for longer than the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vibetuner.config import Settings

logger = logging.getLogger("vibetuner.jobs")
FILE_NAME = "jobs-heartbeat"
# Beats older than this are dropped from the set (long gone workers).
FORGET_AFTER = 24 * 3600


def interval(settings: Settings) -> float:
    """Seconds between two beats: a quarter of the timeout, so one lost beat is no alarm."""
    return max(0.2, settings.jobs_heartbeat_timeout / 4)


def redis_key(settings: Settings) -> str:
    """The sorted set of beats, next to the queue's own keys (streaq's prefix)."""
    from streaq.constants import REDIS_PREFIX

    return f"{REDIS_PREFIX}{settings.jobs_queue}vibetuner:heartbeats"


def file_path(settings: Settings) -> Path:
    """Where the in-process queue beats (no Redis)."""
    return settings.data_dir / FILE_NAME


def member_name() -> str:
    """This process, as named in the set: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def beat_to_redis(settings: Settings, member: str) -> None:
    """Beat until cancelled; a lost connection is retried at the next beat."""
    from coredis import Redis

    assert settings.redis_url is not None
    key = redis_key(settings)
    every = interval(settings)
    while True:
        try:
            client: Redis[str] = Redis.from_url(
                settings.redis_url.get_secret_value(), decode_responses=True
            )
            async with client:
                while True:
                    now = time.time()
                    await client.zadd(key, {member: now})
                    await client.zremrangebyscore(key, 0, now - FORGET_AFTER)
                    await asyncio.sleep(every)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis away: the beats stop, `jobs health` notices
            logger.warning("heartbeat not written to Redis: %s", type(exc).__name__)
            await asyncio.sleep(every)


async def stop_beating_in_redis(settings: Settings, member: str) -> None:
    """Remove ``member``'s beat (a worker that stops cleanly is not a dead one)."""
    from coredis import Redis

    assert settings.redis_url is not None
    try:
        client: Redis[str] = Redis.from_url(
            settings.redis_url.get_secret_value(), decode_responses=True
        )
        async with client:
            await client.zrem(redis_key(settings), [member])
    except Exception:  # Redis away: the beat ages out by itself
        pass


async def beat_to_file(path: Path, every: float) -> None:
    """Beat into ``path`` until cancelled (written whole, then renamed into place)."""
    failing = False
    while True:
        try:
            _write(path)
            failing = False
        except OSError as exc:
            if not failing:  # once, not every beat (a read-only DATA_DIR)
                logger.warning("heartbeat not written to %s: %s", path, exc.strerror)
            failing = True
        await asyncio.sleep(every)


def _write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.{os.getpid()}")
    fresh.write_text(f"{time.time():.3f} {member_name()}\n")
    fresh.replace(path)


@dataclass(frozen=True)
class Beats:
    """What the beats say: how many workers beat within the timeout, the latest beat's age."""

    fresh: int
    latest_age: float | None  # seconds; None when no beat was ever seen


async def read_beats(settings: Settings) -> Beats:
    """The workers' beats, from Redis (``REDIS_URL``) or the in-process file.

    Raises ``OSError``/Redis errors when Redis cannot be reached.
    """
    now = time.time()
    window = settings.jobs_heartbeat_timeout
    if settings.redis_url is None:
        try:
            stamp = float(file_path(settings).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return Beats(0, None)
        age = max(0.0, now - stamp)
        return Beats(1 if age <= window else 0, age)
    from coredis import Redis

    client: Redis[str] = Redis.from_url(
        settings.redis_url.get_secret_value(), decode_responses=True
    )
    async with client:
        scores = [
            float(score)
            for _, score in await client.zrange(redis_key(settings), 0, -1, withscores=True)
        ]
    if not scores:
        return Beats(0, None)
    fresh = sum(1 for score in scores if now - score <= window)
    return Beats(fresh, max(0.0, now - max(scores)))
