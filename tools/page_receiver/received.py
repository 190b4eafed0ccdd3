"""One page as the receiver saw it (``Received``), and how it reads a request: headers,
the signatures (``sign``), the JSON body, and its one-line ``summary``."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SIGNATURE_HEADER = "x-interval-signature"
SIGNATURE_V2_HEADER = "x-interval-signature-v2"  # HMAC of "<timestamp>." + body
TIMESTAMP_HEADER = "x-interval-timestamp"
REPLAY_WINDOW_S = 300
IDEMPOTENCY_HEADER = "idempotency-key"
# Standard Webhooks (https://www.standardwebhooks.com)
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
STANDARD_HEADERS = (WEBHOOK_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER, WEBHOOK_SIGNATURE_HEADER)


def sign(secret: str | bytes, body: bytes) -> str:
    """The value a sender puts in ``X-Interval-Signature``: ``sha256=<hex HMAC-SHA256>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it (recorded before it answered)."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any  # the parsed body, or None when it is not JSON
    received_at: float  # time.time()
    received_mono: float  # time.monotonic()
    status: int  # what the receiver answered
    signature_ok: bool | None = None  # None when the receiver has no signing secret
    # The Standard Webhooks headers verified; None: no secret, or the request carried none
    # of them (and the receiver does not require them).
    webhook_signature_ok: bool | None = None

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300

    @property
    def idempotency_key(self) -> str | None:
        """The ``Idempotency-Key`` header, else the body's ``idempotency_key``."""
        key = self.headers.get(IDEMPOTENCY_HEADER)
        if key:
            return key
        if isinstance(self.json, dict):
            value = self.json.get("idempotency_key")
            if isinstance(value, str) and value:
                return value
        return None


def to_line(r: Received) -> bytes:
    """``r`` as one JSON line (``from_line`` reads it back): how a receiver in a process
    of its own hands its requests to another (``__main__.py --record``)."""
    return (
        orjson.dumps(
            {
                "path": r.path,
                "headers": r.headers,
                "body": r.body.decode("utf-8", "replace"),
                "received_at": r.received_at,
                "received_mono": r.received_mono,
                "status": r.status,
                "signature_ok": r.signature_ok,
                "webhook_signature_ok": r.webhook_signature_ok,
            }
        )
        + b"\n"
    )


def from_line(line: bytes) -> Received:
    d = orjson.loads(line)
    body = d["body"].encode()
    return Received(
        path=d["path"],
        headers=d["headers"],
        body=body,
        json=parsed_json(body),
        received_at=d["received_at"],
        received_mono=d["received_mono"],
        status=d["status"],
        signature_ok=d["signature_ok"],
        webhook_signature_ok=d["webhook_signature_ok"],
    )


def header_dict(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """An ASGI scope's headers by lower-cased name (repeats joined with ", ")."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def signature_ok(secret: str | bytes, headers: dict[str, str], body: bytes) -> bool:
    """Whether ``body`` is signed with ``secret``: the plain signature, and where the
    sender gave a timestamp, the timestamped signature too and a timestamp within the
    replay window."""
    ok = hmac.compare_digest(
        headers.get(SIGNATURE_HEADER, "").encode("latin-1"), sign(secret, body).encode()
    )
    stamp = headers.get(TIMESTAMP_HEADER)
    if not ok or stamp is None:
        return ok
    fresh = stamp.isdigit() and abs(time.time() - int(stamp)) <= REPLAY_WINDOW_S
    signed = stamp.encode("latin-1") + b"." + body
    return fresh and hmac.compare_digest(
        headers.get(SIGNATURE_V2_HEADER, "").encode("latin-1"), sign(secret, signed).encode()
    )


def standard_webhook(secret: str | bytes) -> Webhook:
    """A verifier keyed as the sender keys it: the base64 after ``whsec_`` when the secret
    has that prefix, else the secret's own bytes (the package base64-decodes every str,
    so a plain secret goes in as bytes)."""
    if isinstance(secret, bytes):
        secret = secret.decode() if secret.startswith(b"whsec_") else secret
    elif not secret.startswith("whsec_"):
        secret = secret.encode()
    return Webhook(secret)


def standard_signature_ok(
    secret: str | bytes, headers: dict[str, str], body: bytes, *, required: bool = False
) -> bool | None:
    """Whether the Standard Webhooks headers verify (signature, and a timestamp within the
    package's five minutes); None when none was sent and ``required`` is False."""
    if not required and not any(h in headers for h in STANDARD_HEADERS):
        return None
    try:
        standard_webhook(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError):  # ValueError: bad base64, not UTF-8
        return False
    return True


def parsed_json(body: bytes) -> Any:
    """The body as JSON, or None when it is empty or not JSON."""
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def summary(r: Received) -> str:
    """One line per page: ``page  /page  alert=... patient=... ... -> 200``."""
    data = r.json if isinstance(r.json, dict) else {}

    def field(name: str) -> str:
        value = data.get(name)
        return "-" if value is None else str(value)

    line = (
        f"page  {r.path}  alert={field('alert_id')} patient={field('patient_id')} "
        f"site={field('site_id')} kind={field('kind')} severity={field('severity')} "
        f"level={field('escalation_level')} key={r.idempotency_key or '-'}"
    )
    if r.signature_ok is not None:
        line += " sig=" + ("ok" if r.signature_ok else "BAD")
    if r.webhook_signature_ok is not None:
        line += " webhook-sig=" + ("ok" if r.webhook_signature_ok else "BAD")
    return f"{line} -> {r.status}"
