"""The pipeline watchdog's alert (services/alerts/watchdog.py): the one open
``pipeline_stalled`` alert as the watchdog holds it in memory (``Stall``, with the pages
it POSTed itself while PostgreSQL was away), and the transactions that record, repeat,
resolve and escalate it once the database answers, and the POST of a page from memory.
Events via the outbox, as any alert's."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

import httpx
from prometheus_client import Counter

from services.alerts import repository as repo
from services.alerts.alerting.delivery import post_page
from services.alerts.alerting.raising import announce_changed, announce_raised, apply_decision
from services.alerts.deps import Deps
from services.alerts.domain.model import NETWORK_SITE, PIPELINE_PATIENT, Kind, Severity, Status
from services.alerts.domain.paging import backoff, host_allowed
from services.alerts.domain.watchdog import MemPage, Stall
from services.alerts.rows import TiersJson
from services.alerts.settings import AlertsSettings
from shared.clock import utcnow
from shared.db import Conn
from shared.logging import get_logger

log = get_logger(__name__)

WATCHDOG_PAGES = Counter(
    "watchdog_page_attempts_total", "Page POSTs the watchdog made itself", ["outcome"]
)


async def record_stall(
    conn: Conn,
    deps: Deps,
    stall: Stall,
    now: datetime,
    *,
    tiers_read: TiersJson | None,
    version_read: int | None,
    fallback: TiersJson | None = None,
) -> bool:
    """The alert's row and the pages made from memory (the caller's transaction); pages
    for anyone not yet paged are queued by the escalation rule (apply_decision,
    services/alerts/alerting/raising.py). ``tiers_read``/``version_read``: the network
    on-call the memory pages went to; ``fallback``: the tiers paged when the network has
    no on-call (WATCHDOG_FALLBACK_WEBHOOK_URL). False when an earlier try had committed it."""
    if await repo.get_alert(conn, str(stall.alert_id)) is not None:
        return False  # committed by an earlier try whose answer never came back (a timeout)
    oncall = await repo.get_oncall(conn, NETWORK_SITE)
    tiers = oncall.tiers if oncall else (tiers_read if stall.pages else fallback)
    made = stall.pages
    row = await repo.insert_alert(
        conn,
        {
            "alert_id": stall.alert_id,
            "patient_id": PIPELINE_PATIENT,
            "site_id": NETWORK_SITE,
            "kind": Kind.pipeline_stalled.value,
            "severity": Severity.critical.value,
            "status": Status.open.value,
            "reasons": sorted(stall.reasons),
            "raised_at": stall.raised_at,
            "first_seen_at": stall.raised_at,
            "last_seen_at": now,
            "policy": tiers,
            "policy_version": oncall.version if oncall else version_read,
            # tier 1 was paged from memory already: escalation goes on from there
            "tiers_paged": 1 if made else 0,
            "last_escalated_at": stall.raised_at if made else None,
            "updated_at": now,
        },
    )
    if made:
        await repo.insert_attempted_pages(conn, [_attempted(stall.alert_id, p, now) for p in made])
    await announce_raised(conn, row, tiers is not None)
    if tiers is not None:
        await apply_decision(conn, deps, row, now)
    return True


def _attempted(alert_id: uuid.UUID, p: MemPage, now: datetime) -> tuple[object, ...]:
    """A memory page as ``repo.insert_attempted_pages`` takes it, with its outcome."""
    return (
        uuid.UUID(p.page_id),
        alert_id,
        p.key,
        p.tier,
        p.recipient,
        p.name,
        p.url,
        p.body,
        "delivered" if p.delivered_at else "pending",
        p.attempts,
        None if p.delivered_at else now,
        p.created_at,
        p.delivered_at,
        p.last_error,
    )


async def repeat_stall(conn: Conn, alert_id: uuid.UUID, reasons: set[str], now: datetime) -> None:
    """New stalled stages: folded into the open alert (``alert.changed`` repeated)."""
    row = await repo.repeat_alert(conn, str(alert_id), sorted(reasons), now, now)
    await announce_changed(conn, row, "repeated", row.status, now)


async def resolve_stall(conn: Conn, alert_id: uuid.UUID, now: datetime) -> None:
    """Every stage moves again: the alert resolves itself, its pending pages cancelled."""
    row = await repo.lock_alert(conn, str(alert_id))
    if row is None or row.status == Status.resolved.value:
        return
    await repo.cancel_pending_pages(conn, alert_id, now)
    done = await repo.update_alert(
        conn,
        alert_id,
        {
            "status": Status.resolved.value,
            "resolved_at": now,
            "resolved_by": "watchdog",
            "next_check_at": None,
            "updated_at": now,
        },
    )
    await announce_changed(conn, done, "resolved", row.status, now)


async def escalate_stall(conn: Conn, deps: Deps, alert_id: uuid.UUID, now: datetime) -> None:
    """The alert's escalation decision, when due (the watchdog's own timer)."""
    row = await repo.lock_due_alert(conn, alert_id, now)
    if row is not None:
        await apply_decision(conn, deps, row, now)


async def post_from_memory(
    http: httpx.AsyncClient, settings: AlertsSettings, p: MemPage, rng: random.Random
) -> None:
    """One POST of a page made from memory; its outcome (or next try) kept on ``p``."""
    if not host_allowed(p.url, settings.allowed_hosts):
        p.next_at, p.last_error = None, "the host is not in PAGE_ALLOWED_HOSTS"
        return
    p.attempts += 1
    _, error, _ = await post_page(http, settings, p.url, p.body, p.key)
    WATCHDOG_PAGES.labels("failed" if error else "delivered").inc()
    if error is None:
        p.next_at, p.delivered_at, p.last_error = None, utcnow(), None
        log.info("watchdog_page_delivered", page_id=p.page_id, tier=p.tier + 1)
    else:
        p.last_error = error
        p.next_at = utcnow() + timedelta(
            seconds=backoff(
                p.attempts,
                initial_s=settings.page_retry_initial_s,
                max_s=settings.page_retry_max_s,
                jitter=rng.random(),
            )
        )
        log.warning("watchdog_page_failed", page_id=p.page_id, error=error)
