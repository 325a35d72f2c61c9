"""Realtime (server-sent events): vibetuner's RealtimeFeature against the same fan-out
written directly with sse-starlette and redis.asyncio, same run.

1. idle: N idle streams (default 5,000) on one uvicorn worker: server memory per
   stream (RSS growth / N; target < 20 KiB) and CPU while they sit idle (near 0). The
   floor is measured too: a bare ASGI app on uvicorn holding the same streams open with
   nothing else (what the connection alone costs).
2. fan-out in process: one event to M subscribers (default 1,000) on one worker,
   publish-to-receive p50 and p99 over the rounds (target p99 < 100 ms).
3. fan-out through Redis: the same with 2 workers (M/2 subscribers on each), published
   through the first (a redis-server is started here).
Against the baseline the p50 and p99 ratios (ours / baseline) must stay <= 1.11: the
baseline is at most 0.9x as fast as vibetuner is slow, or in other words vibetuner keeps
at least 0.9 of the baseline's speed.

Publish-to-receive: the server writes time.monotonic() (CLOCK_MONOTONIC, shared by the
processes of one machine) into the event when it publishes; the subscribers, plain
asyncio sockets in this process, note the time each line arrives.
Usage: python bench/realtime.py [--idle N] [--subscribers M] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, free_port, report, stop

BENCH = Path(__file__).resolve().parent
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


class Server:
    """One uvicorn process of ``ours`` or ``baseline`` (``bench/_realtime_apps.py``)."""

    def __init__(self, kind: str, workdir: Path, redis_url: str | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.path = "/realtime?channel=app" if kind == "ours" else "/bench/stream"
        cookie_file = workdir / f"cookie-{self.port}"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(BENCH), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
            ),
            "ENVIRONMENT": "test",
            "DATA_DIR": str(workdir / f"data-{self.port}"),
            "SESSION_KEY": SESSION_KEY,
            "LOG_LEVEL": "WARNING",
            "BENCH_COOKIE_FILE": str(cookie_file),
            # every stream of the bench is one signed-in session
            "REALTIME_MAX_STREAMS_PER_SESSION": "1000000",
        }
        env.pop("REDIS_URL", None)
        if redis_url is not None:
            env["REDIS_URL"] = redis_url
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", f"_realtime_apps:{kind}", "--factory",
                "--port", str(self.port), "--log-level", "warning", "--no-access-log",
                "--backlog", "4096",
            ],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                sys.exit(f"{kind} exited early:\n{self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"{kind} did not start")
            time.sleep(0.1)
        self.cookie = cookie_file.read_text()

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        with open(f"/proc/{self.process.pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE

    def cpu(self) -> float:
        """CPU seconds (user + system) the server process has used."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def stop(self) -> None:
        stop(self.process)


SESSION_KEY = secrets.token_urlsafe(48)


