"""Alerts commands and event reactions: one transaction each, events via the outbox.

The rules live in ``services.alerts.domain``; this module loads state, asks the domain,
and writes the outcome (alert rows, pages to deliver, timers, outbox events) atomically.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter

from services.alerts import repository as repo
from services.alerts.domain import lifecycle, policy
from services.alerts.domain.dedup import admit, released_by
from services.alerts.domain.escalation import Decision, decide, escalation_level
from services.alerts.domain.model import Kind, Status, pages
from services.alerts.domain.monitoring import (
    Monitor,
    on_checkin,
    on_deadline,
    on_discharge,
    on_dosing_completed,
)
from services.alerts.domain.paging import idempotency_key, page_body
from services.alerts.schemas import (
    ActorIn,
    AlertCounts,
    AlertDetail,
    AlertOut,
    AttemptOut,
    MonitoringOut,
    OncallIn,
    OncallOut,
    PageOut,
)
from services.alerts.settings import SOURCE, AlertsSettings
from shared import events, outbox
from shared.db import Conn
from shared.errors import Conflict, NotFound
from shared.logging import get_logger

log = get_logger(__name__)

RAISED = Counter("alerts_raised_total", "Alerts opened", ["kind", "severity"])
REPEATED = Counter("alerts_repeated_total", "Repeats folded into an open alert", ["kind"])
PAGES_QUEUED = Counter("pages_queued_total", "Pages queued for delivery", ["reason"])
NOBODY_ON_CALL = Counter(
    "alerts_unpaged_no_oncall_total", "Paging alerts opened at a site with nobody on call"
)
MISSED = Counter("checkins_missed_total", "Expected check-ins that did not arrive in time")


@dataclass(frozen=True)
class Deps:
    pool: asyncpg.Pool
    settings: AlertsSettings
    clock: Callable[[], datetime]


# --- events ---------------------------------------------------------------------------


def _alert_fields(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "alert_id": str(row["alert_id"]),
        "patient_id": row["patient_id"],
        "site_id": row["site_id"],
        "kind": row["kind"],
        "severity": row["severity"],
        "status": row["status"],
        "escalation_level": max(row["tiers_paged"] - 1, 0),
        "occurrences": row["occurrences"],
        "reasons": tuple(row["reasons"]),
        "raised_at": row["raised_at"],
        "inhibited_by": str(row["inhibited_by"]) if row["inhibited_by"] else None,
    }


async def _announce_raised(conn: Conn, row: asyncpg.Record, pages_on_call: bool) -> None:
    payload = events.AlertRaised(**_alert_fields(row), pages_on_call=pages_on_call)
    await outbox.enqueue(
        conn,
        events.new_event(payload, source=SOURCE, subject=row["patient_id"], time=row["raised_at"]),
    )


async def _announce_changed(
    conn: Conn,
    row: asyncpg.Record,
    change: str,
    previous_status: str,
    at: datetime,
    by: str | None = None,
) -> None:
    payload = events.AlertChanged(
        **_alert_fields(row),
        change=change,
        previous_status=previous_status,
        changed_at=at,
        by=by,
    )
    await outbox.enqueue(
        conn, events.new_event(payload, source=SOURCE, subject=row["patient_id"], time=at)
    )


# --- escalation -----------------------------------------------------------------------


async def apply_decision(
    conn: Conn, deps: Deps, row: asyncpg.Record, now: datetime
) -> asyncpg.Record:
    """Ask ``decide`` about an alert (locked by the caller) and write what it says:
    pages to deliver now, the new escalation state, and when to look again."""
    before = repo.escalation_of(row)
    tiers = repo.policy_of(row["policy"])
    d: Decision = decide(before, tiers, now, ack_repage_after=deps.settings.ack_repage_after)
    page_rows = []
    for order in d.pages:
        for i, recipient in enumerate(tiers.tiers[order.tier].recipients):
            page_id = str(uuid.uuid4())
            body = page_body(
                page_id=page_id,
                alert_id=str(row["alert_id"]),
                patient_id=row["patient_id"],
                site_id=row["site_id"],
                kind=row["kind"],
                severity=row["severity"],
                status=row["status"],
                tier=order.tier,
                recipient=i,
                round_=order.round,
                reason=order.reason,
                raised_at=row["raised_at"],
                paged_at=now,
            )
            key = idempotency_key(str(row["alert_id"]), order.tier, i, order.round)
            page_rows.append(
                (
                    page_id,
                    row["alert_id"],
                    key,
                    order.tier,
                    order.round,
                    order.reason,
                    i,
                    recipient.name,
                    recipient.webhook_url,
                    body,
                    now,
                )
            )
        PAGES_QUEUED.labels(order.reason).inc()
    if page_rows:
        await repo.insert_pages(conn, page_rows)
        await repo.wake_timers(conn)
    s = d.state
    updated = await repo.update_alert(
        conn,
        row["alert_id"],
        {
            "tiers_paged": s.tiers_paged,
            "last_escalated_at": s.last_escalated_at,
            "repages": s.repages,
            "last_repaged_at": s.last_repaged_at,
            "next_check_at": d.next_check_at,
            "updated_at": now,
        },
    )
    if d.next_check_at is not None and d.next_check_at - now < timedelta(
        seconds=deps.settings.timer_idle_poll_s
    ):
        await repo.wake_timers(conn)
    if escalation_level(s) > escalation_level(before):
        await _announce_changed(conn, updated, "escalated", row["status"], now)
        log.info(
            "alert_escalated",
            alert_id=str(row["alert_id"]),
            site_id=row["site_id"],
            escalation_level=escalation_level(s),
        )
    if s.repages > before.repages:
        await _announce_changed(conn, updated, "repaged", row["status"], now)
    return updated


# --- raising ----------------------------------------------------------------------------


async def raise_alert(
    conn: Conn,
    deps: Deps,
    *,
    patient_id: str,
    site_id: str,
    signal: policy.Signal,
    source_event_id: str | None,
    now: datetime,
) -> asyncpg.Record:
    """Open an alert for the signal, or fold it into the patient's open one of that kind.
    The caller holds the patient's lock (``repo.lock_patient``)."""
    unresolved = await repo.unresolved_alerts(conn, patient_id)
    admission = admit(signal, [repo.open_alert_of(r) for r in unresolved])
    if admission.action == "repeat":
        assert admission.alert_id is not None
        row = await repo.repeat_alert(
            conn, admission.alert_id, signal.reasons, signal.observed_at, now
        )
        REPEATED.labels(signal.kind.value).inc()
        await _announce_changed(conn, row, "repeated", row["status"], now)
        return row
    oncall = await repo.get_oncall(conn, site_id)
    row = await repo.insert_alert(
        conn,
        {
            "alert_id": uuid.uuid4(),
            "patient_id": patient_id,
            "site_id": site_id,
            "kind": signal.kind.value,
            "severity": signal.severity.value,
            "status": Status.open.value,
            "reasons": list(signal.reasons),
            "raised_at": now,
            "first_seen_at": signal.observed_at,
            "last_seen_at": signal.observed_at,
            "source_event_id": source_event_id,
            "policy": oncall["tiers"] if oncall else None,
            "policy_version": oncall["version"] if oncall else None,
            "inhibited_by": uuid.UUID(admission.inhibited_by) if admission.inhibited_by else None,
            "updated_at": now,
        },
    )
    RAISED.labels(signal.kind.value, signal.severity.value).inc()
    for held in unresolved:
        if str(held["alert_id"]) in admission.inhibit:
            await repo.cancel_pending_pages(conn, held["alert_id"], now)
            h = await repo.update_alert(
                conn,
                held["alert_id"],
                {"inhibited_by": row["alert_id"], "next_check_at": None, "updated_at": now},
            )
            await _announce_changed(conn, h, "inhibited", h["status"], now)
    paging = pages(signal.severity) and admission.inhibited_by is None
    await _announce_raised(conn, row, paging and oncall is not None)
    fields = {
        "alert_id": str(row["alert_id"]),
        "patient_id": patient_id,
        "site_id": site_id,
        "kind": signal.kind.value,
        "severity": signal.severity.value,
    }
    if paging and oncall is None:
        NOBODY_ON_CALL.inc()
        log.warning("alert_nobody_on_call", **fields, detail="no on-call policy for the site")
    else:
        log.info("alert_raised", **fields, inhibited_by=admission.inhibited_by)
    if paging and oncall is not None:
        row = await apply_decision(conn, deps, row, now)
    return row


