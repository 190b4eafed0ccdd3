"""The shell around the pure slot search: load the calendar, plan, book, or waitlist
(``plan_and_book``; what each kind of proposal plans is proposals.py).

Booking is optimistic: the plan is inserted under a savepoint, and PostgreSQL's
exclusion constraints refuse it if another worker booked an overlapping slot
meanwhile; the loser reloads the calendar and plans again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from services.scheduling.deps import Deps
from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.clearance import Withheld, waits, withheld
from services.scheduling.domain.model import (
    NoFit,
    PlannedSession,
    Protocol,
    SeriesPlan,
    SinglePlan,
    Site,
    protocol_numbers,
)
from services.scheduling.planner.store import Store
from services.scheduling.rows import NewSeries, NewSession, Place, SlotTaken, StandingRow
from services.scheduling.settings import SOURCE
from shared import events, metrics, outbox
from shared.db import Conn
from shared.logging import get_logger

log = get_logger(__name__)

PatientBusy = list[tuple[datetime, datetime]]
Found = SeriesPlan | SinglePlan | NoFit
# (site, protocol, calendar, the patient's busy times, the patient's dose starts)
Planner = Callable[[Site, Protocol, Calendar, PatientBusy, list[datetime]], Found]


# Counted once the booking's transaction committed (shared.metrics.after_commit).
SERIES_PROPOSED = Counter(
    "series_proposed_total",
    "Plans booked as proposed appointments (a series, a maintenance session or a "
    "replacement pair), by purpose",
    ["purpose"],
)
SERIES_WAITLISTED = Counter(
    "series_waitlisted_total",
    "Patients put on the waitlist (not counting retries still waiting), by purpose and reason",
    ["purpose", "reason"],
)
APPOINTMENTS_PROPOSED = Counter(
    "appointments_proposed_total", "Appointments proposed, by session kind", ["kind"]
)
SERIES_WITHHELD = Counter(
    "proposals_withheld_total",
    "Automatic proposals not made (patient not cleared, discharged or on hold), by reason",
    ["purpose", "reason"],
)


@dataclass(frozen=True, slots=True)
class Proposal:
    """Whom a plan is for and why: what every proposal has."""

    patient_id: str
    site_id: str
    prefs: dict[str, Any] | None  # the patient's preferences as stored (Preferences.stored)
    purpose: str  # induction | post_induction | maintenance | worsening | rebooked
    now: datetime


@dataclass(frozen=True)
class Booked:
    series_id: str
    appointment_ids: tuple[str, ...]
    relaxed: tuple[str, ...]


@dataclass(frozen=True)
class Waitlisted:
    reason: str


@dataclass(frozen=True)
class NotProposed:
    """An automatic proposal the patient may not have (clearance.Withheld); nothing
    was booked or waitlisted."""

    reason: Withheld


Outcome = Booked | Waitlisted | NotProposed
Wait = Callable[[str], Awaitable[Waitlisted]]


async def waitlist_patient(
    conn: Conn,
    p: Proposal,
    reason: str,
    not_before: datetime | None,
    place: Place | None,
    *,
    store: Store,
) -> Waitlisted:
    """The patient waits (an entry per purpose and place); the first time, an event says so."""
    if await store.waitlist.add(
        conn, p.patient_id, p.site_id, p.purpose, reason, p.prefs, not_before, place
    ):
        payload = events.SeriesWaitlisted(
            patient_id=p.patient_id,
            site_id=p.site_id,
            purpose=p.purpose,
            reason=reason,
            waitlisted_at=p.now,
        )
        await outbox.enqueue(
            conn, events.new_event(payload, source=SOURCE, subject=p.patient_id, time=p.now)
        )
        metrics.after_commit(SERIES_WAITLISTED.labels(p.purpose, reason).inc)
    log.info(
        "waitlisted", patient_id=p.patient_id, site_id=p.site_id, purpose=p.purpose, reason=reason
    )
    return Waitlisted(reason)


@dataclass(frozen=True, slots=True)
class Into:
    """Where a plan is booked: its series (None: a new one), the appointment its first
    session replaces, the intake it answers, the waitlist entry it answers."""

    series_id: str | None = None
    replaces: str | None = None
    intake_id: str | None = None
    place: Place | None = None


def _proposed(
    p: Proposal, series_id: str, sessions: list[NewSession], relaxed: tuple[str, ...]
) -> list[tuple[str, str, str, bytes]]:
    """The sessions' ``appointment.proposed`` events, as outbox rows (shared.outbox.row)."""
    return [
        outbox.row(
            events.new_event(
                events.AppointmentProposed(
                    appointment_id=s.appointment_id,
                    series_id=series_id,
                    patient_id=p.patient_id,
                    site_id=p.site_id,
                    kind=s.kind,
                    sequence=s.sequence,
                    status="proposed",
                    start=s.start,
                    end=s.end,
                    resource=s.resource,
                    reason=p.purpose,
                    relaxed=relaxed,
                ),
                source=SOURCE,
                subject=p.patient_id,
                time=p.now,
            )
        )
        for s in sessions
    ]


