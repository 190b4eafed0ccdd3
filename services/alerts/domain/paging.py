"""What a page is: its body (ids, kind, severity, level; never PHI), its idempotency key,
its signature, and the retry schedule of a delivery that failed."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlsplit

import orjson

# The fields of a page; a test checks none of them can carry PHI.
PAGE_FIELDS = (
    "page_id",
    "idempotency_key",
    "alert_id",
    "patient_id",
    "site_id",
    "kind",
    "severity",
    "status",
    "escalation_level",
    "tier",
    "round",
    "reason",
    "raised_at",
    "paged_at",
)


def idempotency_key(alert_id: str, tier: int, recipient: int, round_: int) -> str:
    """Stable per (alert, tier, recipient); a re-page (round > 0) is a new page."""
    key = f"{alert_id}:t{tier + 1}:r{recipient}"
    return key if round_ == 0 else f"{key}:repage{round_}"


def page_body(
    *,
    page_id: str,
    alert_id: str,
    patient_id: str,
    site_id: str,
    kind: str,
    severity: str,
    status: str,
    tier: int,
    recipient: int,
    round_: int,
    reason: str,
    raised_at: datetime,
    paged_at: datetime,
) -> bytes:
    """The exact bytes POSTed (stored once, so retries and the signature never differ)."""
    return orjson.dumps(
        {
            "page_id": page_id,
            "idempotency_key": idempotency_key(alert_id, tier, recipient, round_),
            "alert_id": alert_id,
            "patient_id": patient_id,
            "site_id": site_id,
            "kind": kind,
            "severity": severity,
            "status": status,
            "escalation_level": tier,
            "tier": tier + 1,
            "round": round_,
            "reason": reason,
            "raised_at": raised_at.isoformat(),
            "paged_at": paged_at.isoformat(),
        }
    )


def signature(secret: str, body: bytes) -> str:
    """``X-Interval-Signature``: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def timestamped_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Interval-Signature-V2``: HMAC-SHA256 of ``"<timestamp>." + body``, so a receiver
    that also checks ``X-Interval-Timestamp`` is recent can refuse a replayed page."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def host_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether a webhook URL's host is on the allow-list (``PAGE_ALLOWED_HOSTS``): exact
    host names or addresses, or ``*.example.org`` for its subdomains. An empty list
    allows every host (loopback development)."""
    if not allowed:
        return True
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    for pattern in allowed:
        p = pattern.lower().rstrip(".")
        if p.startswith("*."):
            if host.endswith(p[1:]) and host != p[2:]:
                return True
        elif host == p:
            return True
    return False


def backoff(attempt: int, *, initial_s: float, max_s: float, jitter: float) -> float:
    """Seconds before retry number ``attempt`` (1 = after the first failure): capped
    exponential with "equal jitter" (``jitter`` in [0, 1) from the caller's random source),
    so retries of many pages spread out but never come sooner than half the step."""
    # 2.0 ** 1024 raises OverflowError; the max_s cap applies long before that exponent.
    step = min(max_s, initial_s * 2.0 ** min(max(attempt - 1, 0), 1023))
    return step / 2 + step / 2 * jitter


def delivered(status_code: int) -> bool:
    return 200 <= status_code < 300
