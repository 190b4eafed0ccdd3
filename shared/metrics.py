"""Prometheus helpers every process shares: count only what committed, serve /metrics.

Business counters (intakes, series, appointments, alerts) must not count a transaction
that rolled back or is retried. ``after_commit(fn)`` queues an increment in the current
*commit scope* (``commit_scope()`` around a transaction, or ``@counted_on_commit`` on a
function that owns one); the scope runs the queue when it ends without an error, i.e.
after its transaction committed, and drops it when it raises. Outside any scope the
increment runs at once. Scopes nest: an inner scope that ends well hands its queue to
the outer one, so an event handler's increments wait for the consumer's inbox
transaction. A process killed between the commit and the increment loses it: counters
are at most once, never counting what did not happen.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest, start_http_server

P = ParamSpec("P")
R = TypeVar("R")

Pending = list[tuple[Callable[..., object], tuple[Any, ...]]]
_pending: ContextVar[Pending | None] = ContextVar("metrics_pending", default=None)


def after_commit(fn: Callable[..., object], *args: Any) -> None:
    """Run ``fn(*args)`` (an increment, an observation) when the current commit scope
    ends well; at once outside any scope."""
    pending = _pending.get()
    if pending is None:
        fn(*args)
    else:
        pending.append((fn, args))


@contextmanager
def commit_scope() -> Iterator[None]:
    """Increments queued inside run when the block ends without an error (after the
    transaction it wraps committed), and are dropped when it raises."""
    mine: Pending = []
    token = _pending.set(mine)
    try:
        yield
    finally:
        _pending.reset(token)
    for fn, args in mine:  # only reached without an exception
        after_commit(fn, *args)


def counted_on_commit(
    fn: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """``commit_scope`` around a coroutine function that owns its transaction."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with commit_scope():
            return await fn(*args, **kwargs)

    return wrapper


Readyz = Callable[[], tuple[bool, dict[str, Any]]]


def serve_metrics(port: int | None, host: str, readyz: Readyz | None = None) -> None:
    """Serve the process's /metrics on ``host:port`` from a daemon thread (None: off).

    With ``readyz``, also GET /readyz: 200 when ``readyz()`` says ready, else 503; its
    detail as the JSON body either way. ``readyz`` runs on the server's thread: it
    must only read state the process keeps up to date (a worker's last check).
    """
    if not port:
        return
    if readyz is None:
        start_http_server(port, addr=host)
        return
    check = readyz

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            elif path == "/readyz":
                try:
                    ok, detail = check()
                except Exception as exc:  # never let a probe crash the server
                    ok, detail = False, {"reason": f"readiness check raised {exc!r}"}
                body = json.dumps({"ready": ok, **detail}, default=str).encode()
                self._send(200 if ok else 503, "application/json", body)
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few hundred ms: not worth a log line each

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
