"""Slot search: a whole induction series, or one dose with its integration session.

Rules (docs/domain.md, "The treatment, as a patient lives it", "People and
places" and "Who is scheduled, and when"): each dose holds one room for
``dosing_minutes``; each is followed by an integration session with a therapist
1-3 local days later, never on the dosing day, with the same therapist where
possible; every dose keeps ``min_gap`` from each of the patient's other doses
(``patient_doses``: every proposed, confirmed or completed dose of the patient)
and from the plan's own, and no rolling 7 days holds more than
``max_doses_per_7_days`` of them; every session lies inside the site's opening
hours in local time, starts at least ``min_lead`` after ``now`` and overlaps no
other session of the patient. Preferences apply to doses (integrations keep the
time window); those that cannot be honoured are relaxed in ``preference_levels``'
order, and the plan names them (every appointment says what gave way, ``relaxed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import NamedTuple

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


class Level(NamedTuple):
    """One step of relaxation: the filter of the doses, that of their integrations,
    and the preferences it drops."""

    doses: DayFilter
    integrations: DayFilter
    relaxed: tuple[str, ...]


def preference_levels(prefs: Preferences, site: Site) -> list[Level]:
    """docs/domain.md ("Preferences and how they are relaxed"): the weekdays give way
    first, keeping the time window; then the time window, keeping the weekdays; only
    then both. Preferences apply to doses; integrations keep only the time window.

    (a) everything; (b) no weekdays, the time window; (c) the weekdays, no time
    window; (d) nothing. A level identical to an earlier one is left out, and
    ``relaxed`` names only preferences that were given; the last level always
    filters nothing (it is (d), or identical to it).
    """
    given = prefs.given()
    every = DayFilter.of(prefs, site.timezone)
    window = DayFilter.of(replace(prefs, weekdays=None), site.timezone)
    days = DayFilter.of(replace(prefs, earliest=None, latest=None), site.timezone)
    weekdays, time_of_day = Relaxed.weekdays.value, Relaxed.time_of_day.value
    steps = [
        Level(every, window, ()),
        Level(window, window, (weekdays,)),
        Level(days, NO_FILTER, (time_of_day,)),
        Level(NO_FILTER, NO_FILTER, (weekdays, time_of_day)),
    ]
    levels: list[Level] = []
    for step in steps:
        if all((step.doses, step.integrations) != (lv.doses, lv.integrations) for lv in levels):
            levels.append(step._replace(relaxed=tuple(r for r in step.relaxed if r in given)))
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


def _first_series(searcher: Searcher, level: Level, until: datetime) -> list[PlannedSession] | None:
    """The series with the earliest first day whose first dose starts before ``until``."""
    day: date = searcher.grid.local_date(searcher.earliest)
    last = searcher.grid.local_date(until)
    while day <= last:
        if level.doses.allows_day(day) and searcher.grid.is_open(day) and searcher.has_room(day):
            found = searcher.series_from(day, level.doses, level.integrations, until)
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

    ``patient_doses``: the starts of the patient's other proposed, confirmed or
    completed doses (a cancelled or missed one gave no dose); every dose of the series
    keeps the gap and the cap with them too.

    Preferences: without any, the earliest first day whose first dose starts
    before ``now + horizon`` wins. With some, each level of ``preference_levels``
    but the last (all; no weekdays; no time window) in turn is searched over
    first doses starting no later than ``pref_patience`` after that earliest
    series, and the first that fits wins; failing all, that earliest series is
    proposed with every given preference in ``relaxed``.
    """
    now = utc(now)
    problem = structural_problem(site, protocol)
    if problem is not None:
        return problem
    searcher = Searcher(site, calendar, protocol, now, patient_busy, patient_doses)
    levels = preference_levels(prefs, site)
    base = _first_series(searcher, levels[-1], now + horizon)
    if base is None:
        return NoFit(FitFailure.no_capacity_within_horizon.value)
    patience_end = min(now + horizon, base[0].start + pref_patience + timedelta.resolution)
    for level in levels[:-1]:
        found = _first_series(searcher, level, patience_end)
        if found is not None:
            return _plan(found, level.relaxed)
    return _plan(base, levels[-1].relaxed)


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

    Used for maintenance (docs/domain.md, "Maintenance": one protocol interval after
    the last induction dose's end, or within 7 days when a patient worsens) and for rebooking a
    cancelled, missed or deferred dose. ``preferred_therapist`` is kept when free
    anywhere in the 1..3 days. ``patient_doses`` are the starts of every other
    proposed, confirmed or completed dose of the patient (induction, rebooked,
    maintenance; the caller leaves out the dose being replaced): the new one
    keeps ``min_gap`` and the rolling cap with them. Preference levels as in
    ``find_series``, each over the whole window (it is already the clinically
    acceptable range); the earliest fit of the first level that has one wins.
    """
    if kind is Kind.integration:
        raise ValueError("find_single places a dose (dosing or maintenance), not an integration")
    now, not_before, not_after = utc(now), utc(not_before), utc(not_after)
    problem = structural_problem(site, protocol)
    if problem is not None:
        return problem
    searcher = Searcher(site, calendar, protocol, now, patient_busy, patient_doses)
    spaced = (
        searcher.spacing.blocked((), not_before, not_after).next_allowed
        if searcher.spacing
        else None
    )
    days = (searcher.grid.local_date(not_before), searcher.grid.local_date(not_after))
    until = not_after + timedelta.resolution  # a start at not_after itself is inside
    for level in preference_levels(prefs, site):
        candidates = searcher.doses(level.doses, days, not_before, until, (), spaced)
        found = searcher.pair(
            candidates, level.integrations, (), preferred_therapist, sequence, kind
        )
        if found is not None:
            return SinglePlan(sessions=found, relaxed=level.relaxed)
    return NoFit(FitFailure.no_capacity_within_window.value)
