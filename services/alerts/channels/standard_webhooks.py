"""The Standard Webhooks headers on a webhook page (https://www.standardwebhooks.com):
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64
HMAC-SHA256 of "<id>.<timestamp>.<body>">``), signed with the ``standardwebhooks`` package.

The key is the base64 after ``whsec_`` when the secret has that prefix, else the secret's
UTF-8 bytes: the same ``PAGE_SIGNING_SECRET`` keys ``X-Interval-Signature`` (its UTF-8
bytes) and, given as ``whsec_...``, a receiver's Standard Webhooks library as is.
"""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"


def package_secret(secret: str) -> str | bytes:
    """The secret as ``standardwebhooks.Webhook`` takes it: it base64-decodes every str
    (with or without the prefix), so a plain secret goes in as its raw UTF-8 bytes."""
    return secret if secret.startswith(PREFIX) else secret.encode()


def has_key(secret: str) -> bool:
    """Whether the secret gives a non-empty key (``whsec_`` alone does not)."""
    return bool(secret.removeprefix(PREFIX))


def standard_webhook_headers(
    secret: str, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers for POSTing ``body`` (UTF-8 JSON) as message ``msg_id`` at unix
    second ``timestamp``. ``msg_id`` must be the same on every retry of one page, so a
    receiver can deduplicate by it."""
    hook = Webhook(package_secret(secret))
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": hook.sign(msg_id, when, body.decode("utf-8")),
    }
