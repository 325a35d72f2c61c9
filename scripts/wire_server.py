"""Serve the MongoDB wire protocol from memory on 127.0.0.1 until stopped.

The test suite talks to it through PyMongo's real ``AsyncMongoClient``
(``TEST_MONGODB_URL``), where no MongoDB server can be installed. It needs Python 3.13+
with ``mongoeco`` and ``pymongo`` (see ``scripts/test-wire.sh``, which builds that
environment). The server's URL is written to ``--uri-file`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path


async def serve(port: int, uri_file: Path) -> None:
    from mongoeco.engines import MemoryEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = AsyncMongoEcoProxyServer(engine=MemoryEngine(), host="127.0.0.1", port=port)
    async with server:
        temporary = uri_file.with_suffix(".tmp")
        temporary.write_text(server.address.uri)
        temporary.replace(uri_file)  # readers never see half a URL
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--uri-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.uri_file))


if __name__ == "__main__":
    main()
