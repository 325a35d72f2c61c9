"""The cost of tracing and metrics: the signed-in notes page with them on vs off.

The app is ``bench/pages.py``'s: a freshly scaffolded app serving ``GET /notes`` to a
signed-in user with 20 notes (the same data, cookie and load). "Off" has no
observability setting; "on" has every request traced and measured as production would
configure it, through environment variables only:

* ``OTEL_EXPORTER_OTLP_ENDPOINT``: spans (every request sampled, the default) and
  metrics exported over OTLP/HTTP in batches to a collector stand-in in this process,
  which reads and drops them;
* ``METRICS_PORT``: the same metrics kept for Prometheus too (nothing scrapes them here).

A third variant, "sampled", is "on" with one trace in ten kept
(``OTEL_TRACES_SAMPLER=parentbased_traceidratio``, ``OTEL_TRACES_SAMPLER_ARG=0.1``), as a
busy production site would run; metrics still count every request.

Both database modes, as ``pages.py`` runs them (``--db``): the in-memory database, and
PyMongo against the wire server through the latency proxy (where each MongoDB command
is a span and a latency measurement as well). Rounds alternate the variants; medians
are compared.

Target: at most 5% slower with observability on, measured as the server's CPU time per
request (on / off <= 1.05), in each mode and variant. Throughput and p99 are printed
too; on a machine shared with other work they move with the neighbours' load far more
than by 5%, CPU time per request much less.
Usage: python bench/observability.py [--db memory|wire|both] [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import ROOT, free_port, report, run_quiet
from _wire import LatencyProxy, wire_mode
from pages import COOKIE_NAME, OURS, PACKAGE, PYTHON, SEED, measure


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


def run_mode(
    mode: str, workdir: Path, env: dict[str, str], cookie: str, args: argparse.Namespace
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """``args.rounds`` alternating runs of each variant; and the exports the collector got."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}

    def rounds(proxy: LatencyProxy | None, endpoint: str) -> None:
        for index in range(args.rounds):
            for name in VARIANTS:
                run_env = {**env, "DATA_DIR": tempfile.mkdtemp(dir=workdir, prefix="data-")}
                run_env.update(variant_env(name, endpoint))
                if proxy is not None:
                    run_env["MONGODB_URL"] = proxy.url()
                    run_env["MONGODB_DB"] = f"{name}_{index}"
                runs[name].append(measure("ours_app", workdir, run_env, cookie, args, proxy))

    with collector() as (endpoint, received):
        if mode == "memory":
            rounds(None, endpoint)
        else:
            with wire_mode(args.wire_venv, args.latency_ms) as proxy:
                rounds(proxy, endpoint)
        return runs, received[0]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["memory", "wire", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
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
    results: dict[str, tuple[dict[str, list[dict[str, Any]]], int]] = {}
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

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    rows = []
    for mode, (runs, _) in results.items():
        label = "memory" if mode == "memory" else "wire"
        off = runs["off"]
        for name, title in (("on", "all traced"), ("sampled", "10% traced")):
            on = runs[name]
            rows.append(
                (
                    f"CPU ms/request on/off, {title} ({label})",
                    med(on, "cpu_ms"),
                    med(off, "cpu_ms"),
                    1.05,
                    "<=",
                )
            )
    ok = report(rows)
    print(
        "\nrequests/s and p99 ms, off -> all traced -> 10% traced"
        " (not targets on a shared machine):"
    )
    for mode, (runs, exports) in results.items():
        rps = " -> ".join(f"{med(runs[n], 'rps'):7.1f}" for n in VARIANTS)
        p99 = " -> ".join(f"{med(runs[n], 'p99_ms'):7.1f}" for n in VARIANTS)
        print(f"  {mode:7} req/s {rps}   p99 {p99}   ({exports} OTLP exports received)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
