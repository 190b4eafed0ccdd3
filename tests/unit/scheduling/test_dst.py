"""Daylight-saving weeks (docs/domain.md: "Daylight-saving changes never move a session
outside opening hours"): local wall times on the grid, real durations.

2026 transitions: New York springs forward on March 8 (02:00 -> 03:00) and falls
back on November 1 (02:00 -> 01:00); Sydney falls back on April 5 (03:00 -> 02:00).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.grid import Grid
from services.scheduling.domain.model import (
    RETREAT,
    STANDARD,
    Preferences,
    Protocol,
    SeriesPlan,
    Site,
)
from services.scheduling.domain.slots import find_series
from tests.unit.scheduling.builders import WEEK, doses_of, local, local_of, site, violations

NEW_YORK_DAY = site(days=WEEK, timezone="America/New_York")
NEW_YORK_NIGHT = site(days=WEEK, timezone="America/New_York", opens=time(0), closes=time(6))
SYDNEY_DAY = site(days=WEEK, timezone="Australia/Sydney")
SYDNEY_NIGHT = site(days=WEEK, timezone="Australia/Sydney", opens=time(0), closes=time(6))


def starts(at: Site, day: date, minutes: int) -> list[time]:
    grid = Grid(at, STANDARD.slot_step_minutes)
    return [slot.local_start for slot in grid.slots(day, minutes)]


@pytest.mark.parametrize(
    ("opens", "closes", "day", "minutes", "expected"),
    [
        (time(0), time(3), date(2026, 3, 7), 180, [time(0)]),
        (time(0), time(3), date(2026, 3, 8), 180, []),  # 00:00 + 3 h real is 04:00 EDT
        (time(1), time(4), date(2026, 3, 8), 90, [time(1), time(1, 30)]),  # no 02:00, 02:30
        (time(0), time(3), date(2026, 11, 1), 180, [time(0), time(0, 30), time(1)]),
        (time(0), time(3), date(2026, 11, 2), 180, [time(0)]),
    ],
    ids=[
        "saturday_before_spring_forward",
        "spring_forward_day_loses_the_hour",
        "spring_forward_gap_times_are_skipped",
        "fall_back_day_gains_the_hour",
        "monday_after_fall_back",
    ],
)
def test_new_york_slots_are_local_wall_times_with_real_durations(
    opens: time, closes: time, day: date, minutes: int, expected: list[time]
) -> None:
    at = site(days=WEEK, timezone="America/New_York", opens=opens, closes=closes)
    assert starts(at, day, minutes) == expected


def test_an_ambiguous_start_is_taken_at_its_first_occurrence() -> None:
    at = site(days=WEEK, timezone="America/New_York", opens=time(1), closes=time(4))
    first = next(iter(Grid(at, 30).slots(date(2026, 11, 1), 90)))
    assert first.start == datetime(2026, 11, 1, 5, tzinfo=UTC)  # 01:00 EDT, not 01:00 EST
    assert first.end - first.start == timedelta(minutes=90)
    assert first.local_end == time(1, 30)  # 01:30 EST: the hour came back


def test_sydney_fall_back_day_fits_more_night_slots() -> None:
    at = site(days=WEEK, timezone="Australia/Sydney", opens=time(0), closes=time(4))
    assert starts(at, date(2026, 4, 4), 180) == [time(0), time(0, 30), time(1)]
    assert starts(at, date(2026, 4, 5), 180) == [
        time(0),
        time(0, 30),
        time(1),
        time(1, 30),
        time(2),
    ]


WEEKS = [
    ("new_york_spring_day", NEW_YORK_DAY, datetime(2026, 3, 2, 12)),
    ("new_york_spring_night", NEW_YORK_NIGHT, datetime(2026, 3, 2, 12)),
    ("new_york_fall_day", NEW_YORK_DAY, datetime(2026, 10, 26, 12)),
    ("new_york_fall_night", NEW_YORK_NIGHT, datetime(2026, 10, 26, 12)),
    ("sydney_fall_day", SYDNEY_DAY, datetime(2026, 3, 30, 12)),
    ("sydney_fall_night", SYDNEY_NIGHT, datetime(2026, 3, 30, 12)),
]


@pytest.mark.parametrize("protocol", [STANDARD, RETREAT], ids=["standard", "retreat"])
@pytest.mark.parametrize("offset_days", range(7))
@pytest.mark.parametrize(("name", "at", "monday"), WEEKS, ids=[w[0] for w in WEEKS])
def test_series_across_a_dst_change_stays_inside_local_hours(
    name: str, at: Site, monday: datetime, offset_days: int, protocol: Protocol
) -> None:
    start = monday + timedelta(days=offset_days)
    now = local(at, start.year, start.month, start.day, 12)
    found = find_series(at, Calendar(), protocol, Preferences(), now)
    assert isinstance(found, SeriesPlan)
    problems = violations(found.sessions, site_=at, calendar=Calendar(), now=now, protocol=protocol)
    assert problems == []


def test_min_gap_is_48_real_hours_across_spring_forward() -> None:
    now = local(NEW_YORK_DAY, 2026, 3, 5, 12)  # Thursday: first dose Friday 12:00 EST
    found = find_series(NEW_YORK_DAY, Calendar(), STANDARD, Preferences(), now)
    assert isinstance(found, SeriesPlan)
    first, second = doses_of(found.sessions)[:2]
    assert local_of(NEW_YORK_DAY, first.start).time() == time(12)
    # Sunday 12:00 EDT is only 47 h later: the second dose waits for 13:00 EDT.
    assert local_of(NEW_YORK_DAY, second.start).replace(tzinfo=None) == datetime(2026, 3, 8, 13)
    assert second.start - first.start == timedelta(hours=48)
