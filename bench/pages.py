"""Throughput and p99 latency of a real page: the signed-in notes page of a scaffolded app.

"Ours" is a freshly scaffolded app (``vibetuner scaffold new --defaults``), unchanged,
serving ``GET /notes`` as a browser asks for it, for a signed-in user with 20 notes that
carry one or two attachments each (the page shows the newest ten and the total). The
data is written through the app's models when the server starts.

"Hand-written" is a plain FastAPI app doing the same work by hand: it checks the signed
session cookie with itsdangerous, runs the same two aggregations with PyMongo (the
session by its hashed token with the user and the user's provider names, then the page
of notes and their count in one ``$facet``), checks the session's expiry, idle time and
version and the user's state, and renders the scaffolded app's own templates
(``notes/index.html`` and the vibetuner layout it extends) through a plain
``jinja2.Environment`` with the helpers those templates call written out (CSRF token,
static URLs, route paths, the user menu's user, ``_()`` in English, the date filter).
It has no middleware: no security headers, no CSRF check of unsafe requests, no locale
negotiation, no re-signed session cookie. Both read the same cookie; the bench checks on
every run that the two pages are the same HTML (the CSRF tokens aside, which are masked
afresh for every response).

Two database modes, both run by default (``--db``):

* ``memory``: vibetuner's in-memory development database in each server process;
* ``wire``: PyMongo's real client against the mongoeco wire server (``--wire-venv``,
  built by ``scripts/test-wire.sh``), through a proxy that holds each command for
  ``--latency-ms`` (default 0.5) as a network would; each app gets its own database.
  The commands each app sends per request are printed.

One uvicorn worker per app, on one CPU; the load (``_load.py``, 16 keep-alive
connections), and in wire mode the wire server and the proxy, on the other. Rounds
alternate between the two apps and the medians are compared.

Targets: throughput >= 1.0x the hand-written page and p99 latency <= 1.0x, in each mode.
Usage: python bench/pages.py [--db memory|wire|both] [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, free_port, on_cpu, report, run_quiet, stop, wait_for_200
from _wire import LatencyProxy, wire_mode

PYTHON = sys.executable
HERE = Path(__file__).resolve().parent
PACKAGE = "benchapp"
COOKIE_NAME = f"{PACKAGE}_session"

# Written beside the apps and imported by both: the same data, and the same cookie.
SEED = textwrap.dedent(
    '''
    """One user with one session and 20 notes, each with one or two attachments."""

    import base64
    import hashlib
    import json
    from datetime import UTC, datetime, timedelta

    import itsdangerous
    from beanie import PydanticObjectId
    from vibetuner.models import Blob, UserModel, UserSession

    TOKEN = "bench-session-token-0123456789abcdefghijklmnopq"
    CSRF_SECRET = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()
    USER_ID = PydanticObjectId("65a000000000000000000001")
    # Fixed ids and times: both apps render exactly the same page.
    FIRST = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    BODY = (
        "Quarterly numbers & plans <draft>: call the printer, book the room, send the "
        "agenda to everyone on the list, and bring the signed contract to the meeting."
    )


    def cookie(session_key: str, name: str) -> str:
        """The session cookie a sign-in gives this user's browser (Starlette's format)."""
        signer = itsdangerous.TimestampSigner(session_key)
        data = base64.b64encode(json.dumps({"sid": TOKEN, "csrf": CSRF_SECRET}).encode())
        return f"{name}={signer.sign(data).decode()}"


    async def seed(note_model) -> None:
        now = datetime.now(UTC)
        user = UserModel(id=USER_ID, email="bench@example.com", name="Bench User")
        await user.insert()
        await UserSession(
            id=hashlib.sha256(TOKEN.encode()).hexdigest(),
            public_id="bench-session",
            user_id=USER_ID,
            session_version=user.session_version,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(days=14),
        ).insert()
        blobs, notes = [], []
        for index in range(20):
            attached = []
            for part in range(1 + index % 2):
                blob = Blob(
                    id=PydanticObjectId(f"65b0{index:018x}{part:02x}"),
                    key=f"notes/{index}-{part}.pdf",
                    backend="local",
                    content_type="application/pdf",
                    size=1000 + index,
                    filename=f"scan-{index}-{part}.pdf",
                    namespace="notes",
                    uploaded_by=user,
                    status="available",
                )
                attached.append(blob)
            blobs += attached
            stamp = FIRST + timedelta(minutes=index)
            notes.append(
                note_model(
                    id=PydanticObjectId(f"65c0{index:020x}"),
                    title=f"Note {index + 1}: plans for week {index + 30}",
                    body=BODY,
                    owner=user,
                    attachments=attached,
                    db_insert_dt=stamp,
                    db_update_dt=stamp,
                )
            )
        await Blob.insert_many(blobs)
        await note_model.insert_many(notes)
    '''
)

# The scaffolded app exactly as generated, with the data written once it has started.
OURS = textwrap.dedent(
    f"""
    from contextlib import asynccontextmanager

    from {PACKAGE}.app import app
    from {PACKAGE}.models import Note

    from bench_seed import seed

    started = app.router.lifespan_context


    @asynccontextmanager
    async def lifespan(application):
        async with started(application) as state:
            await seed(Note)
            yield state


    app.router.lifespan_context = lifespan
    """
)

BASELINE = textwrap.dedent(
    f'''
    """The notes page by hand: FastAPI, PyMongo, Jinja2."""

    import base64
    import hashlib
    import json
    import math
    import os
    import secrets
    from contextlib import asynccontextmanager
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from types import SimpleNamespace
    from urllib.parse import urlencode

    import itsdangerous
    import jinja2
    from babel.dates import format_datetime, format_timedelta
    from beanie import init_beanie
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, PlainTextResponse
    from markupsafe import Markup

    import vibetuner
    from vibetuner.models import UserModel, UserSession, core_document_models
    from vibetuner.mongo_memory_client import create_memory_client

    from {PACKAGE}.models import MODELS, Note
    from {PACKAGE}.web import STATIC_DIR, TEMPLATES_DIR

    from bench_seed import seed

    COOKIE = "{COOKIE_NAME}"
    MAX_AGE = 14 * 24 * 3600
    IDLE = timedelta(days=3)
    PAGE_SIZE = 10
    signer = itsdangerous.TimestampSigner(os.environ["SESSION_KEY"])
    PATHS = {{
        "list_notes": "/notes",
        "create_note": "/notes",
        "show_note": "/notes/{{note_id}}",
        "edit_note_form": "/notes/{{note_id}}/edit",
        "delete_note": "/notes/{{note_id}}/delete",
        "set_theme": "/ui/theme",
        "set_locale": "/ui/locale",
        "account_page": "/account",
        "sign_out": "/auth/logout",
        "login_page": "/auth/login",
    }}
    VIBETUNER_STATIC = Path(vibetuner.__file__).parent / "static"


    def hashed(name):
        digest = hashlib.sha256((VIBETUNER_STATIC / name.split("/", 1)[1]).read_bytes())
        stem, dot, suffix = name.rpartition(".")
        return f"/static/{{stem}}.{{digest.hexdigest()[:12]}}.{{suffix}}"


    STATIC_URLS = {{
        name: hashed(name)
        for name in (
            "vibetuner/favicon.svg",
            "vibetuner/vibetuner.css",
            "vibetuner/htmx.min.js",
            "vibetuner/vibetuner.js",
            "vibetuner/vibetuner-realtime.js",
        )
    }}
    HAS_APP_CSS = (STATIC_DIR / "app.css").is_file()
    SIGN_IN_PAGES = SimpleNamespace(
        login_route="login_page", sign_out_route="sign_out", account_route="account_page"
    )


    def aware(moment):
        # The in-memory database hands datetimes back without their zone (UTC).
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


    def masked(secret):
        pad = secrets.token_bytes(len(secret))
        return b64(pad + bytes(a ^ b for a, b in zip(secret, pad)))


    @jinja2.pass_context
    def csrf_field(context):
        return Markup('<input type="hidden" name="csrf_token" value="{{}}">').format(
            context["csrf"]
        )


    @jinja2.pass_context
    def csrf_meta(context):
        return Markup('<meta name="csrf-token" content="{{}}">').format(context["csrf"])


    def path_for(name, /, **params):
        return PATHS[name].format(**params)


    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader([str(TEMPLATES_DIR)]),
                jinja2.PackageLoader("vibetuner", "templates"),
            ]
        ),
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_null_translations(newstyle=True)
    env.filters["datetime"] = lambda value, format="medium": format_datetime(
        value, format=format, tzinfo=None, locale="en"
    )
    env.filters["ago"] = lambda value: format_timedelta(
        aware(value) - datetime.now(UTC), add_direction=True, locale="en"
    )
    env.globals.update(
        utc=UTC,
        csrf_field=csrf_field,
        csrf_meta=csrf_meta,
        static_url=STATIC_URLS.__getitem__,
        static_exists=lambda name: name == "app.css" and HAS_APP_CSS,
        path_for=path_for,
        has_route=PATHS.__contains__,
        current_user=jinja2.pass_context(lambda context: context["signed_in"]),
        signed_in_hint=lambda: True,
        pop_flashes=lambda: [],
        viewing_as=lambda: "",
        sign_in=lambda: SIGN_IN_PAGES,
        # Nothing is published during the run: the stream starts at the newest event.
        realtime_url=lambda *channels: "/realtime?" + urlencode([("channel", c) for c in channels]),
        user_channel=lambda user: f"user:{{user.id}}",
    )
    page_template = env.get_template("notes/index.html")


    def session_pipeline(key):
        return [
            {{"$match": {{"_id": key}}}},
            {{"$limit": 1}},
            {{"$lookup": {{"from": "users", "localField": "user_id", "foreignField": "_id",
                          "as": "vt_user"}}}},
            {{"$lookup": {{"from": "oauth_accounts", "localField": "user_id",
                          "foreignField": "user.$id", "as": "vt_links"}}}},
            {{"$addFields": {{"vt_providers": "$vt_links.provider"}}}},
            {{"$project": {{"vt_links": 0}}}},
        ]


    def notes_pipeline(user_id, page):
        return [
            {{"$match": {{"owner.$id": user_id, "deleted_at": None}}}},
            {{"$facet": {{
                "total": [{{"$count": "n"}}],
                "notes": [
                    {{"$sort": {{"db_insert_dt": -1}}}},
                    {{"$skip": (page - 1) * PAGE_SIZE}},
                    {{"$limit": PAGE_SIZE}},
                ],
            }}}},
        ]


    @asynccontextmanager
    async def lifespan(app):
        if os.environ.get("MONGODB_URL"):
            from pymongo import AsyncMongoClient

            client = AsyncMongoClient(os.environ["MONGODB_URL"], tz_aware=True)
            database = client[os.environ["MONGODB_DB"]]
        else:
            client = create_memory_client()
            database = client["bench"]
        await init_beanie(database=database, document_models=[*core_document_models(), *MODELS])
        app.state.sessions = database[UserSession.get_collection_name()]
        app.state.notes = database[Note.get_collection_name()]
        await seed(Note)
        yield


    app = FastAPI(lifespan=lifespan)
    SIGN_IN = PlainTextResponse("Sign in first.", status_code=401)


    async def notes_page(collection, user_id, page):
        cursor = await collection.aggregate(notes_pipeline(user_id, page))
        [found] = await cursor.to_list(1)
        total = found["total"][0]["n"] if found["total"] else 0
        return total, [Note.model_validate(raw) for raw in found["notes"]]


    @app.get("/notes")
    async def list_notes(request: Request, page: int = 1):
        try:
            raw = signer.unsign(request.cookies[COOKIE], max_age=MAX_AGE)
            cookie = json.loads(base64.b64decode(raw))
            token, secret = cookie["sid"], base64.urlsafe_b64decode(cookie["csrf"] + "==")
        except Exception:
            return SIGN_IN
        key = hashlib.sha256(token.encode()).hexdigest()
        sessions = request.app.state.sessions
        found = await (await sessions.aggregate(session_pipeline(key))).to_list(1)
        if not found:
            return SIGN_IN
        session = found[0]
        now = datetime.now(UTC)
        if aware(session["expires_at"]) <= now or aware(session["last_seen_at"]) + IDLE <= now:
            return SIGN_IN
        if not session["vt_user"]:
            return SIGN_IN
        user = UserModel.model_validate(session["vt_user"][0])
        if not user.is_active or user.session_version != session["session_version"]:
            return SIGN_IN
        page = max(page, 1)
        total, notes = await notes_page(request.app.state.notes, user.id, page)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if page > pages:
            page = pages
            total, notes = await notes_page(request.app.state.notes, user.id, page)
        html = page_template.render(
            request=request,
            title="Notes",
            app_name="{PACKAGE}",
            theme=request.cookies.get("vt_theme", "system"),
            locale="en",
            locales=[("en", "English"), ("es", "Español"), ("de", "Deutsch")],
            csrf=masked(secret),
            signed_in=user,
            notes=notes,
            page=page,
            pages=pages,
            total=total,
        )
        return HTMLResponse(html)
    '''
)

CSRF_VALUES = re.compile(r'((?:name="csrf_token" value|name="csrf-token" content)=")[^"]*"')


def same_page(html: str) -> str:
    """The page with its CSRF tokens blanked (each response masks the token afresh)."""
    return CSRF_VALUES.sub(r'\1"', html)


def measure(
    module: str,
    workdir: Path,
    env: dict[str, str],
    cookie: str,
    args: argparse.Namespace,
    proxy: LatencyProxy | None,
) -> dict[str, Any]:
    """Start ``module``'s app in one uvicorn worker, load ``GET /notes``, stop it."""
    port = free_port()
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
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=on_cpu(0),
    )
    try:
        wait_for_200(f"http://127.0.0.1:{port}/docs", server)
        url = f"http://127.0.0.1:{port}/notes"
        cpu_before = cpu_seconds(server.pid)
        headers = {"Accept": "text/html", "Cookie": cookie}
        with httpx.Client(headers=headers, timeout=10) as http:
            page = http.get(url)
            if page.status_code != 200 or "Note 20:" not in page.text:
                sys.exit(f"{module}: GET /notes answered {page.status_code}\n{page.text[:2000]}")
            commands: Counter[str] = Counter()
            if proxy is not None:
                with proxy.record() as sent:
                    for _ in range(10):
                        http.get(url).raise_for_status()
                commands = Counter(f"{name} {collection}" for name, collection in sent)
        load = subprocess.run(
            [
                PYTHON,
                str(HERE / "_load.py"),
                "--port",
                str(port),
                "--path",
                "/notes",
                "--cookie",
                cookie,
                "--accept",
                "text/html",
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
        result: dict[str, Any] = json.loads(load.stdout)
        served = result["requests"] + result["warm_up_requests"] + 11  # the checks above
        result["cpu_ms"] = (cpu_seconds(server.pid) - cpu_before) / served * 1000
        if result["errors"]:
            sys.exit(f"{module}: {result['errors']} responses were not 200")
        result["page"] = same_page(page.text)
        result["commands"] = {name: count / 10 for name, count in commands.items()}
        return result
    finally:
        stop(server)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far; NaN without Linux's /proc.

    The share of a CPU the server gets changes with whatever else the machine runs, its
    CPU time per request much less: the bench prints it beside the throughput.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_mode(
    mode: str, workdir: Path, env: dict[str, str], cookie: str, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], LatencyProxy | None]:
    """``args.rounds`` alternating runs of each app in one database mode."""
    ours: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []

    def rounds(proxy: LatencyProxy | None) -> None:
        for index in range(args.rounds):
            for module, runs in (("ours_app", ours), ("baseline_app", base)):
                run_env = {**env, "DATA_DIR": tempfile.mkdtemp(dir=workdir, prefix="data-")}
                if proxy is not None:
                    # A database of its own for each app and run: the seed starts afresh.
                    run_env["MONGODB_URL"] = proxy.url()
                    run_env["MONGODB_DB"] = f"{module}_{index}"
                runs.append(measure(module, workdir, run_env, cookie, args, proxy))
                if runs[-1]["page"] != ours[0]["page"]:
                    diff = difflib.unified_diff(
                        ours[0]["page"].splitlines(),
                        runs[-1]["page"].splitlines(),
                        "ours",
                        module,
                        lineterm="",
                    )
                    sys.exit(f"the two pages differ ({mode}):\n" + "\n".join(diff))

    if mode == "memory":
        rounds(None)
        return ours, base, None
    with wire_mode(args.wire_venv, args.latency_ms) as proxy:
        rounds(proxy)
    return ours, base, proxy


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["memory", "wire", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=0.5)
    parser.add_argument(
        "--wire-venv",
        type=Path,
        default=Path(os.environ.get("WIRE_VENV", ROOT / ".wire-venv")),
        help="the Python 3.13 environment with mongoeco (scripts/test-wire.sh builds it)",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0 or args.connections < 1 or args.latency_ms < 0:
        parser.error("--rounds, --seconds and --connections must be positive, --latency-ms >= 0")

    workdir = Path(tempfile.mkdtemp(prefix="vibetuner-bench-"))
    results: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    delays: float | None = None
    try:
        project = workdir / PACKAGE
        run_quiet(
            [
                PYTHON,
                "-m",
                "vibetuner.cli",
                "scaffold",
                "new",
                str(project),
                "--defaults",
                "--data",
                f"project_name={PACKAGE}",
                "--data",
                f"package_name={PACKAGE}",
            ]
        )
        (workdir / "bench_seed.py").write_text(SEED)
        (workdir / "ours_app.py").write_text(OURS)
        (workdir / "baseline_app.py").write_text(BASELINE)
        session_key = secrets.token_urlsafe(48)
        paths = [str(workdir), str(project / "src"), os.environ.get("PYTHONPATH", "")]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            "SESSION_KEY": session_key,
            "EMAIL_BACKEND": "console",
        }
        for name in ("MONGODB_URL", "MONGODB_DB", "ENVIRONMENT"):
            env.pop(name, None)
        sys.path.insert(0, str(workdir))
        from bench_seed import cookie as session_cookie  # type: ignore[import-not-found]

        cookie = session_cookie(session_key, COOKIE_NAME)
        modes = ["memory", "wire"] if args.db == "both" else [args.db]
        for mode in modes:
            ours, base, proxy = run_mode(mode, workdir, env, cookie, args)
            results[mode] = (ours, base)
            if proxy is not None:
                delays = proxy.added_delay_ms()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    rows = []
    for mode, (ours, base) in results.items():
        label = "in memory" if mode == "memory" else f"wire, +{args.latency_ms:g} ms"
        rows += [
            (f"GET /notes requests/s ({label})", med(ours, "rps"), med(base, "rps"), 1.0, ">="),
            (f"GET /notes p99 ms ({label})", med(ours, "p99_ms"), med(base, "p99_ms"), 1.0, "<="),
        ]
    ok = report(rows)
    print("\nserver CPU time per request (ms), vibetuner / hand-written (not a target):")
    for mode, (ours, base) in results.items():
        mine, theirs = med(ours, "cpu_ms"), med(base, "cpu_ms")
        print(f"  {mode:7} {mine:6.2f} / {theirs:6.2f} = {mine / theirs:.2f}")
    if "wire" in results:
        print(f"\ncommands per request on the wire (each held {delays:.2f} ms by the proxy):")
        for name, runs in zip(("vibetuner", "hand-written"), results["wire"], strict=True):
            sent = runs[0]["commands"]
            listed = ", ".join(f"{count:g} x {command}" for command, count in sent.items())
            print(f"  {name:13} {sum(sent.values()):g}: {listed}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
