"""Load and figures shared by the bench sections: open-loop intake load, percentiles."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import orjson

from tools.factories import intake_body

# The load client's niceness while it drives a load that overloads the machine
# (``client_first``): ahead of every process of the stack.
CLIENT_NICE = -10


@contextlib.contextmanager
def client_first() -> Iterator[bool]:
    """The load client (this thread, which runs its event loop) ahead of the stack on the
    CPU while the block runs, then back; True when it could (it needs the privilege to
    raise a priority), else the block runs at the stack's priority as before.

    A real network's clients do not share the stack's cores. Here they do, and once a
    load overloads the two cores the client was starved like every other process: a
    request waited up to 4 s in the client before it was even sent, and that wait was
    counted as the stack's (an ideation check-in's page "late" by 2.4 s had spent 2.4 s
    before the intake API saw it: docs/performance.md, "The load client's own wait").
    Set once the stack has started: processes started meanwhile would inherit it."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, CLIENT_NICE)
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(v: float) -> str:
    return f"{v * 1000:7.2f} ms"


class _Http(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the load client, one request at a time.

    The load client shares the machine's two cores with the stack it measures, so it is
    lean: requests are bytes prepared in advance, and an answer is read only as far as
    its status and Content-Length (aiohttp spent about 0.6 ms of CPU per request, a
    fifth of what a whole intake costs the stack)."""

    def __init__(self, client: _OpenLoop) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.due = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.client.idle(self)

    def send(self, request: bytes, due: float) -> None:
        assert self.transport is not None
        self.due = due
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buf[: end + 4 + length]
        self.client.answered(self, status, self.due)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.lost(self)


class _OpenLoop:
    """Requests leave at their scheduled times over at most ``limit`` connections (a
    request waits for a free one when all are busy); latency counts from the schedule."""

    def __init__(self, host: str, port: int, limit: int, ok: tuple[int, ...]) -> None:
        self.host, self.port, self.limit, self.ok = host, port, limit, ok
        self.free: list[_Http] = []
        self.busy: set[_Http] = set()
        self.opening = 0
        self.queue: collections.deque[tuple[bytes, float]] = collections.deque()
        self.latencies: list[float] = []
        self.errors = 0
        self.pending = 0
        self.all_sent = False
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def submit(self, request: bytes, due: float) -> None:
        self.pending += 1
        self.queue.append((request, due))
        self._dispatch()

    def _dispatch(self) -> None:
        while self.queue and self.free:
            conn = self.free.pop()
            self.busy.add(conn)
            conn.send(*self.queue.popleft())
        room = self.limit - len(self.busy) - len(self.free) - self.opening
        for _ in range(min(len(self.queue) - self.opening, room)):
            self.opening += 1
            task = asyncio.ensure_future(self._open())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: _Http(self), self.host, self.port)
        except OSError:
            self.opening -= 1
            if self.queue:
                self.queue.popleft()
                self._finish(error=True)

    def idle(self, conn: _Http) -> None:
        if conn not in self.busy:  # a new connection
            self.opening -= 1
        self.busy.discard(conn)
        self.free.append(conn)
        self._dispatch()

    def answered(self, conn: _Http, status: int, due: float) -> None:
        if status in self.ok:
            self.latencies.append(time.perf_counter() - due)
            self._finish(error=False)
        else:
            self._finish(error=True)
        self.idle(conn)

    def lost(self, conn: _Http) -> None:
        if conn in self.busy:
            self.busy.discard(conn)
            self._finish(error=True)
        elif conn in self.free:
            self.free.remove(conn)

    def _finish(self, *, error: bool) -> None:
        self.errors += error
        self.pending -= 1
        if self.pending == 0 and self.all_sent:
            self.done.set()

    def close(self) -> None:
        for conn in [*self.free, *self.busy]:
            if conn.transport is not None:
                conn.transport.close()


def http_post(host: str, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def open_loop(
    url: str,
    rate: float,
    seconds: float,
    bodies: list[bytes] | None = None,
    *,
    path: str = "/v1/intakes",
    ok: tuple[int, ...] = (200, 201, 202),
    limit: int = 256,
) -> tuple[list[float], int]:
    """POST ``bodies`` (default: new intakes) at ``rate``/s for ``seconds``; (latencies
    of the answers in ``ok``, errors)."""
    total = int(rate * seconds)
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    host = f"{parts.hostname}:{parts.port}"
    if bodies is None:
        bodies = [orjson.dumps(intake_body()) for _ in range(total)]
    requests = [http_post(host, path, bodies[i % len(bodies)]) for i in range(total)]
    client = _OpenLoop(parts.hostname, parts.port, limit, ok)
    start = time.perf_counter() + 0.1
    try:
        sent = 0
        while sent < total:
            now = time.perf_counter()
            while sent < total and start + sent / rate <= now:
                client.submit(requests[sent], start + sent / rate)
                sent += 1
            if sent < total:
                await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
        client.all_sent = True
        if client.pending:
            await asyncio.wait_for(client.done.wait(), 120)
    finally:
        client.close()
    return client.latencies, client.errors


async def open_loop_apart(url: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """``open_loop`` from a process of its own, as outside clients would be: the load's
    own client work never delays the event loop of the process that measures, and at the
    lowest CPU priority (nice 19): on a 2-core box the client must not outrank the stack
    it loads. (The stack's own processes all run at one priority: a niced worker that
    holds a site's or a patient's lock while descheduled holds up everyone waiting on it.)"""
    proc = await asyncio.create_subprocess_exec(
        "nice",
        "-n",
        "19",
        sys.executable,
        "-m",
        "bench.load",
        url,
        str(rate),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        proc.terminate()
        await proc.wait()
        raise
    result = orjson.loads(out)
    return result["latencies"], result["errors"]


def line(label: str, values: list[float], extra: str = "") -> None:
    print(
        f"  {label:<44} p50 {ms(pct(values, 50))}  p99 {ms(pct(values, 99))}  "
        f"n={len(values)} {extra}"
    )


if __name__ == "__main__":  # python -m bench.load URL RATE SECONDS: one open loop, as JSON
    lat, err = asyncio.run(open_loop(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
    sys.stdout.buffer.write(orjson.dumps({"latencies": lat, "errors": err}))
