"""Errors to Sentry: a served app with ``SENTRY_DSN`` pointing at an HTTP endpoint the test
starts (standing in for Sentry's ingest API) reports an unhandled error with the request
id, the user's id and the release, and none of the secrets the session saw."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.observability.receiver import receiver
from tests.observability.served import served_app
from vibetuner.testing import Outbox, csrf_token_in

HTML = {"Accept": "text/html"}


def envelope_items(body: bytes) -> list[tuple[dict[str, Any], Any]]:
    """(item header, payload) of a Sentry envelope: JSON lines, header first."""
    lines = body.split(b"\n")
    items = []
    index = 1
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        header = json.loads(lines[index])
        payload = lines[index + 1] if index + 1 < len(lines) else b""
        try:
            items.append((header, json.loads(payload)))
        except ValueError:
            items.append((header, payload))
        index += 2
    return items


def test_an_unhandled_error_reaches_the_tracker_tagged_and_scrubbed(tmp_path: Path) -> None:
    with receiver(answer=b"{}", content_type="application/json") as ingest:
        host = ingest.url.removeprefix("http://")
        env = {
            "SENTRY_DSN": f"http://0123456789abcdef0123456789abcdef@{host}/42",
            "SENTRY_RELEASE": "notes@1.2.3",
        }
        with served_app(tmp_path, **env) as url:
            outbox = Outbox(tmp_path / "outbox")
            seen: list[str] = []
            with httpx.Client(base_url=url, headers={"Origin": url}) as http:
                asked = http.post("/auth/magic-link", data={"email": "err@example.com"})
                assert asked.status_code == 200
                (link,) = [w for w in outbox.text(outbox.last).split() if "/magic-link/" in w]
                path = urlsplit(link).path
                seen.append(path.rsplit("/", 1)[1])
                page = http.get(path, headers=HTML)
                form_token = csrf_token_in(page.text)
                seen.append(form_token)
                assert http.post(path, data={"csrf_token": form_token}).status_code in (200, 303)
                cookie = next(iter(http.cookies.values()))
                seen.append(cookie)
                me = http.get("/auth/me").json()
                secret_query = "Query-Secret-" + form_token[:8]
                seen.append(secret_query)
                home = http.get("/", headers=HTML)
                job = http.post("/fail", headers={"X-CSRF-Token": csrf_token_in(home.text)})
                assert job.status_code == 200, job.text
                failed = http.get(
                    "/boom",
                    params={"token": secret_query},
                    # Not a bearer token: a request with one loses its cookies (and its user).
                    headers={"Authorization": "Token Api-Token-4711", "X-CSRF-Token": form_token},
                )
                assert failed.status_code == 500
                seen.append("Api-Token-4711")

            deadline = time.monotonic() + 20
            while sum(b.count(b'"type":"event"') for b in ingest.bodies("/api/42/envelope/")) < 2:
                assert time.monotonic() < deadline, "no event reached the ingest endpoint"
                time.sleep(0.1)
        sent = ingest.bodies("/api/42/envelope/")
        auth = [r.headers.get("x-sentry-auth", "") for r in ingest.requests]

    events = [
        payload
        for body in sent
        for header, payload in envelope_items(body)
        if header.get("type") == "event"
    ]
    (event,) = [e for e in events if e.get("exception")]
    (error,) = event["exception"]["values"]
    assert error["type"] == "RuntimeError"
    assert error["value"] == "the route failed on purpose"
    assert event["tags"]["request_id"] == failed.headers["X-Request-ID"]
    assert event["user"] == {"id": me["id"]}
    assert event["release"] == "notes@1.2.3"
    assert event["environment"] == "test"
    # The failed job: its log line, tagged with the job and the request that queued it.
    (job_event,) = [e for e in events if e.get("tags", {}).get("job") == "served.fails"]
    assert "the job failed on purpose" in json.dumps(job_event)
    assert job_event["tags"]["request_id"] == job.headers["X-Request-ID"]
    assert all("0123456789abcdef" in a for a in auth)  # the DSN's key authenticates the sends
    # No secret left the process: not the sign-in token, the session cookie, the CSRF
    # token, a secret query value, the Authorization header, nor the route's local
    # variables (a password built from the token).
    everything = b"".join(sent).decode()
    for secret in seen:
        assert secret not in everything, f"a secret ({secret[:6]}...) was sent to the tracker"
    assert '"vars"' not in everything  # frames' local variables are not sent at all
    assert "err@example.com" not in everything
