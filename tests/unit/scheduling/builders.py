"""Builders for the scheduling unit tests, and an independent checker of every rule.

``violations`` re-reads docs/domain.md's rules straight from a plan (local times via
``zoneinfo``, nothing shared with the search), so that tests and properties can
assert ``violations(...) == []`` and see every broken rule at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.model import (
    STANDARD,
    WEEKDAYS,
    Busy,
    Kind,
    PlannedSession,
    Preferences,
    Protocol,
    Site,
    Weekday,
    weekly_hours,
)

WEEK: tuple[Weekday, ...] = WEEKDAYS
WORKDAYS: tuple[Weekday, ...] = WEEKDAYS[:5]
DOSES = (Kind.dosing, Kind.maintenance)
NO_PREFS = Preferences()


def site(
    *,
    timezone: str = "America/New_York",
    days: Iterable[Weekday] = WORKDAYS,
    opens: time = time(8),
    closes: time = time(18),
    rooms: int = 2,
    therapists: int = 2,
) -> Site:
    hours = weekly_hours({day: (opens, closes) for day in days})
    return Site("site-a", timezone, hours, rooms, therapists)


def local(site_: Site, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local wall time at the site, as an aware UTC datetime (fold=0)."""
    wall = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(site_.timezone))
    return wall.astimezone(UTC)


def local_of(site_: Site, moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(site_.timezone))


def local_day(site_: Site, moment: datetime) -> date:
    return local_of(site_, moment).date()


