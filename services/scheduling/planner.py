"""The shell around the pure slot search: load the calendar, plan, book, or waitlist.

Booking is optimistic: the plan is inserted under a savepoint, and PostgreSQL's
exclusion constraints refuse it if another worker booked an overlapping slot
meanwhile; the loser reloads the calendar and plans again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time
from functools import partial
from typing import Any

import asyncpg
from prometheus_client import Counter

from services.scheduling import repository as repo
from services.scheduling.calendars import CalendarCache
from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.clearance import Standing, Withheld, waits, withheld
from services.scheduling.domain.integration import find_integration
from services.scheduling.domain.model import (
    PRESETS,
    STANDARD,
    Kind,
    NoFit,
    PlannedSession,
    Preferences,
    Protocol,
    SeriesPlan,
    SinglePlan,
    Site,
    protocol_from,
    protocol_numbers,
)
from services.scheduling.domain.slots import find_series, find_single
from services.scheduling.settings import SOURCE, SchedulingSettings
from shared import events, metrics, outbox
from shared.db import Conn
from shared.logging import get_logger

log = get_logger(__name__)

PatientBusy = list[tuple[datetime, datetime]]
Found = SeriesPlan | SinglePlan | NoFit


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
# One per process (API or worker); see services.scheduling.calendars for why it is safe.
CALENDARS = CalendarCache()


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


SERIES_WITHHELD = Counter(
    "proposals_withheld_total",
    "Automatic proposals not made (patient not cleared, discharged or on hold), by reason",
    ["purpose", "reason"],
)


def to_site(row: asyncpg.Record) -> Site:
    hours = tuple(
        (day, time.fromisoformat(v[0]), time.fromisoformat(v[1])) for day, v in row["hours"].items()
    )
    return Site(
        site_id=row["site_id"],
        timezone=row["timezone"],
        hours=hours,
        rooms=row["treatment_rooms"],
        therapists=row["therapists"],
    )


def to_preferences(raw: dict[str, Any] | None) -> Preferences:
    if not raw:
        return Preferences()
    weekdays = raw.get("weekdays")
    return Preferences(
        weekdays=frozenset(weekdays) if weekdays else None,
        earliest=time.fromisoformat(raw["earliest"]) if raw.get("earliest") else None,
        latest=time.fromisoformat(raw["latest"]) if raw.get("latest") else None,
        timezone=raw.get("timezone") or None,
    )


def to_protocol(name: str, numbers: dict[str, Any] | None) -> Protocol:
    """A protocol stored by name (a preset) and, since per-site protocols, its numbers."""
    base = PRESETS.get(name, STANDARD)
    return protocol_from(base, numbers, name=name) if numbers else base


def site_protocol(site_row: asyncpg.Record) -> Protocol:
    return to_protocol(site_row["protocol"], site_row["protocol_numbers"])


def to_standing(row: asyncpg.Record | None) -> Standing | None:
    if row is None:
        return None
    return Standing(
        decision=row["decision"],
        review=row["review"],
        discharged_at=row["discharged_at"],
        held=row["held_since"] is not None,
    )


async def _patient_times(
    conn: Conn, patient_id: str, since: datetime, ignoring: str | None
) -> tuple[list[tuple[datetime, datetime]], list[datetime]]:
    """(the patient's busy spans from ``since``, every dose start): read under the
    patient's lock, before the site's, so the site's lock is held for less."""
    mine = [(r["start_at"], r["end_at"]) for r in await repo.patient_busy(conn, patient_id, since)]
    return mine, await repo.patient_doses(conn, patient_id, ignoring)


async def _waitlist(
    conn: Conn,
    *,
    patient_id: str,
    site_id: str,
    purpose: str,
    reason: str,
    prefs: dict[str, Any] | None,
    not_before: datetime | None,
    now: datetime,
    place: tuple[str, int, str] | None = None,
) -> Waitlisted:
    if await repo.waitlist_add(
        conn, patient_id, site_id, purpose, reason, prefs, not_before, place
    ):
        payload = events.SeriesWaitlisted(
            patient_id=patient_id,
            site_id=site_id,
            purpose=purpose,
            reason=reason,
            waitlisted_at=now,
        )
        await outbox.enqueue(
            conn, events.new_event(payload, source=SOURCE, subject=patient_id, time=now)
        )
        metrics.after_commit(SERIES_WAITLISTED.labels(purpose, reason).inc)
    log.info("waitlisted", patient_id=patient_id, site_id=site_id, purpose=purpose, reason=reason)
    return Waitlisted(reason)


async def _book(
    conn: Conn,
    *,
    sessions: tuple[PlannedSession, ...],
    patient_id: str,
    site_id: str,
    purpose: str,
    protocol: Protocol,
    relaxed: tuple[str, ...],
    now: datetime,
    series_id: str | None = None,
    replaces: str | None = None,
    intake_id: str | None = None,
    place: tuple[str, int, str] | None = None,
) -> Booked:
    """The sessions, their events and the waitlist entry they answer, in one statement
    (repository.book): the site's lock is held for as few round trips as can be."""
    sid = series_id or str(uuid.uuid4())
    ids = tuple(str(uuid.uuid4()) for _ in sessions)
    proposed = [
        events.AppointmentProposed(
            appointment_id=aid,
            series_id=sid,
            patient_id=patient_id,
            site_id=site_id,
            kind=s.kind.value,
            sequence=s.sequence,
            status="proposed",
            start=s.start,
            end=s.end,
            resource=s.resource,
            reason=purpose,
            relaxed=relaxed,
        )
        for aid, s in zip(ids, sessions, strict=True)
    ]
    async with conn.transaction():  # a savepoint: a lost race undoes only this attempt
        await repo.book(
            conn,
            repo.NewSeries(
                sid,
                patient_id,
                site_id,
                purpose,
                protocol.name,
                relaxed,
                protocol_numbers(protocol),
                intake_id,
            ),
            new=series_id is None,
            sessions=[
                (
                    aid,
                    s.kind.value,
                    s.sequence,
                    s.start,
                    s.end,
                    s.resource,
                    replaces if i == 0 else None,  # the dose of a pair, or a lone session
                )
                for i, (aid, s) in enumerate(zip(ids, sessions, strict=True))
            ],
            events=[
                outbox.row(events.new_event(p, source=SOURCE, subject=patient_id, time=now))
                for p in proposed
            ],
            place=place,
        )
    metrics.after_commit(SERIES_PROPOSED.labels(purpose).inc)
    for s in sessions:
        metrics.after_commit(APPOINTMENTS_PROPOSED.labels(s.kind.value).inc)
    return Booked(series_id=sid, appointment_ids=ids, relaxed=relaxed)


# (site, protocol, calendar, the patient's busy times, the patient's dose starts)
Planner = Callable[[Site, Protocol, Calendar, PatientBusy, list[datetime]], Found]


async def _plan_and_book(
    conn: Conn,
    settings: SchedulingSettings,
    *,
    patient_id: str,
    site_id: str,
    purpose: str,
    now: datetime,
    plan: Planner,
    wait: Callable[..., Awaitable[Waitlisted]],
    series_id: str | None = None,
    replaces: str | None = None,
    protocol: Protocol | None = None,
    intake_id: str | None = None,
    ignoring: str | None = None,
    place: tuple[str, int, str] | None = None,
) -> Booked | Waitlisted | NotProposed:
    """Plan on the current calendar and book; re-plan after losing a race; else waitlist.

    Every automatic proposal passes here, so this is where clearance and the hold are
    checked (services/scheduling/domain/clearance.py): a patient who may not be
    scheduled gets nothing; a held one waits on the waitlist until the hold lifts.
    """
    reason = withheld(to_standing(await repo.standing(conn, patient_id)))
    if reason is not None:
        log.info("proposal_withheld", patient_id=patient_id, purpose=purpose, reason=reason.value)
        metrics.after_commit(SERIES_WITHHELD.labels(purpose, reason.value).inc)
        if waits(reason):
            return await wait(reason=reason.value)
        await repo.waitlist_remove(conn, patient_id, purpose, place)
        return NotProposed(reason)
    site_row = await repo.get_site(conn, site_id)
    if site_row is None:
        return await wait(reason="site_not_configured")
    mine, doses = await _patient_times(conn, patient_id, now, ignoring)
    await repo.serialize_site(conn, site_id)
    protocol = protocol or site_protocol(site_row)
    site = to_site(site_row)
    for attempt in range(settings.replan_attempts):
        if attempt:
            mine, doses = await _patient_times(conn, patient_id, now, ignoring)
        calendar = await CALENDARS.calendar(conn, site.site_id, now)
        found = plan(site, protocol, calendar, mine, doses)
        if isinstance(found, NoFit):
            return await wait(reason=found.reason)
        try:
            booked = await _book(
                conn,
                sessions=tuple(found.sessions),
                patient_id=patient_id,
                site_id=site_id,
                purpose=purpose,
                protocol=protocol,
                relaxed=found.relaxed,
                now=now,
                series_id=series_id,
                replaces=replaces,
                intake_id=intake_id,
                place=place,
            )
        except asyncpg.ExclusionViolationError:
            log.info("replan_after_lost_race", patient_id=patient_id, site_id=site_id)
            CALENDARS.invalidate(site_id)
            continue
        return booked
    return await wait(reason="contention")


async def propose_series(
    conn: Conn,
    settings: SchedulingSettings,
    *,
    patient_id: str,
    site_id: str,
    prefs: dict[str, Any] | None,
    now: datetime,
    purpose: str = "induction",
    intake_id: str | None = None,
) -> Booked | Waitlisted | NotProposed:
    """Plan and book a whole induction series, or waitlist the patient with the reason."""

    def plan(
        site: Site, protocol: Protocol, calendar: Calendar, mine: PatientBusy, doses: list[datetime]
    ) -> Found:
        return find_series(
            site,
            calendar,
            protocol,
            to_preferences(prefs),
            now,
            horizon=settings.horizon,
            pref_patience=settings.pref_patience,
            patient_busy=mine,
            patient_doses=doses,
        )

    wait = partial(
        _waitlist,
        conn,
        patient_id=patient_id,
        site_id=site_id,
        purpose=purpose,
        prefs=prefs,
        not_before=None,
        now=now,
    )
    return await _plan_and_book(
        conn,
        settings,
        patient_id=patient_id,
        site_id=site_id,
        purpose=purpose,
        now=now,
        plan=plan,
        wait=wait,
        intake_id=intake_id,
    )


async def propose_single(
    conn: Conn,
    settings: SchedulingSettings,
    *,
    patient_id: str,
    site_id: str,
    prefs: dict[str, Any] | None,
    now: datetime,
    purpose: str,
    kind: Kind,
    not_before: datetime,
    not_after: datetime,
    sequence: int = 1,
    series_id: str | None = None,
    preferred_therapist: str | None = None,
    replaces: str | None = None,
    protocol: Protocol | None = None,
    ignoring: str | None = None,
) -> Booked | Waitlisted | NotProposed:
    """One dose (maintenance or a rebooking) with its integration session, or waitlist.

    The dose keeps the protocol's spacing from every dose the patient has (all series,
    completed ones included) but ``ignoring`` (a pending dose it is to replace);
    ``protocol`` is the series' own when rebooking in one."""

    def plan(
        site: Site, protocol: Protocol, calendar: Calendar, mine: PatientBusy, doses: list[datetime]
    ) -> Found:
        return find_single(
            site,
            calendar,
            protocol,
            to_preferences(prefs),
            now,
            kind=kind,
            not_before=not_before,
            not_after=not_after,
            sequence=sequence,
            preferred_therapist=preferred_therapist,
            patient_busy=mine,
            patient_doses=doses,
        )

    place = (series_id, sequence, kind.value) if series_id else None
    wait = partial(
        _waitlist,
        conn,
        patient_id=patient_id,
        site_id=site_id,
        purpose=purpose,
        prefs=prefs,
        not_before=not_before,
        now=now,
        place=place,
    )
    return await _plan_and_book(
        conn,
        settings,
        patient_id=patient_id,
        site_id=site_id,
        purpose=purpose,
        now=now,
        plan=plan,
        wait=wait,
        series_id=series_id,
        replaces=replaces,
        protocol=protocol,
        ignoring=ignoring,
        place=place,
    )


async def propose_integration(
    conn: Conn,
    settings: SchedulingSettings,
    *,
    patient_id: str,
    site_id: str,
    prefs: dict[str, Any] | None,
    now: datetime,
    dose_start: datetime,
    sequence: int,
    series_id: str,
    preferred_therapist: str | None,
    replaces: str,
    protocol: Protocol,
) -> Booked | Waitlisted | NotProposed:
    """A lone integration session for a dose whose integration was cancelled or missed.
    Its window is a few days, so when nothing fits nothing waits (a ``Waitlisted`` with
    the reason is returned, but no waitlist entry is made); a held patient's waits for
    the hold to lift (then its window may have passed: nothing is booked)."""

    def plan(
        site: Site, protocol: Protocol, calendar: Calendar, mine: PatientBusy, doses: list[datetime]
    ) -> Found:
        found = find_integration(
            site,
            calendar,
            protocol,
            to_preferences(prefs),
            now,
            dose_start=dose_start,
            sequence=sequence,
            preferred_therapist=preferred_therapist,
            patient_busy=mine,
        )
        if isinstance(found, NoFit):
            return found
        session, relaxed = found
        return SeriesPlan(sessions=(session,), relaxed=relaxed, first_start=session.start)

    place = (series_id, sequence, Kind.integration.value)

    async def wait(reason: str) -> Waitlisted:
        if reason == Withheld.on_hold.value:  # the hold lifts: it is tried again then
            return await _waitlist(
                conn,
                patient_id=patient_id,
                site_id=site_id,
                purpose="rebooked",
                reason=reason,
                prefs=prefs,
                not_before=None,
                now=now,
                place=place,
            )
        return Waitlisted(reason)

    result = await _plan_and_book(
        conn,
        settings,
        patient_id=patient_id,
        site_id=site_id,
        purpose="rebooked",
        now=now,
        plan=plan,
        wait=wait,
        series_id=series_id,
        replaces=replaces,
        protocol=protocol,
        place=place,
    )
    return result