async def _raise_all(
    conn: Conn,
    deps: Deps,
    patient_id: str,
    site_id: str,
    signals: list[policy.Signal],
    event_id: str | None,
    now: datetime,
) -> None:
    for signal in signals:
        await raise_alert(
            conn,
            deps,
            patient_id=patient_id,
            site_id=site_id,
            signal=signal,
            source_event_id=event_id,
            now=now,
        )


# --- event reactions (the worker) -------------------------------------------------------


async def _save(
    conn: Conn, deps: Deps, patient_id: str, site_id: str, m: Monitor, now: datetime
) -> None:
    rule = deps.settings.monitoring
    await repo.save_monitor(conn, repo.monitor_args(patient_id, site_id, m, rule, now))
    deadline = m.deadline(rule)
    if deadline is not None and deadline - now < timedelta(seconds=deps.settings.timer_idle_poll_s):
        await repo.wake_timers(conn)


async def on_intake_screened(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.IntakeScreened
) -> None:
    now = deps.clock()
    await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    signals = policy.from_screen(
        suicide_risk=p.suicide_risk, phq9_item9_positive=p.phq9_item9_positive, at=p.submitted_at
    )
    await _raise_all(conn, deps, p.patient_id, p.site_id, signals, event.id, now)


async def on_checkin_recorded(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.CheckinRecorded
) -> None:
    now = deps.clock()
    row = await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    m = on_checkin(repo.monitor_of(row), p.submitted_at, deps.settings.monitoring)
    await _save(conn, deps, p.patient_id, p.site_id, m, now)
    signals = policy.from_checkin(
        suicidal_ideation=p.suicidal_ideation,
        phq9_item9_positive=p.phq9_item9_positive,
        worsening=p.assessment.worsening,
        worsening_reasons=p.assessment.worsening_reasons,
        at=p.submitted_at,
    )
    await _raise_all(conn, deps, p.patient_id, p.site_id, signals, event.id, now)


