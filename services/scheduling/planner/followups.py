"""What changes set off, shared by commands, reactions and the worker's timer: an
appointment's status change and its event, a released dose's replacement, an
integration rebooked in its window, a worsening patient's maintenance session, and the
waitlist's retries. Each runs in its caller's transaction (the waitlist's retries open
their own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import Counter

from services.scheduling.deps import Deps
from services.scheduling.domain.clearance import Withheld
from services.scheduling.domain.lifecycle import OCCUPYING, Status
from services.scheduling.domain.maintenance import OnWorsening, on_worsening, worsening_window
from services.scheduling.domain.model import STANDARD, Kind, Protocol
from services.scheduling.domain.rebooking import RebookPolicy, rebook_window, retry_window
from services.scheduling.planner.booking import Booked, Outcome, Proposal, Waitlisted
from services.scheduling.planner.proposals import (
    propose_integration,
    propose_series,
    propose_single,
)
from services.scheduling.planner.store import REPOSITORY, Store
from services.scheduling.rows import AppointmentRow, WaitlistRow
from services.scheduling.settings import SOURCE
from shared import events, metrics, outbox
from shared.db import Conn
from shared.logging import get_logger

log = get_logger(__name__)

APPOINTMENTS_CHANGED = Counter(
    "appointments_changed_total",
    "Appointment status changes (counted once committed), by session kind and new status",
    ["kind", "status"],
)


async def change_status(
    conn: Conn,
    row: AppointmentRow,
    status: Status,
    now: datetime,
    cause: str | None = None,
    *,
    store: Store = REPOSITORY,
) -> AppointmentRow:
    """The appointment's new status and its ``appointment.changed`` event (outbox)."""
    updated = await store.appointments.set_status(conn, row.appointment_id, status.value, cause)
    payload = events.AppointmentChanged(
        appointment_id=row.appointment_id,
        series_id=row.series_id,
        patient_id=row.patient_id,
        site_id=row.site_id,
        kind=row.kind,
        sequence=row.sequence,
        status=status.value,
        previous_status=row.status,
        start=row.start,
        end=row.end,
        resource=row.resource,
        reason=row.reason,
        changed_at=now,
        cause=cause,
    )
    await outbox.enqueue(
        conn, events.new_event(payload, source=SOURCE, subject=row.patient_id, time=now)
    )
    metrics.after_commit(APPOINTMENTS_CHANGED.labels(row.kind, status.value).inc)
    return updated


async def series_protocol(
    conn: Conn, series_id: str | None, *, store: Store = REPOSITORY
) -> Protocol | None:
    """The protocol a series was planned with (its own numbers, whatever the site's now)."""
    found = await store.series.get_series(conn, series_id) if series_id else None
    return None if found is None else found.as_protocol()


async def _preferences(conn: Conn, patient_id: str, *, store: Store) -> dict[str, Any] | None:
    patient = await store.patients.get_patient(conn, patient_id)
    return patient.preferences if patient else None


async def release_dose(
    conn: Conn,
    deps: Deps,
    row: AppointmentRow,
    now: datetime,
    cause: str,
    rebook: bool = True,
    *,
    store: Store = REPOSITORY,
) -> list[AppointmentRow]:
    """A dose is off: cancel its integration session and (unless ``rebook`` is false)
    propose a replacement pair, spaced from every other dose of the patient."""
    therapist = None
    integration = await store.appointments.paired_integration(conn, row.series_id, row.sequence)
    if integration is not None:
        therapist = integration.resource
        await change_status(conn, integration, Status.cancelled, now, cause, store=store)
    if not rebook:
        return []
    prefs = await _preferences(conn, row.patient_id, store=store)
    protocol = await series_protocol(conn, row.series_id, store=store) or STANDARD
    not_before, not_after = rebook_window(row.start, now, protocol)
    booked = await propose_single(
        conn,
        deps,
        Proposal(row.patient_id, row.site_id, prefs, "rebooked", now),
        kind=Kind(row.kind),
        not_before=not_before,
        not_after=not_after,
        sequence=row.sequence,
        series_id=row.series_id,
        preferred_therapist=therapist,
        replaces=row.appointment_id,
        protocol=protocol,
        store=store,
    )
    if not isinstance(booked, Booked):
        return []
    return [
        r
        for aid in booked.appointment_ids
        if (r := await store.appointments.get_appointment(conn, aid)) is not None
    ]


async def rebook_integration(
    conn: Conn, deps: Deps, row: AppointmentRow, now: datetime, *, store: Store = REPOSITORY
) -> Outcome | None:
    """A cancelled or missed integration: a new one inside its window (1..3 days after
    its dose) with a therapist free, the same one where possible; if none is free, the
    dose goes without (logged: nothing else can be offered inside the window)."""
    dose = await store.appointments.series_dose(conn, row.series_id, row.sequence)
    if dose is None or dose.status not in OCCUPYING:
        return None  # its dose is off too: the dose's replacement brings its own integration
    prefs = await _preferences(conn, row.patient_id, store=store)
    result = await propose_integration(
        conn,
        deps,
        Proposal(row.patient_id, row.site_id, prefs, "rebooked", now),
        dose_start=dose.start,
        sequence=row.sequence,
        series_id=row.series_id,
        preferred_therapist=row.resource,
        replaces=row.appointment_id,
        protocol=await series_protocol(conn, row.series_id, store=store) or STANDARD,
        store=store,
    )
    if not isinstance(result, Booked):
        log.info("integration_not_rebooked", patient_id=row.patient_id, result=str(result))
    return result


