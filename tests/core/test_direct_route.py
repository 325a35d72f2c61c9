"""``DirectRoute`` answers like any API route: same responses, methods, OpenAPI and errors."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vibetuner.web.direct_route import DirectRoute
from vibetuner.web.routers import add_router


class Out(BaseModel):
    name: str


async def direct(request: Request) -> Response:
    """Answers with the request's own data."""
    return JSONResponse({"name": request.headers.get("x-name", "nobody")})


async def with_query(request: Request, size: int) -> Response:
    return JSONResponse({"size": size})


def extra() -> str:
    return "from a dependency"


async def with_dependency(request: Request, value: str = Depends(extra)) -> Response:
    return JSONResponse({"value": value})


async def not_a_response(request: Request) -> dict[str, str]:
    return {"name": "oops"}


def build_app() -> FastAPI:
    router = APIRouter(prefix="/r")
    for path, endpoint in (
        ("/direct", direct),
        ("/query", with_query),
        ("/dependency", with_dependency),
        ("/broken", not_a_response),
    ):
        router.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            response_model=Out if endpoint is direct else None,
            summary=f"The {path} route",
            responses={401: {"description": "Not signed in"}},
            route_class_override=DirectRoute,
        )
    app = FastAPI()
    add_router(app, router)
    return app


@pytest.fixture
async def http():
    app = build_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_the_endpoint_answers_and_methods_hold(http):
    answer = await http.get("/r/direct", headers={"x-name": "ada"})
    assert answer.status_code == 200 and answer.json() == {"name": "ada"}
    refused = await http.post("/r/direct")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET"


async def test_endpoints_that_need_fastapi_keep_its_handler(http):
    assert (await http.get("/r/query", params={"size": "3"})).json() == {"size": 3}
    invalid = await http.get("/r/query", params={"size": "big"})
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["query", "size"]
    assert (await http.get("/r/dependency")).json() == {"value": "from a dependency"}


async def test_a_direct_endpoint_must_return_a_response():
    app = build_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(TypeError, match="'not_a_response' must return a Response"):
            await client.get("/r/broken")


async def test_the_openapi_entry_and_url_building_are_fastapi_s():
    app = build_app()
    operation = app.openapi()["paths"]["/r/direct"]["get"]
    assert operation["summary"] == "The /direct route"
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Out"}
    assert operation["responses"]["401"]["description"] == "Not signed in"
    assert app.url_path_for("direct") == "/r/direct"