async def on_appointment_changed(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.AppointmentChanged
) -> None:
    starts = policy.starts_monitoring(status=p.status, kind=p.kind)
    signals = policy.from_appointment_change(status=p.status, kind=p.kind, at=p.changed_at)
    if not starts and not signals:
        return
    now = deps.clock()
    row = await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    if starts:
        before = repo.monitor_of(row)
        m = on_dosing_completed(before, p.changed_at, deps.settings.monitoring)
        if m != before:
            await _save(conn, deps, p.patient_id, p.site_id, m, now)
            log.info("monitoring_started", patient_id=p.patient_id, site_id=p.site_id)
    await _raise_all(conn, deps, p.patient_id, p.site_id, signals, event.id, now)


async def on_dose_deferred(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.DoseDeferred
) -> None:
    now = deps.clock()
    await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    signals = policy.from_deferral(p.reasons, p.deferred_at)
    await _raise_all(conn, deps, p.patient_id, p.site_id, signals, event.id, now)


async def on_patient_discharged(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.PatientDischarged
) -> None:
    now = deps.clock()
    row = await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    m = on_discharge(repo.monitor_of(row), p.discharged_at)
    await _save(conn, deps, p.patient_id, row["site_id"], m, now)
    log.info("monitoring_ended", patient_id=p.patient_id, site_id=p.site_id)


# --- timers ----------------------------------------------------------------------------


