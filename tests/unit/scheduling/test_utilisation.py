"""Utilisation: booked time inside opening hours over open time x resources, site-local."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scheduling.domain.utilisation import (
    Interval,
    local_day,
    local_week,
    open_intervals,
    utilisation,
)

NY = ZoneInfo("America/New_York")
HOURS = {d: (time(8), time(18)) for d in ("mon", "tue", "wed", "thu", "fri")}


def test_a_weekday_is_open_ten_hours_and_a_weekend_day_not_at_all() -> None:
    mon = open_intervals(HOURS, NY, local_day(date(2026, 11, 23), NY))
    assert [(o.astimezone(NY).hour, c.astimezone(NY).hour) for o, c in mon] == [(8, 18)]
    assert open_intervals(HOURS, NY, local_day(date(2026, 11, 28), NY)) == []


def test_the_week_is_monday_to_sunday_in_the_site_time_zone() -> None:
    start, end = local_week(date(2026, 11, 26), NY)
    assert start == datetime(2026, 11, 23, tzinfo=NY)
    assert end == datetime(2026, 11, 30, tzinfo=NY)
    assert len(open_intervals(HOURS, NY, (start, end))) == 5


def test_opening_hours_keep_their_wall_clock_across_a_dst_change() -> None:
    # 2026-03-08: New York springs forward; Monday 9th opens 08:00 local = 12:00 UTC
    [(o, c)] = open_intervals(HOURS, NY, local_day(date(2026, 3, 9), NY))
    assert o.astimezone(UTC).hour == 12
    assert (c - o).total_seconds() == 10 * 3600


def test_booked_time_counts_only_inside_opening_hours_over_every_resource() -> None:
    day = local_day(date(2026, 11, 23), NY)
    opened = open_intervals(HOURS, NY, day)
    booked = [
        (datetime(2026, 11, 23, 9, tzinfo=NY), datetime(2026, 11, 23, 12, tzinfo=NY)),  # 3 h
        (datetime(2026, 11, 23, 17, tzinfo=NY), datetime(2026, 11, 23, 20, tzinfo=NY)),  # 1 h in
    ]
    u = utilisation(opened, booked, resources=2)
    assert u.booked_s == 4 * 3600
    assert u.open_s == 20 * 3600
    assert u.fraction == 0.2


def test_a_closed_day_has_no_utilisation_rather_than_zero() -> None:
    sat = open_intervals(HOURS, NY, local_day(date(2026, 11, 28), NY))
    assert utilisation(sat, [], resources=3).fraction is None


def _plain(opened: list[Interval], booked: list[Interval]) -> float:
    """The definition, booking by booking against every opening interval."""
    used = 0.0
    for b0, b1 in booked:
        for o, c in opened:
            lo, hi = max(b0, o), min(b1, c)
            if lo < hi:
                used += (hi - lo).total_seconds()
    return used


T0 = datetime(2026, 11, 23, tzinfo=UTC)
minutes = st.integers(min_value=0, max_value=7 * 24 * 60)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(minutes, st.integers(1, 16 * 60)), max_size=10),
    st.lists(st.tuples(minutes, st.integers(1, 6 * 60)), max_size=40),
)
def test_booked_time_is_the_overlap_with_opening_hours_however_they_fall(
    opens: list[tuple[int, int]], books: list[tuple[int, int]]
) -> None:
    # disjoint opening intervals, as a site's days are; bookings anywhere, overlapping too
    opened: list[Interval] = []
    for start, length in sorted(opens):
        o, c = T0 + timedelta(minutes=start), T0 + timedelta(minutes=start + length)
        if not opened or o >= opened[-1][1]:
            opened.append((o, c))
    booked = [(T0 + timedelta(minutes=s), T0 + timedelta(minutes=s + n)) for s, n in books]
    u = utilisation(reversed(opened), booked, resources=3)
    assert u.booked_s == pytest.approx(_plain(opened, booked))
    assert u.open_s == pytest.approx(sum((c - o).total_seconds() for o, c in opened) * 3)
