"""uvicorn beyond its public API: has the server running this process been told to stop?

Why: uvicorn stops by waiting for every open response to finish before it runs the
app's lifespan shutdown, so an event stream (which never finishes by itself) must notice
the stop on its own, or every restart waits ``timeout_graceful_shutdown`` out. uvicorn
has no hook for "shutdown began". While it serves in the main thread, the handler of
SIGTERM is its ``Server.handle_exit``, a bound method, and the server's ``should_exit``
turns true when it is told to stop (by a signal, or by code setting it).

Relied on (checked by ``tests/core/test_compat_uvicorn.py``): ``Server.serve`` installs
``handle_exit`` of the serving ``Server`` as the SIGTERM handler while it serves, and
``Server.should_exit``. Elsewhere (another server, uvicorn in a thread) this answers
False and streams end at the lifespan shutdown instead.
"""

from __future__ import annotations

import signal


def server_exiting() -> bool:
    """True once the uvicorn server serving in this process's main thread is stopping."""
    # Imported here: the models (which reach the realtime hub) load without uvicorn.
    from uvicorn.server import Server

    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return isinstance(server, Server) and bool(server.should_exit)
