"""The alerts service's state-changing HTTP calls: on-call, acknowledge, resolve. One
transaction each, events via the outbox (reads: services/alerts/queries.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from prometheus_client import Histogram

from services.alerts import repository as repo
from services.alerts.alerting.notices import notify_others
from services.alerts.alerting.raising import announce_changed, apply_decision, release
from services.alerts.alerting.store import AlertStore
from services.alerts.deps import Deps
from services.alerts.domain import escalation, lifecycle
from services.alerts.domain.model import Kind, Status
from services.alerts.domain.paging import host_allowed
from services.alerts.rosters import check_targets
from services.alerts.rows import AlertRow, PageRow
from services.alerts.schemas import (
    ActorIn,
    AlertOut,
    OncallIn,
    OncallOut,
)
from shared import metrics
from shared.db import Conn
from shared.errors import Conflict, InvalidInput, NotFound
from shared.logging import get_logger

log = get_logger(__name__)

TIME_TO_ACKNOWLEDGE = Histogram(
    "alert_time_to_acknowledge_seconds",
    "From an alert being raised to its first acknowledgement (observed once committed)",
    ["severity"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)


# --- on-call (HTTP) -----------------------------------------------------------------------


@metrics.counted_on_commit
async def put_oncall(deps: Deps, site_id: str, body: OncallIn) -> OncallOut:
    """Replace the site's tiers. Alerts in flight keep the policy they opened with; a
    paging alert opened while nobody was on call takes this one and pages now, as does
    a critical one paging the network ops on-call in the site's place (the network's
    policy: a site's critical alert that found nobody on call at all)."""
    refused = [
        {
            "field": f"tiers[{i}].recipients[{j}].webhook_url",
            "message": "the host is not in PAGE_ALLOWED_HOSTS",
        }
        for i, t in enumerate(body.tiers)
        for j, r in enumerate(t.recipients)
        if not host_allowed(r.webhook_url, deps.allowed_hosts)
    ]
    if refused:
        raise InvalidInput(refused)
    now = deps.clock()
    tiers = body.to_json(deps.escalate_after_s)
    async with deps.pool.acquire() as conn, conn.transaction():
        await check_targets(conn, body)
        row = await repo.put_oncall(conn, site_id, tiers, now)
        orphans = await repo.orphan_alerts(conn, site_id)
        for orphan in orphans:
            values: dict[str, Any] = {
                "policy": tiers,
                "policy_version": row.version,
                "policy_site": None,
                "updated_at": now,
            }
            if orphan.site_id != site_id:  # the network's on-call, in place of the site's
                values["policy_site"] = site_id
            else:  # the site's own: its tier 1 is paged now, whoever paged before
                fresh = escalation.taken_over(orphan.escalation())
                values |= {
                    "tiers_paged": fresh.tiers_paged,
                    "last_escalated_at": fresh.last_escalated_at,
                    "repages": fresh.repages,
                    "last_repaged_at": fresh.last_repaged_at,
                }
            adopted = await repo.update_alert(conn, orphan.alert_id, values)
            await apply_decision(conn, deps, adopted, now)
    log.info("oncall_updated", site_id=site_id, tiers=len(tiers), adopted_alerts=len(orphans))
    return OncallOut.from_row(row)


# --- acknowledge / resolve (HTTP) ----------------------------------------------------------


async def _acknowledge(
    conn: Conn,
    deps: Deps,
    row: AlertRow,
    body: ActorIn,
    now: datetime,
    store: AlertStore,
    acker: PageRow | None,
) -> AlertRow:
    tier = acker.tier if acker is not None else row.oncall_policy().tier_of(body.by)
    row = await store.update_alert(
        conn,
        row.alert_id,
        {
            "status": Status.acknowledged.value,
            "acknowledged_at": now,
            "acknowledged_by": body.by,
            "acknowledged_note": deps.notes_cipher().encrypt(body.note),
            "acknowledged_tier": tier,
            "updated_at": now,
        },
    )
    row = await apply_decision(conn, deps, row, now, store)  # the re-page timer, if critical
    await notify_others(conn, row, body.by, acker, now, store)
    metrics.after_commit(
        TIME_TO_ACKNOWLEDGE.labels(row.severity).observe,
        (now - row.raised_at).total_seconds(),
    )
    return row


async def _resolve(
    conn: Conn, deps: Deps, row: AlertRow, body: ActorIn, now: datetime, store: AlertStore
) -> AlertRow:
    return await store.update_alert(
        conn,
        row.alert_id,
        {
            "status": Status.resolved.value,
            "resolved_at": now,
            "resolved_by": body.by,
            "resolved_note": deps.notes_cipher().encrypt(body.note),
            "next_check_at": None,
            "updated_at": now,
        },
    )


Guard = Callable[[Conn, AlertRow], Awaitable[None]]


async def act_in(
    conn: Conn,
    deps: Deps,
    alert_id: str,
    step: lifecycle.Step,
    body: ActorIn,
    now: datetime,
    store: AlertStore = repo,
    *,
    guard: Guard | None = None,
    acker: PageRow | None = None,
) -> AlertRow:
    """Acknowledge or resolve in the caller's transaction. ``guard`` runs once the
    patient and the alert are locked (an ack link checks its page there); ``acker`` is
    the page an acknowledgement came from, if any."""
    change = lifecycle.CHANGE_OF[step]
    found = await store.get_alert(conn, alert_id)
    if found is None:
        raise NotFound(f"no alert {alert_id}")
    await store.lock_patient(conn, found.patient_id, found.site_id, now)
    row = await store.lock_alert(conn, alert_id)
    assert row is not None
    if guard is not None:
        await guard(conn, row)
    status = Status(row.status)
    try:
        outcome = lifecycle.step(
            step,
            status,
            by=body.by,
            acknowledged_by=row.acknowledged_by,
            resolved_by=row.resolved_by,
        )
    except lifecycle.IllegalStep as exc:
        raise Conflict(str(exc)) from exc
    if outcome == "noop":
        return row
    await store.cancel_pending_pages(conn, row.alert_id, now)
    if step is lifecycle.Step.acknowledge:
        row = await _acknowledge(conn, deps, row, body, now, store, acker)
    else:
        row = await _resolve(conn, deps, row, body, now, store)
    await announce_changed(conn, row, change, status.value, now, by=body.by)
    if lifecycle.releases_held(step, Kind(row.kind)):
        await release(conn, deps, row, now, store)
    log.info(
        f"alert_{change}",
        alert_id=alert_id,
        site_id=row.site_id,
        kind=row.kind,
        after_s=round((now - row.raised_at).total_seconds(), 3),
        via="page" if acker is not None else "api",
    )
    return row


@metrics.counted_on_commit
async def act(
    deps: Deps, alert_id: str, step: lifecycle.Step, body: ActorIn, store: AlertStore = repo
) -> AlertOut:
    now = deps.clock()
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await act_in(conn, deps, alert_id, step, body, now, store)
    return AlertOut.from_row(row)
