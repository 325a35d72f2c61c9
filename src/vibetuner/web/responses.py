"""OpenAPI descriptions of the answers routes give besides their main one.

FastAPI documents a route's main response and its own 422; everything else a route can
answer (401 when signed out, 404, 413, 503 ...) is listed with ``responses=`` so that the
schema tells clients -- and schema-driven fuzzers -- the whole truth.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """An error answer for API clients: ``{"detail": "what went wrong"}``.

    Server errors (5xx) also carry ``request_id``, the id to quote when reporting one.
    """

    detail: str
    request_id: str | None = None


class FieldProblem(BaseModel):
    """One invalid field, in FastAPI's own validation-error shape."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A 422 answer listing the invalid fields."""

    detail: list[FieldProblem]


OpenAPIResponses = dict[int | str, dict[str, Any]]

HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
ANY_CONTENT: dict[str, Any] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def documented_problem(description: str, *, html: bool = False) -> dict[str, Any]:
    """A documented ``{"detail": ...}`` answer; ``html`` when browsers get a page instead.

    The JSON schema is spelled out rather than given as ``model``: FastAPI files a
    ``model`` under the route's own media type, which is text/html on page routes.
    """
    content: dict[str, Any] = {"application/json": {"schema": Problem.model_json_schema()}}
    if html:
        content.update(HTML)
    return {"description": description, "content": content}


def redirect(description: str) -> dict[str, Any]:
    """A documented redirect (the target is in ``Location``)."""
    return {"description": description, "headers": {"Location": {"schema": {"type": "string"}}}}


# Routes that need a signed-in user (``RequireUser``).
SIGN_IN_REQUIRED: OpenAPIResponses = {
    303: redirect("Not signed in (browsers): sent to the sign-in page"),
    401: documented_problem("Not signed in (API clients)"),
}
