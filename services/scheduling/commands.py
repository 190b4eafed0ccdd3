"""The use cases behind scheduling's state-changing HTTP calls: a site, an appointment's
lifecycle step, pre-dose vitals. One transaction each; events only through the outbox."""

from __future__ import annotations

from datetime import datetime

from services.scheduling.deps import Deps
from services.scheduling.domain.lifecycle import (
    Action,
    Change,
    IllegalTransition,
    Status,
    change,
    on_session_date,
    too_early,
    transition,
)
from services.scheduling.domain.maintenance import maintenance_window, vitals_defer
from services.scheduling.domain.model import STANDARD, Kind, Protocol
from services.scheduling.domain.rebooking import induction_complete
from services.scheduling.planner.booking import Proposal
from services.scheduling.planner.followups import (
    change_status,
    rebook_integration,
    release_dose,
    retry_waitlist,
    series_protocol,
)
from services.scheduling.planner.proposals import propose_single
from services.scheduling.planner.store import REPOSITORY, Store
from services.scheduling.repository import appointments, sites
from services.scheduling.rows import AppointmentRow
from services.scheduling.schemas import (
    ActionIn,
    AppointmentOut,
    SiteIn,
    SiteOut,
    VitalsIn,
    VitalsOut,
)
from services.scheduling.settings import SOURCE
from shared import events, metrics, outbox
from shared.db import Conn
from shared.errors import Conflict, InvalidInput, NotFound
from shared.logging import get_logger

log = get_logger(__name__)


class NotStarted(Conflict):
    """``complete`` or ``no-show`` before the session's start (409)."""

    code = "not_started"


# --- sites ---------------------------------------------------------------------


async def put_site(deps: Deps, site_id: str, body: SiteIn) -> SiteOut:
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await sites.upsert_site(conn, site_id, body.new_site())
    await retry_waitlist(deps, site_id)
    return SiteOut.from_row(row)


# --- lifecycle -----------------------------------------------------------------


async def _lock_appointment(
    conn: Conn, appointment_id: str, store: Store = REPOSITORY
) -> AppointmentRow:
    """The appointment, locked, after its patient's lock (the order the event reactions
    take them in, so an API call and a reaction for one patient never deadlock)."""
    found = await store.appointments.get_appointment(conn, appointment_id)
    if found is None:
        raise NotFound(f"no appointment {appointment_id}")
    await store.patients.serialize_patient(conn, found.patient_id)
    row = await store.appointments.get_appointment(conn, appointment_id, for_update=True)
    assert row is not None  # appointments are never deleted
    return row


@metrics.counted_on_commit
async def change_appointment(
    deps: Deps,
    appointment_id: str,
    action: Action,
    body: ActionIn | None = None,
    *,
    store: Store = REPOSITORY,
) -> AppointmentOut:
    """Confirm, cancel, complete or no-show; a repeated step is a no-op, an illegal one 409,
    and so is recording what happened at a session (complete, no-show) before it starts."""
    rebook = body.rebook if body is not None else True
    cause = body.reason if body is not None and body.reason else None
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _lock_appointment(conn, appointment_id, store)
        try:
            status, changed = transition(Status(row.status), action)
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from None
        if not changed:
            return AppointmentOut.from_row(row)
        now = deps.clock()
        if too_early(action, row.start, now):
            done = "completed" if status == Status.completed else "marked a no-show"
            raise NotStarted(
                f"the session starts at {row.start.isoformat()}: it cannot be {done} before then"
            )
        followup = change(Kind(row.kind), status, rebook=rebook)
        updated = await change_status(conn, row, status, now, cause, store=store)
        await _follow_up(conn, deps, row, updated, followup, now, cause, store)
    if followup.released:  # its own transaction, once this one committed
        await retry_waitlist(deps, row.site_id, store=store)
    return AppointmentOut.from_row(updated)


async def _follow_up(
    conn: Conn,
    deps: Deps,
    row: AppointmentRow,
    updated: AppointmentRow,
    followup: Change,
    now: datetime,
    cause: str | None,
    store: Store,
) -> None:
    """What the change sets off (services/scheduling/domain/lifecycle.py, ``change``)."""
    if followup.release_dose:
        why = cause or followup.status.value
        await release_dose(
            conn, deps, row, now, cause=why, rebook=followup.rebook_dose, store=store
        )
        protocol = await series_protocol(conn, row.series_id, store=store)
        if followup.dose_ended and protocol is not None:
            # the clinic ended this dose: the induction may be over without it
            await _after_induction(conn, deps, row, protocol, now, store)
    if followup.rebook_integration:
        await rebook_integration(conn, deps, row, now, store=store)
    if followup.completed:
        await _after_completion(conn, deps, updated, now, store)


