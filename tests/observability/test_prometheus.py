"""Prometheus metrics: never public by default, a bearer token on the app's port, and a
real ``prometheus`` server (Debian's package) scraping a served app both ways."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.helpers import stop_process
from tests.observability.served import served_app
from vibetuner import create_app
from vibetuner.errors import ConfigurationError
from vibetuner.testing import free_port

TOKEN = secrets.token_urlsafe(32)


async def test_there_is_no_metrics_endpoint_unless_configured(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 404


class TestProtectedPath:
    @pytest.fixture
    def vibetuner_settings(self, vibetuner_settings: Any) -> Any:
        return vibetuner_settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})

    async def test_metrics_need_the_exact_bearer_token(self, client: httpx.AsyncClient) -> None:
        attempts = {
            "none": {},
            "basic": {"Authorization": f"Basic {TOKEN}"},
            "wrong": {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"},
            "prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
            "longer": {"Authorization": f"Bearer {TOKEN}x"},
            "empty": {"Authorization": "Bearer "},
        }
        # Without the token the path answers as one that does not exist, whatever the
        # method or the kind of client: a scanner cannot tell that metrics are served.
        from tests.admin.test_admin import ODD_METHODS, answer_shape

        for name, headers in attempts.items():
            for method in ODD_METHODS:
                for accept in ({"Accept": "text/html"}, {"Accept": "application/json"}, {}):
                    sent = {**headers, **accept}
                    client.cookies.clear()  # a new visitor for each request
                    refused = await client.request(method, "/metrics", headers=sent)
                    client.cookies.clear()
                    missing = await client.request(method, "/no-such-path", headers=sent)
                    assert refused.status_code == 404, (name, method, refused.status_code)
                    assert "process_" not in refused.text
                    assert answer_shape(refused, "/metrics") == answer_shape(
                        missing, "/no-such-path"
                    ), (name, method, accept)
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200
        assert allowed.headers["content-type"].startswith("text/plain")
        assert "process_cpu_seconds_total" in allowed.text


def test_a_short_metrics_token_is_refused(vibetuner_settings: Any) -> None:
    settings = vibetuner_settings.model_copy(update={"metrics_token": SecretStr("short-token")})
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN must be a random value"):
        create_app(settings=settings)


def query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    # Prometheus answers 503 until its storage and query engine are ready: wait for them.
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=5)
        if answer.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    answer.raise_for_status()
    result: list[dict[str, Any]] = answer.json()["data"]["result"]
    return result


def test_a_prometheus_server_scrapes_the_metrics_port_and_the_protected_path(
    tmp_path: Path,
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (apt-get install prometheus)")
    metrics_port = free_port()
    env = {"METRICS_PORT": str(metrics_port), "METRICS_TOKEN": TOKEN}
    with served_app(tmp_path, **env) as url:
        app_target = url.removeprefix("http://")
        (tmp_path / "prometheus.yml").write_text(
            f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: port
    static_configs: [{{targets: ["127.0.0.1:{metrics_port}"]}}]
  - job_name: path
    authorization: {{credentials: "{TOKEN}"}}
    static_configs: [{{targets: ["{app_target}"]}}]
  - job_name: intruder
    authorization: {{credentials: "{secrets.token_urlsafe(32)}"}}
    static_configs: [{{targets: ["{app_target}"]}}]
"""
        )
        web = free_port()
        server = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("wb"),
        )
        prometheus = f"http://127.0.0.1:{web}"
        try:
            with httpx.Client(base_url=url) as http:
                for _ in range(5):
                    assert http.get("/auth/me").status_code == 401
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
                try:
                    up = {r["metric"]["job"]: r["value"][1] for r in query(prometheus, "up")}
                    counts = query(
                        prometheus,
                        'http_server_request_duration_seconds_count{http_route="/auth/me",'
                        'http_response_status_code="401"}',
                    )
                except httpx.TransportError:
                    up, counts = {}, []
                jobs = {r["metric"]["job"]: float(r["value"][1]) for r in counts}
                if len(up) == 3 and jobs.get("port") == 5 and jobs.get("path") == 5:
                    break
                assert time.monotonic() < deadline, (up, counts)
                time.sleep(0.5)
            # The scraper with the wrong token got nothing: its target is down.
            assert up == {"port": "1", "path": "1", "intruder": "0"}
        finally:
            stop_process(server)
