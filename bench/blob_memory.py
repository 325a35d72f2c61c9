"""Memory and throughput of blob uploads through ``POST /blobs`` (not a test).

For each backend (local disk, then S3 on a moto server process) this starts the app
under uvicorn in its own process, uploads a file of ``--size-mib`` (512 by default)
with curl, and prints:

* the peak RSS growth of the server process during the upload (target: < 64 MiB), and
* the upload throughput as a ratio to its ceiling, measured in the same run: the slower
  of the HTTP drain (uvicorn reading the same upload and throwing it away) and a durable
  write of the same bytes to the same disk (written, then ``fsync``, as the local store
  does before it names a file). Target for local disk: >= 0.8 of that ceiling.
  ``cp`` of the same file (page cache only, no ``fsync``) is printed for reference.

Exits 1 when a target is missed. Usage: ``python bench/blob_memory.py [--size-mib N]``.
Needs curl, Linux ``/proc`` and the test extra (moto[server], aioboto3).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port, stop, wait_for_200  # noqa: E402

MiB = 1024 * 1024
RSS_TARGET_MIB = 64.0
LOCAL_THROUGHPUT_TARGET = 0.8  # of the ceiling: the slower of the drain and the disk


# --- server side (``blob_memory.py serve ...`` runs in the uvicorn process) -----------


async def drain_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """Reference server: reads the request body and throws it away (the HTTP stack alone)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    code = 201 if scope["method"] == "POST" else 200
    await send({"type": "http.response.start", "status": code, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def serve(args: argparse.Namespace) -> None:
    """Run the app with the blob routers; write a signed-in session cookie to a file."""
    from contextlib import asynccontextmanager

    import itsdangerous
    import uvicorn
    from pydantic import SecretStr

    if args.backend == "drain":
        Path(args.cookie_file).write_text("none=none")
        uvicorn.run(drain_app, host="127.0.0.1", port=args.port, log_level="warning")
        return

    from vibetuner import create_app
    from vibetuner.auth.feature import AuthFeature
    from vibetuner.auth.sessions import start_session
    from vibetuner.blobs.routes import BlobsFeature
    from vibetuner.config import Settings
    from vibetuner.models import UserModel
    from vibetuner.web.csrf import SESSION_KEY as CSRF_SESSION_KEY
    from vibetuner.web.csrf import mask
    from vibetuner.web.identity import SESSION_TOKEN_KEY

    values: dict[str, object] = {
        "environment": "development",
        # One development database per server: each run starts from an empty one.
        "data_dir": Path(tempfile.mkdtemp(dir=args.workdir, prefix="data-")),
        "blob_dir": Path(args.workdir) / "blobs",
        "session_key": "bench-" + "k" * 40,
        "blob_max_size": args.max_size,
        "mongodb_url": None,
    }
    if args.backend == "s3":
        values.update(
            blob_backend="s3",
            s3_bucket="bench",
            s3_endpoint_url=args.s3_endpoint,
            s3_access_key_id="bench",
            s3_secret_access_key=SecretStr("bench"),
            s3_create_bucket=True,
        )
    settings = Settings(_env_file=None, **values)

    def write_cookie(text: str) -> None:
        Path(args.cookie_file).write_text(text)

    @asynccontextmanager
    async def signed_in(app):  # type: ignore[no-untyped-def]
        user = UserModel(email="bench@example.com", name="Bench")
        await user.insert()
        # A signed-in session with a CSRF secret, and a token for it (as a page gives one).
        secret = secrets.token_bytes(32)
        data = {
            SESSION_TOKEN_KEY: await start_session(user, settings),
            CSRF_SESSION_KEY: base64.urlsafe_b64encode(secret).rstrip(b"=").decode(),
        }
        signer = itsdangerous.TimestampSigner(settings.session_key.get_secret_value())
        cookie = signer.sign(base64.b64encode(json.dumps(data).encode())).decode()
        write_cookie(f"{settings.session_cookie}={cookie}\n{mask(secret)}")
        yield

    app = create_app(
        settings=settings, features=[AuthFeature(), BlobsFeature()], lifespan=signed_in
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


# --- measuring ---------------------------------------------------------------------


def proc_status(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory field in bytes (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


class PeakRSS:
    """Peak RSS of a process while the block runs: the kernel's high-water mark (reset
    first through ``clear_refs``) and a 5 ms poll, whichever is higher."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status(self.pid, "VmRSS"))
            time.sleep(0.005)

    def __enter__(self) -> PeakRSS:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            pass  # no reset: the poll still sees the peak
        self.baseline = proc_status(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        hwm = proc_status(self.pid, "VmHWM")
        if hwm >= self.baseline:  # the reset worked, so the high-water mark is this run's
            self.peak = max(self.peak, hwm)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def make_file(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes; return their SHA-256."""
    digest = hashlib.sha256()
    block = os.urandom(4 * MiB)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            # Vary every block so no layer can deduplicate or compress the upload.
            piece = written.to_bytes(8, "little") + piece[8:]
            handle.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


def time_cp(source: Path, workdir: Path) -> float:
    """Best wall time of ``cp`` of ``source`` to a new file on the same disk (3 runs)."""
    best = float("inf")
    for attempt in range(3):
        target = workdir / f"cp-{attempt}.bin"
        subprocess.run(["sync"], check=True)
        start = time.perf_counter()
        subprocess.run(["cp", str(source), str(target)], check=True)
        best = min(best, time.perf_counter() - start)
        target.unlink()
    subprocess.run(["sync"], check=True)
    return best


def time_durable_write(source: Path, workdir: Path) -> float:
    """Best wall time of writing ``source``'s bytes to a new file and ``fsync``-ing it (2 runs).

    What the disk allows a durable store: the local backend writes 1 MiB chunks and
    ``fsync``s the file (and its directory) before the rename, so it cannot beat this.
    """
    best = float("inf")
    for attempt in range(2):
        target = workdir / f"durable-{attempt}.bin"
        subprocess.run(["sync"], check=True)
        start = time.perf_counter()
        with source.open("rb") as reader, target.open("wb") as writer:
            while chunk := reader.read(MiB):
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        best = min(best, time.perf_counter() - start)
        target.unlink()
    return best


def curl_upload(port: int, cookie: str, path: Path) -> tuple[int, str, float]:
    """Upload ``path`` with curl; return (status, response body, seconds).

    ``cookie`` is the cookie line, then (on a second line) the CSRF token to send.
    """
    cookie, _, token = cookie.partition("\n")
    result = subprocess.run(
        [
            "curl", "-sS", "-H", f"Cookie: {cookie}", "-H", f"X-CSRF-Token: {token}",
            "-H", "Expect:",
            "-F", f"file=@{path};type=application/octet-stream",
            "-w", "\n%{http_code} %{time_total}",
            f"http://127.0.0.1:{port}/blobs",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    body, _, tail = result.stdout.rpartition("\n")
    code, seconds = tail.split()
    return int(code), body, float(seconds)


def start_server(backend: str, workdir: Path, size: int, s3_endpoint: str | None) -> tuple:
    port = free_port()
    cookie_file = workdir / f"cookie-{backend}.txt"
    cmd = [
        sys.executable, __file__, "serve", "--backend", backend, "--port", str(port),
        "--workdir", str(workdir), "--cookie-file", str(cookie_file),
        "--max-size", str(size + MiB),
    ]  # fmt: skip
    if s3_endpoint:
        cmd += ["--s3-endpoint", s3_endpoint]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_200(f"http://127.0.0.1:{port}/health", process)
    return process, port, cookie_file.read_text()


def measure(backend: str, workdir: Path, source: Path, sha256: str, s3_endpoint: str | None):
    """Upload ``source`` once to a fresh server; return (RSS growth bytes, seconds)."""
    process, port, cookie = start_server(backend, workdir, source.stat().st_size, s3_endpoint)
    try:
        warm = workdir / "warm.bin"
        warm.write_bytes(os.urandom(2 * MiB))  # loads every code path before measuring
        code, body, _ = curl_upload(port, cookie, warm)
        if code != 201:
            sys.exit(f"{backend}: warm-up upload answered {code}: {body}")
        subprocess.run(["sync"], check=True)
        with PeakRSS(process.pid) as rss:
            code, body, seconds = curl_upload(port, cookie, source)
        if code != 201:
            sys.exit(f"{backend}: upload answered {code}: {body}")
        if backend != "drain" and json.loads(body)["sha256"] != sha256:
            sys.exit(f"{backend}: the stored SHA-256 differs from the file's")
        return rss.growth, seconds
    finally:
        stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument(
        "--dir", type=Path, default=None, help="work directory (default: a temp dir)"
    )
    parser.add_argument("--backend", choices=["local", "s3"], action="append", dest="backends")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed: apt-get install curl")
    size = args.size_mib * MiB

    workdir = Path(tempfile.mkdtemp(prefix="blob-bench-", dir=args.dir))
    moto = None
    try:
        source = workdir / "upload.bin"
        sha256 = make_file(source, size)
        cp_seconds = time_cp(source, workdir)
        durable_seconds = time_durable_write(source, workdir)
        moto_port = free_port()
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        s3_endpoint = f"http://127.0.0.1:{moto_port}"
        wait_for_200(f"{s3_endpoint}/moto-api/", moto)

        print(f"file: {args.size_mib} MiB; on the same disk: cp {cp_seconds:.2f} s "
              f"({size / MiB / cp_seconds:.0f} MiB/s), written and fsynced "
              f"{durable_seconds:.2f} s ({size / MiB / durable_seconds:.0f} MiB/s)")  # fmt: skip
        print(
            f"{'backend':8} {'peak RSS growth':>16} {'upload':>9} {'MiB/s':>7} {'vs drain':>9} "
            f"{'vs disk':>8} {'vs ceiling':>11}  result"
        )
        ok = True
        drain_seconds = 0.0
        for backend in ["drain", *(args.backends or ("local", "s3"))]:
            growth, seconds = measure(
                backend, workdir, source, sha256, s3_endpoint if backend == "s3" else None
            )
            if backend == "drain":
                drain_seconds = seconds
            of_drain = drain_seconds / seconds
            of_disk = durable_seconds / seconds
            # The slower of the two bounds is the ceiling a durable upload can reach.
            of_ceiling = max(drain_seconds, durable_seconds) / seconds
            met = growth < RSS_TARGET_MIB * MiB
            if backend == "local":
                met &= of_ceiling >= LOCAL_THROUGHPUT_TARGET
            if backend != "drain":
                ok &= met
            verdict = "reference" if backend == "drain" else ("ok" if met else "MISSED")
            speed = size / MiB / seconds
            print(
                f"{backend:8} {growth / MiB:13.1f} MiB {seconds:7.2f} s {speed:7.0f} "
                f"{of_drain:8.2f}x {of_disk:7.2f}x {of_ceiling:10.2f}x  {verdict}"
            )
        print(
            f"targets: peak RSS growth < {RSS_TARGET_MIB:g} MiB on each backend; local "
            f"throughput >= {LOCAL_THROUGHPUT_TARGET}x the ceiling (the slower of drain and disk)\n"
            "drain: uvicorn reading and discarding the same upload, the limit of the HTTP stack;\n"
            "disk: the same bytes written and fsynced, the limit of a store that keeps them; "
            "cp (page cache, no fsync) for reference"
        )
        return 0 if ok else 1
    finally:
        if moto is not None:
            stop(moto)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve_parser = argparse.ArgumentParser()
        serve_parser.add_argument("serve")
        serve_parser.add_argument("--backend", choices=["local", "s3", "drain"], required=True)
        serve_parser.add_argument("--port", type=int, required=True)
        serve_parser.add_argument("--workdir", required=True)
        serve_parser.add_argument("--cookie-file", required=True)
        serve_parser.add_argument("--max-size", type=int, required=True)
        serve_parser.add_argument("--s3-endpoint", default=None)
        serve(serve_parser.parse_args())
    else:
        sys.exit(main())
