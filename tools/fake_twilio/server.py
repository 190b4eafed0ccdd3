"""``FakeTwilio``: the Messages API (tools/fake_twilio/__init__.py shows it in use), served
with uvicorn in the caller's event loop, and Twilio's inbound-text webhook (``reply``)."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Self
from urllib.parse import parse_qsl, unquote

import httpx
import orjson
import uvicorn
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from tools.local_server import LocalServer, start_asgi, stop_asgi

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def is_e164(number: str) -> bool:
    """``+`` then 2 to 15 digits, the first not 0 (ITU-T E.164, as Twilio takes it)."""
    return bool(_E164.fullmatch(number))


def masked(number: str) -> str:
    """A number as a log line may show it: its last two digits."""
    return "***" + number[-2:] if len(number) > 4 else "***"


@dataclass(frozen=True)
class Sms:
    """One request to the Messages API as the fake saw it (recorded before it answered)."""

    sid: str | None  # "SM" + 32 hex when accepted
    account_sid: str  # from the path
    to: str
    from_: str
    body: str
    received_at: float  # time.time()
    received_mono: float  # time.monotonic()
    auth_ok: bool
    status: int  # what the fake answered: 201 when accepted
    error_code: int | None = None  # Twilio's error code when refused

    @property
    def accepted(self) -> bool:
        return self.status == 201


class FakeTwilio(LocalServer):
    """Twilio's Messages API on loopback. Every POST is recorded as an ``Sms``; the answer:

    - a scripted failure first (``fail_next``: status, Twilio's error JSON);
    - 401 (error 20003) unless basic auth is the account sid and auth token and the path's
      account is that sid;
    - 400 with 21604/21603/21602 when To/From/Body is missing, 21211 when To is not E.164;
    - else 201 with Twilio's message JSON (status "queued").
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        account_sid: str | None = None,
        auth_token: str | None = None,
        on_receive: Callable[[Sms], None] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.on_receive = on_receive
        self.received: list[Sms] = []
        self._failures: deque[int] = deque()
        self._changed = asyncio.Condition()
        self._server: uvicorn.Server | None = None
        self._http: httpx.AsyncClient | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> Self:
        """Listen; returns once connections are accepted."""
        if self._server is not None:
            raise RuntimeError("FakeTwilio already started")
        self._changed = asyncio.Condition()
        server, self._port = await start_asgi(
            self._app, self.host, self._requested_port, "FakeTwilio"
        )
        self._server = server
        self._http = httpx.AsyncClient(timeout=10.0)
        return self

    async def stop(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        server, self._server = self._server, None
        await stop_asgi(server)

    @property
    def api_url(self) -> str:
        """What SMS_API_URL should be (the base; the client adds /2010-04-01/...)."""
        return f"http://{self.host}:{self.port}"

    # -- scripting and views -----------------------------------------------------------

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` requests with ``status`` (an outage, 429 throttling)."""
        self._failures.extend([status] * n)

    def messages(self, to: str | None = None, *, include_refused: bool = False) -> list[Sms]:
        """The texts accepted (to ``to``, if given), oldest first; with
        ``include_refused`` every request, whatever it was answered."""
        return [
            m
            for m in self.received
            if (include_refused or m.accepted) and (to is None or m.to == to)
        ]

    def clear(self) -> None:
        self.received.clear()

    async def wait_for(
        self,
        predicate: Callable[[Sms], bool] | None = None,
        *,
        to: str | None = None,
        timeout: float = 5.0,
    ) -> Sms:
        """The first accepted text (past or future) to ``to`` for which ``predicate``
        holds; woken by each request, no polling. TimeoutError says what came instead."""
        found = await self.wait_for_count(1, predicate, to=to, timeout=timeout)
        return found[0]

    async def wait_for_count(
        self,
        n: int,
        predicate: Callable[[Sms], bool] | None = None,
        *,
        to: str | None = None,
        timeout: float = 5.0,
    ) -> list[Sms]:
        """Once at least ``n`` accepted texts match: all of them, oldest first."""

        def matching() -> list[Sms]:
            return [m for m in self.messages(to) if predicate is None or predicate(m)]

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= n)
        except TimeoutError:
            refused = len(self.received) - len(self.messages())
            raise TimeoutError(
                f"FakeTwilio: timed out after {timeout:g} s waiting for {n} text(s)"
                + (f" to {masked(to)}" if to else "")
                + f"; {len(matching())} matched, {len(self.messages())} accepted, "
                f"{refused} refused"
            ) from None
        return matching()

    # -- inbound: a text from a phone, as Twilio POSTs it to the app -------------------

    def inbound_params(self, from_: str, to: str, body: str) -> dict[str, str]:
        """The form fields Twilio sends for an inbound SMS."""
        sid = "SM" + secrets.token_hex(16)
        return {
            "ToCountry": "US",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": body,
            "To": to,
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": "2010-04-01",
        }

    async def reply(
        self, url: str, from_: str, to: str, body: str, *, sign: bool = True
    ) -> httpx.Response:
        """POST an inbound text to the app's webhook ``url`` as Twilio does: form-encoded,
        ``X-Twilio-Signature`` over ``url`` and the fields with the auth token
        (``sign=False``: a signature made with the wrong token)."""
        if self._http is None:
            raise RuntimeError("FakeTwilio not started")
        params = self.inbound_params(from_, to, body)
        token = self.auth_token if sign else self.auth_token + "-wrong"
        signature = RequestValidator(token).compute_signature(url, params)
        return await self._http.post(
            url,
            data=params,
            headers={
                "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1",
                "Accept": "*/*",
            },
        )

    # -- the ASGI app ------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:
            return
        match = _MESSAGES_PATH.fullmatch(scope["path"])
        if match is None:
            await _respond(send, 404, _error(20404, "The requested resource was not found", 404))
            return
        if scope["method"] != "POST":
            await _respond(send, 405, _error(20004, "Method not allowed", 405))
            return
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        path_sid = unquote(match.group(1))
        auth_ok = _basic_auth(scope) == (self.account_sid, self.auth_token)
        auth_ok = auth_ok and path_sid == self.account_sid
        status, payload, sms = self._answer(path_sid, form, auth_ok)
        self.received.append(sms)
        if self.on_receive is not None:
            self.on_receive(sms)
        async with self._changed:
            self._changed.notify_all()
        await _respond(send, status, payload)

    def _answer(
        self, path_sid: str, form: dict[str, str], auth_ok: bool
    ) -> tuple[int, dict[str, Any], Sms]:
        to, from_, text = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        status, payload = 201, {}
        if self._failures:
            status = self._failures.popleft()
            payload = _error(20500 if status >= 500 else 20429, "Scripted failure", status)
        elif not auth_ok:
            status, payload = 401, _error(20003, "Authenticate", 401)
        elif not to:
            status, payload = 400, _error(21604, "A 'To' phone number is required.", 400)
        elif not from_:
            status, payload = 400, _error(21603, "A 'From' phone number is required.", 400)
        elif not text:
            status, payload = 400, _error(21602, "Message body is required.", 400)
        elif not is_e164(to):
            # Twilio's own message quotes the number; so does this one
            msg = f"The 'To' number {to} is not a valid phone number."
            status, payload = 400, _error(21211, msg, 400)
        sid = "SM" + secrets.token_hex(16) if status == 201 else None
        if sid is not None:
            payload = self._message_json(sid, to, from_, text)
        sms = Sms(
            sid=sid,
            account_sid=path_sid,
            to=to,
            from_=from_,
            body=text,
            received_at=time.time(),
            received_mono=time.monotonic(),
            auth_ok=auth_ok,
            status=status,
            error_code=payload.get("code") if status != 201 else None,
        )
        return status, payload, sms

    def _message_json(self, sid: str, to: str, from_: str, body: str) -> dict[str, Any]:
        now = formatdate(usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(body) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    """Twilio's error body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _basic_auth(scope: Scope) -> tuple[str, str] | None:
    for name, value in scope["headers"]:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                user, sep, password = base64.b64decode(token).decode().partition(":")
            except ValueError:
                return None
            return (user, password) if sep else None
    return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
