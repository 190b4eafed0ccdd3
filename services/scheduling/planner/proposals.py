"""What each automatic proposal plans: a whole induction series, one dose with its
integration session, a lone integration session; each planned, booked or waitlisted by
booking.py ``plan_and_book``."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import partial

from services.scheduling.deps import Deps
from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.clearance import Withheld
from services.scheduling.domain.integration import find_integration
from services.scheduling.domain.model import (
    Kind,
    NoFit,
    Preferences,
    Protocol,
    SeriesPlan,
    Site,
)
from services.scheduling.domain.slots import find_series, find_single
from services.scheduling.planner.booking import (
    Found,
    Into,
    Outcome,
    PatientBusy,
    Proposal,
    Waitlisted,
    plan_and_book,
    waitlist_patient,
)
from services.scheduling.planner.store import REPOSITORY, Store
from services.scheduling.rows import Place, StandingRow
from shared.db import Conn


async def propose_series(
    conn: Conn,
    deps: Deps,
    p: Proposal,
    *,
    intake_id: str | None = None,
    standing: StandingRow | None = None,
    store: Store = REPOSITORY,
) -> Outcome:
    """Plan and book a whole induction series, or waitlist the patient with the reason.
    ``standing``: the patient's, when the caller has just read it under their lock."""

    def plan(
        site: Site, protocol: Protocol, calendar: Calendar, mine: PatientBusy, doses: list[datetime]
    ) -> Found:
        return find_series(
            site,
            calendar,
            protocol,
            Preferences.stored(p.prefs),
            p.now,
            horizon=deps.planning.horizon,
            pref_patience=deps.planning.pref_patience,
            patient_busy=mine,
            patient_doses=doses,
        )

    wait = partial(waitlist_patient, conn, p, not_before=None, place=None, store=store)
    into = Into(intake_id=intake_id)
    return await plan_and_book(conn, deps, p, plan, wait, into, standing=standing, store=store)


async def propose_single(
    conn: Conn,
    deps: Deps,
    p: Proposal,
    *,
    kind: Kind,
    not_before: datetime,
    not_after: datetime,
    sequence: int = 1,
    series_id: str | None = None,
    preferred_therapist: str | None = None,
    replaces: str | None = None,
    protocol: Protocol | None = None,
    ignoring: str | None = None,
    store: Store = REPOSITORY,
) -> Outcome:
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
            Preferences.stored(p.prefs),
            p.now,
            kind=kind,
            not_before=not_before,
            not_after=not_after,
            sequence=sequence,
            preferred_therapist=preferred_therapist,
            patient_busy=mine,
            patient_doses=doses,
        )

    place = Place(series_id, sequence, kind.value) if series_id else None
    wait = partial(waitlist_patient, conn, p, not_before=not_before, place=place, store=store)
    into = Into(series_id=series_id, replaces=replaces, place=place)
    return await plan_and_book(
        conn, deps, p, plan, wait, into, protocol=protocol, ignoring=ignoring, store=store
    )


async def propose_integration(
    conn: Conn,
    deps: Deps,
    p: Proposal,
    *,
    dose_start: datetime,
    sequence: int,
    series_id: str,
    preferred_therapist: str | None,
    replaces: str,
    protocol: Protocol,
    store: Store = REPOSITORY,
) -> Outcome:
    """A lone integration session for a dose whose integration was cancelled or missed
    (purpose ``rebooked``). Its window is a few days, so when nothing fits nothing waits
    (a ``Waitlisted`` with the reason is returned, but no waitlist entry is made); a held
    patient's waits for the hold to lift (then its window may have passed: nothing is
    booked)."""
    p = replace(p, purpose="rebooked")

    def plan(
        site: Site, protocol: Protocol, calendar: Calendar, mine: PatientBusy, doses: list[datetime]
    ) -> Found:
        found = find_integration(
            site,
            calendar,
            protocol,
            Preferences.stored(p.prefs),
            p.now,
            dose_start=dose_start,
            sequence=sequence,
            preferred_therapist=preferred_therapist,
            patient_busy=mine,
        )
        if isinstance(found, NoFit):
            return found
        session, relaxed = found
        return SeriesPlan(sessions=(session,), relaxed=relaxed, first_start=session.start)

    place = Place(series_id, sequence, Kind.integration.value)

    async def wait(reason: str) -> Waitlisted:
        if reason == Withheld.on_hold.value:  # the hold lifts: it is tried again then
            return await waitlist_patient(conn, p, reason, None, place, store=store)
        return Waitlisted(reason)

    into = Into(series_id=series_id, replaces=replaces, place=place)
    return await plan_and_book(conn, deps, p, plan, wait, into, protocol=protocol, store=store)
