"""The cost of tracing and metrics: the signed-in notes page with them on vs off.

The app is ``bench/pages.py``'s: a freshly scaffolded app serving ``GET /notes`` to a
signed-in user with 20 notes (the same data, cookie and load). "Off" has no
observability setting; "on" has every request traced and measured as production would
configure it, through environment variables only:

* ``OTEL_EXPORTER_OTLP_ENDPOINT``: spans (every request sampled, the default) and
  metrics exported over OTLP/HTTP in batches, as production sends them to a collector,
  here to a collector stand-in in this process (it reads each export and drops it). The
  SDK's in-memory exporter would leave out what production pays: encoding the spans to
  protobuf and posting them, in the server's exporter thread;
* ``METRICS_PORT``: the same metrics kept for Prometheus too (nothing scrapes them here;
  each measurement is aggregated once more for it).

A third variant, "sampled", is "on" with one trace in ten kept
(``OTEL_TRACES_SAMPLER=parentbased_traceidratio``, ``OTEL_TRACES_SAMPLER_ARG=0.1``), as a
busy production site would run; metrics still count every request.

Both database modes, as ``pages.py`` runs them (``--db``): the in-memory database, and
PyMongo against the wire server through the latency proxy (where each MongoDB command
is a span and a latency measurement as well).

The three servers of a mode run side by side (one uvicorn worker each, on the first
CPU; the load on the second), warmed up by one request and a second of load, and take
the load in turns, ``--rounds`` slices of ``--seconds`` each, in a rotating order: the
neighbours' load on a shared machine falls on all three alike. Each server's CPU time
(user + system, every thread: the exporters too) from before its first slice to six
seconds after its last (the last batch of spans exported), divided by the requests it
served, is its CPU time per request; on / off is the ratio, in one run.

Target: at most 5% slower with observability on, measured as the server's CPU time per
request (on / off <= 1.05), in each mode and variant. Throughput and p99 are printed
too; on a machine shared with other work they move with the neighbours' load far more
than by 5%, CPU time per request much less.
Usage: python bench/observability.py [--db memory|wire|both] [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, free_port, on_cpu, report, run_quiet, stop, wait_for_200
from _wire import LatencyProxy, wire_mode
from pages import COOKIE_NAME, HERE, OURS, PACKAGE, PYTHON, SEED, cpu_seconds


@contextmanager
def collector() -> Iterator[tuple[str, list[int]]]:
    """An OTLP/HTTP endpoint that reads every export and answers 200; yields its URL and
    the count of exports received (a list of one int)."""
    received = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 -- http.server's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received[0] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


VARIANTS = ("off", "on", "sampled")


def variant_env(name: str, endpoint: str) -> dict[str, str]:
    """The observability settings of a variant."""
    if name == "off":
        return {}
    values = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "bench-notes",
        "METRICS_PORT": str(free_port()),
    }
    if name == "sampled":
        values["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        values["OTEL_TRACES_SAMPLER_ARG"] = "0.1"
    return values


def serve(workdir: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], int]:
    """The notes app in one uvicorn worker on the first CPU; its process and port."""
    port = free_port()
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "ours_app:app",
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
        # A file, not a pipe: nobody reads it while the server runs.
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=on_cpu(0),
    )
    wait_for_200(f"http://127.0.0.1:{port}/docs", server)
    return server, port


def load(port: int, cookie: str, args: argparse.Namespace) -> dict[str, Any]:
    """``_load.py`` on the second CPU against ``GET /notes``: its JSON result."""
    result = subprocess.run(
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
    measured: dict[str, Any] = json.loads(result.stdout)
    if measured["errors"]:
        sys.exit(f"{measured['errors']} responses of GET /notes were not 200")
    return measured


def run_mode(
    mode: str, workdir: Path, env: dict[str, str], cookie: str, args: argparse.Namespace
) -> tuple[dict[str, dict[str, Any]], int]:
    """The three variants side by side, loaded in turns; per variant its CPU ms per
    request, requests/s and p99 of each slice; and the exports the collector got."""

    def measure(proxy: LatencyProxy | None, endpoint: str) -> dict[str, dict[str, Any]]:
        servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
        try:
            for name in VARIANTS:
                run_env = {**env, "DATA_DIR": tempfile.mkdtemp(dir=workdir, prefix="data-")}
                run_env.update(variant_env(name, endpoint))
                if proxy is not None:
                    run_env["MONGODB_URL"] = proxy.url()
                    run_env["MONGODB_DB"] = f"{name}_{secrets.token_hex(4)}"
                servers[name] = serve(workdir, run_env, workdir / f"{name}.log")
            cpu_before: dict[str, float] = {}
            served = dict.fromkeys(VARIANTS, 0)
            slices: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
            headers = {"Accept": "text/html", "Cookie": cookie}
            for name, (server, port) in servers.items():
                page = httpx.get(f"http://127.0.0.1:{port}/notes", headers=headers, timeout=10)
                if page.status_code != 200 or "Note 20:" not in page.text:
                    sys.exit(f"{name}: GET /notes answered {page.status_code}\n{page.text[:2000]}")
                cpu_before[name] = cpu_seconds(server.pid)
                served[name] += 1
            for index in range(args.rounds):
                shift = index % len(VARIANTS)
                for name in VARIANTS[shift:] + VARIANTS[:shift]:
                    server, port = servers[name]
                    before = cpu_seconds(server.pid)
                    result = load(port, cookie, args)
                    count = result["requests"] + result["warm_up_requests"]
                    result["cpu_ms"] = (cpu_seconds(server.pid) - before) / count * 1000
                    served[name] += count
                    slices[name].append(result)
            time.sleep(6)  # the last batch of spans exported (every 5 s), and counted
            return {
                name: {
                    "cpu_ms": (cpu_seconds(server.pid) - cpu_before[name]) / served[name] * 1000,
                    "slices": slices[name],
                }
                for name, (server, _) in servers.items()
            }
        finally:
            for server, _ in servers.values():
                stop(server)

    with collector() as (endpoint, received):
        if mode == "memory":
            runs = measure(None, endpoint)
        else:
            with wire_mode(args.wire_venv, args.latency_ms) as proxy:
                runs = measure(proxy, endpoint)
        return runs, received[0]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["memory", "wire", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
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
    workdir = Path(tempfile.mkdtemp(prefix="vibetuner-bench-otel-"))
    results: dict[str, tuple[dict[str, dict[str, Any]], int]] = {}
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
        session_key = secrets.token_urlsafe(48)
        paths = [str(workdir), str(project / "src"), os.environ.get("PYTHONPATH", "")]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            "SESSION_KEY": session_key,
            "EMAIL_BACKEND": "console",
        }
        for name in list(env):
            if name.startswith(("OTEL_", "METRICS_", "SENTRY_")) or name in (
                "MONGODB_URL",
                "MONGODB_DB",
                "ENVIRONMENT",
            ):
                env.pop(name)
        sys.path.insert(0, str(workdir))
        from bench_seed import cookie as session_cookie  # type: ignore[import-not-found]

        cookie = session_cookie(session_key, COOKIE_NAME)
        for mode in ["memory", "wire"] if args.db == "both" else [args.db]:
            results[mode] = run_mode(mode, workdir, env, cookie, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def med(slices: list[dict[str, Any]], key: str) -> float:
        return statistics.median(piece[key] for piece in slices)

    rows = []
    for mode, (runs, _) in results.items():
        label = "memory" if mode == "memory" else "wire"
        for name, title in (("on", "all traced"), ("sampled", "10% traced")):
            rows.append(
                (
                    f"CPU ms/request on/off, {title} ({label})",
                    runs[name]["cpu_ms"],
                    runs["off"]["cpu_ms"],
                    1.05,
                    "<=",
                )
            )
    ok = report(rows)
    print(
        "\nthe same ratio slice by slice (each slice's on / off of its round), min / median / max:"
    )
    for mode, (runs, _) in results.items():
        for name in ("on", "sampled"):
            ratios = sorted(
                on["cpu_ms"] / off["cpu_ms"]
                for on, off in zip(runs[name]["slices"], runs["off"]["slices"], strict=True)
            )
            print(
                f"  {mode:7} {name:8} {ratios[0]:.3f} / {statistics.median(ratios):.3f}"
                f" / {ratios[-1]:.3f}"
            )
    print(
        "\nrequests/s and p99 ms, off -> all traced -> 10% traced"
        " (not targets on a shared machine):"
    )
    for mode, (runs, exports) in results.items():
        rps = " -> ".join(f"{med(runs[n]['slices'], 'rps'):7.1f}" for n in VARIANTS)
        p99 = " -> ".join(f"{med(runs[n]['slices'], 'p99_ms'):7.1f}" for n in VARIANTS)
        print(f"  {mode:7} req/s {rps}   p99 {p99}   ({exports} OTLP exports received)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
