"""The channels a page goes out on besides webhooks (SMS, e-mail), and the signatures of
both directions: thin adapters over httpx/aiosmtplib, no database, no logging (the caller
logs the ``SendResult``, which never holds a phone number, an address or a body)."""

from __future__ import annotations

from services.alerts.channels.email import MailConfig, send_email
from services.alerts.channels.result import SendResult
from services.alerts.channels.sms import SmsConfig, send_sms
from services.alerts.channels.standard_webhooks import standard_webhook_headers
from services.alerts.channels.twilio_signature import (
    TWILIO_SIGNATURE_HEADER,
    twilio_signature,
    verify_twilio_signature,
)

__all__ = [
    "TWILIO_SIGNATURE_HEADER",
    "MailConfig",
    "SendResult",
    "SmsConfig",
    "send_email",
    "send_sms",
    "standard_webhook_headers",
    "twilio_signature",
    "verify_twilio_signature",
]
