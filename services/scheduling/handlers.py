"""Scheduling commands and event reactions: one transaction each, events via the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter

from services.scheduling import planner
from services.scheduling import repository as repo
from services.scheduling.domain.lifecycle import (
    Action,
    IllegalTransition,
    Status,
    needs_replacement,
    transition,
)
from services.scheduling.domain.maintenance import (
    DosingVitalsPolicy,
    MaintenancePolicy,
    after_induction_window,
    should_propose_for_worsening,
    vitals_defer,
    worsening_window,
)
from services.scheduling.domain.model import Kind
from services.scheduling.domain.rebooking import induction_complete, rebook_window, retry_window
from services.scheduling.schemas import (
    AppointmentOut,
    SiteIn,
    VitalsIn,
    VitalsOut,
    WaitlistEntry,
)
from services.scheduling.settings import SOURCE, SchedulingSettings
from shared import events, metrics, outbox
from shared.db import Conn
from shared.errors import Conflict, NotFound
from shared.logging import get_logger

log = get_logger(__name__)

APPOINTMENTS_CHANGED = Counter(
    "appointments_changed_total",
    "Appointment status changes (counted once committed), by session kind and new status",
    ["kind", "status"],
)


@dataclass(frozen=True)
class Deps:
    pool: asyncpg.Pool
    settings: SchedulingSettings
    clock: Callable[[], datetime]

    @property
    def maintenance(self) -> MaintenancePolicy:
        return MaintenancePolicy(
            after_induction=timedelta(days=self.settings.maintenance_after_induction_days),
            worsening_within=timedelta(days=self.settings.maintenance_worsening_within_days),
        )

    @property
    def vitals(self) -> DosingVitalsPolicy:
        return DosingVitalsPolicy(
            defer_systolic=self.settings.defer_systolic,
            defer_diastolic=self.settings.defer_diastolic,
        )


def appointment_out(row: asyncpg.Record) -> AppointmentOut:
    return AppointmentOut.model_validate(dict(row))


# --- sites ---------------------------------------------------------------------


async def put_site(deps: Deps, site_id: str, body: SiteIn) -> asyncpg.Record:
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repo.upsert_site(conn, site_id, body)
    await retry_waitlist(deps, site_id)
    return row


async def get_site(deps: Deps, site_id: str) -> asyncpg.Record:
    async with deps.pool.acquire() as conn:
        row = await repo.get_site(conn, site_id)
    if row is None:
        raise NotFound(f"no site {site_id}")
    return row


@metrics.counted_on_commit
async def retry_waitlist(deps: Deps, site_id: str) -> int:
    """Try again for the site's waiting patients (capacity freed, or the site appeared)."""
    booked = 0
    async with deps.pool.acquire() as conn, conn.transaction():
        entries = await repo.waitlist_for_site(conn, site_id, deps.settings.waitlist_retry_batch)
        for entry in entries:
            result = await _retry(conn, deps, entry)
            booked += isinstance(result, planner.Booked)
    return booked


async def retry_all_waitlists(deps: Deps) -> None:
    async with deps.pool.acquire() as conn:
        sites = await repo.waitlisted_sites(conn)
    for site_id in sites:
        await retry_waitlist(deps, site_id)


async def _retry(conn: Conn, deps: Deps, entry: asyncpg.Record) -> Any:
    now = deps.clock()
    if entry["purpose"] == "induction":
        return await planner.propose_series(
            conn,
            deps.settings,
            patient_id=entry["patient_id"],
            site_id=entry["site_id"],
            prefs=entry["preferences"],
            now=now,
        )
    not_before, not_after = retry_window(entry["not_before"], now)
    rebooking = entry["series_id"] is not None  # keeps its series, kind and sequence
    return await planner.propose_single(
        conn,
        deps.settings,
        patient_id=entry["patient_id"],
        site_id=entry["site_id"],
        prefs=entry["preferences"],
        now=now,
        purpose=entry["purpose"],
        kind=Kind(entry["kind"]) if rebooking else Kind.maintenance,
        not_before=not_before,
        not_after=not_after,
        sequence=entry["sequence"] if rebooking else 1,
        series_id=entry["series_id"],
        series_doses=(
            await _other_live_doses(conn, entry["series_id"], entry["sequence"])
            if rebooking
            else ()
        ),
    )


async def _other_live_doses(conn: Conn, series_id: str, sequence: int) -> tuple[datetime, ...]:
    """Start times of the series' other live doses: a replacement keeps its spacing."""
    return tuple(
        d["start_at"]
        for d in await repo.series_doses(conn, series_id)
        if d["status"] in repo.LIVE and d["sequence"] != sequence
    )