class Subscriber:
    """One stream read by a plain socket; ``latencies`` gets publish-to-receive seconds."""

    def __init__(self, latencies: list[float], arrived: asyncio.Event, counter: list[int]) -> None:
        self.latencies = latencies
        self.arrived = arrived
        self.counter = counter
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, server: Server) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        self.writer = writer
        writer.write(
            f"GET {server.path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Cookie: {server.cookie}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"{server.kind}: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.task = asyncio.create_task(self.read(reader))

    async def read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            if line.startswith(b"data: "):
                received = time.monotonic()
                self.latencies.append(received - float(line[6:].strip()))
                self.counter[0] += 1
                self.arrived.set()

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()


async def open_many(servers: list[Server], count: int, latencies: list[float]) -> Any:
    arrived, counter = asyncio.Event(), [0]
    subscribers = [Subscriber(latencies, arrived, counter) for _ in range(count)]
    for start in range(0, count, 200):  # in batches: the listen backlog is finite
        batch = subscribers[start : start + 200]
        await asyncio.gather(
            *(item.open(servers[(start + n) % len(servers)]) for n, item in enumerate(batch))
        )
    return subscribers, arrived, counter


async def idle(kind: str, workdir: Path, count: int, seconds: float) -> tuple[float, float]:
    """(bytes of server memory per idle stream, CPU percent while they sit idle)."""
    server = Server(kind, workdir)
    try:
        warm, _, _ = await open_many([server], 50, [])  # code paths loaded, caches warm
        await asyncio.sleep(0.5)
        for item in warm:
            item.close()
        await asyncio.sleep(1.0)
        before = server.rss()
        subscribers, _, _ = await open_many([server], count, [])
        await asyncio.sleep(2.0)
        grown = server.rss() - before
        cpu_before, started = server.cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu_share = (server.cpu() - cpu_before) / (time.monotonic() - started) * 100
        for item in subscribers:
            item.close()
        return grown / count, cpu_share
    finally:
        server.stop()


async def fan_out(
    kind: str, workdir: Path, count: int, rounds: int, redis_url: str | None
) -> tuple[float, float]:
    """(p50, p99 publish-to-receive in ms) of ``rounds`` events to ``count`` subscribers."""
    servers = [Server(kind, workdir, redis_url) for _ in range(2 if redis_url else 1)]
    latencies: list[float] = []
    try:
        subscribers, arrived, counter = await open_many(servers, count, latencies)
        async with httpx.AsyncClient(base_url=servers[0].url, timeout=30) as http:
            for round_ in range(rounds + 2):
                if round_ == 2:
                    latencies.clear()  # two warm-up rounds
                counter[0] = 0
                await http.get("/bench/publish")
                deadline = time.monotonic() + 10
                while counter[0] < count:
                    arrived.clear()
                    if time.monotonic() > deadline:
                        sys.exit(f"{kind}: only {counter[0]} of {count} subscribers got the event")
                    await asyncio.wait_for(arrived.wait(), 10)
                await asyncio.sleep(0.1)
        for item in subscribers:
            item.close()
    finally:
        for server in servers:
            server.stop()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return process, f"redis://127.0.0.1:{port}/0"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=int, default=5000, help="idle streams")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="CPU sampling window")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20, help="events per fan-out")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-realtime-"))
    redis, redis_url = start_redis(workdir)
    try:
        memory, cpu = await idle("ours", workdir, args.idle, args.idle_seconds)
        base_memory, base_cpu = await idle("baseline", workdir, args.idle, args.idle_seconds)
        floor_memory, floor_cpu = await idle("floor", workdir, args.idle, args.idle_seconds)
        print(f"{args.idle} idle streams, one worker:")
        kib, base_kib = memory / 1024, base_memory / 1024
        print(
            f"  memory per stream: vibetuner {kib:.1f} KiB, baseline {base_kib:.1f} KiB,"
            f" bare uvicorn {floor_memory / 1024:.1f} KiB (target < 20 KiB)"
        )
        print(f"  CPU while idle ({args.idle_seconds:.0f} s, heartbeats every 15 s):")
        print(f"  vibetuner {cpu:.1f} %, baseline {base_cpu:.1f} %, bare uvicorn {floor_cpu:.1f} %")
        rows = []
        figures = {}
        for label, url in (("in process, 1 worker", None), ("Redis, 2 workers", redis_url)):
            # alternate the two sides, twice each, and keep the better run of each
            runs: dict[str, list[tuple[float, float]]] = {"ours": [], "baseline": []}
            for _ in range(2):
                for kind in ("ours", "baseline"):
                    runs[kind].append(
                        await fan_out(kind, workdir, args.subscribers, args.rounds, url)
                    )
            ours = min(runs["ours"], key=lambda pair: pair[1])
            base = min(runs["baseline"], key=lambda pair: pair[1])
            figures[label] = (ours, base)
            rows.append((f"fan-out p50 ms, {label}", ours[0], base[0], 1.11, "<="))
            rows.append((f"fan-out p99 ms, {label}", ours[1], base[1], 1.11, "<="))
        print(f"\none event to {args.subscribers} subscribers, {args.rounds} rounds:")
        ok = report(rows)
        met = memory < 20 * 1024
        ok &= met
        print(
            f"memory per idle stream: {kib:.1f} KiB (target < 20 KiB) {'ok' if met else 'MISSED'}"
        )
        for label, (ours, _) in figures.items():
            met = ours[1] < 100
            ok &= met
            print(f"p99 {label}: {ours[1]:.1f} ms (target < 100 ms) {'ok' if met else 'MISSED'}")
        return 0 if ok else 1
    finally:
        stop(redis)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
