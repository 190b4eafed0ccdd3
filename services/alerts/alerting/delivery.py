"""Page delivery: one signed POST of a page's stored bytes, its attempt recorded and
either its delivery or its retry (capped exponential backoff with jitter) scheduled.

Used by the timers process (services/alerts/timers.py), the safety lane's first attempt
(services/alerts/safety.py) and the watchdog (services/alerts/watchdog.py), which also
POSTs from memory with ``post_page`` while PostgreSQL is away.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
import httpx
import orjson
from prometheus_client import Counter, Histogram

from services.alerts import repository as repo
from services.alerts.channels.email import MailConfig, send_email
from services.alerts.channels.sms import SmsConfig, send_sms
from services.alerts.channels.standard_webhooks import has_key, standard_webhook_headers
from services.alerts.domain.paging import (
    backoff,
    delivered,
    host_allowed,
    signature,
    timestamped_signature,
)
from services.alerts.rows import ClaimedPage
from services.alerts.settings import AlertsSettings
from shared.clock import utcnow
from shared.logging import get_logger
from shared.processing import TRANSIENT
from shared.retry import Backoff

log = get_logger(__name__)

DELIVERIES = Counter("pages_attempts_total", "Page delivery attempts", ["outcome"])
DELIVERY_LATENCY = Histogram(
    "page_delivery_seconds",
    "From a page being queued to the receiver's 2xx",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)


class Deliverer:
    """POSTs claimed pages (``repo.claim_pages``/``claim_patient_pages`` rows) once each."""

    def __init__(
        self,
        settings: AlertsSettings,
        pool: asyncpg.Pool,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.http = http
        self.clock = clock
        self.rng = random.Random()  # noqa: S311 (jitter, not security)
        self.sms = (
            SmsConfig(
                api_url=settings.sms_api_url,
                account_sid=settings.sms_account_sid,
                auth_token=settings.sms_auth_token.get_secret_value(),
                from_=settings.sms_from_staff,
            )
            if settings.sms_api_url
            else None
        )
        self.mail = (
            MailConfig(smtp_url=settings.smtp_url, mail_from=settings.mail_from)
            if settings.smtp_url
            else None
        )

    async def send(self, row: ClaimedPage) -> tuple[int | None, str | None, float, bool]:
        """One attempt on the page's channel: (status, error or None, ms, permanent)."""
        if row.channel == "sms":
            if self.sms is None:
                return None, "no SMS_API_URL: texts are off", 0.0, True
            assert row.address is not None
            r = await send_sms(self.http, self.sms, row.address, row.body.decode())
            return r.status, r.error, r.duration_ms, r.permanent
        if row.channel == "email":
            if self.mail is None:
                return None, "no SMTP_URL: e-mail is off", 0.0, True
            assert row.address is not None
            doc = orjson.loads(row.body)
            r = await send_email(self.mail, row.address, doc["subject"], doc["text"])
            return r.status, r.error, r.duration_ms, r.permanent
        assert row.webhook_url is not None
        status, error, ms = await post_page(
            self.http, self.settings, row.webhook_url, row.body, row.idempotency_key
        )
        return status, error, ms, False

    async def deliver(self, row: ClaimedPage) -> None:
        """Send one page once; record the attempt and either its delivery or its retry
        (or, when retrying cannot help, its refusal)."""
        if row.channel == "webhook" and not host_allowed(
            row.webhook_url or "", self.settings.allowed_hosts
        ):
            # on-call was set before the allow-list (or the list shrank): never call it
            await self._refuse(row, "the host is not in PAGE_ALLOWED_HOSTS")
            return
        started = self.clock()
        status, error, duration_ms, permanent = await self.send(row)
        finished = self.clock()
        ok = error is None
        retry_at = None
        if not ok and not permanent:
            retry_at = finished + timedelta(
                seconds=backoff(
                    row.attempts,
                    initial_s=self.settings.page_retry_initial_s,
                    max_s=self.settings.page_retry_max_s,
                    jitter=self.rng.random(),
                )
            )
        await self._record(
            row, started, duration_ms, status, error, finished if ok else None, retry_at
        )
        fields = {
            "page_id": str(row.page_id),
            "alert_id": str(row.alert_id),
            "channel": row.channel,
            "tier": row.tier + 1,
            "attempt": row.attempts,
        }
        if not ok and permanent:
            await self._refuse(row, error or "refused")
            return
        DELIVERIES.labels("delivered" if ok else "failed").inc()
        if ok:
            DELIVERY_LATENCY.observe((finished - row.created_at).total_seconds())
            log.info("page_delivered", **fields, duration_ms=round(duration_ms, 2))
        else:
            log.warning("page_failed", **fields, error=error, retry_at=retry_at)

    async def _refuse(self, row: ClaimedPage, reason: str) -> None:
        async with self.pool.acquire() as conn:
            await repo.refuse_page(conn, row.page_id, reason, self.clock())
        DELIVERIES.labels("refused").inc()
        log.error(
            "page_refused",
            page_id=str(row.page_id),
            alert_id=str(row.alert_id),
            reason=reason,
        )

    async def _record(
        self,
        row: ClaimedPage,
        started: datetime,
        duration_ms: float,
        status: int | None,
        error: str | None,
        delivered_at: datetime | None,
        retry_at: datetime | None,
    ) -> None:
        backoff = Backoff(0.2, 5.0)
        while True:  # the POST happened: its record must not be lost to a blip
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await repo.record_attempt(
                        conn,
                        page_id=row.page_id,
                        attempt=row.attempts,
                        started_at=started,
                        duration_ms=duration_ms,
                        http_status=status,
                        error=error,
                        delivered_at=delivered_at,
                        retry_at=retry_at,
                    )
                return
            except TRANSIENT as exc:
                log.warning("page_record_retry", error=repr(exc))
                await backoff.sleep()


async def post_page(
    http: httpx.AsyncClient,
    settings: AlertsSettings,
    url: str,
    body: bytes,
    idempotency_key: str,
    *,
    webhook_id: str | None = None,
) -> tuple[int | None, str | None, float]:
    """One signed POST of a page's stored bytes: (HTTP status, error or None when the
    receiver answered 2xx, milliseconds). No database: the watchdog pages with it while
    PostgreSQL is away (services/alerts/watchdog.py).

    With a signing secret the page also carries the Standard Webhooks headers; their
    ``webhook-id`` is ``webhook_id``, by default the idempotency key (the same on every
    retry of one page, and a re-page is a new page with a new key)."""
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        "User-Agent": "interval-alerts/1.0",
    }
    if settings.page_signing_secret is not None:
        secret = settings.page_signing_secret.get_secret_value()
        # checked against the receiver's own wall clock: never the dev clock
        stamp = int(time.time())
        headers["X-Interval-Signature"] = signature(secret, body)
        headers["X-Interval-Timestamp"] = str(stamp)
        headers["X-Interval-Signature-V2"] = timestamped_signature(secret, stamp, body)
        if has_key(secret):
            msg_id = webhook_id or idempotency_key
            headers.update(standard_webhook_headers(secret, msg_id, stamp, body))
    t0 = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        resp = await http.post(url, content=body, headers=headers)
        status = resp.status_code
        if not delivered(status):
            error = f"HTTP {status}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    return status, error, (time.perf_counter() - t0) * 1000
