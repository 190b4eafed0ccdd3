"""Shift notices (docs/domain.md "On-call people"), run by the timers process: a clinician
is told ``SHIFT_NOTICE_BEFORE_S`` (60 min) before a shift of theirs starts, and when it
starts gets a handoff digest of what is still open at the sites that page them (alert
ids, kinds, severities, sites: no PHI).

Every ``SHIFT_SCAN_S`` (and whenever the dev clock moves) the timers scan the schedules
for shifts starting within the notice window and plan one row per notice (idempotent:
several timers processes may scan), then send the due ones on the clinician's first
notification rule's contact method, retried with the pages' backoff. At sending a notice
is checked again: a shift no longer theirs (the schedule or an override changed) or an
"upcoming" notice whose shift has started already is cancelled, not sent.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from services.alerts import repository as repo
from services.alerts.alerting.delivery import Deliverer
from services.alerts.domain import rosters
from services.alerts.domain.paging import backoff
from services.alerts.repository import shifts as store
from services.alerts.rows import ClaimedPage, ClinicianRow
from services.alerts.settings import AlertsSettings
from shared.logging import get_logger

log = get_logger(__name__)

DIGEST_ALERTS = 20  # a digest lists at most this many alerts, the most severe first


def plan(
    schedules: list[rosters.Schedule], now: datetime, before: timedelta, ahead: timedelta
) -> list[tuple[str, str, datetime, str, datetime]]:
    """The notices of the shifts that start in [now - ahead, now + before + ahead): for
    each clinician coming on at a handoff, an 'upcoming' one due ``before`` it and a
    'digest' due at it. (A shift found late still gets its digest; its 'upcoming' one is
    cancelled when sent after the start.)"""
    out = []
    for s in schedules:
        for h in rosters.handoffs(s, now - ahead, now + before + ahead):
            for cid in h.after:
                if cid in h.before:
                    continue
                out.append((s.schedule_id, cid, h.at, "upcoming", h.at - before))
                out.append((s.schedule_id, cid, h.at, "digest", h.at))
    return out


def _contact(c: ClinicianRow) -> rosters.ContactMethod | None:
    """The clinician's first rule's contact method (the smallest ``after_s``)."""
    rules = sorted(c.clinician().notification_rules, key=lambda r: r.after_s)
    methods = {m.id: m for m in c.clinician().contact_methods}
    for r in rules:
        if r.contact_method in methods:
            return methods[r.contact_method]
    return None


def _body(
    channel: str, kind: str, schedule: str, zone: str, start: datetime, alerts: list[dict[str, Any]]
) -> bytes:
    local = start.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M")
    if kind == "upcoming":
        text = f"Interval: your on-call shift ({schedule}) starts {local} ({zone})."
        subject = f"[Interval] on-call shift at {local}"
    else:
        lines = [
            f"{str(a['alert_id'])[:8]} {a['severity']} {a['kind']} {a['site_id']}" for a in alerts
        ]
        text = f"Interval: your on-call shift ({schedule}) has started. Open alerts: {len(alerts)}"
        text += (":\n" + "\n".join(lines)) if lines else "."
        subject = f"[Interval] on-call handoff: {len(alerts)} open alerts"
    if channel == "sms":
        return text.encode()
    if channel == "email":
        return orjson.dumps({"subject": subject, "text": text + "\n"})
    return orjson.dumps(
        {
            "notice": "shift_" + kind,
            "schedule": schedule,
            "shift_start": start.isoformat(),
            "alerts": [
                {k: str(a[k]) for k in ("alert_id", "kind", "severity", "status", "site_id")}
                for a in alerts
            ],
        }
    )


class ShiftNotices:
    def __init__(self, settings: AlertsSettings, pool: asyncpg.Pool, deliverer: Deliverer) -> None:
        self.settings = settings
        self.pool = pool
        self.deliverer = deliverer
        self.before = timedelta(seconds=settings.shift_notice_before_s)
        self.ahead = timedelta(seconds=settings.shift_scan_s * 2)
        self.rng = random.Random()  # noqa: S311 (jitter, not security)

    async def scan(self, now: datetime) -> int:
        """Plan the notices of the shifts starting soon; how many new."""
        async with self.pool.acquire() as conn:
            rows = await repo.list_schedules(conn)
            overrides = await repo.overrides_of(
                conn, [r.schedule_id for r in rows], now - self.ahead
            )
            planned = plan(
                [r.schedule(overrides.get(r.schedule_id, ())) for r in rows],
                now,
                self.before,
                self.ahead,
            )
            return await store.plan_notices(conn, planned, now)

    async def send_due(self, now: datetime, limit: int = 50) -> int:
        lease = now + timedelta(seconds=self.settings.page_lease_s)
        async with self.pool.acquire() as conn:
            due = await store.claim_notices(conn, now, lease, limit)
        for n in due:
            await self._send(n, now)
        return len(due)

    async def _send(self, n: dict[str, Any], now: datetime) -> None:
        sid, cid, start = n["schedule_id"], n["clinician_id"], n["shift_start"]
        async with self.pool.acquire() as conn:
            sched = await repo.get_schedule(conn, sid)
            person = await repo.get_clinician(conn, cid)
            overrides = (await repo.overrides_of(conn, [sid], start)).get(sid, [])
            theirs = sched is not None and cid in rosters.oncall_at(
                sched.schedule(overrides), start
            )
            contact = _contact(person) if person is not None else None
            why = None
            if not theirs:
                why = "the shift is no longer theirs"
            elif n["kind"] == "upcoming" and now >= start:
                why = "the shift has started"
            elif contact is None:
                why = "no contact method"
            if why is not None or sched is None or contact is None:
                await store.finish_notice(
                    conn,
                    n["notice_id"],
                    status="cancelled",
                    channel=None,
                    body=None,
                    at=now,
                    retry_at=None,
                    error=why,
                )
                log.info("shift_notice_cancelled", notice_id=str(n["notice_id"]), reason=why)
                return
            alerts = []
            if n["kind"] == "digest":
                sites = await store.sites_paging(conn, sid, cid)
                alerts = await store.open_alerts_at(conn, sites, DIGEST_ALERTS)
        body = _body(contact.type, n["kind"], sched.name, sched.timezone, start, alerts)
        row = ClaimedPage(
            page_id=n["notice_id"],
            alert_id=n["notice_id"],
            webhook_url=contact.address if contact.type == "webhook" else None,
            body=body,
            attempts=n["attempts"],
            idempotency_key=f"shift:{n['notice_id']}",
            created_at=n["created_at"],
            tier=0,
            channel=contact.type,
            address=None if contact.type == "webhook" else contact.address,
        )
        status, error, _, permanent = await self.deliverer.send(row)
        retry_at = None
        if error is not None and not permanent:
            retry_at = now + timedelta(
                seconds=backoff(
                    n["attempts"],
                    initial_s=self.settings.page_retry_initial_s,
                    max_s=self.settings.page_retry_max_s,
                    jitter=self.rng.random(),
                )
            )
        state = "delivered" if error is None else ("pending" if retry_at else "cancelled")
        async with self.pool.acquire() as conn:
            await store.finish_notice(
                conn,
                n["notice_id"],
                status=state,
                channel=contact.type,
                body=body,
                at=now,
                retry_at=retry_at,
                error=error,
            )
        log.info(
            "shift_notice_" + ("sent" if error is None else "failed"),
            notice_id=str(n["notice_id"]),
            kind=n["kind"],
            schedule_id=sid,
            channel=contact.type,
            status=status,
            alerts=len(alerts),
        )