# --- lifecycle -----------------------------------------------------------------


async def _change(
    conn: Conn, row: asyncpg.Record, status: Status, now: datetime, cause: str | None = None
) -> asyncpg.Record:
    updated = await repo.set_status(conn, row["appointment_id"], status.value, cause)
    payload = events.AppointmentChanged(
        appointment_id=row["appointment_id"],
        series_id=row["series_id"],
        patient_id=row["patient_id"],
        site_id=row["site_id"],
        kind=row["kind"],
        sequence=row["sequence"],
        status=status.value,
        previous_status=row["status"],
        start=row["start"],
        end=row["end"],
        resource=row["resource"],
        reason=row["reason"],
        changed_at=now,
        cause=cause,
    )
    await outbox.enqueue(
        conn, events.new_event(payload, source=SOURCE, subject=row["patient_id"], time=now)
    )
    metrics.after_commit(APPOINTMENTS_CHANGED.labels(row["kind"], status.value).inc)
    return updated


async def _release_dose(
    conn: Conn, deps: Deps, row: asyncpg.Record, now: datetime, cause: str
) -> list[asyncpg.Record]:
    """A dose is off: cancel its integration session and propose a replacement pair."""
    therapist = None
    integration = await repo.paired_integration(conn, row["series_id"], row["sequence"])
    if integration is not None:
        therapist = integration["resource"]
        await _change(conn, integration, Status.cancelled, now, cause)
    patient = await repo.get_patient(conn, row["patient_id"])
    prefs = patient["preferences"] if patient else None
    series = await repo.get_series(conn, row["series_id"])
    protocol = planner.PROTOCOLS[series["protocol"] if series else "standard"]
    not_before, not_after = rebook_window(row["start"], now, protocol)
    others = await _other_live_doses(conn, row["series_id"], row["sequence"])
    booked = await planner.propose_single(
        conn,
        deps.settings,
        patient_id=row["patient_id"],
        site_id=row["site_id"],
        prefs=prefs,
        now=now,
        purpose="rebooked",
        kind=Kind(row["kind"]),
        not_before=not_before,
        not_after=not_after,
        sequence=row["sequence"],
        series_id=row["series_id"],
        preferred_therapist=therapist,
        replaces=row["appointment_id"],
        series_doses=others,
    )
    if isinstance(booked, planner.Booked):
        return [
            r
            for aid in booked.appointment_ids
            if (r := await repo.get_appointment(conn, aid)) is not None
        ]
    return []


async def _after_completion(conn: Conn, deps: Deps, row: asyncpg.Record, now: datetime) -> None:
    """The last induction dose completed: propose the first maintenance session."""
    series = await repo.get_series(conn, row["series_id"])
    if series is None or row["kind"] != Kind.dosing.value:
        return
    protocol = planner.PROTOCOLS[series["protocol"]]
    doses = await repo.series_doses(conn, row["series_id"])
    completed = [d["sequence"] for d in doses if d["status"] == Status.completed.value]
    if not induction_complete(completed, protocol):
        return
    if await repo.has_series(conn, row["patient_id"], "post_induction"):
        return
    not_before, not_after = after_induction_window(now, deps.maintenance)
    patient = await repo.get_patient(conn, row["patient_id"])
    await planner.propose_single(
        conn,
        deps.settings,
        patient_id=row["patient_id"],
        site_id=row["site_id"],
        prefs=patient["preferences"] if patient else None,
        now=now,
        purpose="post_induction",
        kind=Kind.maintenance,
        not_before=not_before,
        not_after=not_after,
    )


@metrics.counted_on_commit
async def change_appointment(deps: Deps, appointment_id: str, action: Action) -> AppointmentOut:
    """Confirm, cancel, complete or no-show; a repeated step is a no-op, an illegal one 409."""
    released = False
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repo.get_appointment(conn, appointment_id, for_update=True)
        if row is None:
            raise NotFound(f"no appointment {appointment_id}")
        try:
            status, changed = transition(Status(row["status"]), action)
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from None
        if not changed:
            return appointment_out(row)
        now = deps.clock()
        updated = await _change(conn, row, status, now)
        if needs_replacement(Kind(row["kind"]), status):
            await _release_dose(conn, deps, row, now, cause=status.value)
            released = True
        elif status == Status.cancelled:
            released = True
        if status == Status.completed:
            await _after_completion(conn, deps, row, now)
    if released:
        await retry_waitlist(deps, row["site_id"])
    return appointment_out(updated)


