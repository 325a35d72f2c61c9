"""A small HTTP/1.1 load generator, run as its own process.

Keeps ``--connections`` keep-alive connections busy with ``GET --path`` for
``--seconds`` (after a second of warm-up) and prints JSON: requests, warm_up_requests,
errors (non-200), rps, p50 and p99 latency (ms).
Written on raw asyncio streams so the generator costs far less than the server it loads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


async def worker(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if b" 200 " not in status_line:
                errors.append(1)
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> dict:
    headers = [
        f"GET {args.path} HTTP/1.1",
        f"Host: {args.host}:{args.port}",
        f"Accept: {args.accept}",
    ]
    if args.cookie:
        headers.append(f"Cookie: {args.cookie}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode()
    latencies: list[float] = []
    errors: list[int] = []
    warm_up: list[float] = []
    # Warm-up, not counted (its requests are reported, for per-request server figures).
    await asyncio.gather(
        *(
            worker(args.host, args.port, request, time.perf_counter() + 1.0, warm_up, [])
            for _ in range(args.connections)
        )
    )
    start = time.perf_counter()
    deadline = start + args.seconds
    await asyncio.gather(
        *(
            worker(args.host, args.port, request, deadline, latencies, errors)
            for _ in range(args.connections)
        )
    )
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "warm_up_requests": len(warm_up),
        "errors": len(errors),
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--cookie", default="")
    parser.add_argument("--accept", default="application/json")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
