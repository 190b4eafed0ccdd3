"""HTTP commands and reads of the alerts service: on-call, acknowledge/resolve, lists."""

from __future__ import annotations

from typing import Any

import asyncpg
from prometheus_client import Histogram

from services.alerts import repository as repo
from services.alerts.alerting.raising import announce_changed, apply_decision, release
from services.alerts.deps import Deps
from services.alerts.domain import lifecycle
from services.alerts.domain.model import Kind, Status
from services.alerts.domain.paging import host_allowed
from services.alerts.notes import decrypt_notes
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
from shared import metrics
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


def oncall_out(row: asyncpg.Record) -> OncallOut:
    return OncallOut.model_validate(dict(row))


@metrics.counted_on_commit
async def put_oncall(deps: Deps, site_id: str, body: OncallIn) -> OncallOut:
    """Replace the site's tiers. Alerts in flight keep the policy they opened with; a
    paging alert opened while nobody was on call takes this one and pages now."""
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


@metrics.counted_on_commit
async def act(deps: Deps, alert_id: str, step: lifecycle.Step, body: ActorIn) -> AlertOut:
    now = deps.clock()
    change = lifecycle.CHANGE_OF[step]
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
                    "acknowledged_note": deps.notes_cipher().encrypt(body.note),
                    "acknowledged_tier": tier,
                    "updated_at": now,
                },
            )
            row = await apply_decision(conn, deps, row, now)  # the re-page timer, if critical
            metrics.after_commit(
                TIME_TO_ACKNOWLEDGE.labels(row["severity"]).observe,
                (now - row["raised_at"]).total_seconds(),
            )
        else:
            row = await repo.update_alert(
                conn,
                row["alert_id"],
                {
                    "status": Status.resolved.value,
                    "resolved_at": now,
                    "resolved_by": body.by,
                    "resolved_note": deps.notes_cipher().encrypt(body.note),
                    "next_check_at": None,
                    "updated_at": now,
                },
            )
        await announce_changed(conn, row, change, status.value, now, by=body.by)
        if lifecycle.releases_held(step, Kind(row["kind"])):
            await release(conn, deps, row, now)
    log.info(
        f"alert_{change}",
        alert_id=alert_id,
        site_id=row["site_id"],
        kind=row["kind"],
        after_s=round((now - row["raised_at"]).total_seconds(), 3),
    )
    return alert_out(row)


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


async def get_alert(deps: Deps, alert_id: str, *, show_notes: bool) -> AlertDetail:
    """The alert with its audit trail; its notes decrypted only with ``show_notes`` (a
    clinician asks), else withheld (services/alerts/api.py)."""
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
        row,
        [PageOut.from_row(p, by_page.get(p["page_id"], [])) for p in page_rows],
        notes=decrypt_notes(deps.notes_cipher(), row) if show_notes else None,
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
