"""E-mail through an SMTP server (``MailConfig.smtp_url``), one message per call.

``send_email`` never retries: the caller schedules retries from the result. A 5xx reply
(a mailbox the server refuses, bad credentials) is permanent; 4xx replies ("try again
later"), timeouts and connection errors are transient.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

import aiosmtplib

from services.alerts.channels.result import SendResult

TIMEOUT_S = 10.0
_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    """Where ``smtp_url`` points: ``smtp://[user:pass@]host[:port]`` (STARTTLS when the
    server offers it) or ``smtps://...`` (TLS from the first byte)."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    """The server an ``smtp://`` / ``smtps://`` URL names; ValueError saying what is wrong
    (never echoing the URL, which may hold a password)."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError("SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_URL has no host")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError("SMTP_URL has an invalid port") from None
    return SmtpServer(
        host=parts.hostname,
        port=port,
        implicit_tls=parts.scheme == "smtps",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


@dataclass(frozen=True)
class MailConfig:
    smtp_url: str = field(repr=False)  # may carry a password
    mail_from: str

    def __post_init__(self) -> None:
        parse_smtp_url(self.smtp_url)  # a bad URL fails where the config is made

    @property
    def server(self) -> SmtpServer:
        return parse_smtp_url(self.smtp_url)


def build_message(mail_from: str, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message with its own Message-ID (the ``provider_id``)."""
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    domain = mail_from.rpartition("@")[2].strip(">") or None
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(body)
    return msg


async def send_email(cfg: MailConfig, to: str, subject: str, body: str) -> SendResult:
    """Hand one message to the SMTP server; ``status`` is its reply code when it gave one."""
    server = cfg.server
    t0 = time.perf_counter()
    try:
        msg = build_message(cfg.mail_from, to, subject, body)
    except ValueError:  # a line break in an address or the subject: no retry will help
        return SendResult(False, None, "invalid message header", None, _ms(t0), permanent=True)
    try:
        await aiosmtplib.send(
            msg,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            timeout=TIMEOUT_S,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient (the one) refused
        codes = [r.code for r in exc.recipients]
        code = codes[0] if codes else None
        return _refused(code, t0)
    except aiosmtplib.SMTPResponseException as exc:
        # the server's text can quote the address: keep the reply code only
        return _refused(exc.code, t0)
    except (aiosmtplib.SMTPException, OSError) as exc:  # connection, timeout, TLS
        return SendResult(False, None, type(exc).__name__, None, _ms(t0))
    return SendResult(True, 250, None, str(msg["Message-ID"]), _ms(t0))


def _refused(code: int | None, t0: float) -> SendResult:
    permanent = code is not None and 500 <= code < 600
    return SendResult(False, code, f"SMTP {code}", None, _ms(t0), permanent=permanent)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