async def _book(
    conn: Conn,
    p: Proposal,
    found: SeriesPlan | SinglePlan,
    protocol: Protocol,
    into: Into,
    *,
    store: Store,
) -> Booked:
    """The sessions, their events and the waitlist entry they answer, in one statement
    (repository/series.py, book): the site's lock is held for as few round trips as can be."""
    sessions: tuple[PlannedSession, ...] = tuple(found.sessions)
    sid = into.series_id or str(uuid.uuid4())
    ids = tuple(str(uuid.uuid4()) for _ in sessions)
    new = [
        NewSession(
            appointment_id=aid,
            kind=s.kind.value,
            sequence=s.sequence,
            start=s.start,
            end=s.end,
            resource=s.resource,
            replaces=into.replaces if i == 0 else None,  # the dose of a pair, or a lone session
        )
        for i, (aid, s) in enumerate(zip(ids, sessions, strict=True))
    ]
    row = NewSeries(
        sid,
        p.patient_id,
        p.site_id,
        p.purpose,
        protocol.name,
        found.relaxed,
        protocol_numbers(protocol),
        into.intake_id,
    )
    proposed = _proposed(p, sid, new, found.relaxed)
    async with conn.transaction():  # a savepoint: a lost race undoes only this attempt
        await store.series.book(
            conn,
            row,
            new=into.series_id is None,
            sessions=new,
            events=proposed,
            place=into.place,
        )
    metrics.after_commit(SERIES_PROPOSED.labels(p.purpose).inc)
    for s in sessions:
        metrics.after_commit(APPOINTMENTS_PROPOSED.labels(s.kind.value).inc)
    return Booked(series_id=sid, appointment_ids=ids, relaxed=found.relaxed)


async def plan_and_book(
    conn: Conn,
    deps: Deps,
    p: Proposal,
    plan: Planner,
    wait: Wait,
    into: Into,
    *,
    protocol: Protocol | None = None,
    ignoring: str | None = None,
    standing: StandingRow | None = None,
    store: Store,
) -> Outcome:
    """Plan on the current calendar and book; re-plan after losing a race; else waitlist.

    Every automatic proposal passes here, so this is where clearance and the hold are
    checked (services/scheduling/domain/clearance.py): a patient who may not be
    scheduled gets nothing; a held one waits on the waitlist until the hold lifts.
    ``standing``: the patient's as the caller just read it under their lock (else read
    here).
    """
    if standing is None:
        standing = await store.patients.standing(conn, p.patient_id)
    reason = withheld(standing.as_standing() if standing is not None else None)
    if reason is not None:
        log.info(
            "proposal_withheld", patient_id=p.patient_id, purpose=p.purpose, reason=reason.value
        )
        metrics.after_commit(SERIES_WITHHELD.labels(p.purpose, reason.value).inc)
        if waits(reason):
            return await wait(reason.value)
        await store.waitlist.remove(conn, p.patient_id, p.purpose, into.place)
        return NotProposed(reason)
    # read under the patient's lock, before the site's, so the site's lock is held for less
    mine, doses = await store.appointments.patient_times(conn, p.patient_id, p.now, ignoring)
    site_row = await store.sites.serialized_site(conn, p.site_id)
    if site_row is None:
        return await wait("site_not_configured")
    protocol = protocol or site_row.as_protocol()
    site = site_row.as_site()
    for attempt in range(deps.planning.replan_attempts):
        if attempt:
            mine, doses = await store.appointments.patient_times(
                conn, p.patient_id, p.now, ignoring
            )
        calendar = await deps.calendars.calendar(conn, site.site_id, p.now)
        found = plan(site, protocol, calendar, mine, doses)
        if isinstance(found, NoFit):
            return await wait(found.reason)
        try:
            return await _book(conn, p, found, protocol, into, store=store)
        except SlotTaken:
            log.info("replan_after_lost_race", patient_id=p.patient_id, site_id=p.site_id)
            deps.calendars.invalidate(p.site_id)
    return await wait("contention")
