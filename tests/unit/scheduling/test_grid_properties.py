"""Properties of the slot grid: exactly the valid local starts, DST days included."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.scheduling.domain.grid import Grid
from services.scheduling.domain.model import WEEKDAYS, Site
from tests.unit.scheduling.strategies import FAST, ZONES, sites


@FAST
@given(
    sites(),
    st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
    st.sampled_from([90, 180]),
)
def test_grid_slots_are_inside_local_hours_with_real_durations(
    site: Site, day: date, minutes: int
) -> None:
    hours = site.hours_on(WEEKDAYS[day.weekday()])
    slots = list(Grid(site, 30).slots(day, minutes))
    if hours is None:
        assert slots == []
    for slot in slots:
        assert hours is not None
        start, end = slot.start.astimezone(site.zone), slot.end.astimezone(site.zone)
        assert start.date() == end.date() == day
        assert hours[0] <= start.time()
        assert end.time() <= hours[1]
        assert (start.time(), end.time()) == (slot.local_start, slot.local_end)
        assert (start.minute % 30, start.second, start.microsecond) == (0, 0, 0)
        assert slot.end - slot.start == timedelta(minutes=minutes)
    assert [s.start for s in slots] == sorted({s.start for s in slots})


def brute_force_starts(site: Site, day: date, minutes: int) -> list[datetime]:
    """Every quarter-hour UTC instant that is a valid start on local ``day``, found the
    slow way: it shows a half-hour wall time at or after opening, is the first
    occurrence of that wall time, and ends (real minutes later) by closing that day."""
    hours = site.hours_on(WEEKDAYS[day.weekday()])
    if hours is None:
        return []
    found = []
    instant = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=15)
    while instant < datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=39):
        start = instant.astimezone(site.zone)
        end = (instant + timedelta(minutes=minutes)).astimezone(site.zone)
        if (
            start.date() == end.date() == day
            and start.fold == 0
            and start.minute % 30 == 0
            and hours[0] <= start.time()
            and end.time() <= hours[1]
        ):
            found.append(instant)
        instant += timedelta(minutes=15)
    return found


@FAST
@given(sites(), st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)))
def test_grid_finds_exactly_the_valid_starts_of_a_brute_force_scan(site: Site, day: date) -> None:
    slots = list(Grid(site, 30).slots(day, 90))
    assert [slot.start for slot in slots] == brute_force_starts(site, day, 90)


def _transition_days(zone: str) -> list[date]:
    """Local dates of 2026-2028 on which the zone's UTC offset changes."""
    tz = ZoneInfo(zone)
    days, day = [], date(2026, 1, 1)
    while day < date(2029, 1, 1):
        morning = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
        evening = datetime.combine(day, time(23, 59), tzinfo=tz).utcoffset()
        if morning != evening:
            days.append(day)
        day += timedelta(days=1)
    return days


TRANSITIONS = [(zone, day) for zone in ZONES for day in _transition_days(zone)]


@FAST
@given(st.data(), st.sampled_from(TRANSITIONS), st.sampled_from([90, 180]))
def test_on_dst_change_days_the_grid_matches_the_brute_force_scan(
    data: st.DataObject, transition: tuple[str, date], minutes: int
) -> None:
    zone, day = transition
    site = data.draw(sites(min_days=7, zones=st.just(zone), latest_open=12))  # by 03:00
    slots = list(Grid(site, 30).slots(day, minutes))
    assert [slot.start for slot in slots] == brute_force_starts(site, day, minutes)
