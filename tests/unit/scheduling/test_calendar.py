"""The busy-interval index: half-open overlap, merging, immutability, brute-force agreement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scheduling.domain.calendar import Calendar, Timeline
from services.scheduling.domain.model import Busy, Kind, PlannedSession

T0 = datetime(2026, 11, 23, 13, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


CAL = Calendar.from_busy([Busy("room-1", at(0), at(180)), Busy("room-1", at(300), at(360))])


@pytest.mark.parametrize(
    ("start", "end", "free"),
    [
        (-90, 0, True),
        (180, 300, True),
        (360, 540, True),
        (-90, 1, False),
        (179, 200, False),
        (60, 120, False),
        (-60, 400, False),
        (200, 301, False),
        (359, 400, False),
    ],
    ids=[
        "ends_when_booking_starts",
        "fills_the_gap_exactly",
        "starts_when_booking_ends",
        "overlaps_the_start",
        "overlaps_the_end",
        "inside_a_booking",
        "covers_two_bookings",
        "runs_into_the_next_booking",
        "starts_in_the_last_minute",
    ],
)
def test_free_means_no_booking_overlaps_the_half_open_interval(
    start: int, end: int, free: bool
) -> None:
    assert CAL.is_free("room-1", at(start), at(end)) is free


def test_unknown_resources_are_free() -> None:
    assert CAL.is_free("room-9", at(0), at(180))


def test_times_in_other_zones_are_compared_as_instants() -> None:
    eastern = timezone(timedelta(hours=-5))
    assert not CAL.is_free("room-1", at(60).astimezone(eastern), at(90).astimezone(eastern))


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        Calendar.from_busy([Busy("room-1", datetime(2026, 1, 1), datetime(2026, 1, 2))])


def test_overlapping_and_touching_bookings_merge() -> None:
    timeline = Timeline.of(
        [(at(0), at(60)), (at(30), at(90)), (at(90), at(120)), (at(200), at(210))]
    )
    assert timeline.starts == (at(0), at(200))
    assert timeline.ends == (at(120), at(210))


def test_conflict_end_is_where_the_blocking_booking_ends() -> None:
    assert CAL.timeline("room-1").conflict_end(at(100), at(280)) == at(180)
    assert CAL.timeline("room-1").conflict_end(at(180), at(300)) is None


def test_with_booked_returns_a_new_calendar_and_leaves_the_old_one() -> None:
    session = PlannedSession(Kind.dosing, 1, at(180), at(300), "room-1")
    booked = CAL.with_booked([session, Busy("therapist-1", at(0), at(90))])
    assert not booked.is_free("room-1", at(200), at(210))
    assert not booked.is_free("therapist-1", at(0), at(30))
    assert CAL.is_free("room-1", at(200), at(210))
    assert len(CAL) == 2
    assert len(booked) == 2  # room-1 is one merged interval now, plus therapist-1


intervals = st.lists(
    st.tuples(st.integers(0, 2000), st.integers(0, 300)).map(lambda p: (p[0], p[0] + p[1])),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(intervals, st.integers(0, 2300), st.integers(1, 300))
def test_is_free_agrees_with_a_brute_force_scan(
    spans: list[tuple[int, int]], start: int, length: int
) -> None:
    calendar = Calendar.from_busy(Busy("r", at(s), at(e)) for s, e in spans)
    expected = all(not (s < start + length and start < e) for s, e in spans if s < e)
    assert calendar.is_free("r", at(start), at(start + length)) is expected
