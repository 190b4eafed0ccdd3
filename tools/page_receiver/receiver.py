"""``PageReceiver``: the in-process webhook receiver (tools/page_receiver/__init__.py
shows it in use); it listens with uvicorn, answers as scripted and records each request
as a ``Received`` (received.py)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Self

import orjson
import uvicorn

from tools.local_server import LocalServer, start_asgi, stop_asgi
from tools.page_receiver.received import (
    Received,
    header_dict,
    parsed_json,
    signature_ok,
    standard_signature_ok,
    summary,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ReceivedViews:
    """What a receiver got, by path: every request, those answered 2xx, one per
    idempotency key. ``received`` is the requests in arrival order."""

    received: list[Received]

    def requests(self, path: str | None = None) -> list[Received]:
        return [r for r in self.received if path is None or r.path == path]

    def delivered(self, path: str | None = None) -> list[Received]:
        """Requests (to ``path``, if given) that were answered 2xx."""
        return [r for r in self.requests(path) if r.delivered]

    def unique_deliveries(self, path: str | None = None) -> dict[str, Received]:
        """Idempotency key -> the first delivered request with it (keyless ones left out)."""
        out: dict[str, Received] = {}
        for r in self.delivered(path):
            key = r.idempotency_key
            if key is not None and key not in out:
                out[key] = r
        return out


class PageReceiver(LocalServer, ReceivedViews):
    """In-process webhook receiver; see tools/page_receiver/__init__.py.

    Status scripting, per exact request path, or for any path when ``path`` is None (an
    exact path's script wins over the any-path one): first the queued one-shot statuses
    (``fail``/``script``), then a standing status (``set_status``/``down``), else 200.

    With a ``signing_secret`` it checks ``X-Interval-Signature`` (recorded in
    ``signature_ok``; a bad one answered 401 only with ``reject_bad_signatures``) and the
    Standard Webhooks headers with the ``standardwebhooks`` package (``webhook_signature_ok``):
    headers that do not verify are answered 401, as a real receiver would; a request
    without them is let through unless ``require_webhook_signature``.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        signing_secret: str | bytes | None = None,
        reject_bad_signatures: bool = False,
        require_webhook_signature: bool = False,
        on_receive: Callable[[Received], None] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.signing_secret = signing_secret
        self.reject_bad_signatures = reject_bad_signatures
        self.require_webhook_signature = require_webhook_signature
        self.on_receive = on_receive
        self.received: list[Received] = []
        self._queued: dict[str | None, deque[int]] = {}
        self._standing: dict[str | None, int] = {}
        self._delays: dict[str | None, float] = {}
        self._changed = asyncio.Condition()
        self._server: uvicorn.Server | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> Self:
        """Listen; returns once connections are accepted (no sleeps, no polling)."""
        if self._server is not None:
            raise RuntimeError("PageReceiver already started")
        self._changed = asyncio.Condition()  # bound to the running loop
        server, self._port = await start_asgi(
            self._app, self.host, self._requested_port, "PageReceiver"
        )
        self._server = server
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        await stop_asgi(server)

    def url(self, path: str = "/page") -> str:
        if not path.startswith("/"):
            path = "/" + path
        return f"http://{self.host}:{self.port}{path}"

    # -- scripting ---------------------------------------------------------------------

    def fail(self, path: str | None, times: int, status: int = 500) -> None:
        """The next ``times`` requests to ``path`` (None: any path) answer ``status``."""
        self.script(path, [status] * times)

    def script(self, path: str | None, statuses: Iterable[int]) -> None:
        """Queue one-shot answers for the next requests to ``path`` (None: any path)."""
        self._queued.setdefault(path, deque()).extend(statuses)

    def set_status(self, path: str | None, status: int) -> None:
        """Answer ``status`` to ``path`` (None: any path) from now on, after any queue."""
        self._standing[path] = status

    def down(self, path: str | None, status: int = 503) -> None:
        self.set_status(path, status)

    def up(self, path: str | None) -> None:
        """Back to answering 200: drops the standing status and any queued failures."""
        self._standing.pop(path, None)
        self._queued.pop(path, None)

    def set_delay(self, path: str | None, seconds: float) -> None:
        """Hold answers to ``path`` for ``seconds`` (0 removes). A request is recorded on
        arrival, so a sender that gave up waiting still shows up in ``received``."""
        if seconds > 0:
            self._delays[path] = seconds
        else:
            self._delays.pop(path, None)

    def clear(self) -> None:
        """Forget the requests received so far (scripts stay)."""
        self.received.clear()

    def _status_for(self, path: str) -> int:
        for key in (path, None):
            queue = self._queued.get(key)
            if queue:
                return queue.popleft()
        for key in (path, None):
            if key in self._standing:
                return self._standing[key]
        return 200

    # -- waiting -----------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[PageReceiver], bool],
        timeout: float = 5.0,
        what: str | None = None,
    ) -> None:
        """Return once ``predicate(self)`` holds; re-checked on every request received.

        Raises TimeoutError naming ``what`` (default: the predicate) and listing the last
        requests received."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: predicate(self))
        except TimeoutError:
            raise TimeoutError(
                self._timeout_message(timeout, what or _describe(predicate))
            ) from None

    async def wait_for_request(
        self, match: Callable[[Received], bool], timeout: float = 5.0, what: str | None = None
    ) -> Received:
        """The first request recorded (past or future) for which ``match`` holds."""
        found: list[Received] = []

        def check(rx: PageReceiver) -> bool:
            found[:] = [r for r in rx.received if match(r)][:1]
            return bool(found)

        await self.wait_for(check, timeout, what or f"a request matching {_describe(match)}")
        return found[0]

    async def wait_for_deliveries(
        self, n: int, path: str | None = None, timeout: float = 5.0
    ) -> list[Received]:
        """Wait until at least ``n`` requests (to ``path``) were answered 2xx."""
        where = f" to {path}" if path else ""
        await self.wait_for(
            lambda rx: len(rx.delivered(path)) >= n, timeout, f"{n} delivered request(s){where}"
        )
        return self.delivered(path)

    def _timeout_message(self, timeout: float, what: str) -> str:
        last = self.received[-5:]
        lines = [
            f"PageReceiver: timed out after {timeout:g} s waiting for {what}; "
            f"{len(self.received)} request(s) received" + (f", last {len(last)}:" if last else "")
        ]
        lines += [f"  {summary(r)}" for r in last]
        return "\n".join(lines)

    # -- the ASGI app ------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:  # the sender went away
            return
        if scope["method"] != "POST":
            await _respond(send, 405, {"error": "POST only"}, [(b"allow", b"POST")])
            return
        path: str = scope["path"]
        record = self._record(path, header_dict(scope["headers"]), body)
        self.received.append(record)
        if self.on_receive is not None:
            self.on_receive(record)
        async with self._changed:
            self._changed.notify_all()
        delay = self._delays.get(path, self._delays.get(None, 0.0))
        if delay:
            await asyncio.sleep(delay)
        status = record.status
        answer = {"ok": True} if 200 <= status < 300 else {"error": f"scripted {status}"}
        await _respond(send, status, answer)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> Received:
        """The request as received, with the answer its script (and signature) give it."""
        signed: bool | None = None
        standard: bool | None = None
        if self.signing_secret is not None:
            signed = signature_ok(self.signing_secret, headers, body)
            standard = standard_signature_ok(
                self.signing_secret, headers, body, required=self.require_webhook_signature
            )
        status = self._status_for(path)
        if (self.reject_bad_signatures and signed is False) or standard is False:
            status = 401
        return Received(
            path=path,
            headers=headers,
            body=body,
            json=parsed_json(body),
            received_at=time.time(),
            received_mono=time.monotonic(),
            status=status,
            signature_ok=signed,
            webhook_signature_ok=standard,
        )


async def _read_body(receive: Receive) -> bytes | None:
    """The request's whole body; None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _describe(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return repr(fn) if "<lambda>" in name else name