@metrics.counted_on_commit
async def record_vitals(deps: Deps, appointment_id: str, body: VitalsIn) -> VitalsOut:
    """Pre-dose vitals: over the day-of-dosing limits, the dose is deferred and rebooked."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repo.get_appointment(conn, appointment_id, for_update=True)
        if row is None:
            raise NotFound(f"no appointment {appointment_id}")
        if row["kind"] == Kind.integration.value:
            raise Conflict("vitals are taken before a dosing session, not an integration one")
        if row["status"] not in repo.LIVE:
            raise Conflict(f"appointment {appointment_id} is {row['status']}")
        if not vitals_defer(body.systolic, body.diastolic, deps.vitals):
            return VitalsOut(appointment=appointment_out(row), deferred=False, reasons=[])
        now = deps.clock()
        updated = await _change(conn, row, Status.cancelled, now, cause="deferred_vitals")
        rebooked = await _release_dose(conn, deps, row, now, cause="deferred_vitals")
        payload = events.DoseDeferred(
            appointment_id=appointment_id,
            series_id=row["series_id"],
            patient_id=row["patient_id"],
            site_id=row["site_id"],
            reasons=("blood_pressure_high",),
            deferred_at=now,
            rebooked_appointment_id=next(
                (r["appointment_id"] for r in rebooked if r["kind"] != Kind.integration.value),
                None,
            ),
        )
        await outbox.enqueue(
            conn, events.new_event(payload, source=SOURCE, subject=row["patient_id"], time=now)
        )
        return VitalsOut(
            appointment=appointment_out(updated),
            deferred=True,
            reasons=["blood_pressure_high"],
            rebooked=[appointment_out(r) for r in rebooked],
        )


# --- reads -----------------------------------------------------------------------


async def patient_appointments(deps: Deps, patient_id: str) -> list[AppointmentOut]:
    async with deps.pool.acquire() as conn:
        rows = await repo.patient_appointments(conn, patient_id)
    return [appointment_out(r) for r in rows]


async def waitlist(deps: Deps, site_id: str | None) -> list[WaitlistEntry]:
    async with deps.pool.acquire() as conn:
        rows = await repo.waitlist(conn, site_id)
    return [WaitlistEntry.model_validate(dict(r)) for r in rows]


async def site_schedule(
    deps: Deps, site_id: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The site's appointments as plain rows in ``AppointmentOut``'s shape (its columns and
    their order): a busy week is thousands of rows, and validating each one again only
    re-checks what the table's constraints already hold."""
    async with deps.pool.acquire() as conn:
        if await repo.get_site(conn, site_id) is None:
            raise NotFound(f"no site {site_id}")
        rows = await repo.site_schedule(conn, site_id, since, until)
    return [dict(r) for r in rows]


# --- event reactions (run by the worker inside the inbox transaction) -------------


async def on_intake_screened(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.IntakeScreened
) -> None:
    prefs = p.preferences.model_dump(exclude_none=True) if p.preferences else None
    await repo.upsert_patient(conn, p.patient_id, p.site_id, prefs)
    if p.decision == "eligible":
        await _start_induction(conn, deps, p.patient_id, p.site_id, prefs)


async def on_intake_reviewed(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.IntakeReviewed
) -> None:
    if p.outcome != "approved":
        return
    prefs = p.preferences.model_dump(exclude_none=True) if p.preferences else None
    await repo.upsert_patient(conn, p.patient_id, p.site_id, prefs)
    await _start_induction(conn, deps, p.patient_id, p.site_id, prefs)


async def _start_induction(
    conn: Conn, deps: Deps, patient_id: str, site_id: str, prefs: dict[str, Any] | None
) -> None:
    if await repo.has_series(conn, patient_id, "induction"):
        log.info("induction_exists", patient_id=patient_id)
        return
    await planner.propose_series(
        conn, deps.settings, patient_id=patient_id, site_id=site_id, prefs=prefs, now=deps.clock()
    )


async def on_checkin_recorded(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.CheckinRecorded
) -> None:
    if not p.assessment.worsening:
        return
    patient = await repo.get_patient(conn, p.patient_id)
    if patient is None or patient["discharged_at"] is not None:
        return
    now = deps.clock()
    if not should_propose_for_worsening(await repo.pending_maintenance(conn, p.patient_id, now)):
        return
    not_before, not_after = worsening_window(now, deps.maintenance)
    await planner.propose_single(
        conn,
        deps.settings,
        patient_id=p.patient_id,
        site_id=patient["site_id"],
        prefs=patient["preferences"],
        now=now,
        purpose="worsening",
        kind=Kind.maintenance,
        not_before=not_before,
        not_after=not_after,
    )


async def on_patient_discharged(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.PatientDischarged
) -> None:
    now = deps.clock()
    for row in await repo.discharge(conn, p.patient_id, now):
        await _change(conn, row, Status.cancelled, now, cause="discharged")