async def fire_deadlines(deps: Deps, now: datetime) -> int:
    """Every due check-in deadline (a batch, rows another process holds are skipped):
    one ``checkin.missed`` per miss, in the transaction that moves the timer on; a run of
    misses at the threshold raises (or repeats) ``missed_checkins``."""
    rule = deps.settings.monitoring
    async with deps.pool.acquire() as conn, conn.transaction():
        rows = await repo.due_patients(conn, now, deps.settings.timer_batch)
        if not rows:
            return 0
        saves: list[tuple[Any, ...]] = []
        out: list[events.CloudEvent] = []
        raise_for: list[tuple[asyncpg.Record, int]] = []
        for row in rows:
            m, misses = on_deadline(repo.monitor_of(row), now, rule)
            for miss in misses:
                payload = events.CheckinMissed(
                    patient_id=row["patient_id"],
                    site_id=row["site_id"],
                    due_at=miss.due_at,
                    deadline_at=miss.deadline_at,
                    missed_at=now,
                    consecutive_misses=miss.consecutive,
                )
                out.append(
                    events.new_event(payload, source=SOURCE, subject=row["patient_id"], time=now)
                )
                if policy.from_misses(miss.consecutive, rule.threshold, now):
                    raise_for.append((row, miss.consecutive))
            MISSED.inc(len(misses))
            saves.append(
                repo.monitor_args(row["patient_id"], row["site_id"], m, rule, now, len(misses), now)
            )
        await repo.save_monitors(conn, saves)
        await outbox.enqueue_many(conn, out)
        for row, consecutive in raise_for:
            await _raise_all(
                conn,
                deps,
                row["patient_id"],
                row["site_id"],
                policy.from_misses(consecutive, rule.threshold, now),
                None,
                now,
            )
        return len(rows)


async def fire_escalations(deps: Deps, now: datetime) -> int:
    """Every alert whose escalation decision is due: page the next tier, re-page, or
    just move the next look on."""
    async with deps.pool.acquire() as conn, conn.transaction():
        rows = await repo.due_alerts(conn, now, deps.settings.timer_batch)
        for row in rows:
            await apply_decision(conn, deps, row, now)
        return len(rows)


# --- on-call (HTTP) -----------------------------------------------------------------------


def oncall_out(row: asyncpg.Record) -> OncallOut:
    return OncallOut.model_validate(dict(row))


async def put_oncall(deps: Deps, site_id: str, body: OncallIn) -> OncallOut:
    """Replace the site's tiers. Alerts in flight keep the policy they opened with; a
    paging alert opened while nobody was on call takes this one and pages now."""
    now = deps.clock()
    tiers = body.to_json(deps.settings.escalate_after_s)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repo.put_oncall(conn, site_id, tiers, now)
        orphans = await conn.fetch(
            "SELECT * FROM alerts WHERE site_id = $1 AND policy IS NULL "
            "AND status = 'open' AND severity IN ('critical', 'high') FOR UPDATE",
            site_id,
        )
        for orphan in orphans:
            adopted = await repo.update_alert(
                conn,
                orphan["alert_id"],
                {"policy": tiers, "policy_version": row["version"], "updated_at": now},
            )
            await apply_decision(conn, deps, adopted, now)
    log.info("oncall_updated", site_id=site_id, tiers=len(tiers), adopted_alerts=len(orphans))
    return oncall_out(row)


async def get_oncall(deps: Deps, site_id: str) -> OncallOut:
    async with deps.pool.acquire() as conn:
        row = await repo.get_oncall(conn, site_id)
    if row is None:
        raise NotFound(f"no on-call policy for site {site_id}")
    return oncall_out(row)


# --- acknowledge / resolve (HTTP) ----------------------------------------------------------