def busy_all_day(resource: str, site_: Site, day: date) -> Busy:
    """``resource`` booked for the whole local ``day``."""
    zone = ZoneInfo(site_.timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return Busy(resource, start.astimezone(UTC), end.astimezone(UTC))


def doses_of(sessions: Sequence[PlannedSession]) -> list[PlannedSession]:
    return [s for s in sessions if s.kind in DOSES]


def integrations_of(sessions: Sequence[PlannedSession]) -> list[PlannedSession]:
    return [s for s in sessions if s.kind is Kind.integration]


def _session_rules(
    s: PlannedSession, site_: Site, protocol: Protocol, prefs: Preferences, earliest: datetime
) -> list[str]:
    problems: list[str] = []
    start, end = local_of(site_, s.start), local_of(site_, s.end)
    name = f"{s.kind.value} {s.sequence} at {start.isoformat()}"
    hours = site_.hours_on(WEEKDAYS[start.weekday()])
    if hours is None or start.date() != end.date():
        problems.append(f"{name}: not within one open local day")
    elif start.time() < hours[0] or end.time() > hours[1]:
        problems.append(f"{name}: outside opening hours {hours}")
    if (start.hour * 60 + start.minute) % protocol.slot_step_minutes or start.second:
        problems.append(f"{name}: off the {protocol.slot_step_minutes}-minute grid")
    if s.start < earliest:
        problems.append(f"{name}: sooner than now + min_lead")
    minutes = (
        protocol.integration_minutes if s.kind is Kind.integration else protocol.dosing_minutes
    )
    if s.end - s.start != timedelta(minutes=minutes):
        problems.append(f"{name}: lasts {s.end - s.start}, not {minutes} real minutes")
    pool = site_.therapist_ids() if s.kind is Kind.integration else site_.room_ids()
    if s.resource not in pool:
        problems.append(f"{name}: {s.resource} is not one of {pool}")
    # Preferences are read in their own zone, else the site's; weekdays bind doses
    # only, the time window every session (docs/domain.md, "People and places").
    zone = ZoneInfo(prefs.timezone or site_.timezone)
    mine, mine_end = s.start.astimezone(zone), s.end.astimezone(zone)
    if (
        s.kind in DOSES
        and prefs.weekdays is not None
        and WEEKDAYS[mine.weekday()] not in prefs.weekdays
    ):
        problems.append(f"{name}: not on a preferred weekday")
    if prefs.earliest is not None and mine.time() < prefs.earliest:
        problems.append(f"{name}: starts before the preferred earliest")
    if prefs.latest is not None and (
        mine_end.date() != mine.date() or mine_end.time() > prefs.latest
    ):
        problems.append(f"{name}: ends after the preferred latest")
    return problems


def _pair_rules(
    sessions: Sequence[PlannedSession], site_: Site, protocol: Protocol, sequence: int
) -> list[str]:
    doses = [s for s in doses_of(sessions) if s.sequence == sequence]
    integrations = [s for s in integrations_of(sessions) if s.sequence == sequence]
    if len(doses) != 1 or len(integrations) != 1:
        return [f"sequence {sequence}: {len(doses)} doses, {len(integrations)} integrations"]
    after = (local_day(site_, integrations[0].start) - local_day(site_, doses[0].start)).days
    if not protocol.integration_min_days <= after <= protocol.integration_max_days:
        return [f"sequence {sequence}: integration {after} local days after its dose"]
    return []


def violations(
    sessions: Sequence[PlannedSession],
    *,
    site_: Site,
    calendar: Calendar,
    now: datetime,
    protocol: Protocol = STANDARD,
    prefs: Preferences = NO_PREFS,
    patient_busy: Sequence[tuple[datetime, datetime]] = (),
    series: bool = True,
) -> list[str]:
    """Every rule of docs/domain.md that the plan breaks (empty when it keeps them all).

    ``prefs`` are the preferences the plan claims to honour (weekdays for doses,
    the time window for every session, read in ``prefs.timezone`` or the site's).
    With ``series`` the dose count, spacing, rolling cap and window of a whole
    series are checked.
    """
    problems: list[str] = []
    earliest = now + protocol.min_lead
    for s in sessions:
        problems += _session_rules(s, site_, protocol, prefs, earliest)
        if not calendar.is_free(s.resource, s.start, s.end):
            problems.append(f"{s.kind.value} {s.sequence}: {s.resource} is already booked")
    if list(sessions) != sorted(sessions, key=lambda s: s.start):
        problems.append("sessions are not ordered by start")
    ordered = sorted(sessions, key=lambda s: s.start)
    problems += [
        f"patient in two sessions at {b.start.isoformat()}"
        for a, b in pairwise(ordered)
        if b.start < a.end
    ]
    problems += [
        f"{s.kind.value} {s.sequence} overlaps the patient's other appointment {start}"
        for s in sessions
        for start, end in patient_busy
        if s.start < end and start < s.end
    ]
    for sequence in sorted({s.sequence for s in sessions}):
        problems += _pair_rules(sessions, site_, protocol, sequence)
    if series:
        problems += _series_rules(sessions, protocol)
    return problems


def _series_rules(sessions: Sequence[PlannedSession], protocol: Protocol) -> list[str]:
    problems: list[str] = []
    starts = [s.start for s in doses_of(sessions)]
    if sorted(s.sequence for s in doses_of(sessions)) != list(range(1, protocol.doses + 1)):
        problems.append(f"doses are not numbered 1..{protocol.doses}")
    if len(integrations_of(sessions)) != protocol.doses:
        problems.append(f"{len(integrations_of(sessions))} integrations for {protocol.doses}")
    problems += [
        f"doses {a} and {b} closer than {protocol.min_gap}"
        for a, b in pairwise(starts)
        if b - a < protocol.min_gap
    ]
    cap = protocol.max_doses_per_7_days
    problems += [
        f"{cap + 1} doses within 7 days from {starts[i]}"
        for i in range(len(starts) - cap)
        if starts[i + cap] - starts[i] < timedelta(days=7)
    ]
    if starts and starts[-1] - starts[0] >= protocol.window:
        problems.append(f"doses span {starts[-1] - starts[0]}, window {protocol.window}")
    return problems


def spacing_violations(starts: Iterable[datetime], protocol: Protocol) -> list[str]:
    """Every break of docs/domain.md's "Spacing counts every dose the patient has"
    among these dose starts: two closer than ``min_gap``, or more than
    ``max_doses_per_7_days`` within any 7 days (doses exactly 7 days apart are
    in different windows)."""
    ordered = sorted(starts)
    cap = protocol.max_doses_per_7_days
    problems = [
        f"doses at {a.isoformat()} and {b.isoformat()} closer than {protocol.min_gap}"
        for a, b in pairwise(ordered)
        if b - a < protocol.min_gap
    ]
    problems += [
        f"{cap + 1} doses within 7 days from {ordered[i].isoformat()}"
        for i in range(len(ordered) - cap)
        if ordered[i + cap] - ordered[i] < timedelta(days=7)
    ]
    return problems
