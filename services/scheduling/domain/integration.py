"""Rebooking a lone integration session inside its window.

docs/domain.md ("Lifecycle"): a cancelled or missed integration session is rebooked
inside its window, ``integration_min_days`` to ``integration_max_days`` (1..3) local
days after its dose, never on the dose's day, within opening hours, when a therapist
is free (the one it had, where possible), in the patient's time window while that can
be kept; nothing starts sooner than ``min_lead`` after ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.scheduling.domain.calendar import Calendar, Interval, utc
from services.scheduling.domain.grid import DayFilter
from services.scheduling.domain.model import (
    FitFailure,
    Kind,
    NoFit,
    PlannedSession,
    Preferences,
    Protocol,
    Site,
)
from services.scheduling.domain.search import Searcher
from services.scheduling.domain.slots import preference_levels, structural_problem


def find_integration(
    site: Site,
    calendar: Calendar,
    protocol: Protocol,
    prefs: Preferences,
    now: datetime,
    *,
    dose_start: datetime,
    sequence: int,
    preferred_therapist: str | None = None,
    patient_busy: Sequence[Interval] = (),
) -> tuple[PlannedSession, tuple[str, ...]] | NoFit:
    """The earliest integration session for the dose starting at ``dose_start``, and the
    preferences it relaxed; ``NoFit`` when no therapist is free inside the window."""
    now, dose_start = utc(now), utc(dose_start)
    problem = structural_problem(site, protocol)
    if problem is not None:
        return problem
    searcher = Searcher(site, calendar, protocol, now, patient_busy)
    dose_day = searcher.grid.local_date(dose_start)
    tried: set[DayFilter] = set()
    for level in preference_levels(prefs, site):
        if level.integrations in tried:
            continue
        tried.add(level.integrations)
        found = searcher.integration(dose_day, level.integrations, (), preferred_therapist)
        if found is not None:
            slot, who = found
            session = PlannedSession(Kind.integration, sequence, slot.start, slot.end, who)
            return session, level.relaxed
    return NoFit(FitFailure.no_capacity_within_window.value)
