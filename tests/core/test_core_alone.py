"""``create_app(features=[])`` is the core alone: health, static files, the layout's theme
and language switches, and nothing of sign-in, files, jobs or the admin."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.routing import Mount, Route

from vibetuner import create_app
from vibetuner.features import SignIn
from vibetuner.testing import app_context


def paths(application: Any) -> set[str]:
    return {route.path for route in application.routes if isinstance(route, Route | Mount)}


async def test_the_core_alone_has_no_feature_routes_or_collections(vibetuner_settings: Any) -> None:
    settings = vibetuner_settings.model_copy(update={"api_docs": True})
    application = create_app(settings=settings, features=[])
    assert sorted(application.openapi()["paths"]) == ["/health", "/health/live", "/health/ready"]
    # Beside the API: the static files, the API docs, the layout's theme and language switches.
    assert paths(application) == {
        "/openapi.json",
        "/health",
        "/health/live",
        "/health/ready",
        "/ui/theme",
        "/ui/locale",
        "/static",
        "/docs-static",
        "/docs",
        "/redoc",
    }
    async with application.router.lifespan_context(application):
        context = app_context(application)
        assert context.models() == []
        assert await context.mongo.database.list_collection_names() == []
        assert context.find(SignIn) is None


async def test_the_default_features_bring_their_routes_and_collections(
    vibetuner_settings: Any,
) -> None:
    application = create_app(settings=vibetuner_settings)
    api = set(application.openapi()["paths"])
    assert {"/auth/login", "/auth/me", "/blobs"} <= api
    # Asked by name: a router may be included as a branch rather than added flat.
    assert application.url_path_for("account_page") == "/account"
    assert application.url_path_for("stop_viewing_as") == "/ui/view-as/stop"
    async with application.router.lifespan_context(application):
        names = {model.get_collection_name() for model in app_context(application).models()}
        assert {"users", "oauth_accounts", "user_sessions", "blobs"} <= names


async def test_a_core_page_renders_without_sign_in(vibetuner_settings: Any) -> None:
    # The layout asks the contract for sign-in (SignIn), not a route name: no button here.
    application = create_app(settings=vibetuner_settings, features=[])
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            page = await http.get("/nowhere", headers={"accept": "text/html"})
    assert page.status_code == 404 and "Page not found" in page.text
    assert "Sign in" not in page.text and "/auth/" not in page.text