async def _after_completion(
    conn: Conn, deps: Deps, row: AppointmentRow, now: datetime, store: Store
) -> None:
    """The last induction dose completed: the first maintenance session, one interval after
    that dose's end; a maintenance session completed: the next one, the same interval on."""
    if row.kind == Kind.maintenance.value:
        await _propose_maintenance(conn, deps, row, row.end, "maintenance", now, store)
        return
    if row.kind != Kind.dosing.value:
        return
    protocol = await series_protocol(conn, row.series_id, store=store)
    if protocol is None:
        return
    await _after_induction(conn, deps, row, protocol, now, store)


async def _after_induction(
    conn: Conn, deps: Deps, row: AppointmentRow, protocol: Protocol, now: datetime, store: Store
) -> None:
    """When every dose of the induction is completed or ended (cancelled without a
    replacement, none waiting), the first maintenance follows the last one completed."""
    doses = await store.appointments.series_doses(conn, row.series_id)
    completed = [d for d in doses if d.status == Status.completed.value]
    occupied = {d.sequence for d in doses if d.status in appointments.OCCUPYING}
    waiting = await store.waitlist.waiting_sequences(conn, row.series_id)
    ended = {d.sequence for d in doses} - occupied - waiting
    if not completed or not induction_complete([d.sequence for d in completed], protocol, ended):
        return
    last_end = max(d.end for d in completed)
    await _propose_maintenance(conn, deps, row, last_end, "post_induction", now, store)


async def _propose_maintenance(
    conn: Conn,
    deps: Deps,
    row: AppointmentRow,
    anchor: datetime,
    purpose: str,
    now: datetime,
    store: Store,
) -> None:
    """The next scheduled maintenance, one protocol interval after ``anchor`` (the end of
    the dose it follows), unless one is pending already (never two pending)."""
    if await store.appointments.pending_maintenance(conn, row.patient_id, now) is not None:
        log.info("maintenance_pending", patient_id=row.patient_id, purpose=purpose)
        return
    protocol = await series_protocol(conn, row.series_id, store=store) or STANDARD
    not_before, not_after = maintenance_window(
        anchor, protocol.maintenance_interval, now, deps.maintenance
    )
    patient = await store.patients.get_patient(conn, row.patient_id)
    prefs = patient.preferences if patient else None
    await propose_single(
        conn,
        deps,
        Proposal(row.patient_id, row.site_id, prefs, purpose, now),
        kind=Kind.maintenance,
        not_before=not_before,
        not_after=not_after,
        store=store,
    )


# --- vitals ----------------------------------------------------------------------


@metrics.counted_on_commit
async def record_vitals(deps: Deps, appointment_id: str, body: VitalsIn) -> VitalsOut:
    """Pre-dose vitals: over the day-of-dosing limits, the dose is deferred and rebooked.
    They count only when taken on the session's local date (422 otherwise)."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _lock_appointment(conn, appointment_id)
        if row.kind == Kind.integration.value:
            raise Conflict("vitals are taken before a dosing session, not an integration one")
        if row.status not in appointments.LIVE:
            raise Conflict(f"appointment {appointment_id} is {row.status}")
        now = deps.clock()
        await _check_session_date(conn, row, body.taken_at or now)
        if not vitals_defer(body.systolic, body.diastolic, deps.vitals):
            return VitalsOut(appointment=AppointmentOut.from_row(row), deferred=False, reasons=[])
        updated = await change_status(conn, row, Status.cancelled, now, cause="deferred_vitals")
        rebooked = await release_dose(conn, deps, row, now, cause="deferred_vitals")
        payload = events.DoseDeferred(
            appointment_id=appointment_id,
            series_id=row.series_id,
            patient_id=row.patient_id,
            site_id=row.site_id,
            reasons=("blood_pressure_high",),
            deferred_at=now,
            rebooked_appointment_id=next(
                (r.appointment_id for r in rebooked if r.kind != Kind.integration.value), None
            ),
        )
        await outbox.enqueue(
            conn, events.new_event(payload, source=SOURCE, subject=row.patient_id, time=now)
        )
        return VitalsOut(
            appointment=AppointmentOut.from_row(updated),
            deferred=True,
            reasons=["blood_pressure_high"],
            rebooked=[AppointmentOut.from_row(r) for r in rebooked],
        )


async def _check_session_date(conn: Conn, row: AppointmentRow, taken_at: datetime) -> None:
    """Pre-dose vitals count only on the session's local date (site time): 422 otherwise."""
    site = await sites.get_site(conn, row.site_id)
    zone = site.as_site().zone if site is not None else None
    if zone is not None and not on_session_date(taken_at, row.start, zone):
        local = row.start.astimezone(zone).date().isoformat()
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
