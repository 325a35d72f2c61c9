"""Throughput of a cached anonymous page against the same page uncached, in one run.

The page (``_cache_app.py``) reads the 20 newest articles from the database and renders
them in vibetuner's layout, with a form (so a CSRF token) in it: at ``/uncached`` every
request does that work; at ``/cached`` the route has ``cache_page(ttl=300)``, so after
the first request the stored page is served (with the visitor's own CSRF token and a
fresh nonce put in). Each request comes from a new visitor (the load sends no cookie),
the costliest case for both: a session is started for the CSRF token.

One uvicorn worker on one CPU, the load (``_load.py``, 16 keep-alive connections) on the
other; rounds alternate between the two paths and the medians are compared. The
in-memory development database by default; ``--backend`` chooses the cache's
(``memory``, or ``mongodb`` on the same in-memory database).

Target: the cached page serves at least 5x the requests per second of the uncached one.
Usage: python bench/cache.py [--rounds N] [--seconds S] [--backend memory|mongodb]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, free_port, on_cpu, report, stop, wait_for_200

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def load(port: int, path: str, args: argparse.Namespace) -> dict[str, Any]:
    """Load ``GET path`` for ``args.seconds`` from the other CPU."""
    result = subprocess.run(
        [
            PYTHON,
            str(HERE / "_load.py"),
            "--port",
            str(port),
            "--path",
            path,
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
    figures: dict[str, Any] = json.loads(result.stdout)
    if figures["errors"]:
        sys.exit(f"{path}: {figures['errors']} responses were not 200")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backend", choices=["memory", "mongodb"], default="memory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="vibetuner-bench-cache-"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")]),
        "ENVIRONMENT": "test",
        "DATA_DIR": str(workdir / "data"),
        "SESSION_KEY": secrets.token_urlsafe(48),
        "CACHE_BACKEND": args.backend,
        "LOG_LEVEL": "WARNING",
    }
    port = free_port()
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "_cache_app:app",
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=on_cpu(0),
    )
    try:
        wait_for_200(f"http://127.0.0.1:{port}/health", server)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(headers={"Accept": "text/html"}, timeout=10) as http:
            plain, first, hit = (
                http.get(f"{base}{p}") for p in ("/uncached", "/cached", "/cached")
            )
        for page in (plain, first, hit):
            if page.status_code != 200 or "Article 19" not in page.text:
                sys.exit(f"the page answered {page.status_code}\n{page.text[:2000]}")
        if hit.headers.get("x-cache") != "hit":
            sys.exit("the second GET /cached was not served from the cache")
        rates: dict[str, list[float]] = {"/cached": [], "/uncached": []}
        latencies: dict[str, list[float]] = {"/cached": [], "/uncached": []}
        for _ in range(args.rounds):
            for path in ("/uncached", "/cached"):
                figures = load(port, path, args)
                rates[path].append(figures["rps"])
                latencies[path].append(figures["p99_ms"])
    finally:
        stop(server)
    cached_rps = statistics.median(rates["/cached"])
    plain_rps = statistics.median(rates["/uncached"])
    print(f"cache backend: {args.backend}; rounds: {args.rounds} x {args.seconds} s")
    for path in ("/uncached", "/cached"):
        print(
            f"  {path:10} {statistics.median(rates[path]):8.0f} req/s"
            f"   p99 {statistics.median(latencies[path]):6.1f} ms"
        )
    ok = report([("cached anonymous page, req/s (vs uncached)", cached_rps, plain_rps, 5.0, ">=")])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
