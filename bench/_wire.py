"""The benches' wire mode: PyMongo's real client, a MongoDB-wire server, and a network delay.

``wire_server(venv)`` starts ``scripts/wire_server.py`` (mongoeco, in memory; it needs the
Python 3.13 environment ``scripts/test-wire.sh`` builds) and yields its address.
``LatencyProxy`` sits in front of it on 127.0.0.1 and holds every client-to-server
message for a fixed time before passing it on, standing in for the network round trip a
real deployment pays per command. It also notes the name and collection of every command
it passes, so a bench can say how many commands a request sends.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import bson
from _common import CPUS, on_cpu

ROOT = Path(__file__).resolve().parents[1]
OP_MSG = 2013
# The driver's own monitoring (server discovery, heartbeats) is not the app's work.
MONITORING = frozenset({"hello", "ismaster", "isMaster", "ping", "endSessions"})


@contextmanager
def wire_server(
    venv: Path, preexec_fn: Callable[[], None] | None = None
) -> Iterator[tuple[str, int]]:
    """Run the wire server from ``venv`` for the block; yields its host and port."""
    python = venv / "bin" / "python"
    if not python.is_file():
        sys.exit(
            f"no wire-server environment at {venv} (give --wire-venv, or build one with "
            "scripts/test-wire.sh, which needs Python 3.13)"
        )
    with tempfile.TemporaryDirectory(prefix="vibetuner-wire-") as work:
        uri_file = Path(work) / "uri"
        process = subprocess.Popen(
            [str(python), str(ROOT / "scripts" / "wire_server.py"), "--uri-file", str(uri_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=preexec_fn,
        )
        try:
            deadline = time.monotonic() + 30
            while not uri_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    out = process.stdout.read() if process.stdout else ""
                    sys.exit(f"the wire server did not start\n{out}")
                time.sleep(0.05)
            # mongodb://127.0.0.1:PORT/?directConnection=true
            address = uri_file.read_text().split("//", 1)[1].split("/", 1)[0]
            host, port = address.rsplit(":", 1)
            yield host, int(port)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def wire_mode(venv: Path, latency_ms: float) -> Iterator[LatencyProxy]:
    """The wire server behind a ``LatencyProxy``, for the block.

    The server, the proxy (a thread of this process) and the benches' load generator
    share the second CPU, so the app under test has the first to itself.
    """
    if len(CPUS) >= 2:
        os.sched_setaffinity(0, {CPUS[1]})
    try:
        with wire_server(venv, on_cpu(1)) as upstream:
            with LatencyProxy(upstream, latency_ms / 1000) as proxy:
                yield proxy
    finally:
        if CPUS:
            os.sched_setaffinity(0, set(CPUS))


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that delays each client-to-server message by ``latency``.

    It runs its own event loop in a thread. The loop waits with ``select()``, whose
    timeout has microsecond resolution (epoll's is a millisecond, which would turn 0.5 ms
    into 1 ms). PyMongo sends one command at a time per connection, so holding each
    message in turn adds the delay once per command.
    """

    def __init__(self, upstream: tuple[str, int], latency: float) -> None:
        self.upstream = upstream
        self.latency = latency
        self.port = 0
        self.delays: list[float] = []
        self._recording: list[tuple[str, str]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            sys.exit("the latency proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def url(self, database: str | None = None) -> str:
        """A MongoDB URL that reaches the wire server through the proxy."""
        path = database or ""
        return f"mongodb://127.0.0.1:{self.port}/{path}?directConnection=true"

    @contextmanager
    def record(self) -> Iterator[list[tuple[str, str]]]:
        """The ``(command, collection)`` of every app command passed inside the block."""
        sent: list[tuple[str, str]] = []
        self._recording = sent
        try:
            yield sent
        finally:
            self._recording = None

    def added_delay_ms(self) -> float:
        """The median time a message was actually held (ms): the asked latency plus timer slack."""
        return statistics.median(self.delays) * 1000 if self.delays else 0.0

    def _run(self) -> None:
        loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
        self._loop = loop
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        back = asyncio.ensure_future(self._copy(up_reader, writer))
        try:
            await self._forward(reader, up_writer)
        finally:
            up_writer.close()
            await back
            writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client to server, one whole message at a time, each held for ``latency``."""
        while True:
            try:
                header = await reader.readexactly(16)
                length, _request_id, _response_to, opcode = struct.unpack("<iiii", header)
                body = await reader.readexactly(length - 16)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            arrived = time.perf_counter()
            if opcode == OP_MSG:
                self._note(body)
            await asyncio.sleep(max(0.0, self.latency - (time.perf_counter() - arrived)))
            self.delays.append(time.perf_counter() - arrived)
            if len(self.delays) > 100_000:
                del self.delays[:50_000]
            writer.write(header + body)
            try:
                await writer.drain()
            except ConnectionError:
                return

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Server to client, as it comes."""
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionError:
                chunk = b""
            if not chunk:
                writer.close()
                return
            writer.write(chunk)
            try:
                await writer.drain()
            except ConnectionError:
                return

    def _note(self, body: bytes) -> None:
        sent = self._recording
        if sent is None:
            return
        # OP_MSG: flag bits, then a kind-0 section holding the command document.
        if len(body) < 9 or body[4] != 0:
            return
        (size,) = struct.unpack_from("<i", body, 5)
        command = bson.decode(body[5 : 5 + size])
        name = next(iter(command), "")
        if name in MONITORING:
            return
        target = command.get(name)
        sent.append((name, target if isinstance(target, str) else ""))
