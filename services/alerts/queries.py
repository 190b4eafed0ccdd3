"""The alerts service's reads: on-call, alerts with their audit trail, a patient's
monitoring, and the dashboard's figures (alerts by status and severity, patients
monitored per site, time to acknowledge)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from services.alerts import repository as repo
from services.alerts.alerting.notes import decrypt_notes
from services.alerts.deps import Deps
from services.alerts.rows import AlertRow
from services.alerts.schemas import (
    AckTimes,
    AlertCounts,
    AlertDetail,
    AlertOut,
    AttemptOut,
    MonitoringOut,
    OncallOut,
    PageOut,
    SiteMonitoring,
)
from shared.errors import NotFound

FHIR_ALERTS_LIMIT = 10_000  # a patient's suicide-risk alerts: far fewer


async def get_oncall(deps: Deps, site_id: str) -> OncallOut:
    async with deps.pool.acquire() as conn:
        row = await repo.get_oncall(conn, site_id)
    if row is None:
        raise NotFound(f"no on-call policy for site {site_id}")
    return OncallOut.from_row(row)


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
    return [AlertOut.from_row(r) for r in rows]


async def get_alert(deps: Deps, alert_id: str, *, show_notes: bool) -> AlertDetail:
    """The alert with its audit trail; its notes decrypted only with ``show_notes`` (a
    clinician asks), else withheld (services/alerts/api.py)."""
    async with deps.pool.acquire() as conn:
        row = await repo.get_alert(conn, alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        page_rows = await repo.pages_of(conn, row.alert_id)
        attempt_rows = await repo.attempts_of(conn, row.alert_id)
    by_page: dict[uuid.UUID, list[AttemptOut]] = {}
    for a in attempt_rows:
        by_page.setdefault(a.page_id, []).append(AttemptOut.from_row(a))
    return AlertDetail.from_row(
        row,
        [PageOut.from_row(p, by_page.get(p.page_id, [])) for p in page_rows],
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
    return MonitoringOut.from_row(row, row.monitor().active)


async def monitoring_counts(deps: Deps) -> list[SiteMonitoring]:
    """Per site: patients monitored, and those with a run of missed check-ins."""
    async with deps.pool.acquire() as conn:
        rows = await repo.monitoring_counts(conn)
    return [SiteMonitoring.from_row(r) for r in rows]


async def ack_times(deps: Deps, severity: str, days: int) -> list[AckTimes]:
    """Per site and for the whole network (``site_id`` null), over the last ``days``."""
    since = deps.clock() - timedelta(days=days)
    async with deps.pool.acquire() as conn:
        rows = await repo.ack_times(conn, severity, since)
    return [AckTimes.from_row(r, severity, days) for r in rows]


async def fhir_suicide_risk_alerts(deps: Deps, patient_id: str) -> list[AlertRow]:
    """Every suicide_risk alert of a patient, newest first, for the FHIR facade's Flags."""
    async with deps.pool.acquire() as conn:
        return await repo.list_alerts(
            conn,
            site_id=None,
            patient_id=patient_id,
            status=None,
            severity=None,
            kind="suicide_risk",
            limit=FHIR_ALERTS_LIMIT,
        )
