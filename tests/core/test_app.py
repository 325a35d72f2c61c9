"""create_app, the lifespan, sessions, the current-user dependencies and /health."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from contextlib import asynccontextmanager

import httpx
import pytest
from beanie import Document
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from vibetuner import create_app
from vibetuner.auth.session_auth import CurrentUser, RequireUser, login, logout
from vibetuner.config import Settings
from vibetuner.models import TimeStampMixin, UserModel
from vibetuner.mongo import Mongo
from vibetuner.testing import app_context, free_port, send_csrf_token, session_cookie
from vibetuner.web.context import Context
from vibetuner.web.csrf import csrf_token


class Widget(TimeStampMixin, Document):
    name: str

    class Settings:
        name = "test_widgets"


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/whoami")
    async def whoami(user: CurrentUser) -> dict:
        return {"email": user.email if user else None}

    @router.get("/private")
    async def private(user: RequireUser) -> dict:
        return {"email": user.email}

    return router


@pytest.fixture
async def widget_app(vibetuner_settings):
    events: list[str] = []

    @asynccontextmanager
    async def app_lifespan(app):
        # The app's lifespan runs inside the framework's: models are ready here.
        await Widget(name="made at startup").insert()
        events.append("app-start")
        yield
        events.append("app-stop")

    application = create_app(
        models=[Widget],
        routers=[build_router()],
        lifespan=app_lifespan,
        settings=vibetuner_settings,
    )

    @application.post("/do-login/{user_id}")
    async def do_login(user_id: str, request: Request) -> dict:
        user = await UserModel.get(user_id)
        await login(request, user)
        return {"ok": True}

    @application.get("/form")
    async def form(request: Request) -> HTMLResponse:
        # A page with the CSRF token, as every page of an app has.
        return HTMLResponse(f'<meta name="csrf-token" content="{csrf_token(request)}">')

    @application.post("/do-logout")
    async def do_logout(request: Request) -> dict:
        await logout(request)
        return {"ok": True}

    async with application.router.lifespan_context(application):
        yield application, events
    assert events == ["app-start", "app-stop"]


@pytest.fixture
async def http(widget_app):
    application, _ = widget_app
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    ) as c:
        yield send_csrf_token(c, app_context(application).settings.session_cookie, page="/form")


async def test_lifespan_registers_core_and_app_models(widget_app):
    application, events = widget_app
    assert events == ["app-start"]
    assert await Widget.find_one(Widget.name == "made at startup") is not None
    names = await app_context(application).mongo.database.list_collection_names()
    assert {"users", "test_widgets"} <= set(names)


async def test_health(http, mongo_backend):
    response = await http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "backend": mongo_backend}


async def test_health_503_when_database_unreachable(widget_app, http):
    from pymongo import AsyncMongoClient

    application, _ = widget_app
    port = free_port()
    dead = AsyncMongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=200)
    healthy = app_context(application).mongo
    app_context(application).mongo = Mongo(
        client=dead, database=dead["x"], in_memory=False, hosts=f"127.0.0.1:{port}"
    )
    try:
        response = await http.get("/health")
    finally:
        app_context(application).mongo = healthy
        await dead.close()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def make_user(email: str = "me@example.com", **fields) -> UserModel:
    user = UserModel(email=email, **fields)
    await user.insert()
    return user


async def test_login_sets_a_safe_cookie_and_current_user(http):
    user = await make_user()
    response = await http.post(f"/do-login/{user.id}")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert (await http.get("/whoami")).json() == {"email": "me@example.com"}
    assert (await http.get("/private")).json() == {"email": "me@example.com"}
    assert (await UserModel.get(user.id)).last_login_at is not None
    await http.post("/do-logout")
    assert (await http.get("/whoami")).json() == {"email": None}


async def test_require_user_answers_401_json_to_api_clients(http):
    response = await http.get("/private", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Not signed in.", "code": "not_signed_in"}


async def test_require_user_redirects_browsers_to_login(http):
    response = await http.get(
        "/private?tab=2", headers={"accept": "text/html,application/xhtml+xml"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/auth/login?next=%2Fprivate%3Ftab%3D2"


@pytest.mark.parametrize("change", ["inactive", "deleted", "signed_out_everywhere", "tampered"])
async def test_stale_sessions_are_rejected(http, widget_app, change):
    application, _ = widget_app
    user = await make_user()
    await http.post(f"/do-login/{user.id}")
    assert (await http.get("/whoami")).json()["email"] == "me@example.com"
    if change == "inactive":
        await user.set({UserModel.is_active: False})
    elif change == "deleted":
        await user.delete()
    elif change == "signed_out_everywhere":
        await user.sign_out_everywhere()
    else:
        forged = session_cookie(app_context(application).settings, {"uid": str(user.id), "sv": 1})
        http.cookies.clear()
        http.cookies.set(app_context(application).settings.session_cookie, forged[:-3] + "AAA")
    assert (await http.get("/whoami")).json() == {"email": None}
    assert (await http.get("/private", headers={"accept": "application/json"})).status_code == 401


async def test_garbage_user_id_in_session_is_ignored(http, widget_app):
    application, _ = widget_app
    http.cookies.set(
        app_context(application).settings.session_cookie,
        session_cookie(app_context(application).settings, {"sid": "nope", "uid": "nope"}),
    )
    assert (await http.get("/whoami")).json() == {"email": None}


SAFE_PRODUCTION = {
    "environment": "production",
    "session_key": "Zr8-Qe2vLx0bN6tKp3WmYc9HfUa1Sj5GdTo7Ei4Rn_VwXy",
    "mongodb_url": "mongodb://db.internal:27017/app",
    "email_backend": "smtp",
    "base_url": "https://app.example.com",
}


def test_production_settings_load_when_safe():
    settings = Settings(_env_file=None, **SAFE_PRODUCTION)
    assert settings.is_production
    assert SAFE_PRODUCTION["session_key"] not in repr(settings)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"session_key": None}, "SESSION_KEY"),
        ({"session_key": "change-me"}, "SESSION_KEY"),
        ({"session_key": "short"}, "SESSION_KEY"),
        ({"mongodb_url": None}, "MONGODB_URL"),
        ({"email_backend": "console"}, "EMAIL_BACKEND"),
        ({"base_url": "http://127.0.0.1:8000"}, "BASE_URL"),
    ],
)
def test_production_refuses_unsafe_settings(change, named):
    with pytest.raises(ValidationError, match=named):
        Settings(_env_file=None, **{**SAFE_PRODUCTION, **change})


async def test_production_cookie_is_secure():
    application = create_app(settings=Settings(_env_file=None, **SAFE_PRODUCTION))

    @application.get("/touch")
    async def touch(request: Request) -> dict:
        request.session["x"] = 1
        return {}

    # No lifespan needed (and no database): the route only writes the session.
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        cookie = (await c.get("/touch")).headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_importing_models_stays_light():
    """Models, the package, the jobs API and the admin feature load no storage, sign-in,
    scaffold, server, job-broker or admin library (those come with the features that use
    them; starlette-admin with the first admin page; ua-parser with the first browser
    name)."""
    code = textwrap.dedent(
        """
        import sys, vibetuner, vibetuner.models, vibetuner.jobs, vibetuner.admin
        import vibetuner.user_agents
        heavy = ("aioboto3", "authlib", "copier", "uvicorn", "streaq", "coredis", "babel.dates",
                 "starlette_admin", "ua_parser")
        print(",".join(m for m in heavy if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_server_exits_with_one_clear_line_when_mongodb_is_unreachable(tmp_path):
    port = free_port()
    (tmp_path / "unreachable_app.py").write_text(
        "from vibetuner import create_app\napp = create_app()\n"
    )
    env = {
        **os.environ,
        "MONGODB_URL": f"mongodb://admin:topsecret@127.0.0.1:{port}/app",
        "MONGODB_TIMEOUT_MS": "1000",
        "PYTHONPATH": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "unreachable_app:app", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"cannot reach MongoDB at 127.0.0.1:{port}" in output
    assert "topsecret" not in output and "Traceback" not in output


async def test_signed_in_client_fixture_is_signed_out_by_the_app(signed_in_client, user):
    assert (await signed_in_client.get("/auth/me")).json()["email"] == user.email
    response = await signed_in_client.post("/auth/logout", headers={"origin": "http://testserver"})
    assert response.status_code in (200, 303)
    assert (await signed_in_client.get("/auth/me")).status_code == 401


async def test_routers_are_added_flat_keeping_prefix_tags_dependencies_and_overrides(
    vibetuner_settings,
):
    from fastapi import Depends

    calls: list[str] = []

    async def audit(request: Request) -> None:
        calls.append(request.url.path)

    def greeting() -> str:
        return "hello"

    flat = APIRouter(prefix="/flat", tags=["flat"], dependencies=[Depends(audit)])

    @flat.get("/ping")
    async def ping(word: str = Depends(greeting)) -> dict:
        return {"pong": word}

    inner = APIRouter(prefix="/inner")

    @inner.get("/ping")
    async def inner_ping() -> dict:
        return {"pong": True}

    nested = APIRouter(prefix="/nested")
    nested.include_router(inner)

    application = create_app(settings=vibetuner_settings, routers=[flat, nested])
    # A plain router's routes are the app's own (the static index sees them); one with a
    # router inside is included as FastAPI's include_router makes it: a branch since
    # FastAPI 0.137, copies of its routes before.
    assert any(getattr(route, "path", None) == "/flat/ping" for route in application.router.routes)
    reference = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    reference.include_router(nested)

    def shape(routes: list) -> list[tuple[str, str | None]]:
        return [(type(route).__name__, getattr(route, "path", None)) for route in routes]

    included = shape(reference.router.routes)
    assert shape(application.router.routes)[-len(included) :] == included
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            assert (await c.get("/flat/ping")).json() == {"pong": "hello"}
            assert (await c.get("/nested/inner/ping")).json() == {"pong": True}
            # Tests can still override dependencies of flat routes through the app.
            application.dependency_overrides[greeting] = lambda: "overridden"
            assert (await c.get("/flat/ping")).json() == {"pong": "overridden"}
    assert calls == ["/flat/ping", "/flat/ping"]
    assert application.openapi()["paths"]["/flat/ping"]["get"]["tags"] == ["flat"]


async def test_one_router_in_two_apps_keeps_each_apps_overrides(vibetuner_settings):
    from fastapi import Depends

    def who() -> str:
        return "nobody"

    shared = APIRouter()

    @shared.get("/who")
    async def answer(name: str = Depends(who)) -> dict:
        return {"name": name}

    first = create_app(settings=vibetuner_settings, routers=[shared])
    second = create_app(settings=vibetuner_settings, routers=[shared])
    first.dependency_overrides[who] = lambda: "first"
    for application, expected in ((first, "first"), (second, "nobody")):
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
                assert (await c.get("/who")).json() == {"name": expected}


async def test_domain_errors_become_answers_with_a_code(vibetuner_settings):
    from vibetuner.errors import BlobTooLarge, DatabaseUnavailable

    router = APIRouter()

    @router.get("/too-large")
    async def too_large() -> dict:
        raise BlobTooLarge(1024)

    @router.get("/db-down")
    async def db_down() -> dict:
        raise DatabaseUnavailable("mongodb://admin:hunter2@db.internal is down")

    # BlobTooLarge is the blob feature's error: its entry comes with the feature.
    application = create_app(settings=vibetuner_settings, routers=[router])
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            api = await http.get("/too-large")
            assert api.status_code == 413
            assert api.json() == {
                "detail": "The file is larger than the limit of 1 KiB.",
                "code": "blob_too_large",
            }
            page = await http.get("/too-large", headers={"accept": "text/html"})
            assert page.status_code == 413 and "text/html" in page.headers["content-type"]
            down = await http.get("/db-down")
            # Server-side failures answer a generic line: no hosts, no credentials.
            assert down.status_code == 503 and "hunter2" not in down.text
            assert down.json()["code"] == "database_unavailable"


async def test_features_are_checked_when_the_app_is_built(vibetuner_settings):
    from vibetuner.errors import ConfigurationError
    from vibetuner.features import Feature

    class NeedsAuth(Feature):
        name = "needs-auth"
        requires = ("auth",)

    with pytest.raises(ConfigurationError, match="needs 'auth'"):
        create_app(settings=vibetuner_settings, features=[NeedsAuth()])


async def test_an_app_feature_contributes_routes_models_and_a_lifespan(vibetuner_settings):
    from vibetuner.features import Feature

    events: list[str] = []
    router = APIRouter()

    class WidgetIndex:
        opened = True

    @router.get("/widgets")
    async def widgets(context: Context) -> dict:
        return {"count": await Widget.count(), "opened": context.get(WidgetIndex).opened}

    class Widgets(Feature):
        name = "widgets"

        def models(self):
            return [Widget]

        def routers(self):
            return [router]

        @asynccontextmanager
        async def lifespan(self, context):
            context.provide(WidgetIndex())
            events.append("start")
            yield
            events.append("stop")

    application = create_app(settings=vibetuner_settings, features=[Widgets()])
    async with application.router.lifespan_context(application):
        await Widget(name="one").insert()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/widgets")).json() == {"count": 1, "opened": True}
        assert events == ["start"]
    assert events == ["start", "stop"]


def test_starting_an_app_leaves_optional_libraries_unloaded(tmp_path):
    """An app with every built-in feature, started and answering ``/health``, has loaded
    none of the libraries only some configurations use: S3, OAuth, the Redis job broker,
    the admin's library (loaded on the first admin page), the scaffold, image tools,
    OpenTelemetry's SDK and instrumentation, Prometheus and Sentry (loaded only when
    configured; FastAPI itself imports OpenTelemetry's API when it is installed), passkeys
    and two-factor codes (loaded by their first request), QR codes, the event streams'
    library (loaded by the first stream), Babel's formats and the user-agent parser."""
    code = textwrap.dedent(
        """
        import asyncio, sys
        import httpx
        from vibetuner import create_app
        from vibetuner.admin import AdminFeature
        from vibetuner.app import default_features
        from vibetuner.config import Settings
        from vibetuner.cache import CacheFeature
        from vibetuner.jobs.feature import JobsFeature
        from vibetuner.realtime import RealtimeFeature

        settings = Settings(_env_file=None, environment="test", data_dir=sys.argv[1])
        features = [
            *default_features(), JobsFeature(), AdminFeature(), CacheFeature(), RealtimeFeature()
        ]
        app = create_app(settings=settings, features=features)

        async def main():
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    assert (await http.get("/health")).status_code == 200

        asyncio.run(main())
        heavy = ("aioboto3", "botocore", "authlib", "copier", "streaq", "coredis",
                 "starlette_admin", "PIL", "tailwindcss", "schemathesis", "playwright",
                 "opentelemetry.sdk", "opentelemetry.instrumentation", "prometheus_client",
                 "sentry_sdk", "webauthn", "pyotp", "segno", "sse_starlette", "redis",
                 "babel.dates", "ua_parser", "cryptography.hazmat.primitives.ciphers.aead")
        print(",".join(m for m in heavy if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout
