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
from services.scheduling.domain.clearance import (
    Withheld,
    cleared,
    discharge_applies,
    is_newer_intake,
    starts_new_course,
)
from services.scheduling.domain.lifecycle import (
    Action,
    IllegalTransition,
    Status,
    needs_integration_rebooking,
    needs_replacement,
    on_session_date,
    too_early,
    transition,
)
from services.scheduling.domain.maintenance import (
    DosingVitalsPolicy,
    MaintenancePolicy,
    OnWorsening,
    maintenance_window,
    on_worsening,
    vitals_defer,
    worsening_window,
)
from services.scheduling.domain.model import (
    PRESETS,
    Kind,
    Protocol,
    protocol_from,
    protocol_numbers,
)
from services.scheduling.domain.rebooking import (
    RebookPolicy,
    induction_complete,
    rebook_window,
    retry_window,
)
from services.scheduling.schemas import (
    ActionIn,
    AppointmentOut,
    HeldPatient,
    HoldOut,
    SiteIn,
    VitalsIn,
    VitalsOut,
    WaitlistEntry,
)
from services.scheduling.settings import SOURCE, SchedulingSettings
from shared import events, metrics, outbox
from shared.db import Conn
from shared.errors import Conflict, InvalidInput, NotFound
from shared.logging import get_logger

log = get_logger(__name__)


class NotStarted(Conflict):
    """``complete`` or ``no-show`` before the session's start (409)."""

    code = "not_started"


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
            worsening_within=timedelta(days=self.settings.maintenance_worsening_within_days),
            slack=timedelta(days=self.settings.maintenance_slack_days),
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


def _site_protocol(body: SiteIn) -> tuple[str, Any, Protocol]:
    """(name, the body's protocol as given, the protocol it resolves to)."""
    if isinstance(body.protocol, str):
        return body.protocol, body.protocol, PRESETS[body.protocol]
    spec = body.protocol.model_dump(exclude_none=True)
    protocol = protocol_from(PRESETS[body.protocol.preset], body.protocol.numbers(), name="custom")
    return "custom", spec, protocol


async def put_site(deps: Deps, site_id: str, body: SiteIn) -> asyncpg.Record:
    name, spec, protocol = _site_protocol(body)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repo.upsert_site(conn, site_id, body, name, spec, protocol_numbers(protocol))
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
    purpose = entry["purpose"]
    if purpose == "induction":
        patient = await repo.get_patient(conn, entry["patient_id"])
        return await planner.propose_series(
            conn,
            deps.settings,
            patient_id=entry["patient_id"],
            site_id=entry["site_id"],
            prefs=entry["preferences"],
            now=now,
            intake_id=patient["intake_id"] if patient else None,
        )
    if purpose == "worsening" and entry["series_id"] is None:
        return await _propose_worsening(
            conn, deps, entry["patient_id"], entry["site_id"], entry["preferences"], now
        )
    rebooking = entry["series_id"] is not None  # keeps its series, kind and sequence
    if rebooking and entry["kind"] == Kind.integration.value:
        return await _retry_integration(conn, deps, entry, now)
    protocol = await _series_protocol(conn, entry["series_id"]) if rebooking else None
    replaced = (
        await repo.replaced_dose_start(conn, entry["series_id"], entry["sequence"])
        if rebooking
        else None
    )
    if protocol is not None and replaced is not None:
        # the replacement's own window, as when the dose was first released
        not_before, not_after = rebook_window(replaced, now, protocol)
    else:  # a maintenance session: placed within the maintenance slack
        span = RebookPolicy(min_span=deps.maintenance.slack)
        not_before, not_after = retry_window(entry["not_before"], now, span)
    return await planner.propose_single(
        conn,
        deps.settings,
        patient_id=entry["patient_id"],
        site_id=entry["site_id"],
        prefs=entry["preferences"],
        now=now,
        purpose=purpose,
        kind=Kind(entry["kind"]) if rebooking else Kind.maintenance,
        not_before=not_before,
        not_after=not_after,
        sequence=entry["sequence"] if rebooking else 1,
        series_id=entry["series_id"],
        protocol=protocol,
    )


async def _retry_integration(conn: Conn, deps: Deps, entry: asyncpg.Record, now: datetime) -> Any:
    """An integration rebooking that waited (its patient was held): booked if its window
    is still open, else dropped (nothing can be offered inside it any more)."""
    place = (entry["series_id"], entry["sequence"], Kind.integration.value)
    replaced = await repo.released_integration(conn, entry["series_id"], entry["sequence"])
    result = None
    if replaced is not None:
        result = await _rebook_integration(conn, deps, replaced, now)
    waiting = isinstance(result, planner.Waitlisted) and result.reason == Withheld.on_hold.value
    if not isinstance(result, planner.Booked) and not waiting:
        await repo.waitlist_remove(conn, entry["patient_id"], entry["purpose"], place)
    return result


async def _series_protocol(conn: Conn, series_id: str | None) -> Protocol | None:
    """The protocol a series was planned with (its own numbers, whatever the site's now)."""
    series = await repo.get_series(conn, series_id) if series_id else None
    if series is None:
        return None
    return planner.to_protocol(series["protocol"], series["protocol_numbers"])


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
    conn: Conn, deps: Deps, row: asyncpg.Record, now: datetime, cause: str, rebook: bool = True
) -> list[asyncpg.Record]:
    """A dose is off: cancel its integration session and (unless ``rebook`` is false)
    propose a replacement pair, spaced from every other dose of the patient."""
    therapist = None
    integration = await repo.paired_integration(conn, row["series_id"], row["sequence"])
    if integration is not None:
        therapist = integration["resource"]
        await _change(conn, integration, Status.cancelled, now, cause)
    if not rebook:
        return []
    patient = await repo.get_patient(conn, row["patient_id"])
    prefs = patient["preferences"] if patient else None
    protocol = await _series_protocol(conn, row["series_id"]) or planner.to_protocol("", None)
    not_before, not_after = rebook_window(row["start"], now, protocol)
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
        protocol=protocol,
    )
    if isinstance(booked, planner.Booked):
        return [
            r
            for aid in booked.appointment_ids
            if (r := await repo.get_appointment(conn, aid)) is not None
        ]
    return []


async def _rebook_integration(conn: Conn, deps: Deps, row: asyncpg.Record, now: datetime) -> Any:
    """A cancelled or missed integration: a new one inside its window (1..3 days after
    its dose) with a therapist free, the same one where possible; if none is free, the
    dose goes without (logged: nothing else can be offered inside the window)."""
    dose = await repo.series_dose(conn, row["series_id"], row["sequence"])
    if dose is None or dose["status"] not in repo.OCCUPYING:
        return None  # its dose is off too: the dose's replacement brings its own integration
    patient = await repo.get_patient(conn, row["patient_id"])
    protocol = await _series_protocol(conn, row["series_id"]) or planner.to_protocol("", None)
    result = await planner.propose_integration(
        conn,
        deps.settings,
        patient_id=row["patient_id"],
        site_id=row["site_id"],
        prefs=patient["preferences"] if patient else None,
        now=now,
        dose_start=dose["start_at"],
        sequence=row["sequence"],
        series_id=row["series_id"],
        preferred_therapist=row["resource"],
        replaces=row["appointment_id"],
        protocol=protocol,
    )
    if not isinstance(result, planner.Booked):
        log.info("integration_not_rebooked", patient_id=row["patient_id"], result=str(result))
    return result


async def _propose_maintenance(
    conn: Conn, deps: Deps, row: asyncpg.Record, anchor: datetime, purpose: str, now: datetime
) -> None:
    """The next scheduled maintenance, one protocol interval after ``anchor`` (the end of
    the dose it follows), unless one is pending already (never two pending)."""
    if await repo.pending_maintenance(conn, row["patient_id"], now) is not None:
        log.info("maintenance_pending", patient_id=row["patient_id"], purpose=purpose)
        return
    protocol = await _series_protocol(conn, row["series_id"]) or planner.to_protocol("", None)
    not_before, not_after = maintenance_window(
        anchor, protocol.maintenance_interval, now, deps.maintenance
    )
    patient = await repo.get_patient(conn, row["patient_id"])
    await planner.propose_single(
        conn,
        deps.settings,
        patient_id=row["patient_id"],
        site_id=row["site_id"],
        prefs=patient["preferences"] if patient else None,
        now=now,
        purpose=purpose,
        kind=Kind.maintenance,
        not_before=not_before,
        not_after=not_after,
    )


async def _after_completion(conn: Conn, deps: Deps, row: asyncpg.Record, now: datetime) -> None:
    """The last induction dose completed: the first maintenance session, one interval after
    that dose's end; a maintenance session completed: the next one, the same interval on."""
    if row["kind"] == Kind.maintenance.value:
        await _propose_maintenance(conn, deps, row, row["end"], "maintenance", now)
        return
    if row["kind"] != Kind.dosing.value:
        return
    protocol = await _series_protocol(conn, row["series_id"])
    if protocol is None:
        return
    await _after_induction(conn, deps, row, protocol, now)


async def _after_induction(
    conn: Conn, deps: Deps, row: asyncpg.Record, protocol: Protocol, now: datetime
) -> None:
    """When every dose of the induction is completed or ended (cancelled without a
    replacement, none waiting), the first maintenance follows the last one completed."""
    doses = await repo.series_doses(conn, row["series_id"])
    completed = [d for d in doses if d["status"] == Status.completed.value]
    occupied = {d["sequence"] for d in doses if d["status"] in repo.OCCUPYING}
    waiting = await repo.waiting_sequences(conn, row["series_id"])
    ended = {d["sequence"] for d in doses} - occupied - waiting
    if not completed or not induction_complete([d["sequence"] for d in completed], protocol, ended):
        return
    last_end = max(d["end_at"] for d in completed)
    await _propose_maintenance(conn, deps, row, last_end, "post_induction", now)


async def _lock_appointment(conn: Conn, appointment_id: str) -> asyncpg.Record:
    """The appointment, locked, after its patient's lock (the order the event reactions
    take them in, so an API call and a reaction for one patient never deadlock)."""
    found = await repo.get_appointment(conn, appointment_id)
    if found is None:
        raise NotFound(f"no appointment {appointment_id}")
    await repo.serialize_patient(conn, found["patient_id"])
    row = await repo.get_appointment(conn, appointment_id, for_update=True)
    assert row is not None  # appointments are never deleted
    return row


@metrics.counted_on_commit
async def change_appointment(
    deps: Deps, appointment_id: str, action: Action, body: ActionIn | None = None
) -> AppointmentOut:
    """Confirm, cancel, complete or no-show; a repeated step is a no-op, an illegal one 409,
    and so is recording what happened at a session (complete, no-show) before it starts."""
    released = False
    rebook = body.rebook if body is not None else True
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _lock_appointment(conn, appointment_id)
        try:
            status, changed = transition(Status(row["status"]), action)
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from None
        if not changed:
            return appointment_out(row)
        now = deps.clock()
        if too_early(action, row["start"], now):
            done = "completed" if status == Status.completed else "marked a no-show"
            raise NotStarted(
                f"the session starts at {row['start'].isoformat()}: it cannot be {done} before then"
            )
        cause = body.reason if body is not None and body.reason else None
        updated = await _change(conn, row, status, now, cause)
        kind = Kind(row["kind"])
        if needs_replacement(kind, status):
            await _release_dose(conn, deps, row, now, cause=cause or status.value, rebook=rebook)
            released = True
            protocol = await _series_protocol(conn, row["series_id"])
            if not rebook and kind is Kind.dosing and protocol is not None:
                # the clinic ended this dose: the induction may be over without it
                await _after_induction(conn, deps, row, protocol, now)
        elif needs_integration_rebooking(kind, status):
            if rebook:
                await _rebook_integration(conn, deps, row, now)
            released = status == Status.cancelled
        elif status == Status.cancelled:
            released = True
        if status == Status.completed:
            await _after_completion(conn, deps, updated, now)
    if released:
        await retry_waitlist(deps, row["site_id"])
    return appointment_out(updated)


