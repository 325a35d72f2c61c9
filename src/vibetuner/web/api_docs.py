"""``/docs`` and ``/redoc`` that work offline: their scripts and styles come from the app.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they stay blank without a
network (and under a strict Content-Security-Policy). The assets here are the ones the
``fastapi-offline`` package ships (with their licences), served under ``/docs-static``;
the pages' inline script and style carry the response's CSP nonce. In production they
are not served unless ``API_DOCS=true`` (``Settings.api_docs_enabled``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from vibetuner.web.security_headers import csp_nonce, relax_csp

STATIC_PATH = "/docs-static"


def assets_directory() -> Path:
    """Where the Swagger UI and ReDoc files are installed."""
    return Path(str(files("fastapi_offline") / "static"))


def add_offline_docs(app: FastAPI, docs_url: str | None, redoc_url: str | None) -> None:
    """Serve ``docs_url`` and ``redoc_url`` (None: not served) from local assets."""
    if docs_url is None and redoc_url is None:
        return
    app.mount(STATIC_PATH, StaticFiles(directory=assets_directory()), name="docs-static")

    def with_nonce(request: Request, page: HTMLResponse) -> HTMLResponse:
        # Swagger UI and ReDoc set element styles as they render, and ReDoc searches in a
        # worker it makes from a blob; their scripts stay nonce-only.
        relax_csp(request, style_src="'unsafe-inline'", worker_src="blob:")
        # The page's own inline elements (Swagger's start-up script, ReDoc's <style>)
        # carry the nonce, so none of them depends on 'unsafe-inline'.
        nonce = csp_nonce(request)
        body = bytes(page.body)
        for tag in (b"script", b"style"):
            body = body.replace(b"<%s>" % tag, b'<%s nonce="%s">' % (tag, nonce.encode()))
        return HTMLResponse(body, status_code=page.status_code)

    if docs_url is not None:

        @app.get(docs_url, include_in_schema=False)
        async def swagger_ui(request: Request) -> HTMLResponse:
            page = get_swagger_ui_html(
                openapi_url=str(app.openapi_url),
                title=f"{app.title} - API",
                swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{STATIC_PATH}/favicon.png",
            )
            return with_nonce(request, page)

    if redoc_url is not None:

        @app.get(redoc_url, include_in_schema=False)
        async def redoc(request: Request) -> HTMLResponse:
            page = get_redoc_html(
                openapi_url=str(app.openapi_url),
                title=f"{app.title} - API",
                redoc_js_url=f"{STATIC_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{STATIC_PATH}/favicon.png",
                with_google_fonts=False,
            )
            return with_nonce(request, page)
