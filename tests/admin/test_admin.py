"""The admin over HTTP: the 404 gate, the audit trail, secrets, view as user, debug, CSP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.routing import Mount, Route

from tests.admin.conftest import (
    Memo,
    as_form,
    build_admin_app,
    form_fields,
    make_user,
    replace_field,
)
from vibetuner.blobs.store import BlobStore
from vibetuner.jobs.feature import JobsFeature
from vibetuner.models import Blob, EmailVerificationToken, OAuthAccount, UserModel, UserSession
from vibetuner.models.audit import AuditLog
from vibetuner.models.failed_job import FailedJob
from vibetuner.testing import app_context

VIEW_KEYS = (
    "users",
    "oauth-accounts",
    "sessions",
    "api-tokens",
    "email-tokens",
    "blobs",
    "failed-jobs",
    "audit-log",
    "memo",
)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201a5c0b1ff0000000049454e44ae426082"
)


def admin_gate(app: Any) -> Any:
    (mount,) = [r for r in app.router.routes if isinstance(r, Mount) and r.name == "admin"]
    return mount.app


async def store_png(app: Any, owner: Any) -> Blob:
    async def chunks() -> Any:
        yield PNG

    blob: Blob = (
        await app_context(app)
        .get(BlobStore)
        .put(chunks(), filename="cat.png", content_type="image/png", uploaded_by=owner)
    )
    return blob


async def counts() -> dict[str, Any]:
    """What the sweep must leave exactly as it was."""
    users = await UserModel.find().sort("email").to_list()
    return {
        "users": [(u.email, u.is_active, u.roles, u.session_version) for u in users],
        "sessions": await UserSession.find().count(),
        "blobs": await Blob.find().count(),
        "memos": await Memo.find().count(),
        "audit": await AuditLog.find().count(),
        "failed": await FailedJob.find().count(),
    }


def same_page(html: str) -> str:
    """The page without what differs on every response (masked CSRF tokens, nonces,
    the request id)."""
    html = re.sub(r'(name="csrf-token" content=|name="csrf_token" value=)"[^"]*"', r"\1", html)
    html = re.sub(r"request id [0-9a-f]{32}", "request id", html)
    return re.sub(r'nonce="[^"]*"', "", html)


async def every_admin_url(
    app: Any, admin: Any, browser_for: Any, blob: Blob
) -> list[tuple[str, str]]:
    """(method, path) for every route of the built admin app, parameters filled in."""
    http = await browser_for(admin)
    assert (await http.get("/admin/")).status_code == 200  # builds the admin app
    found: list[tuple[str, str]] = [("GET", "/admin"), ("POST", "/admin")]
    for route in admin_gate(app).routes:
        if isinstance(route, Mount):  # its static files
            found.append(("GET", "/admin" + route.path + "/css/vendor/tabler.min.css"))
            continue
        assert isinstance(route, Route)
        paths = [route.path]
        if "{key}" in route.path:
            paths = [route.path.replace("{key}", key) for key in VIEW_KEYS]
        paths = [p.replace("{blob_id}", str(blob.id)) for p in paths]
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            found += [(method, "/admin" + p + f"?pk={admin.id}&name=delete") for p in paths]
    found += [("GET", "/admin/debug"), ("GET", "/admin/users/list?q=x&sort=email__asc")]
    return found


async def test_every_admin_url_is_a_404_for_visitors_and_plain_users(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("boss@example.com", roles=["admin"])
    plain = await make_user("plain@example.com")
    blob = await store_png(admin_app, plain)
    await Memo(title="kept").insert()
    urls = await every_admin_url(admin_app, admin, browser_for, blob)
    assert len(urls) > 100
    browsers = [await browser_for(None), await browser_for(plain)]
    before = await counts()

    for http in browsers:
        for method, path in urls:
            answer = await http.request(method, path, data={"title": "x"})
            missing = await http.request(method, "/no-such-page", data={"title": "x"})
            assert answer.status_code == 404, (method, path, answer.status_code)
            # The very answer of a page that does not exist: nothing reveals the admin.
            # (The page's theme and language switches return to the page's own path.)
            own = same_page(answer.text).replace(f'value="{urlsplit(path).path}"', "")
            assert own == same_page(missing.text).replace('value="/no-such-page"', ""), path
            assert answer.headers.get("content-type") == missing.headers.get("content-type")
            assert "set-cookie" not in answer.headers or "admin" not in answer.headers["set-cookie"]
    assert await counts() == before


def answer_shape(answer: Any, path: str) -> tuple[Any, ...]:
    """Everything a client sees of an answer, less what differs on every response
    (date, nonces, masked tokens, the cookie's signed value) and the path echoed in a
    page's theme and language forms."""
    skip = {"date", "content-length", "content-security-policy", "set-cookie", "x-request-id"}
    headers = sorted((k, v) for k, v in answer.headers.items() if k not in skip)
    cookies = sorted(
        (c.split("=", 1)[0], c.split(";", 1)[1] if ";" in c else "")
        for c in answer.headers.get_list("set-cookie")
    )
    if not answer.content:  # HEAD
        body: Any = ""
    elif answer.headers.get("content-type", "").startswith("application/json"):
        body = answer.json()
    else:
        body = same_page(answer.text).replace(f'value="{path}"', "")
    return answer.status_code, headers, cookies, body


ODD_METHODS = ("GET", "HEAD", "POST", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "MKCOL", "FOO")


async def test_any_method_on_any_admin_path_answers_as_a_missing_path(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user(roles=["admin"])
    plain = await make_user()
    member = await make_user()
    viewer = await browser_for(admin)
    started = await viewer.post(
        f"/admin/_api/users/row-action?name=view_as&pk={member.id}", data={}
    )
    assert started.status_code == 303
    signed_in = [await browser_for(plain), viewer]
    for http in signed_in:  # a page seen first, as a browser has: its CSRF secret is set
        assert (await http.get("/auth/login")).status_code == 200
    paths = ["/admin", "/admin/", "/admin/users/list", "/admin/_api/users", "/admin/statics/x.css"]
    paths += ["/admin/api-tokens/list", "/admin/_api/api-tokens"]

    for method in ODD_METHODS:
        for accept in ("text/html", "application/json", None):
            headers = {"Accept": accept} if accept else {}
            for path in paths:
                # A visitor without a cookie: a fresh browser for each of the two requests.
                pair = [await browser_for(None), await browser_for(None)]
                answers = [
                    await pair[0].request(method, path, headers=headers),
                    await pair[1].request(method, "/no-such-page", headers=headers),
                ]
                for http in signed_in:
                    answers.append(await http.request(method, path, headers=headers))
                    answers.append(await http.request(method, "/no-such-page", headers=headers))
                shapes = [
                    answer_shape(a, p)
                    for a, p in zip(answers, [path, "/no-such-page"] * 3, strict=True)
                ]
                assert answers[0].status_code == 404, (method, path, accept, answers[0].headers)
                assert "allow" not in answers[0].headers
                for index in range(0, 6, 2):
                    assert shapes[index] == shapes[index + 1], (method, path, accept, index)


async def test_a_deactivated_or_demoted_admin_is_shut_out_at_once(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user(roles=["admin"])
    http = await browser_for(admin)
    assert (await http.get("/admin/users/list")).status_code == 200
    await admin.set({"roles": []})
    assert (await http.get("/admin/users/list")).status_code == 404


async def test_admin_pages_open_for_admins(admin_app: Any, browser_for: Any) -> None:
    admin = await make_user(roles=["admin"])
    memo = await Memo(title="Groceries").insert()
    http = await browser_for(admin)
    redirect = await http.get("/admin")
    assert redirect.status_code == 307 and redirect.headers["location"] == "/admin/"
    for key in VIEW_KEYS:
        page = await http.get(f"/admin/{key}/list")
        assert page.status_code == 200, key
    assert (await http.get(f"/admin/memo/detail?pk={memo.id}")).status_code == 200
    assert (await http.get(f"/admin/users/detail?pk={admin.id}")).status_code == 200
    assert (await http.get("/admin/memo/create")).status_code == 200
    # The user menu leads admins, and only admins, to the admin.
    assert 'href="/admin/"' in (await http.get("/account")).text
    plain = await browser_for(await make_user())
    assert "/admin" not in (await plain.get("/account")).text


async def test_searching_users_by_email(admin_app: Any, browser_for: Any) -> None:
    admin = await make_user("root@example.com", roles=["admin"])
    await make_user("ada@example.com")
    await make_user("bob@example.com")
    http = await browser_for(admin)
    page = (await http.get("/admin/users/list?q=ada")).text
    assert "ada@example.com" in page.replace("<mark>", "").replace("</mark>", "")
    assert "bob@example.com" not in page


async def test_secrets_never_appear_in_pages_or_exports(admin_app: Any, browser_for: Any) -> None:
    from vibetuner.auth.sessions import start_session
    from vibetuner.models.email_verification import hash_token
    from vibetuner.models.mixins import utcnow

    settings = app_context(admin_app).settings
    admin = await make_user(roles=["admin"])
    member = await make_user("member@example.com")
    secrets = {
        "access-token-0123456789",
        "refresh-token-0123456789",
        "memo-api-token-0123456789",
        settings.session_key.get_secret_value(),
    }
    await OAuthAccount(
        provider="github",
        provider_user_id="42",
        user=member,
        email=member.email,
        access_token="access-token-0123456789",
        refresh_token="refresh-token-0123456789",
    ).insert()
    raw_link_token = "magic-link-token-0123456789"
    link = await EmailVerificationToken(
        email=member.email,
        token_hash=hash_token(raw_link_token),
        expires_at=utcnow(),
    ).insert()
    secrets |= {raw_link_token, link.token_hash}
    session_token = await start_session(member, settings)
    session = await UserSession.find_one({"user_id": member.id})
    assert session is not None
    secrets |= {session_token, session.id}
    memo = await Memo(title="Keys", api_token="memo-api-token-0123456789").insert()
    from vibetuner.auth import api_token_store

    made = await api_token_store.create(member, "script", ["read"], 30, settings)
    secrets |= {made.secret, made.record.id}

    http = await browser_for(admin)
    # Revoked from the admin first, so the audit log's pages hold its entry too.
    revoked = await http.post(
        f"/admin/_api/api-tokens/action?name=delete&pks={made.record.public_id}", data={}
    )
    assert revoked.status_code == 200, revoked.text[:300]
    assert await AuditLog.find({"target_type": "api_tokens"}).count() == 1
    pages = []
    for key in VIEW_KEYS:
        listing = await http.get(f"/admin/{key}/list")
        pages.append(listing.text)
        for pk in set(re.findall(r"detail\?pk=([\w-]+)", listing.text)):
            for kind in ("detail", "edit"):
                pages.append((await http.get(f"/admin/{key}/{kind}?pk={pk}")).text)
        for fmt in ("csv", "json"):
            exported = await http.post(
                f"/admin/_api/{key}/action?name=export&all=1",
                data={"scope": "all", "format": fmt},
            )
            assert exported.status_code == 200, (key, fmt, exported.text[:300])
            pages.append(exported.text)
    pages.append((await http.get(f"/admin/memo/edit?pk={memo.id}")).text)
    assert "Keys" in "".join(pages) and "member@example.com" in "".join(pages)
    for page in pages:
        for secret in secrets:
            assert secret not in page
    assert "api_token" not in pages[-1]  # not even an empty field to overwrite it


async def test_edits_and_creates_are_audited_with_secrets_masked(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("auditor@example.com", roles=["admin"])
    memo = await Memo(title="Old title", body="same", api_token="t-1").insert()
    http = await browser_for(admin)

    edit_page = (await http.get(f"/admin/memo/edit?pk={memo.id}")).text
    fields = replace_field(form_fields(edit_page, "title"), "title", "New title")
    saved = await http.post(f"/admin/memo/edit?pk={memo.id}", data=as_form(fields))
    assert saved.status_code in (200, 303), saved.text[:500]
    await memo.sync()
    assert memo.title == "New title" and memo.api_token == "t-1"  # the secret is untouched

    (entry,) = await AuditLog.find({"action": "edit"}).to_list()
    assert entry.actor_email == "auditor@example.com" and entry.target_type == "memos"
    assert entry.target_id == str(memo.id)
    assert entry.changes == {"title": {"before": "Old title", "after": "New title"}}

    create_page = (await http.get("/admin/memo/create")).text
    fields = replace_field(form_fields(create_page, "title"), "title", "Made here")
    made = await http.post("/admin/memo/create", data=as_form(fields))
    assert made.status_code in (200, 303), made.text[:500]
    (created,) = await AuditLog.find({"action": "create"}).to_list()
    assert created.changes["title"] == {"before": None, "after": "Made here"}
    assert created.changes["api_token"] == {"before": None, "after": "********"}

    audit_page = (await http.get("/admin/audit-log/list")).text
    assert "Made here" in audit_page and "edit" in audit_page
    # The trail is read-only, even for admins.
    refused = await http.post(f"/admin/_api/audit-log/action?name=delete&pks={entry.id}", data={})
    assert refused.status_code == 400
    assert await AuditLog.find().count() == 2


async def test_editing_a_user_records_only_the_fields_that_changed(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("auditor@example.com", roles=["admin"])
    # No provider links, no language chosen, a verified address (a datetime).
    member = await make_user("member@example.com", name="Old name")
    http = await browser_for(admin)

    async def rename(to: str) -> dict[str, Any]:
        edit_page = (await http.get(f"/admin/users/edit?pk={member.id}")).text
        fields = replace_field(form_fields(edit_page, "name"), "name", to)
        saved = await http.post(f"/admin/users/edit?pk={member.id}", data=as_form(fields))
        assert saved.status_code in (200, 303), saved.text[:500]
        entry = await AuditLog.find({"action": "edit"}).sort("-at").first_or_none()
        assert entry is not None
        return entry.changes

    # Provider links are not stored on the user; an empty language stays "none chosen";
    # the same instant read back without its zone is the same instant.
    assert await rename("New name") == {"name": {"before": "Old name", "after": "New name"}}
    await member.sync()
    assert member.locale is None and member.email_verified_at is not None
    await OAuthAccount(
        provider="testidp", provider_user_id="m-1", user=member, email=member.email
    ).insert()
    assert await rename("Newer") == {"name": {"before": "New name", "after": "Newer"}}
    assert await OAuthAccount.find({"user.$id": member.id}).count() == 1


async def test_user_actions_and_delete_cascade_keep_the_audit_trail(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("chief@example.com", roles=["admin"])
    member = await make_user("leaving@example.com")
    blob = await store_png(admin_app, member)
    stored = app_context(admin_app).get(BlobStore)
    member_http = await browser_for(member)
    assert (await member_http.get("/account")).status_code == 200
    http = await browser_for(admin)

    async def act(name: str, *pks: Any) -> Any:
        query = "&".join(f"pks={pk}" for pk in pks)
        return await http.post(f"/admin/_api/users/action?name={name}&{query}", data={})

    assert (await act("deactivate", member.id)).status_code == 200
    await member.sync()
    assert member.is_active is False
    signed_out = await member_http.get("/account", follow_redirects=False)
    assert signed_out.status_code == 303 and "/auth/login" in signed_out.headers["location"]
    assert (await act("activate", member.id)).status_code == 200
    assert (await act("sign_out_everywhere", member.id)).status_code == 200
    # An admin cannot lock themselves out.
    refused = await act("deactivate", admin.id)
    assert refused.status_code == 400 and "yourself" in refused.json()["msg"]

    assert (await act("delete", member.id)).status_code == 200
    await app_context(admin_app).feature(JobsFeature).queue.drain()  # files are removed in a job
    assert await UserModel.get(member.id) is None
    assert await Blob.get(blob.id) is None
    assert not await stored.exists(blob)
    assert await UserSession.find({"user_id": member.id}).count() == 0

    trail = await AuditLog.find({"target_id": str(member.id)}).sort("at").to_list()
    assert [e.action for e in trail] == ["deactivate", "activate", "sign_out_everywhere", "delete"]
    assert trail[0].changes == {
        "is_active": {"before": True, "after": False},
        "session_version": {"before": 1, "after": 2},  # its sessions ended with it
    }
    assert trail[-1].target_label == "leaving@example.com"
    assert trail[-1].changes["email"] == {"before": "leaving@example.com", "after": None}


async def test_deleting_a_file_removes_the_stored_object(admin_app: Any, browser_for: Any) -> None:
    admin = await make_user(roles=["admin"])
    blob = await store_png(admin_app, admin)
    http = await browser_for(admin)
    listing = (await http.get("/admin/blobs/list")).text
    preview = f"/admin/_vt/blobs/{blob.id}/content"
    assert f'<img src="{preview}"' in listing
    image = await http.get(preview)
    assert image.status_code == 200 and image.content == PNG
    assert "sandbox" in image.headers["content-security-policy"]

    deleted = await http.post(f"/admin/_api/blobs/action?name=delete&pks={blob.id}", data={})
    assert deleted.status_code == 200
    assert await Blob.get(blob.id) is None
    assert not await app_context(admin_app).get(BlobStore).exists(blob)
    (entry,) = await AuditLog.find({"target_type": "blobs"}).to_list()
    assert entry.action == "delete" and entry.target_label == "cat.png"


async def test_revoking_a_session_from_the_admin(admin_app: Any, browser_for: Any) -> None:
    admin = await make_user(roles=["admin"])
    member = await make_user()
    member_http = await browser_for(member)
    assert (await member_http.get("/account")).status_code == 200
    session = await UserSession.find_one({"user_id": member.id})
    assert session is not None
    http = await browser_for(admin)
    listing = (await http.get("/admin/sessions/list")).text
    assert session.public_id in listing and session.id not in listing
    revoked = await http.post(
        f"/admin/_api/sessions/action?name=delete&pks={session.public_id}", data={}
    )
    assert revoked.status_code == 200
    assert (await member_http.get("/account", follow_redirects=False)).status_code == 303


async def test_view_as_user_and_back(admin_app: Any, browser_for: Any) -> None:
    admin = await make_user("lead@example.com", roles=["admin"])
    member = await make_user("viewed@example.com", name="Viewed")
    other_admin = await make_user(roles=["admin"])
    http = await browser_for(admin)

    listing = (await http.get("/admin/users/list")).text
    # Offered only for users it works for: not another admin, not oneself.
    rows = re.split(r'<tr data-sa-pk="', listing)[1:]
    offered = {row.split('"', 1)[0]: 'data-sa-name="view_as"' in row for row in rows}
    assert offered == {str(member.id): True, str(admin.id): False, str(other_admin.id): False}
    refused = await http.post(
        f"/admin/_api/users/row-action?name=view_as&pk={other_admin.id}", data={}
    )
    assert refused.status_code == 400
    assert (await http.get("/admin/")).status_code == 200  # still the admin

    started = await http.post(f"/admin/_api/users/row-action?name=view_as&pk={member.id}", data={})
    assert started.status_code == 303 and started.headers["location"] == "/"
    account = await http.get("/account")
    assert "viewed@example.com" in account.text
    assert "You are viewing the app as viewed@example.com." in account.text
    home = await http.get("/")
    assert "data-view-as-banner" in home.text
    assert (await http.get("/admin/users/list")).status_code == 404
    session = await UserSession.find_one({"user_id": member.id})
    assert session is not None and session.impersonator_id == admin.id

    back = await http.post("/ui/view-as/stop", data={})
    assert back.status_code == 303
    assert back.headers["location"] == f"/admin/users/detail?pk={member.id}"
    assert (await http.get("/admin/users/list")).status_code == 200
    assert "data-view-as-banner" not in (await http.get("/")).text
    assert await UserSession.find({"user_id": member.id}).count() == 0
    actions = [e.action for e in await AuditLog.find().sort("at").to_list()]
    assert actions == ["view_as", "view_as_end"]


async def test_signing_out_while_viewing_as_ends_both_sessions(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user(roles=["admin"])
    member = await make_user()
    http = await browser_for(admin)
    await http.post(f"/admin/_api/users/row-action?name=view_as&pk={member.id}", data={})
    assert await UserSession.find().count() == 2
    await http.post("/auth/logout", data={})
    assert await UserSession.find().count() == 0


async def test_admin_pages_keep_the_csp_strict(admin_app: Any, browser_for: Any) -> None:
    admin = await make_user(roles=["admin"])
    http = await browser_for(admin)
    page = await http.get("/admin/users/list")
    policy = dict(
        (part.split()[0], part.split()[1:])
        for part in page.headers["content-security-policy"].split(";")
        if part.strip()
    )
    nonce = next(s for s in policy["script-src"] if s.startswith("'nonce-"))[7:-1]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    scripts = re.findall(r"<script\b([^>]*)>", page.text)
    assert scripts and all('src="' in s or f'nonce="{nonce}"' in s for s in scripts), scripts
    assert "rsms.me" not in page.text  # no web font from another site
    assert '<meta name="csrf-token"' in page.text


async def test_retrying_a_failed_job_from_the_admin(admin_app: Any, browser_for: Any) -> None:
    from tests.jobs.jobs_for_tests import record

    admin = await make_user(roles=["admin"])
    failed = await FailedJob(task=record.name, args=[7], attempts=3, error="boom").insert()
    http = await browser_for(admin)
    retried = await http.post(f"/admin/_api/failed-jobs/action?name=retry&pks={failed.id}", data={})
    assert retried.status_code == 200, retried.text
    await app_context(admin_app).feature(JobsFeature).queue.drain()
    assert await FailedJob.find().count() == 0  # it ran, and did not fail again
    (entry,) = await AuditLog.find({"action": "retry"}).to_list()
    assert entry.target_type == "failed_jobs"


@pytest.mark.parametrize("environment", ["development", "test"])
async def test_debug_page_only_in_development(vibetuner_settings: Any, environment: str) -> None:
    import httpx

    from vibetuner.testing import send_csrf_token, set_session_cookie, signed_in_cookie

    settings = vibetuner_settings.model_copy(update={"environment": environment})
    application = build_admin_app(settings)
    async with application.router.lifespan_context(application):
        admin = await make_user(roles=["admin"])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as http:
            set_session_cookie(http, settings, await signed_in_cookie(settings, admin))
            send_csrf_token(http, settings.session_cookie_name)
            page = await http.get("/admin/debug")
        in_memory = app_context(application).mongo.in_memory
    if environment == "test":
        assert page.status_code == 404
        return
    assert page.status_code == 200
    assert "SESSION_KEY" in page.text and settings.session_key.get_secret_value() not in page.text
    assert "/auth/login" in page.text  # routes
    assert "email_unique" in page.text  # models and their indexes
    assert ("in memory" if in_memory else "MongoDB at") in page.text  # the database


async def test_an_admin_cannot_lock_themselves_out_through_the_form(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("self@example.com", roles=["admin"])
    http = await browser_for(admin)
    page = (await http.get(f"/admin/users/edit?pk={admin.id}")).text
    fields = [(k, v) for k, v in form_fields(page, "email") if k != "is_active"]  # unticked
    answer = await http.post(f"/admin/users/edit?pk={admin.id}", data=as_form(fields))
    assert answer.status_code in (200, 422)
    assert "You cannot deactivate yourself." in answer.text
    await admin.sync()
    assert admin.is_active and admin.is_admin
    assert await AuditLog.find().count() == 0


async def test_a_taken_email_is_a_form_error(admin_app: Any, browser_for: Any) -> None:
    admin = await make_user("taken@example.com", roles=["admin"])
    other = await make_user("other@example.com")
    http = await browser_for(admin)
    page = (await http.get(f"/admin/users/edit?pk={other.id}")).text
    fields = replace_field(form_fields(page, "email"), "email", "taken@example.com")
    answer = await http.post(f"/admin/users/edit?pk={other.id}", data=as_form(fields))
    assert answer.status_code in (200, 422)
    assert "Another user has this email address." in answer.text
    await other.sync()
    assert other.email == "other@example.com"


async def test_admin_writes_need_the_csrf_token(admin_app: Any, browser_for: Any) -> None:
    admin = await make_user(roles=["admin"])
    member = await make_user()
    http = await browser_for(admin)
    assert (await http.get("/admin/users/list")).status_code == 200
    forged = await http.post(
        f"/admin/_api/users/action?name=deactivate&pks={member.id}",
        data={},
        headers={"X-CSRF-Token": "forged", "Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    await member.sync()
    assert member.is_active
    assert await AuditLog.find().count() == 0


async def test_csv_exports_do_not_carry_spreadsheet_formulas(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user(roles=["admin"])
    await make_user("sneaky@example.com", name='=HYPERLINK("https://evil.example","x")')
    http = await browser_for(admin)
    exported = await http.post(
        "/admin/_api/users/action?name=export&all=1", data={"scope": "all", "format": "csv"}
    )
    assert exported.status_code == 200
    assert "sneaky@example.com" in exported.text
    assert ",=HYPERLINK" not in exported.text and '"=HYPERLINK' not in exported.text
    assert "'=HYPERLINK" in exported.text


async def test_app_views_can_be_named_and_imported_when_the_admin_opens(
    vibetuner_settings: Any,
) -> None:
    import sys

    import httpx

    from vibetuner import create_app
    from vibetuner.admin import AdminFeature
    from vibetuner.app import default_features
    from vibetuner.testing import send_csrf_token, set_session_cookie, signed_in_cookie

    sys.modules.pop("tests.admin.custom_views", None)
    application = create_app(
        settings=vibetuner_settings,
        features=[*default_features(), AdminFeature(views=["tests.admin.custom_views:MEMOS"])],
        models=[Memo],
    )
    assert "tests.admin.custom_views" not in sys.modules  # not at startup
    async with application.router.lifespan_context(application):
        admin = await make_user(roles=["admin"])
        await Memo(title="From a named view").insert()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as http:
            set_session_cookie(
                http, vibetuner_settings, await signed_in_cookie(vibetuner_settings, admin)
            )
            send_csrf_token(http, vibetuner_settings.session_cookie_name)
            page = await http.get("/admin/memo-board/list")
    assert page.status_code == 200
    assert "From a named view" in page.text and "Memo board" in page.text


async def test_the_admin_home_offers_creating_only_where_it_is_allowed(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user(roles=["admin"])
    http = await browser_for(admin)
    home = (await http.get("/admin/")).text
    assert 'href="http://testserver/admin/users/list"' in home
    assert "/admin/users/create" not in home and "/admin/audit-log/create" not in home
    assert "/admin/memo/create" in home  # an app model: admins may add one


async def test_the_brand_links_to_the_admin_home_even_with_the_debug_page(
    vibetuner_settings: Any,
) -> None:
    import httpx

    from vibetuner.testing import send_csrf_token, set_session_cookie, signed_in_cookie

    # The debug page (development only) used to take the home page's route name.
    settings = vibetuner_settings.model_copy(update={"environment": "development"})
    application = build_admin_app(settings)
    async with application.router.lifespan_context(application):
        admin = await make_user(roles=["admin"])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as http:
            set_session_cookie(http, settings, await signed_in_cookie(settings, admin))
            send_csrf_token(http, settings.session_cookie_name)
            page = (await http.get("/admin/users/list")).text
            debug = await http.get("/admin/debug")
    brand = re.search(r'<a class="brand-link" href="([^"]+)"', page)
    assert brand is not None and brand.group(1) == "http://testserver/admin/"
    assert 'href="http://testserver/admin/debug"' in page  # its menu entry still works
    assert debug.status_code == 200 and "SESSION_KEY" in debug.text


async def test_the_admin_speaks_the_apps_words(admin_app: Any, browser_for: Any) -> None:
    admin = await make_user(roles=["admin"])  # no name: an empty field
    await make_user(email="nameless@example.com")
    http = await browser_for(admin)
    page = (await http.get("/admin/users/list")).text
    assert "Sign out" in page and "Logout" not in page
    assert 'href="/">Back to the app</a>' in page
    home = (await http.get("/admin/")).text
    assert "total records" not in home and "2 records" in home
    detail = (await http.get(f"/admin/users/detail/{admin.id}")).text
    assert "nameless@example.com" in page  # the rows are on the page
    for placeholder in ("-null-", "-empty-"):
        assert placeholder not in detail and placeholder not in page


async def test_admin_sessions_name_the_user_and_the_browser(
    admin_app: Any, browser_for: Any
) -> None:
    from vibetuner.auth import sessions

    admin = await make_user(roles=["admin"])
    person = await make_user(email="reader@example.com")
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    await sessions.start_session(person, app_context(admin_app).settings, user_agent=firefox)
    http = await browser_for(admin)
    listing = await http.get("/admin/sessions/list")
    assert listing.status_code == 200
    assert "reader@example.com" in listing.text and "Firefox on Windows" in listing.text
    assert str(person.id) not in listing.text