async def propose_worsening(
    conn: Conn,
    deps: Deps,
    patient_id: str,
    site_id: str,
    prefs: dict[str, Any] | None,
    now: datetime,
    submitted_at: datetime | None = None,
    *,
    store: Store = REPOSITORY,
) -> Outcome | None:
    """A maintenance session within ``worsening_within``: none if one already falls in
    time, or if a dose has begun since the check-in was submitted; a later pending one is
    moved forward (booked anew, then the old one cancelled), so there are never two
    pending."""
    p = Proposal(patient_id, site_id, prefs, "worsening", now)
    pending = await store.appointments.pending_maintenance(conn, p.patient_id, p.now)
    action = on_worsening(
        p.now,
        pending.start if pending else None,
        deps.maintenance,
        submitted_at=submitted_at,
        last_dose_start=(
            await store.appointments.last_dose_started(conn, p.patient_id, p.now)
            if submitted_at
            else None
        ),
    )
    if action is OnWorsening.keep:
        log.info("maintenance_pending", patient_id=p.patient_id, purpose="worsening")
        return None
    if action is OnWorsening.answered:
        log.info("worsening_answered", patient_id=p.patient_id)
        return None
    not_before, not_after = worsening_window(p.now, deps.maintenance)
    result = await propose_single(
        conn,
        deps,
        p,
        kind=Kind.maintenance,
        not_before=not_before,
        not_after=not_after,
        ignoring=pending.appointment_id if pending else None,
        store=store,
    )
    if pending is not None and isinstance(result, Booked):
        await change_status(
            conn, pending, Status.cancelled, p.now, cause="moved_forward", store=store
        )
        paired = await store.appointments.paired_integration(
            conn, pending.series_id, pending.sequence
        )
        if paired is not None:
            await change_status(
                conn, paired, Status.cancelled, p.now, cause="moved_forward", store=store
            )
    return result


# --- the waitlist's retries ------------------------------------------------------


@metrics.counted_on_commit
async def retry_waitlist(deps: Deps, site_id: str, *, store: Store = REPOSITORY) -> int:
    """Try again for the site's waiting patients (capacity freed, or the site appeared)."""
    booked = 0
    async with deps.pool.acquire() as conn, conn.transaction():
        entries = await store.waitlist.for_site(conn, site_id, deps.planning.waitlist_retry_batch)
        for entry in entries:
            result = await retry(conn, deps, entry, store=store)
            booked += isinstance(result, Booked)
    return booked


async def retry_all_waitlists(deps: Deps, *, store: Store = REPOSITORY) -> None:
    async with deps.pool.acquire() as conn:
        sites = await store.waitlist.sites(conn)
    for site_id in sites:
        await retry_waitlist(deps, site_id, store=store)


async def retry(
    conn: Conn, deps: Deps, entry: WaitlistRow, *, store: Store = REPOSITORY
) -> Outcome | None:
    """What the entry waits for, proposed again: an induction series, a worsening
    patient's maintenance session, a rebooking in its series (keeping its kind and
    sequence), or a maintenance session."""
    now = deps.clock()
    p = Proposal(entry.patient_id, entry.site_id, entry.preferences, entry.purpose, now)
    if entry.purpose == "induction":
        patient = await store.patients.get_patient(conn, entry.patient_id)
        intake_id = patient.intake_id if patient else None
        return await propose_series(conn, deps, p, intake_id=intake_id, store=store)
    place = entry.place  # a rebooking keeps its series, kind and sequence
    if entry.purpose == "worsening" and place is None:
        return await propose_worsening(
            conn, deps, p.patient_id, p.site_id, p.prefs, now, store=store
        )
    if place is not None and place.kind == Kind.integration.value:
        return await _retry_integration(conn, deps, entry, now, store=store)
    if place is None:  # a maintenance session: placed within the maintenance slack
        span = RebookPolicy(min_span=deps.maintenance.slack)
        not_before, not_after = retry_window(entry.not_before, now, span)
        return await propose_single(
            conn,
            deps,
            p,
            kind=Kind.maintenance,
            not_before=not_before,
            not_after=not_after,
            store=store,
        )
    protocol = await series_protocol(conn, place.series_id, store=store)
    replaced = await store.appointments.replaced_dose_start(conn, place.series_id, place.sequence)
    if protocol is not None and replaced is not None:
        # the replacement's own window, as when the dose was first released
        not_before, not_after = rebook_window(replaced, now, protocol)
    else:
        span = RebookPolicy(min_span=deps.maintenance.slack)
        not_before, not_after = retry_window(entry.not_before, now, span)
    return await propose_single(
        conn,
        deps,
        p,
        kind=Kind(place.kind),
        not_before=not_before,
        not_after=not_after,
        sequence=place.sequence,
        series_id=place.series_id,
        protocol=protocol,
        store=store,
    )


async def _retry_integration(
    conn: Conn, deps: Deps, entry: WaitlistRow, now: datetime, *, store: Store
) -> Outcome | None:
    """An integration rebooking that waited (its patient was held): booked if its window
    is still open, else dropped (nothing can be offered inside it any more)."""
    assert entry.place is not None
    place = entry.place
    replaced = await store.appointments.released_integration(conn, place.series_id, place.sequence)
    result = None
    if replaced is not None:
        result = await rebook_integration(conn, deps, replaced, now, store=store)
    waiting = isinstance(result, Waitlisted) and result.reason == Withheld.on_hold.value
    if not isinstance(result, Booked) and not waiting:
        await store.waitlist.remove(conn, entry.patient_id, entry.purpose, place)
    return result