@metrics.counted_on_commit
async def record_vitals(deps: Deps, appointment_id: str, body: VitalsIn) -> VitalsOut:
    """Pre-dose vitals: over the day-of-dosing limits, the dose is deferred and rebooked.
    They count only when taken on the session's local date (422 otherwise)."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _lock_appointment(conn, appointment_id)
        if row["kind"] == Kind.integration.value:
            raise Conflict("vitals are taken before a dosing session, not an integration one")
        if row["status"] not in repo.LIVE:
            raise Conflict(f"appointment {appointment_id} is {row['status']}")
        now = deps.clock()
        site = await repo.get_site(conn, row["site_id"])
        zone = planner.to_site(site).zone if site is not None else None
        taken_at = body.taken_at or now
        if zone is not None and not on_session_date(taken_at, row["start"], zone):
            local = row["start"].astimezone(zone).date().isoformat()
            raise InvalidInput(
                [
                    {
                        "field": "taken_at",
                        "message": f"pre-dose vitals count only on the session's date "
                        f"({local}, site time)",
                    }
                ],
                "vitals not taken on the session's date",
            )
        if not vitals_defer(body.systolic, body.diastolic, deps.vitals):
            return VitalsOut(appointment=appointment_out(row), deferred=False, reasons=[])
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


async def patient_hold(deps: Deps, patient_id: str) -> HoldOut:
    async with deps.pool.acquire() as conn:
        if not await repo.knows_patient(conn, patient_id):
            raise NotFound(f"no patient {patient_id}")
        since = await repo.hold(conn, patient_id)
    return HoldOut(held=since is not None, since=since)


async def held_patients(deps: Deps, site_id: str | None) -> list[HeldPatient]:
    async with deps.pool.acquire() as conn:
        rows = await repo.site_holds(conn, site_id)
    return [HeldPatient.model_validate(dict(r)) for r in rows]


# --- event reactions (run by the worker inside the inbox transaction) -------------


def _prefs(p: events.IntakeScreened | events.IntakeReviewed) -> dict[str, Any] | None:
    return p.preferences.model_dump(exclude_none=True) if p.preferences else None


async def on_intake_screened(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.IntakeScreened
) -> None:
    """The patient's latest intake decides whether they may be scheduled; an older one
    arriving late changes nothing. A cleared one starts a course if none is running."""
    await repo.serialize_patient(conn, p.patient_id)
    await repo.ensure_patient(conn, p.patient_id, p.site_id)
    patient = await repo.lock_patient(conn, p.patient_id)
    assert patient is not None
    if not is_newer_intake(
        p.submitted_at, p.intake_id, patient["intake_submitted_at"], patient["intake_id"]
    ):
        log.info("older_intake_ignored", patient_id=p.patient_id, intake_id=p.intake_id)
        return
    await repo.upsert_patient(conn, p.patient_id, p.site_id, _prefs(p))
    await repo.set_latest_intake(conn, p.patient_id, p.intake_id, p.submitted_at, p.decision)
    await _start_course(conn, deps, p.patient_id, p.site_id, p.intake_id, p.submitted_at)


async def on_intake_reviewed(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.IntakeReviewed
) -> None:
    """A clinician's review, kept per intake; an approval of the patient's latest intake
    schedules as an eligible one would (a review of an older intake changes nothing)."""
    await repo.serialize_patient(conn, p.patient_id)
    await repo.record_review(conn, p.intake_id, p.patient_id, p.outcome, p.reviewed_at)
    patient = await repo.lock_patient(conn, p.patient_id)
    if patient is None or patient["intake_id"] != p.intake_id:
        log.info("review_not_of_latest_intake", patient_id=p.patient_id, intake_id=p.intake_id)
        return
    await _start_course(conn, deps, p.patient_id, p.site_id, p.intake_id, p.reviewed_at)


async def _start_course(
    conn: Conn,
    deps: Deps,
    patient_id: str,
    site_id: str,
    intake_id: str,
    started_at: datetime,
) -> None:
    """A cleared patient with no course running (none yet, or the last one discharged)
    starts one: a new induction series, the new intake its baseline."""
    standing = await repo.standing(conn, patient_id)
    assert standing is not None
    if not cleared(standing["decision"], standing["review"]):
        log.info("not_cleared", patient_id=patient_id, decision=standing["decision"])
        return
    has_induction = await repo.has_series(conn, patient_id, "induction")
    if not starts_new_course(standing["discharged_at"], has_induction):
        log.info("induction_exists", patient_id=patient_id)
        return
    await repo.start_course(conn, patient_id, started_at)
    await planner.propose_series(
        conn,
        deps.settings,
        patient_id=patient_id,
        site_id=site_id,
        prefs=standing["preferences"],
        now=deps.clock(),
        intake_id=intake_id,
    )


async def on_checkin_recorded(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.CheckinRecorded
) -> None:
    """A worsening verdict brings a maintenance session within 7 days. A check-in that
    signals suicide risk holds the patient at once (its alert's event confirms the hold
    moments later; docs/domain.md, "Hold while at risk"), so nothing is proposed on it."""
    await repo.serialize_patient(conn, p.patient_id)
    if p.suicidal_ideation or p.phq9_item9_positive:
        await repo.record_checkin_hold(conn, p.checkin_id, p.patient_id, p.site_id, p.submitted_at)
    if not p.assessment.worsening:
        return
    patient = await repo.get_patient(conn, p.patient_id)
    if patient is None:
        return
    await _propose_worsening(
        conn,
        deps,
        p.patient_id,
        patient["site_id"],
        patient["preferences"],
        deps.clock(),
        submitted_at=p.submitted_at,
    )


async def _propose_worsening(
    conn: Conn,
    deps: Deps,
    patient_id: str,
    site_id: str,
    prefs: dict[str, Any] | None,
    now: datetime,
    submitted_at: datetime | None = None,
) -> Any:
    """A maintenance session within ``worsening_within``: none if one already falls in
    time, or if a dose has begun since the check-in was submitted; a later pending one is
    moved forward (booked anew, then the old one cancelled), so there are never two
    pending."""
    pending = await repo.pending_maintenance(conn, patient_id, now)
    action = on_worsening(
        now,
        pending["start"] if pending else None,
        deps.maintenance,
        submitted_at=submitted_at,
        last_dose_start=(
            await repo.last_dose_started(conn, patient_id, now) if submitted_at else None
        ),
    )
    if action is OnWorsening.keep:
        log.info("maintenance_pending", patient_id=patient_id, purpose="worsening")
        return None
    if action is OnWorsening.answered:
        log.info("worsening_answered", patient_id=patient_id)
        return None
    not_before, not_after = worsening_window(now, deps.maintenance)
    result = await planner.propose_single(
        conn,
        deps.settings,
        patient_id=patient_id,
        site_id=site_id,
        prefs=prefs,
        now=now,
        purpose="worsening",
        kind=Kind.maintenance,
        not_before=not_before,
        not_after=not_after,
        ignoring=pending["appointment_id"] if pending else None,
    )
    if pending is not None and isinstance(result, planner.Booked):
        await _change(conn, pending, Status.cancelled, now, cause="moved_forward")
        integration = await repo.paired_integration(conn, pending["series_id"], pending["sequence"])
        if integration is not None:
            await _change(conn, integration, Status.cancelled, now, cause="moved_forward")
    return result


async def on_patient_discharged(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.PatientDischarged
) -> None:
    """The course ends: future live sessions are cancelled and nothing new is proposed
    until a new cleared intake starts another course. A discharge older than the current
    course's start (arriving late) belongs to the previous course and changes nothing."""
    await repo.serialize_patient(conn, p.patient_id)
    patient = await repo.lock_patient(conn, p.patient_id)
    if patient is not None and not discharge_applies(p.discharged_at, patient["course_started_at"]):
        log.info("old_discharge_ignored", patient_id=p.patient_id)
        return
    now = deps.clock()
    for row in await repo.discharge(conn, p.patient_id, now):
        await _change(conn, row, Status.cancelled, now, cause="discharged")


async def on_alert(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.AlertRaised | events.AlertChanged
) -> None:
    """A suicide_risk alert holds the patient while it is unresolved; when it is resolved
    (and no other holds them) the proposals that waited are tried again."""
    if p.kind != "suicide_risk":
        return
    await repo.serialize_patient(conn, p.patient_id)
    resolved_at = (
        p.changed_at if isinstance(p, events.AlertChanged) and p.status == "resolved" else None
    )
    await repo.record_hold(conn, p.alert_id, p.patient_id, p.site_id, p.raised_at, resolved_at)
    if resolved_at is None:
        return
    await repo.resolve_checkin_holds(conn, p.patient_id, resolved_at)
    if await repo.hold(conn, p.patient_id) is not None:
        return
    log.info("hold_lifted", patient_id=p.patient_id)
    for entry in await repo.waitlist_for_patient(conn, p.patient_id):
        await _retry(conn, deps, entry)
