"""``MailSink``: a local SMTP server for tests, the benchmark and ``make up``, recording
every message it accepts (envelope, parsed message, when it arrived)::

    async with MailSink() as sink:
        ...point SMTP_URL at sink.smtp_url...
        mail = await sink.wait_for(to="oncall@example.org", timeout=5)
        assert "4a" in mail.text

It is aiosmtpd's ``SMTP`` protocol served by ``loop.create_server`` in the caller's event
loop (what aiosmtpd's ``Controller`` does in a thread of its own): no thread, so the
handler records and wakes waiters directly, port 0 gives a free port without a race, and
nothing outlives the ``async with``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Self

from aiosmtpd.smtp import SMTP, Envelope, Session

from tools.local_server import LocalServer


@dataclass(frozen=True)
class Mail:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    received_at: float  # time.time()
    received_mono: float  # time.monotonic()

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        """The plain-text body."""
        part = self.message.get_body(preferencelist=("plain",))
        return "" if part is None else str(part.get_content())


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.sink._failures:
            return self.sink._failures.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)  # policy.default makes EmailMessage
        await self.sink._record(
            Mail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,
                received_at=time.time(),
                received_mono=time.monotonic(),
            )
        )
        return "250 Message accepted for delivery"


class MailSink(LocalServer):
    """An SMTP server on loopback that accepts every message (unless scripted to refuse
    recipients: ``fail_next``) and records it."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.received: list[Mail] = []
        self._failures: deque[str] = deque()
        self._changed = asyncio.Condition()
        self._server: asyncio.Server | None = None

    async def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("MailSink already started")
        self._changed = asyncio.Condition()
        loop = asyncio.get_running_loop()
        handler = _Handler(self)
        self._server = await loop.create_server(
            lambda: SMTP(handler, hostname="mail-sink.local", loop=loop),
            host=self.host,
            port=self._requested_port,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    @property
    def smtp_url(self) -> str:
        """What SMTP_URL should be."""
        return f"smtp://{self.host}:{self.port}"

    def fail_next(self, n: int, reply: str = "451 4.3.0 Try again later") -> None:
        """Refuse the next ``n`` recipients with ``reply`` (e.g. "550 5.1.1 No such user")."""
        self._failures.extend([reply] * n)

    def messages(self, to: str | None = None) -> list[Mail]:
        """The messages accepted (for envelope recipient ``to``, if given), oldest first."""
        return [m for m in self.received if to is None or to in m.rcpt_tos]

    def clear(self) -> None:
        self.received.clear()

    async def wait_for(
        self,
        predicate: Callable[[Mail], bool] | None = None,
        *,
        to: str | None = None,
        timeout: float = 5.0,
    ) -> Mail:
        """The first message (past or future) for ``to`` for which ``predicate`` holds."""
        found = await self.wait_for_count(1, predicate, to=to, timeout=timeout)
        return found[0]

    async def wait_for_count(
        self,
        n: int,
        predicate: Callable[[Mail], bool] | None = None,
        *,
        to: str | None = None,
        timeout: float = 5.0,
    ) -> list[Mail]:
        """Once at least ``n`` messages match: all of them, oldest first; woken by each
        message, no polling."""

        def matching() -> list[Mail]:
            return [m for m in self.messages(to) if predicate is None or predicate(m)]

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= n)
        except TimeoutError:
            raise TimeoutError(
                f"MailSink: timed out after {timeout:g} s waiting for {n} message(s); "
                f"{len(matching())} matched, {len(self.received)} received"
            ) from None
        return matching()

    async def _record(self, mail: Mail) -> None:
        self.received.append(mail)
        async with self._changed:
            self._changed.notify_all()
