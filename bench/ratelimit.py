"""The rate limiter's cost on a signed-in request, checked on every request.

``GET /auth/me`` with a session cookie (the session and its user read from the
database), in process through httpx's ASGI transport so that only the app's own work is
timed, on three apps built the same way:

* *off*: ``AuthFeature`` alone, no limiter;
* *mongodb*: with ``RateLimitFeature``, counters in the app's database (the in-memory
  development database; with ``--wire``, PyMongo's real client against the mongoeco wire
  server, for every app);
* *redis*: the same with counters in Redis (a ``redis-server`` started by the script).

The limiter is the app-wide default for API requests with two rates (a burst and a
sustained one, as the default ``RATE_LIMIT_API``), high enough never to refuse: two
counters per request, the response carries the ``RateLimit`` headers. Rounds alternate
between the apps, each round starting with the next one; the medians of the per-request
times are compared.

Target: each backend at most 5% more CPU per request than *off* (ratio <= 1.05); the
wall-clock times are printed too (on a busy machine they measure the neighbours as well).
Usage: python bench/ratelimit.py [--rounds N] [--requests R] [--wire]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import httpx  # noqa: E402
from _common import free_port  # noqa: E402

from vibetuner import AuthFeature, RateLimitFeature, Settings, create_app  # noqa: E402
from vibetuner.models import UserModel  # noqa: E402
from vibetuner.models.mixins import utcnow  # noqa: E402
from vibetuner.testing import app_context, signed_in_cookie  # noqa: E402

TARGET = 1.05
NEVER_REFUSED = "1000000/second;100000000/minute"


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A throwaway redis-server on a free port (no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}", timeout=0.2):
                break
        except httpx.HTTPError as exc:  # Redis answers HTTP with an error: it is up
            if not isinstance(exc, httpx.ConnectError):
                break
        time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def settings_for(name: str, base: dict[str, Any], redis_url: str) -> Settings:
    values = {**base, "rate_limit_api": NEVER_REFUSED, "rate_limit_enabled": name != "off"}
    if name == "mongodb":
        values["rate_limit_backend"] = "mongodb"
    if name == "redis":
        values.update(rate_limit_backend="redis", redis_url=redis_url)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


async def run(args: argparse.Namespace, redis_url: str, workdir: Path) -> dict[str, list[float]]:
    """Per-request wall and CPU times (``name`` and ``name-cpu``), one value per round."""
    base: dict[str, Any] = {
        "environment": "test",
        "data_dir": workdir / "data",
        "email_backend": "file",
        "email_file_dir": workdir / "outbox",
        "session_key": secrets.token_urlsafe(48),
        "base_url": "http://testserver",
        "mongodb_url": os.environ.get("MONGODB_URL"),
        "mongodb_db": os.environ.get("MONGODB_DB"),
    }
    apps: dict[str, Any] = {}
    clients: dict[str, httpx.AsyncClient] = {}
    stacks = []
    for name in ("off", "mongodb", "redis"):
        settings = settings_for(name, base, redis_url)
        features = [AuthFeature()] if name == "off" else [RateLimitFeature(), AuthFeature()]
        app = create_app(settings=settings, features=features)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stacks.append(lifespan)
        apps[name] = app
    # Beanie binds the models to the database opened last: every app reads that one, so
    # the user and the session are made once all are started. One session for the three
    # apps (they share the session key): each request reads the same documents, where
    # one user per app made the in-memory database (which scans its documents) slower
    # for the apps whose user came later.
    user = UserModel(email="bench@example.com", name="bench", email_verified_at=utcnow())
    await user.insert()
    cookie = await signed_in_cookie(app_context(apps["off"]).settings, user)
    for name, app in apps.items():
        settings = app_context(app).settings
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        http.cookies.set(settings.session_cookie_name, cookie, domain="testserver.local")
        answer = await http.get("/auth/me")
        assert answer.status_code == 200, (name, answer.status_code, answer.text)
        assert ("ratelimit" in answer.headers) == (name != "off"), (name, answer.headers)
        clients[name] = http
    times: dict[str, list[float]] = {name: [] for name in clients}
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for http in clients.values():  # warm-up
            for _ in range(50):
                await http.get("/auth/me")
        names = list(clients)
        for round_number in range(args.rounds):
            # Each round starts with the next app: the one running first or last in a
            # round is measured a little differently (caches, collections), and a fixed
            # order would charge that to one app every time.
            start_at = round_number % len(names)
            for name in names[start_at:] + names[:start_at]:
                http = clients[name]
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.requests):
                    answer = await http.get("/auth/me")
                    if answer.status_code != 200:
                        sys.exit(f"{name}: {answer.status_code} {answer.text}")
                times[name].append((time.perf_counter() - start) / args.requests)
                cpu[name].append((time.process_time() - start_cpu) / args.requests)
    finally:
        for http in clients.values():
            await http.aclose()
        for lifespan in reversed(stacks):
            await lifespan.__aexit__(None, None, None)
    return {**times, **{f"{name}-cpu": values for name, values in cpu.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--wire",
        action="store_true",
        help="every app on the mongoeco wire server (PyMongo's real client)",
    )
    parser.add_argument("--wire-venv", default=str(HERE.parent / ".wire-venv"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis, redis_url = start_redis(workdir)
        wire = None
        try:
            if args.wire:
                wire = start_wire(Path(args.wire_venv), workdir)
            times = asyncio.run(run(args, redis_url, workdir))
        finally:
            redis.terminate()
            redis.wait()
            if wire is not None:
                wire.terminate()
                wire.wait()
    failed = False
    mode = "wire server" if args.wire else "in-memory database"
    print(f"GET /auth/me signed in, in process, {mode}: {args.rounds} rounds x {args.requests}")
    print("           wall ms/request (ratio)   CPU ms/request (ratio)")
    off, off_cpu = statistics.median(times["off"]), statistics.median(times["off-cpu"])
    print(f"  off      {off * 1e3:7.3f}                {off_cpu * 1e3:7.3f}")
    for name in ("mongodb", "redis"):
        wall, used = statistics.median(times[name]), statistics.median(times[f"{name}-cpu"])
        ratio, cpu_ratio = wall / off, used / off_cpu
        # The CPU time is the cost to the server, and is what the target is about: on a
        # shared machine the wall time also measures everything else running.
        verdict = "ok" if cpu_ratio <= TARGET else "MISSED"
        failed |= cpu_ratio > TARGET
        print(
            f"  {name:8} {wall * 1e3:7.3f} ({ratio:.3f})        "
            f"{used * 1e3:7.3f} ({cpu_ratio:.3f})  {verdict}"
        )
    return 1 if failed else 0


def start_wire(venv: Path, workdir: Path) -> subprocess.Popen[bytes]:
    """The mongoeco wire server (``scripts/wire_server.py``); sets MONGODB_URL for the apps."""
    python = venv / "bin" / "python"
    if not python.exists():
        sys.exit(f"no wire-server environment at {venv}: run scripts/test-wire.sh once")
    uri_file = workdir / "uri"
    process = subprocess.Popen(
        [str(python), str(HERE.parent / "scripts" / "wire_server.py"), "--uri-file", str(uri_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (uri_file.exists() and uri_file.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit("the wire server did not start")
        time.sleep(0.1)
    os.environ["MONGODB_URL"] = uri_file.read_text().strip()
    os.environ["MONGODB_DB"] = f"bench_ratelimit_{secrets.token_hex(4)}"
    return process


if __name__ == "__main__":
    sys.exit(main())
