"""What searches remember about a site's calendar (domain/calendar.py ``Known``): the
same plans as searching afresh while bookings are only added, and nothing stale once
the holder forgets after freeing time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scheduling.domain.calendar import BusySpans, Calendar, Known
from services.scheduling.domain.grid import Slot
from services.scheduling.domain.model import (
    STANDARD,
    WEEKDAYS,
    Kind,
    NoFit,
    PlannedSession,
    Preferences,
    Site,
    weekly_hours,
)
from services.scheduling.domain.resources import ResourcePool
from services.scheduling.domain.slots import find_series
from tests.unit.scheduling.strategies import FAST, ZONES, prefs, sites

T0 = datetime(2027, 3, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@FAST
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 40)), max_size=30))
def test_busy_spans_hold_exactly_the_union_of_what_was_added(adds: list[tuple[int, int]]) -> None:
    spans = BusySpans()
    covered: set[int] = set()
    for low, length in adds:
        spans.add(at(low), at(low + length))
        covered |= set(range(low, low + length))
    assert all(a < b for a, b in zip(spans.highs, spans.lows[1:], strict=False))  # disjoint
    for minute in range(0, 245):
        end = spans.end_of(at(minute))
        if minute not in covered:
            assert end is None
            continue
        assert end is not None
        stop = minute
        while stop in covered:
            stop += 1
        assert end == at(stop)  # the end of the merged run holding the minute


def test_a_room_pool_refuses_a_slot_of_another_length() -> None:
    pool = ResourcePool(("room-1",), Calendar(), 180)
    slot = Slot(T0, T0 + timedelta(minutes=60), time(0), time(1))
    with pytest.raises(ValueError, match="not 3:00:00"):
        pool.first_free(slot)


def _fill(
    site: Site, wishes: list[tuple[Preferences, int]], now: datetime, known: Known | None
) -> list[tuple[PlannedSession, ...] | str]:
    """Series after series on one site, each booked before the next search (whose
    ``now`` may lie before an earlier one's: events arrive out of order)."""
    timelines = Calendar().timelines
    found: list[tuple[PlannedSession, ...] | str] = []
    for wish, hours in wishes:
        calendar = Calendar(timelines, known=known)
        plan = find_series(site, calendar, STANDARD, wish, now + timedelta(hours=hours))
        if isinstance(plan, NoFit):
            found.append(plan.reason)
            continue
        found.append(plan.sessions)
        timelines = calendar.with_booked(plan.sessions).timelines
    return found


@FAST
@given(
    sites(min_days=3, zones=st.sampled_from(ZONES)),
    st.lists(st.tuples(prefs, st.integers(0, 96)), min_size=4, max_size=14),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)),
)
def test_searches_that_remember_propose_what_fresh_searches_do(
    site: Site, wishes: list[tuple[Preferences, int]], now: datetime
) -> None:
    now = now.replace(tzinfo=UTC)
    assert _fill(site, wishes, now, Known()) == _fill(site, wishes, now, None)


def test_what_was_learned_is_kept_until_time_is_freed() -> None:
    """A site with one room: once a search learns the room is full, a later search on a
    calendar without those bookings still skips the time (the memory is only for a
    calendar that holds no less); after ``forget`` it is offered again."""
    site = Site(
        site_id="s",
        timezone="UTC",
        hours=weekly_hours({day: (time(8), time(20)) for day in WEEKDAYS}),
        rooms=1,
        therapists=3,
    )
    now = datetime(2027, 3, 1, 6, tzinfo=UTC)
    known = Known()
    first = find_series(site, Calendar(known=known), STANDARD, Preferences(), now)
    assert not isinstance(first, NoFit)
    day_one = first.sessions[0].start.replace(hour=8, minute=0)
    # the room taken all day, every day of four weeks
    days = [day_one + timedelta(days=d) for d in range(28)]
    taken = [PlannedSession(Kind.dosing, 1, d, d + timedelta(hours=12), "room-1") for d in days]
    busy = Calendar().with_booked(taken).timelines
    later = find_series(site, Calendar(busy, known=known), STANDARD, Preferences(), now)
    assert not isinstance(later, NoFit)
    assert later.sessions[0].start >= taken[-1].end
    # the bookings are cancelled; told nothing, the memory still skips those weeks
    stale = find_series(site, Calendar(known=known), STANDARD, Preferences(), now)
    assert stale == later
    known.forget()
    assert find_series(site, Calendar(known=known), STANDARD, Preferences(), now) == first
