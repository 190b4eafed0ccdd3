"""Alerts configuration, read once from the environment."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator

from services.alerts.domain.monitoring import MonitoringRule
from services.alerts.domain.paging import host_allowed
from shared.crypto import PhiKeySettings
from shared.events import service_source

SCHEMA = "alerts"
SOURCE = service_source("alerts")  # urn:interval:alerts (docs/events.md)


class AlertsSettings(PhiKeySettings):
    """Acknowledge/resolve notes are PHI at rest (shared/crypto.py): the stack's one
    PHI_KEYS / PHI_KEYS_FILE, PHI_BATCH_SIZE; the API needs them, the worker and the
    timers never read a note."""

    alerts_consumer_group: str = "alerts"
    alerts_port: int = Field(default=8003, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # Monitoring (docs/domain.md, "Monitoring between sessions").
    checkin_interval_s: float = Field(default=86400, gt=0)
    checkin_grace_s: float = Field(default=43200, ge=0)
    missed_checkins_alert_threshold: int = Field(default=2, ge=1)

    # Escalation.
    escalate_after_s: int = Field(default=900, ge=1)
    # A critical alert acknowledged but not resolved re-pages the acknowledger's tier.
    critical_ack_repage_after_s: float = Field(default=3600, gt=0)

    # Paging.
    page_signing_secret: SecretStr | None = None
    # Hosts a webhook may point at (comma-separated; "*.example.org" for subdomains);
    # empty: any host. Checked when on-call is PUT and again before every POST.
    page_allowed_hosts: str = ""
    page_timeout_s: float = Field(default=5.0, gt=0)
    page_retry_initial_s: float = Field(default=1.0, gt=0)
    page_retry_max_s: float = Field(default=300.0, gt=0)
    # Deliveries in flight at once per timers process (a slow receiver holds one slot).
    page_concurrency: int = Field(default=64, ge=1)

    # Where people reach this service from outside (their phone, Twilio): acknowledgement
    # links are {ALERTS_PUBLIC_URL}/v1/ack/<token>, and Twilio's signature of a staff SMS
    # reply covers {ALERTS_PUBLIC_URL}/v1/sms/inbound. Empty: http://127.0.0.1:ALERTS_PORT.
    alerts_public_url: str = ""

    # Texts (docs/architecture.md "Texts and e-mail"): a Twilio-compatible Messages API.
    # Unset SMS_API_URL: no texts (an SMS contact method's pages fail, visibly, and the
    # clinician's other rules still page them).
    sms_api_url: str = ""
    sms_account_sid: str = ""
    sms_auth_token: SecretStr = SecretStr("")
    sms_from_staff: str = ""
    # E-mail: smtp://host:port (smtp://user:pass@host:port, smtps:// for TLS); unset: none.
    smtp_url: str = ""
    mail_from: str = "interval@localhost"

    # Shift notices (services/alerts/shifts.py): a clinician is told this long before a
    # shift of theirs starts; the timers look for shifts starting soon this often.
    shift_notice_before_s: float = Field(default=3600, ge=0)
    shift_scan_s: float = Field(default=60, gt=0)

    # Durable timers: due rows taken per transaction, and the longest sleep while idle
    # (LISTEN/NOTIFY wakes the loop for anything due sooner).
    timer_batch: int = Field(default=1000, ge=1)
    # Deadline batches in flight at once per timers process (each its own transaction, the
    # rows disjoint by SKIP LOCKED): one batch's SQL overlaps the next one's Python.
    timer_concurrency: int = Field(default=2, ge=1)
    timer_idle_poll_s: float = Field(default=30.0, gt=0)
    # The timers process serves /metrics on this port when set.
    alerts_timers_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The safety lane (python -m services.alerts safety) serves /metrics on this port.
    alerts_safety_metrics_port: int | None = Field(default=None, ge=1, le=65535)

    # The pipeline watchdog (python -m services.alerts watchdog, services/alerts/watchdog.py):
    # a stage without progress this long raises pipeline_stalled (docs/domain.md).
    pipeline_stall_s: float = Field(default=30.0, gt=0)
    # How often it looks (every stage, and the broker's consumer lag).
    watchdog_interval_s: float = Field(default=1.0, gt=0)
    # The outboxes it watches (each service's schema; the outbox is shared/outbox.py's).
    watchdog_outbox_schemas: str = "intake,scheduling,alerts"
    # The watchdog serves /metrics on this port when set.
    alerts_watchdog_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # A webhook the watchdog pages when it knows no network ops on-call: none was PUT, or
    # the database has not answered since it started (it reads the on-call there). Set it
    # to what the ops team watches anyway; it must pass PAGE_ALLOWED_HOSTS when that is set.
    watchdog_fallback_webhook_url: AnyHttpUrl | None = None

    @model_validator(mode="after")
    def _fallback_allowed(self) -> Self:
        url = self.watchdog_fallback_webhook_url
        if url is not None and not host_allowed(str(url), self.allowed_hosts):
            raise ValueError("WATCHDOG_FALLBACK_WEBHOOK_URL: the host is not in PAGE_ALLOWED_HOSTS")
        return self

    @property
    def monitoring(self) -> MonitoringRule:
        return MonitoringRule(
            interval=timedelta(seconds=self.checkin_interval_s),
            grace=timedelta(seconds=self.checkin_grace_s),
            threshold=self.missed_checkins_alert_threshold,
        )

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.page_allowed_hosts.split(",") if h.strip())

    @property
    def ack_repage_after(self) -> timedelta:
        return timedelta(seconds=self.critical_ack_repage_after_s)

    @property
    def public_url(self) -> str:
        return (self.alerts_public_url or f"http://127.0.0.1:{self.alerts_port}").rstrip("/")

    @property
    def page_lease_s(self) -> float:
        """A claimed delivery not finished by then (its process died) is retried elsewhere."""
        return self.page_timeout_s + 10.0
