"""``X-Twilio-Signature`` on the webhooks Twilio sends us (inbound texts): base64 HMAC-SHA1
keyed with the auth token, over the full URL Twilio called followed by every form key and
value sorted by key. Computed and checked with Twilio's own ``RequestValidator``.

The URL must be the one Twilio called, as Twilio saw it: behind a TLS-terminating proxy
the service sees ``http://10.0.0.5:8003/v1/sms/inbound`` while Twilio signed
``https://alerts.example.org/v1/sms/inbound``. So the service should build it from a
configured public base URL (scheme, host, optional port and path prefix) plus the request's
path and query string, never from the Host header or its own bind address. With and
without an explicit default port both verify (Twilio's validator tries both).
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio sends with a POST of ``params`` to ``url``."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def verify_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Whether ``signature`` (the header; None when absent) signs this request."""
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))
