"""Throughput and p99 latency of ``GET /auth/me`` with a session cookie.

vibetuner's route (session middleware + ``current_user`` + response model) against a
hand-written FastAPI endpoint doing the same work: decode the signed cookie, read the
session record, the user and the user's provider names (three queries, where vibetuner
sends one aggregation), answer JSON. Both run in one uvicorn worker on the same in-memory
database; the load comes from a separate process over loopback (``bench/_load.py``).
Rounds alternate between the servers and the medians are compared.

With ``--wire`` every app talks to the mongoeco wire server through PyMongo's real client
instead, behind a proxy that holds each command for ``--latency-ms`` (see ``_wire.py``
and ``pages.py``); each run gets a database of its own, and the commands each app sends
per request are printed.

Targets: throughput >= 1.0x the baseline and p99 latency no worse (<= 1.0x); >= 2x the
throughput of each fastapi-users row.
Usage: python bench/requests.py [--rounds N] [--seconds S] [--connections C] [--wire]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path

import httpx
from _common import ROOT, free_port, on_cpu, report, stop, wait_for_200
from _wire import LatencyProxy, wire_mode

PYTHON = sys.executable
HERE = Path(__file__).resolve().parent

# The database of the hand-written apps: the wire server when MONGODB_URL is set (as it is
# for vibetuner's app), else a fresh in-memory one.
DATABASE = textwrap.dedent(
    """
    import os

    def bench_database():
        if os.environ.get("MONGODB_URL"):
            from pymongo import AsyncMongoClient

            client = AsyncMongoClient(os.environ["MONGODB_URL"], tz_aware=True)
            return client[os.environ["MONGODB_DB"]]
        from vibetuner.mongo_memory_client import create_memory_client

        return create_memory_client()["bench"]
    """
)

SEED = textwrap.dedent(
    """
    import base64, json, os
    import itsdangerous
    from vibetuner.config import Settings
    from vibetuner.models import UserModel
    from vibetuner.auth.sessions import start_session

    async def seed_user():
        # A real server-side session, as a sign-in makes it.
        user = UserModel(email="bench@example.com", name="Bench User")
        await user.insert()
        token = await start_session(user, Settings())
        signer = itsdangerous.TimestampSigner(os.environ["SESSION_KEY"])
        session = {"sid": token}
        payload = base64.b64encode(json.dumps(session).encode())
        with open(os.environ["BENCH_COOKIE_FILE"], "w") as fh:
            fh.write("vibetuner_session=" + signer.sign(payload).decode())
    """
)

OURS = SEED + textwrap.dedent(
    """
    from contextlib import asynccontextmanager
    from vibetuner import AuthFeature, create_app

    @asynccontextmanager
    async def lifespan(app):
        await seed_user()
        yield

    app = create_app(features=[AuthFeature()], lifespan=lifespan)
    """
)

BASELINE = (
    SEED
    + DATABASE
    + textwrap.dedent(
        """
    from contextlib import asynccontextmanager

    from beanie import PydanticObjectId, init_beanie
    from fastapi import FastAPI, HTTPException, Request
    from pydantic import BaseModel

    import hashlib
    from datetime import UTC, datetime, timedelta

    from vibetuner.models import OAuthAccount, UserSession, core_document_models

    signer = itsdangerous.TimestampSigner(os.environ["SESSION_KEY"])

    class Me(BaseModel):
        id: str
        email: str
        name: str | None
        picture: str | None
        email_verified: bool
        providers: list[str]

    @asynccontextmanager
    async def lifespan(app):
        await init_beanie(database=bench_database(), document_models=core_document_models())
        await seed_user()
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/auth/me", response_model=Me)
    async def me(request: Request):
        # The same lookups: the signed cookie, the session record (expiry, idle), the user.
        try:
            raw = signer.unsign(request.cookies["vibetuner_session"], max_age=14 * 24 * 3600)
            token = json.loads(base64.b64decode(raw))["sid"]
        except Exception:
            raise HTTPException(401)
        key = hashlib.sha256(token.encode()).hexdigest()
        session = await UserSession.get_pymongo_collection().find_one({"_id": key})
        now = datetime.now(UTC)
        if session is None or session["expires_at"].replace(tzinfo=UTC) <= now:
            raise HTTPException(401)
        if session["last_seen_at"].replace(tzinfo=UTC) + timedelta(days=3) <= now:
            raise HTTPException(401)
        user = await UserModel.get(session["user_id"])
        if user is None or not user.is_active or session["session_version"] != user.session_version:
            raise HTTPException(401)
        found = OAuthAccount.get_pymongo_collection().find(
            {"user.$id": user.id}, {"provider": 1, "_id": 0}
        )
        providers = sorted({account["provider"] async for account in found})
        return Me(
            id=str(user.id),
            email=user.email,
            name=user.name,
            picture=user.picture,
            email_verified=user.email_verified_at is not None,
            providers=providers,
        )
    """
    )
)


# fastapi-users 15 with its Beanie adapter, on the same in-memory database, answering the
# same JSON from its own current-user dependency; once with a JWT in the cookie, once with
# its revocable database strategy (an access-token document looked up on every request).
FASTAPI_USERS = DATABASE + textwrap.dedent(
    """
    import os
    from contextlib import asynccontextmanager

    from beanie import Document, PydanticObjectId, init_beanie
    from fastapi import Depends, FastAPI
    from fastapi_users import BaseUserManager, FastAPIUsers
    from fastapi_users.authentication import AuthenticationBackend, CookieTransport, JWTStrategy
    from fastapi_users.authentication.strategy.db import DatabaseStrategy
    from fastapi_users_db_beanie import BeanieBaseUser, BeanieUserDatabase, ObjectIDIDMixin
    from fastapi_users_db_beanie.access_token import (
        BeanieAccessTokenDatabase,
        BeanieBaseAccessToken,
    )
    from pydantic import BaseModel
    from pymongo import IndexModel

    SECRET = os.environ["SESSION_KEY"]
    STRATEGY = os.environ["BENCH_STRATEGY"]

    class User(BeanieBaseUser, Document):
        name: str | None = None
        picture: str | None = None

        class Settings(BeanieBaseUser.Settings):
            # Its case-insensitive collation index is refused by the in-memory database
            # (which cannot honour collations); a plain unique index does the same work.
            indexes = [IndexModel("email", unique=True)]

    class AccessToken(BeanieBaseAccessToken, Document):
        pass

    class UserManager(ObjectIDIDMixin, BaseUserManager[User, PydanticObjectId]):
        reset_password_token_secret = SECRET
        verification_token_secret = SECRET

    async def get_user_manager():
        yield UserManager(BeanieUserDatabase(User))

    def get_strategy():
        if STRATEGY == "jwt":
            return JWTStrategy(secret=SECRET, lifetime_seconds=14 * 24 * 3600)
        return DatabaseStrategy(BeanieAccessTokenDatabase(AccessToken), 14 * 24 * 3600)

    backend = AuthenticationBackend(
        name=STRATEGY,
        transport=CookieTransport(cookie_name="fu_session", cookie_secure=False),
        get_strategy=get_strategy,
    )
    users = FastAPIUsers[User, PydanticObjectId](get_user_manager, [backend])
    current_active_user = users.current_user(active=True)

    class Me(BaseModel):
        id: str
        email: str
        name: str | None
        picture: str | None
        email_verified: bool
        providers: list[str]

    @asynccontextmanager
    async def lifespan(app):
        await init_beanie(database=bench_database(), document_models=[User, AccessToken])
        user = User(email="bench@example.com", hashed_password="x", name="Bench User")
        await user.insert()
        token = await get_strategy().write_token(user)
        with open(os.environ["BENCH_COOKIE_FILE"], "w") as fh:
            fh.write(f"fu_session={token}")
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/auth/me", response_model=Me)
    async def me(user: User = Depends(current_active_user)):
        return Me(
            id=str(user.id),
            email=user.email,
            name=user.name,
            picture=user.picture,
            email_verified=user.is_verified,
            providers=[],
        )
    """
)


def measure(
    module: str,
    workdir: Path,
    env: dict[str, str],
    args: argparse.Namespace,
    proxy: LatencyProxy | None = None,
) -> dict:
    port = free_port()
    cookie_file = workdir / f"{module}.cookie"
    # A fresh DATA_DIR each run: the development database would keep the last run's user.
    env = {**env, "DATA_DIR": tempfile.mkdtemp(dir=workdir, prefix="data-")}
    if proxy is not None:
        # On the wire, a database of its own for each run of each app.
        env["MONGODB_URL"] = proxy.url()
        env["MONGODB_DB"] = f"bench_{secrets.token_hex(6)}"
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uvicorn",
            f"{module}:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=workdir,
        env={**env, "BENCH_COOKIE_FILE": str(cookie_file)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=on_cpu(0),
    )
    try:
        wait_for_200(f"http://127.0.0.1:{port}/docs", server)
        cookie = cookie_file.read_text()
        commands = count_commands(f"http://127.0.0.1:{port}/auth/me", cookie, proxy)
        load = subprocess.run(
            [
                PYTHON,
                str(HERE / "_load.py"),
                "--port",
                str(port),
                "--path",
                "/auth/me",
                "--cookie",
                cookie,
                "--connections",
                str(args.connections),
                "--seconds",
                str(args.seconds),
            ],
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=on_cpu(1),
        )
        result = json.loads(load.stdout)
        if result["errors"]:
            sys.exit(f"{module}: {result['errors']} responses were not 200")
        result["commands"] = commands
        return result
    finally:
        stop(server)


def count_commands(url: str, cookie: str, proxy: LatencyProxy | None) -> dict[str, float]:
    """The database commands one request sends, by name and collection (wire mode only)."""
    if proxy is None:
        return {}
    with httpx.Client(headers={"Cookie": cookie}, timeout=10) as http:
        http.get(url).raise_for_status()  # first request: nothing lazy is counted
        with proxy.record() as sent:
            for _ in range(10):
                http.get(url).raise_for_status()
    counted = Counter(f"{name} {collection}" for name, collection in sent)
    return {command: count / 10 for command, count in counted.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--no-peers",
        dest="peers",
        action="store_false",
        help="skip the fastapi-users rows (they need: pip install -e '.[bench]')",
    )
    parser.add_argument(
        "--wire",
        action="store_true",
        help="PyMongo's real client against the wire server, behind a delaying proxy, "
        "instead of the in-memory database",
    )
    parser.add_argument("--latency-ms", type=float, default=0.5)
    parser.add_argument(
        "--wire-venv",
        type=Path,
        default=Path(os.environ.get("WIRE_VENV", ROOT / ".wire-venv")),
        help="the Python 3.13 environment with mongoeco (scripts/test-wire.sh builds it)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="vibetuner-bench-"))
    try:
        (workdir / "ours_app.py").write_text(OURS)
        (workdir / "baseline_app.py").write_text(BASELINE)
        paths = [str(workdir), os.environ.get("PYTHONPATH", "")]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(path for path in paths if path),
            "SESSION_KEY": secrets.token_urlsafe(48),
            "EMAIL_BACKEND": "console",
            "DATA_DIR": str(workdir / "data"),
        }
        for name in ("MONGODB_URL", "MONGODB_DB"):
            env.pop(name, None)
        (workdir / "fastapi_users_app.py").write_text(FASTAPI_USERS)
        peers = {"jwt": "fastapi-users, JWT cookie", "database": "fastapi-users, database tokens"}
        if not args.peers:
            peers = {}
        ours, base = [], []
        peer_runs: dict[str, list[dict]] = {name: [] for name in peers}

        def rounds(proxy: LatencyProxy | None) -> None:
            for _ in range(args.rounds):
                ours.append(measure("ours_app", workdir, env, args, proxy))
                base.append(measure("baseline_app", workdir, env, args, proxy))
                for name in peers:
                    peer_env = {**env, "BENCH_STRATEGY": name}
                    peer_runs[name].append(
                        measure("fastapi_users_app", workdir, peer_env, args, proxy)
                    )

        if args.wire:
            with wire_mode(args.wire_venv, args.latency_ms) as proxy:
                rounds(proxy)
                held = proxy.added_delay_ms()
        else:
            rounds(None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    rows = [
        ("GET /auth/me requests per second", med(ours, "rps"), med(base, "rps"), 1.0, ">="),
        ("GET /auth/me p99 latency (ms)", med(ours, "p99_ms"), med(base, "p99_ms"), 1.0, "<="),
    ]
    for name, label in peers.items():
        rows.append(
            (f"  vs {label}: requests/s", med(ours, "rps"), med(peer_runs[name], "rps"), 2.0, ">=")
        )
    ok = report(rows)
    if args.wire:
        print(f"\non the wire, each command held {held:.2f} ms by the proxy; commands per request:")
        named = [("vibetuner", ours), ("hand-written", base)]
        named += [(label, peer_runs[name]) for name, label in peers.items()]
        for label, runs in named:
            sent = runs[0]["commands"]
            listed = ", ".join(f"{count:g} x {command}" for command, count in sent.items())
            print(f"  {label:32} {sum(sent.values()):g}: {listed}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
