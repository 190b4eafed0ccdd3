"""What a page is: its body (ids, kind, severity, level; never PHI), its idempotency key,
its signature, and the retry schedule of a delivery that failed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
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
    "ack_url",
)


def new_ack_token() -> str:
    """A page's acknowledgement link token: 256 random bits, URL-safe. The link is a
    capability (whoever holds it acknowledges as the page's recipient), used once."""
    return secrets.token_urlsafe(32)


def idempotency_key(
    alert_id: str, tier: int, recipient: int, round_: int, via: str | None = None
) -> str:
    """Stable per (alert, tier, recipient); a re-page (round > 0) is a new page. ``via``:
    whose on-call the tier is when not the alert's site (the network's, standing in for a
    site with nobody on call): the site's own tiers, paged once it has some, are new pages."""
    scope = alert_id if via is None else f"{alert_id}:{via}"
    key = f"{scope}:t{tier + 1}:r{recipient}"
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
    ack_url: str | None = None,
    via: str | None = None,
) -> bytes:
    """The exact bytes POSTed (stored once, so retries and the signature never differ)."""
    return orjson.dumps(
        {
            "page_id": page_id,
            "idempotency_key": idempotency_key(alert_id, tier, recipient, round_, via),
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
            "ack_url": ack_url,
        }
    )


def sms_text(
    *, alert_id: str, site_id: str, kind: str, severity: str, tier: int, code: str, ack_url: str
) -> str:
    """An SMS page: what, where, and how to acknowledge (the reply code or the link). Ids
    only, as every page: no patient name, no clinical detail."""
    return (
        f"Interval {severity.upper()} {kind} alert at {site_id} (tier {tier + 1}, "
        f"alert {alert_id[:8]}). Reply {code} to acknowledge, or open {ack_url}"
    )


def email_message(
    *,
    alert_id: str,
    patient_id: str,
    site_id: str,
    kind: str,
    severity: str,
    tier: int,
    raised_at: datetime,
    ack_url: str,
) -> bytes:
    """An e-mail page, stored as ``{"subject", "text"}``."""
    subject = f"[Interval] {severity} {kind} alert at {site_id}"
    text = (
        f"A {severity} {kind} alert was raised at {raised_at.isoformat()}.\n\n"
        f"Alert: {alert_id}\nPatient id: {patient_id}\nSite: {site_id}\nTier: {tier + 1}\n\n"
        f"Acknowledge (one use): {ack_url}\n"
    )
    return orjson.dumps({"subject": subject, "text": text})


def notice_text(*, alert_id: str, kind: str, site_id: str, by: str) -> str:
    """The one notice each other person paged gets once someone acknowledged."""
    return (
        f"Interval: the {kind} alert at {site_id} (alert {alert_id[:8]}) was acknowledged "
        f"by {by}. No action needed."
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
