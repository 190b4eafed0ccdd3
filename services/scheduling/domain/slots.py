"""Slot search: a whole induction series, or one dose with its integration session.

Rules (DOMAIN.md, "The treatment, as a patient lives it" and "People and places"):
each dose holds one room for ``dosing_minutes``; each is followed by an
integration session with a therapist 1-3 local days later, never on the dosing
day, with the same therapist where possible; doses keep ``min_gap`` apart and
the rolling weekly cap; every session lies inside the site's opening hours in
local time, starts at least ``min_lead`` after ``now`` and overlaps no other
session of the patient. Preferences that cannot be honoured are relaxed, most
specific first, and named in the plan ("proposed as close as possible and says
why").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from services.scheduling.domain.calendar import Calendar, Interval, utc
from services.scheduling.domain.grid import NO_FILTER, ONE_DAY, DayFilter
from services.scheduling.domain.model import (
    FitFailure,
    Kind,
    NoFit,
    PlannedSession,
    Preferences,
    Protocol,
    Relaxed,
    SeriesPlan,
    SinglePlan,
    Site,
)
from services.scheduling.domain.search import Searcher

Level = tuple[DayFilter, tuple[str, ...]]  # the filter, and the preferences it drops


def preference_levels(prefs: Preferences) -> list[Level]:
    """All preferences; then without time of day; then none. Levels that would
    repeat the previous one are left out; the last level always has no filter."""
    given = prefs.given()
    levels: list[Level] = [(DayFilter.of(prefs), ())]
    if Relaxed.time_of_day.value in given and Relaxed.weekdays.value in given:
        levels.append((DayFilter.of(replace(prefs, earliest=None, latest=None)), given[:1]))
    if given:
        levels.append((NO_FILTER, given))
    return levels


def _daytime_minutes(site: Site) -> int:
    """The longest opening of any weekday, in wall-clock minutes (a coarse check: the
    extra hour of a fall-back night is not counted)."""
    return max((c.hour * 60 + c.minute) - (o.hour * 60 + o.minute) for _, o, c in site.hours)


def structural_problem(site: Site, protocol: Protocol) -> NoFit | None:
    """A reason that no search can succeed at this site, whatever the calendar."""
    if not site.hours:
        return NoFit(FitFailure.site_closed_every_day.value)
    if site.rooms == 0:
        return NoFit(FitFailure.no_treatment_rooms.value)
    if site.therapists == 0:
        return NoFit(FitFailure.no_therapists.value)
    longest = max(protocol.dosing_minutes, protocol.integration_minutes)
    if _daytime_minutes(site) < longest:
        return NoFit(FitFailure.hours_too_short.value)
    return None


def _first_series(
    searcher: Searcher, level: DayFilter, until: datetime
) -> list[PlannedSession] | None:
    """The series with the earliest first day whose first dose starts before ``until``."""
    day: date = searcher.grid.local_date(searcher.earliest)
    last = searcher.grid.local_date(until)
    while day <= last:
        if level.allows_day(day) and searcher.grid.is_open(day):
            found = searcher.series_from(day, level, until)
            if found is not None:
                return found
        day += ONE_DAY
    return None


def _plan(sessions: list[PlannedSession], relaxed: tuple[str, ...]) -> SeriesPlan:
    ordered = tuple(sorted(sessions, key=lambda s: s.start))
    return SeriesPlan(sessions=ordered, relaxed=relaxed, first_start=ordered[0].start)


def find_series(
    site: Site,
    calendar: Calendar,
    protocol: Protocol,
    prefs: Preferences,
    now: datetime,
    *,
    horizon: timedelta = timedelta(days=90),
    pref_patience: timedelta = timedelta(days=14),
    patient_busy: Sequence[Interval] = (),
    patient_doses: Sequence[datetime] = (),
) -> SeriesPlan | NoFit:
    """Plan a whole induction series: ``protocol.doses`` doses, each with its integration.

    Per candidate first day (local dates from ``now + min_lead`` on), greedily:
    the first dose at the earliest slot of that day whose integration also fits,
    each integration at the earliest slot 1..3 days after its dose (the series'
    therapist, chosen at the first integration, first), each later dose at the
    earliest slot from ``previous + min_gap`` that keeps the rolling cap; every
    dose must start within ``window`` of the first, or that day fails.

    Preferences: without any, the earliest first day whose first dose starts
    before ``now + horizon`` wins. With some, the level with all of them, then
    the one without time of day, is searched over first doses starting no later
    than ``pref_patience`` after that earliest series; failing both, that
    earliest series is proposed with every given preference in ``relaxed``.
    """
    now = utc(now)
    problem = structural_problem(site, protocol)
    if problem is not None:
        return problem
    searcher = Searcher(site, calendar, protocol, now, patient_busy, patient_doses)
    levels = preference_levels(prefs)
    base_filter, base_relaxed = levels[-1]
    base = _first_series(searcher, base_filter, now + horizon)
    if base is None:
        return NoFit(FitFailure.no_capacity_within_horizon.value)
    patience_end = min(now + horizon, base[0].start + pref_patience + timedelta.resolution)
    for level, relaxed in levels[:-1]:
        found = _first_series(searcher, level, patience_end)
        if found is not None:
            return _plan(found, relaxed)
    return _plan(base, base_relaxed)


def find_single(
    site: Site,
    calendar: Calendar,
    protocol: Protocol,
    prefs: Preferences,
    now: datetime,
    *,
    kind: Kind,
    not_before: datetime,
    not_after: datetime,
    sequence: int,
    preferred_therapist: str | None = None,
    patient_busy: Sequence[Interval] = (),
    patient_doses: Sequence[datetime] = (),
) -> SinglePlan | NoFit:
    """One dose (``Kind.dosing`` or ``Kind.maintenance``) starting in [not_before, not_after]
    and at least ``min_lead`` after ``now``, with its integration session 1..3 days later.

    Used for maintenance (DOMAIN.md: "first maintenance 4 weeks after" the last
    induction dose, "within 7 days when a patient worsens") and for rebooking a
    cancelled, missed or deferred dose. ``preferred_therapist`` is kept when free
    anywhere in the 1..3 days. ``series_doses`` are the starts of the series'
    other live doses: the new one keeps ``min_gap`` and the rolling cap with them.
    Preference levels as in ``find_series``, each over the whole window (it is
    already the clinically acceptable range); the earliest fit of the first
    level that has one wins.
    """
    if kind is Kind.integration:
        raise ValueError("find_single places a dose (dosing or maintenance), not an integration")
    now, not_before, not_after = utc(now), utc(not_before), utc(not_after)
    problem = structural_problem(site, protocol)
    if problem is not None:
        return problem
    searcher = Searcher(site, calendar, protocol, now, patient_busy, patient_doses)
    accept = searcher.spacing.allows if searcher.spacing else None
    days = (searcher.grid.local_date(not_before), searcher.grid.local_date(not_after))
    until = not_after + timedelta.resolution  # a start at not_after itself is inside
    for level, relaxed in preference_levels(prefs):
        candidates = searcher.doses(level, days, not_before, until, (), accept)
        found = searcher.pair(candidates, level, (), preferred_therapist, sequence, kind)
        if found is not None:
            return SinglePlan(sessions=found, relaxed=relaxed)
    return NoFit(FitFailure.no_capacity_within_window.value)