async def act(deps: Deps, alert_id: str, step: lifecycle.Step, body: ActorIn) -> AlertOut:
    now = deps.clock()
    async with deps.pool.acquire() as conn, conn.transaction():
        found = await repo.get_alert(conn, alert_id)
        if found is None:
            raise NotFound(f"no alert {alert_id}")
        await repo.lock_patient(conn, found["patient_id"], found["site_id"], now)
        row = await repo.lock_alert(conn, alert_id)
        assert row is not None
        status = Status(row["status"])
        try:
            outcome = lifecycle.step(
                step,
                status,
                by=body.by,
                acknowledged_by=row["acknowledged_by"],
                resolved_by=row["resolved_by"],
            )
        except lifecycle.IllegalStep as exc:
            raise Conflict(str(exc)) from exc
        if outcome == "noop":
            return alert_out(row)
        await repo.cancel_pending_pages(conn, row["alert_id"], now)
        if step is lifecycle.Step.acknowledge:
            tiers = repo.policy_of(row["policy"])
            tier = tiers.tier_of(body.by)
            row = await repo.update_alert(
                conn,
                row["alert_id"],
                {
                    "status": Status.acknowledged.value,
                    "acknowledged_at": now,
                    "acknowledged_by": body.by,
                    "acknowledged_note": body.note,
                    "acknowledged_tier": tier,
                    "updated_at": now,
                },
            )
            row = await apply_decision(conn, deps, row, now)  # the re-page timer, if critical
        else:
            row = await repo.update_alert(
                conn,
                row["alert_id"],
                {
                    "status": Status.resolved.value,
                    "resolved_at": now,
                    "resolved_by": body.by,
                    "resolved_note": body.note,
                    "next_check_at": None,
                    "updated_at": now,
                },
            )
        await _announce_changed(conn, row, str(step.value) + "d", status.value, now, by=body.by)
        if step is lifecycle.Step.resolve and row["kind"] == Kind.suicide_risk.value:
            await _release(conn, deps, row, now)
    log.info(
        f"alert_{step.value}d",
        alert_id=alert_id,
        site_id=row["site_id"],
        kind=row["kind"],
        after_s=round((now - row["raised_at"]).total_seconds(), 3),
    )
    return alert_out(row)


async def _release(conn: Conn, deps: Deps, resolved: asyncpg.Record, now: datetime) -> None:
    """The alerts a resolved suicide_risk alert held back page on their own now."""
    unresolved = await repo.unresolved_alerts(conn, resolved["patient_id"])
    ids = set(released_by(str(resolved["alert_id"]), [repo.open_alert_of(r) for r in unresolved]))
    for r in unresolved:
        if str(r["alert_id"]) in ids:
            freed = await repo.update_alert(
                conn, r["alert_id"], {"inhibited_by": None, "updated_at": now}
            )
            await _announce_changed(conn, freed, "released", freed["status"], now)
            await apply_decision(conn, deps, freed, now)


# --- reads -------------------------------------------------------------------------------


def alert_out(row: asyncpg.Record) -> AlertOut:
    return AlertOut.from_row(row)


async def list_alerts(
    deps: Deps,
    *,
    site_id: str | None,
    patient_id: str | None,
    status: str | None,
    severity: str | None,
    kind: str | None,
    limit: int,
) -> list[AlertOut]:
    async with deps.pool.acquire() as conn:
        rows = await repo.list_alerts(
            conn,
            site_id=site_id,
            patient_id=patient_id,
            status=status,
            severity=severity,
            kind=kind,
            limit=limit,
        )
    return [alert_out(r) for r in rows]


async def get_alert(deps: Deps, alert_id: str) -> AlertDetail:
    async with deps.pool.acquire() as conn:
        row = await repo.get_alert(conn, alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        page_rows = await repo.pages_of(conn, row["alert_id"])
        attempt_rows = await repo.attempts_of(conn, row["alert_id"])
    by_page: dict[Any, list[AttemptOut]] = {}
    for a in attempt_rows:
        by_page.setdefault(a["page_id"], []).append(AttemptOut.model_validate(dict(a)))
    return AlertDetail.from_row(
        row, [PageOut.from_row(p, by_page.get(p["page_id"], [])) for p in page_rows]
    )


async def alert_counts(deps: Deps, site_id: str | None) -> AlertCounts:
    async with deps.pool.acquire() as conn:
        rows = await repo.counts(conn, site_id)
    return AlertCounts.from_rows(rows)


async def monitoring(deps: Deps, patient_id: str) -> MonitoringOut:
    async with deps.pool.acquire() as conn:
        row = await repo.get_patient(conn, patient_id)
    if row is None:
        raise NotFound(f"patient {patient_id} is not known to the alerts service")
    return MonitoringOut.from_row(row, repo.monitor_of(row).active)
