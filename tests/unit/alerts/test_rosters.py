"""On-call people (docs/domain.md "On-call people"; services/alerts/domain/rosters.py):
local handoff instants across daylight-saving changes, who is on call, overrides,
handoffs, whom a page reaches, coverage gaps, SMS reply codes and contact addresses.

Dates used (2026): New York springs forward Sun 8 Mar at 02:00 (07:00 UTC) and falls back
Sun 1 Nov at 02:00 EDT (06:00 UTC); Berlin springs forward Sun 29 Mar at 02:00 CET and falls
back Sun 25 Oct at 03:00 CEST (both 01:00 UTC); Lord Howe Island (+10:30 / +11:00) moves
30 minutes, forward Sun 4 Oct at 02:00 and back Sun 5 Apr at 02:00."""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, available_timezones

import pytest

from services.alerts.domain.rosters import (
    Clinician,
    ClinicianTarget,
    ContactMethod,
    Delivery,
    Gap,
    Handoff,
    NotificationRule,
    Override,
    QuietHours,
    Rotation,
    Schedule,
    ScheduleTarget,
    Target,
    check_address,
    check_email,
    check_phone,
    check_timezone,
    check_webhook,
    coverage_gaps,
    deliveries,
    handoffs,
    in_quiet_hours,
    local_instant,
    oncall_at,
    parse_reply,
    reachable,
    reply_code,
    resolve_targets,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
NINE = time(9, 0)


def utc(y: int, m: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, s, tzinfo=UTC)


def daily(*who: str, start: date = date(2026, 1, 1), at: time = NINE) -> Rotation:
    return Rotation(who, "daily", at, 0, start)


def weekly(*who: str, weekday: int, start: date = date(2026, 1, 1), at: time = NINE) -> Rotation:
    return Rotation(who, "weekly", at, weekday, start)


def sched(*rotations: Rotation, tz: str = "UTC", overrides: tuple[Override, ...] = ()) -> Schedule:
    return Schedule("s", tz, rotations, overrides)


def override(
    oid: str, start: datetime, end: datetime, who: str, replaces: str | None = None
) -> Override:
    return Override(oid, start, end, who, replaces)


def person(
    cid: str,
    *rules: tuple[str, int],
    tz: str = "UTC",
    quiet: tuple[time, time] | None = None,
) -> Clinician:
    methods = (
        ContactMethod("cell", "sms", f"+1202555{len(cid):04d}"),
        ContactMethod("work", "email", f"{cid}@clinic.example"),
        ContactMethod("hook", "webhook", f"https://hooks.example/{cid}"),
    )
    return Clinician(
        cid,
        tz,
        methods,
        tuple(NotificationRule(m, s) for m, s in rules),
        QuietHours(*quiet) if quiet else None,
    )


# --- local_instant ----------------------------------------------------------------------


def test_local_instant_on_an_ordinary_day_is_the_wall_time_at_that_days_offset() -> None:
    assert local_instant(date(2026, 1, 15), NINE, NY) == utc(2026, 1, 15, 14)
    assert local_instant(date(2026, 7, 15), NINE, NY) == utc(2026, 7, 15, 13)
    assert local_instant(date(2026, 7, 15), NINE, BERLIN) == utc(2026, 7, 15, 7)


@pytest.mark.parametrize(
    ("tz", "day", "wall", "expected"),
    [
        # 02:30 does not exist: the clocks jump from 02:00 to 03:00 (03:00 local).
        (NY, date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7)),
        (NY, date(2026, 3, 8), time(2, 0), utc(2026, 3, 8, 7)),
        (NY, date(2026, 3, 8), time(2, 59, 59), utc(2026, 3, 8, 7)),
        (BERLIN, date(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 1)),
    ],
)
def test_a_handoff_inside_a_spring_forward_gap_is_the_first_instant_after_it(
    tz: ZoneInfo, day: date, wall: time, expected: datetime
) -> None:
    got = local_instant(day, wall, tz)
    assert got == expected
    assert got.astimezone(tz).time() == time(3, 0)


@pytest.mark.parametrize(
    ("tz", "day", "wall", "expected"),
    [
        # 01:30 happens twice: first in EDT (05:30 UTC), then in EST (06:30 UTC).
        (NY, date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),
        # Berlin repeats 02:00-03:00: first in CEST (00:30 UTC), then in CET (01:30 UTC).
        (BERLIN, date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30)),
    ],
)
def test_an_ambiguous_fall_back_time_is_its_first_occurrence(
    tz: ZoneInfo, day: date, wall: time, expected: datetime
) -> None:
    assert local_instant(day, wall, tz) == expected


def test_the_hours_around_a_change_keep_their_own_offsets() -> None:
    assert local_instant(date(2026, 3, 8), time(1, 59), NY) == utc(2026, 3, 8, 6, 59)
    assert local_instant(date(2026, 3, 8), time(3, 0), NY) == utc(2026, 3, 8, 7)
    assert local_instant(date(2026, 11, 1), time(2, 0), NY) == utc(2026, 11, 1, 7)


@pytest.mark.skipif(
    "Australia/Lord_Howe" not in available_timezones(), reason="no Lord_Howe in tzdata"
)
def test_lord_howe_half_hour_changes() -> None:
    lh = ZoneInfo("Australia/Lord_Howe")
    # Forward 4 Oct 2026: 02:00 (+10:30) -> 02:30 (+11:00) at 15:30 UTC on 3 Oct.
    assert local_instant(date(2026, 10, 4), time(2, 15), lh) == utc(2026, 10, 3, 15, 30)
    assert local_instant(date(2026, 10, 4), time(2, 30), lh) == utc(2026, 10, 3, 15, 30)
    assert local_instant(date(2026, 10, 4), time(1, 59), lh) == utc(2026, 10, 3, 15, 29)
    # Back 5 Apr 2026: 02:00 (+11:00) -> 01:30 (+10:30); 01:45 first at +11:00.
    assert local_instant(date(2026, 4, 5), time(1, 45), lh) == utc(2026, 4, 4, 14, 45)
    assert local_instant(date(2026, 4, 5), time(2, 0), lh) == utc(2026, 4, 4, 15, 30)


def test_local_instant_answers_in_utc() -> None:
    assert local_instant(date(2026, 1, 15), NINE, BERLIN).utcoffset() == timedelta(0)


# --- oncall_at: rotations ----------------------------------------------------------------


def test_before_the_first_handoff_nobody_is_on_call() -> None:
    s = sched(daily("a", "b", start=date(2026, 1, 10)))
    assert oncall_at(s, utc(2026, 1, 10, 8, 59, 59)) == ()
    assert oncall_at(s, utc(2025, 12, 1)) == ()


def test_at_a_handoff_instant_the_incoming_clinician_is_on_call() -> None:
    s = sched(daily("a", "b", start=date(2026, 1, 10)))
    assert oncall_at(s, utc(2026, 1, 10, 9)) == ("a",)
    assert oncall_at(s, utc(2026, 1, 11, 9) - timedelta(microseconds=1)) == ("a",)
    assert oncall_at(s, utc(2026, 1, 11, 9)) == ("b",)


def test_one_participant_stays_on_call_forever_after_the_first_handoff() -> None:
    s = sched(daily("a", start=date(2026, 1, 10)))
    assert [oncall_at(s, utc(2026, 1, 10 + d, 12)) for d in range(5)] == [("a",)] * 5


def test_three_participants_take_turns_and_wrap() -> None:
    s = sched(daily("a", "b", "c", start=date(2026, 1, 10)))
    got = [oncall_at(s, utc(2026, 1, 10 + d, 12))[0] for d in range(7)]
    assert got == ["a", "b", "c", "a", "b", "c", "a"]


def test_a_rotation_without_participants_puts_nobody_on_call() -> None:
    assert oncall_at(sched(daily(start=date(2026, 1, 1))), utc(2026, 2, 1)) == ()


def test_weekly_first_handoff_is_the_next_handoff_weekday_on_or_after_start() -> None:
    # 2026-01-07 is a Wednesday; handoff on Mondays (0): first handoff Mon 12 Jan 09:00.
    s = sched(weekly("a", "b", weekday=0, start=date(2026, 1, 7)))
    assert oncall_at(s, utc(2026, 1, 7, 12)) == ()
    assert oncall_at(s, utc(2026, 1, 12, 8, 59)) == ()
    assert oncall_at(s, utc(2026, 1, 12, 9)) == ("a",)
    assert oncall_at(s, utc(2026, 1, 18, 23)) == ("a",)
    assert oncall_at(s, utc(2026, 1, 19, 8, 59)) == ("a",)
    assert oncall_at(s, utc(2026, 1, 19, 9)) == ("b",)
    assert oncall_at(s, utc(2026, 1, 26, 9)) == ("a",)


def test_weekly_starting_on_the_handoff_weekday_hands_off_that_day() -> None:
    s = sched(weekly("a", "b", weekday=2, start=date(2026, 1, 7)))  # a Wednesday
    assert oncall_at(s, utc(2026, 1, 7, 9)) == ("a",)
    assert oncall_at(s, utc(2026, 1, 14, 9)) == ("b",)


def test_two_rotations_keep_rotation_order_and_drop_duplicates() -> None:
    s = sched(daily("a", "b"), daily("c", "a"))
    assert oncall_at(s, utc(2026, 1, 1, 12)) == ("a", "c")
    assert oncall_at(s, utc(2026, 1, 2, 12)) == ("b", "a")
    s2 = sched(daily("a", "b"), daily("a", "b"))
    assert oncall_at(s2, utc(2026, 1, 1, 12)) == ("a",)


def test_a_rotation_handing_off_in_the_schedules_zone() -> None:
    s = sched(daily("a", "b", start=date(2026, 1, 10)), tz="America/New_York")
    assert oncall_at(s, utc(2026, 1, 10, 13, 59)) == ()
    assert oncall_at(s, utc(2026, 1, 10, 14)) == ("a",)
    # 03:00 UTC on the 11th is still the evening of the 10th in New York.
    assert oncall_at(s, utc(2026, 1, 11, 3)) == ("a",)


@pytest.mark.parametrize(
    ("tz", "spring", "fall"),
    [
        ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
        ("Europe/Berlin", date(2026, 3, 29), date(2026, 10, 25)),
    ],
)
def test_a_nine_oclock_handoff_stays_nine_local_across_both_changes(
    tz: str, spring: date, fall: date
) -> None:
    z = ZoneInfo(tz)
    s = sched(daily("a", "b", start=date(2026, 1, 1)), tz=tz)
    window = handoffs(s, utc(2026, 1, 2), utc(2026, 12, 31))
    assert len(window) == 363  # one a day from 2 Jan to 30 Dec
    assert {h.at.astimezone(z).time() for h in window} == {NINE}
    lengths = {h.at.astimezone(z).date(): nxt.at - h.at for h, nxt in pairwise(window)}
    assert lengths[spring - timedelta(days=1)] == timedelta(hours=23)
    assert lengths[fall - timedelta(days=1)] == timedelta(hours=25)
    assert {v for k, v in lengths.items() if k + timedelta(days=1) not in (spring, fall)} == {
        timedelta(hours=24)
    }
    # Who is on call at 09:00 local keeps alternating through both changes.
    for day in (spring, fall):
        nine = local_instant(day, NINE, z)
        assert oncall_at(s, nine) != oncall_at(s, nine - timedelta(microseconds=1))


def test_a_handoff_in_the_gap_happens_at_three_on_that_day_only() -> None:
    s = sched(daily("a", "b", start=date(2026, 3, 6), at=time(2, 30)), tz="America/New_York")
    # 6 Mar a, 7 Mar b, 8 Mar a (at 03:00 EDT = 07:00 UTC), 9 Mar b at 02:30 EDT.
    assert oncall_at(s, utc(2026, 3, 8, 6, 59, 59)) == ("b",)
    assert oncall_at(s, utc(2026, 3, 8, 7)) == ("a",)
    assert oncall_at(s, utc(2026, 3, 9, 6, 29)) == ("a",)
    assert oncall_at(s, utc(2026, 3, 9, 6, 30)) == ("b",)


def test_an_ambiguous_handoff_happens_once_at_the_first_occurrence() -> None:
    s = sched(daily("a", "b", start=date(2026, 10, 31), at=time(1, 30)), tz="America/New_York")
    # 31 Oct a; 1 Nov 01:30 EDT (05:30 UTC) b; the repeated 01:30 EST changes nothing.
    assert oncall_at(s, utc(2026, 11, 1, 5, 29)) == ("a",)
    assert oncall_at(s, utc(2026, 11, 1, 5, 30)) == ("b",)
    assert oncall_at(s, utc(2026, 11, 1, 6, 30)) == ("b",)
    assert oncall_at(s, utc(2026, 11, 2, 6, 29)) == ("b",)
    assert oncall_at(s, utc(2026, 11, 2, 6, 30)) == ("a",)
    hs = handoffs(s, utc(2026, 11, 1), utc(2026, 11, 3))
    assert [h.at for h in hs] == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_far_future_dates_are_computed_without_walking_the_days() -> None:
    s = sched(
        daily("a", "b", "c", start=date(2026, 1, 1)),
        weekly("d", "e", weekday=3, start=date(2026, 1, 1)),
        tz="America/New_York",
    )
    t0 = clock.perf_counter()
    for _ in range(50):
        got = oncall_at(s, utc(2076, 6, 15, 18))
    assert clock.perf_counter() - t0 < 0.5
    days = (date(2076, 6, 15) - date(2026, 1, 1)).days
    weeks = days // 7  # Thursday handoffs; 1 Jan 2026 is a Thursday
    assert got == ("abc"[days % 3], "de"[weeks % 2])


# --- overrides --------------------------------------------------------------------------


def test_an_override_without_replaces_adds_its_clinician_for_from_to() -> None:
    o = override("o1", utc(2026, 1, 5, 12), utc(2026, 1, 5, 18), "x")
    s = sched(daily("a", start=date(2026, 1, 1)), overrides=(o,))
    assert oncall_at(s, utc(2026, 1, 5, 11, 59)) == ("a",)
    assert oncall_at(s, utc(2026, 1, 5, 12)) == ("a", "x")  # from is inside
    assert oncall_at(s, utc(2026, 1, 5, 17, 59)) == ("a", "x")
    assert oncall_at(s, utc(2026, 1, 5, 18)) == ("a",)  # to is outside


def test_an_override_adds_someone_before_the_rotation_starts() -> None:
    o = override("o1", utc(2025, 12, 1), utc(2025, 12, 2), "x")
    s = sched(daily("a", start=date(2026, 1, 1)), overrides=(o,))
    assert oncall_at(s, utc(2025, 12, 1, 5)) == ("x",)


def test_an_override_replacing_someone_on_call_stands_in_for_them_in_place() -> None:
    o = override("o1", utc(2026, 1, 1), utc(2026, 1, 10), "x", replaces="a")
    s = sched(daily("a", "b"), daily("c"), overrides=(o,))
    assert oncall_at(s, utc(2026, 1, 1, 12)) == ("x", "c")  # a's day
    assert oncall_at(s, utc(2026, 1, 2, 12)) == ("b", "c")  # b's day: nothing to replace


def test_an_override_replacing_someone_not_on_call_does_nothing() -> None:
    o = override("o1", utc(2026, 1, 1), utc(2026, 1, 10), "x", replaces="zed")
    s = sched(daily("a", "b"), overrides=(o,))
    assert oncall_at(s, utc(2026, 1, 1, 12)) == ("a",)
    assert handoffs(s, utc(2026, 1, 1, 10), utc(2026, 1, 2, 10)) == [
        Handoff(utc(2026, 1, 2, 9), ("a",), ("b",))
    ]


def test_a_replacement_by_someone_already_on_call_leaves_them_once() -> None:
    o = override("o1", utc(2026, 1, 1), utc(2026, 1, 2), "c", replaces="a")
    s = sched(daily("a"), daily("c"), overrides=(o,))
    assert oncall_at(s, utc(2026, 1, 1, 12)) == ("c",)


def test_overlapping_overrides_apply_in_order_of_start_not_of_listing() -> None:
    # x replaces a from 10:00; y replaces x from 11:00: from 11:00 y stands in.
    first = override("o1", utc(2026, 1, 1, 10), utc(2026, 1, 1, 14), "x", replaces="a")
    second = override("o2", utc(2026, 1, 1, 11), utc(2026, 1, 1, 13), "y", replaces="x")
    for listed in ((first, second), (second, first)):
        s = sched(daily("a"), overrides=listed)
        assert oncall_at(s, utc(2026, 1, 1, 10, 30)) == ("x",)
        assert oncall_at(s, utc(2026, 1, 1, 12)) == ("y",)
        assert oncall_at(s, utc(2026, 1, 1, 13)) == ("x",)
        assert oncall_at(s, utc(2026, 1, 1, 14)) == ("a",)


def test_a_later_override_replacing_someone_an_earlier_one_added() -> None:
    add = override("o1", utc(2026, 1, 1, 10), utc(2026, 1, 1, 14), "x")
    sub = override("o2", utc(2026, 1, 1, 12), utc(2026, 1, 1, 13), "y", replaces="x")
    s = sched(daily("a"), overrides=(sub, add))
    assert oncall_at(s, utc(2026, 1, 1, 12)) == ("a", "y")


def test_an_empty_or_reversed_override_window_is_never_in_force() -> None:
    t = utc(2026, 1, 1, 12)
    s = sched(
        daily("a"),
        overrides=(override("o1", t, t, "x"), override("o2", t, t - timedelta(hours=1), "y")),
    )
    assert oncall_at(s, t) == ("a",)
    assert oncall_at(s, t - timedelta(minutes=30)) == ("a",)


def test_an_override_with_a_naive_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        Override("o", datetime(2026, 1, 1), utc(2026, 1, 2), "x", None)
    with pytest.raises(ValueError, match="naive"):
        Override("o", utc(2026, 1, 1), datetime(2026, 1, 2), "x", None)


# --- handoffs ---------------------------------------------------------------------------


def test_handoffs_lists_each_change_once_with_who_was_on_before_and_after() -> None:
    o = override("o1", utc(2026, 1, 2, 12), utc(2026, 1, 2, 15), "x")
    s = sched(daily("a", "b"), overrides=(o,))
    assert handoffs(s, utc(2026, 1, 1, 10), utc(2026, 1, 3, 10)) == [
        Handoff(utc(2026, 1, 2, 9), ("a",), ("b",)),
        Handoff(utc(2026, 1, 2, 12), ("b",), ("b", "x")),
        Handoff(utc(2026, 1, 2, 15), ("b", "x"), ("b",)),
        Handoff(utc(2026, 1, 3, 9), ("b",), ("a",)),
    ]


def test_handoffs_window_is_half_open() -> None:
    s = sched(daily("a", "b"))
    hs = handoffs(s, utc(2026, 1, 2, 9), utc(2026, 1, 3, 9))
    assert [h.at for h in hs] == [utc(2026, 1, 2, 9)]
    assert hs[0].before == ("a",)
    assert handoffs(s, utc(2026, 1, 2, 9, 0, 1), utc(2026, 1, 3, 9)) == []


def test_handoffs_include_the_first_one_from_nobody() -> None:
    s = sched(daily("a", "b", start=date(2026, 1, 5)))
    hs = handoffs(s, utc(2026, 1, 1), utc(2026, 1, 6, 10))
    assert hs == [
        Handoff(utc(2026, 1, 5, 9), (), ("a",)),
        Handoff(utc(2026, 1, 6, 9), ("a",), ("b",)),
    ]


def test_handoffs_skip_instants_where_nobody_changes() -> None:
    # One participant: every later handoff hands a over to a.
    s = sched(daily("a"), overrides=(override("o1", utc(2026, 1, 3), utc(2026, 1, 4), "a"),))
    assert handoffs(s, utc(2026, 1, 2), utc(2026, 1, 10)) == []
    # Two rotations changing at the same instant make one handoff.
    s2 = sched(daily("a", "b"), daily("c", "d"))
    assert handoffs(s2, utc(2026, 1, 2), utc(2026, 1, 3)) == [
        Handoff(utc(2026, 1, 2, 9), ("a", "c"), ("b", "d"))
    ]


def test_handoffs_across_a_change_are_at_local_handoff_time() -> None:
    s = sched(weekly("a", "b", weekday=6, at=time(2, 30)), tz="America/New_York")  # Sundays
    hs = handoffs(s, utc(2026, 3, 1), utc(2026, 3, 16))
    assert [h.at for h in hs] == [
        utc(2026, 3, 1, 7, 30),
        utc(2026, 3, 8, 7),
        utc(2026, 3, 15, 6, 30),
    ]


def test_handoffs_of_an_empty_window_are_none() -> None:
    s = sched(daily("a", "b"))
    assert handoffs(s, utc(2026, 1, 5), utc(2026, 1, 5)) == []
    assert handoffs(s, utc(2026, 1, 5), utc(2026, 1, 1)) == []


# --- whom a page reaches ----------------------------------------------------------------


def test_quiet_hours_crossing_midnight_are_in_the_clinicians_own_zone() -> None:
    c = person("a", ("cell", 0), tz="America/New_York", quiet=(time(22), time(7)))
    # 22:00 EST = 03:00 UTC; 07:00 EST = 12:00 UTC.
    assert not in_quiet_hours(c, utc(2026, 1, 15, 2, 59))
    assert in_quiet_hours(c, utc(2026, 1, 15, 3))
    assert in_quiet_hours(c, utc(2026, 1, 15, 8))  # 03:00 local
    assert in_quiet_hours(c, utc(2026, 1, 15, 11, 59))
    assert not in_quiet_hours(c, utc(2026, 1, 15, 12))
    # 23:00 UTC is quiet in UTC terms but 18:00 in New York.
    assert not in_quiet_hours(c, utc(2026, 1, 15, 23))


def test_quiet_hours_within_a_day() -> None:
    c = person("a", ("cell", 0), tz="Europe/Berlin", quiet=(time(12), time(13)))
    assert not in_quiet_hours(c, utc(2026, 1, 15, 10, 59))
    assert in_quiet_hours(c, utc(2026, 1, 15, 11))
    assert not in_quiet_hours(c, utc(2026, 1, 15, 12))


def test_quiet_hours_starting_and_ending_together_are_none() -> None:
    c = person("a", ("cell", 0), quiet=(time(9), time(9)))
    assert not any(in_quiet_hours(c, utc(2026, 1, 1, h)) for h in range(24))


def test_no_quiet_hours() -> None:
    assert not in_quiet_hours(person("a", ("cell", 0)), utc(2026, 1, 1, 3))


def test_critical_reaches_a_clinician_in_quiet_hours_and_high_does_not() -> None:
    c = person("a", ("cell", 0), quiet=(time(22), time(7)))
    night, day = utc(2026, 1, 1, 23), utc(2026, 1, 1, 12)
    assert reachable(c, "critical", night)
    assert not reachable(c, "high", night)
    assert reachable(c, "high", day)


def test_a_clinician_without_notification_rules_is_never_reached() -> None:
    c = person("a")
    assert not reachable(c, "critical", utc(2026, 1, 1, 12))
    assert deliveries(["a"], {"a": c}, "critical", utc(2026, 1, 1, 12)) == []


def test_deliveries_soonest_first_then_clinician_order_then_rule_order() -> None:
    a = person("a", ("work", 300), ("cell", 0), ("hook", 300))
    b = person("bb", ("cell", 0), ("work", 60))
    got = deliveries(["bb", "a"], {"a": a, "bb": b}, "high", utc(2026, 1, 1, 12))
    assert [(d.clinician_id, d.contact_method, d.after_s) for d in got] == [
        ("bb", "cell", 0),
        ("a", "cell", 0),
        ("bb", "work", 60),
        ("a", "work", 300),
        ("a", "hook", 300),
    ]
    assert got[0] == Delivery("bb", "cell", "sms", "+12025550002", 0)
    assert got[3] == Delivery("a", "work", "email", "a@clinic.example", 300)


def test_deliveries_skip_unknown_ids_duplicates_and_rules_without_a_method() -> None:
    a = person("a", ("cell", 0), ("gone", 10))
    got = deliveries(["x", "a", "a", "y"], {"a": a}, "high", utc(2026, 1, 1, 12))
    assert [(d.clinician_id, d.contact_method) for d in got] == [("a", "cell")]


def test_deliveries_leave_out_who_is_in_quiet_hours_unless_critical() -> None:
    a = person("a", ("cell", 0), quiet=(time(22), time(7)))
    b = person("b", ("cell", 0))
    night = utc(2026, 1, 1, 23)
    people = {"a": a, "b": b}
    assert [d.clinician_id for d in deliveries(["a", "b"], people, "high", night)] == ["b"]
    assert [d.clinician_id for d in deliveries(["a", "b"], people, "critical", night)] == [
        "a",
        "b",
    ]


# --- resolve_targets and coverage gaps ----------------------------------------------------


def test_resolve_targets_in_order_without_duplicates() -> None:
    s = sched(daily("a", "b"))
    targets: list[Target] = [
        ClinicianTarget("b"),
        ScheduleTarget("s"),
        ScheduleTarget("unknown"),
        ClinicianTarget("c"),
        ClinicianTarget("b"),
    ]
    assert resolve_targets(targets, {"s": s}, utc(2026, 1, 1, 12)) == ("b", "a", "c")
    assert resolve_targets(targets, {"s": s}, utc(2026, 1, 2, 12)) == ("b", "c")
    assert resolve_targets([], {"s": s}, utc(2026, 1, 2, 12)) == ()


def _people(*ids: str) -> dict[str, Clinician]:
    return {c: person(c, ("cell", 0)) for c in ids}


def test_a_rotation_starting_mid_window_leaves_one_gap_until_its_first_handoff() -> None:
    s = sched(daily("a", "b", start=date(2026, 1, 5)))
    gaps = coverage_gaps(
        [[ScheduleTarget("s")]], {"s": s}, _people("a", "b"), utc(2026, 1, 1), utc(2026, 1, 10)
    )
    assert gaps == [Gap(utc(2026, 1, 1), utc(2026, 1, 5, 9), 1)]


def test_an_override_covering_part_of_a_gap_splits_it() -> None:
    o = override("o1", utc(2026, 1, 2), utc(2026, 1, 3), "x")
    s = sched(daily("a", "b", start=date(2026, 1, 5)), overrides=(o,))
    gaps = coverage_gaps(
        [[ScheduleTarget("s")]],
        {"s": s},
        _people("a", "b", "x"),
        utc(2026, 1, 1),
        utc(2026, 1, 10),
    )
    assert gaps == [
        Gap(utc(2026, 1, 1), utc(2026, 1, 2), 1),
        Gap(utc(2026, 1, 3), utc(2026, 1, 5, 9), 1),
    ]


def test_an_override_covering_the_start_of_a_gap_shrinks_it() -> None:
    o = override("o1", utc(2025, 12, 31), utc(2026, 1, 3), "x")
    s = sched(daily("a", "b", start=date(2026, 1, 5)), overrides=(o,))
    gaps = coverage_gaps(
        [[ScheduleTarget("s")]],
        {"s": s},
        _people("a", "b", "x"),
        utc(2026, 1, 1),
        utc(2026, 1, 10),
    )
    assert gaps == [Gap(utc(2026, 1, 3), utc(2026, 1, 5, 9), 1)]


def test_a_tier_with_static_recipients_never_has_a_gap() -> None:
    gaps = coverage_gaps(
        [[ScheduleTarget("missing")], []],
        {},
        {},
        utc(2026, 1, 1),
        utc(2026, 1, 10),
        tiers_with_recipients={0},
    )
    assert gaps == [Gap(utc(2026, 1, 1), utc(2026, 1, 10), 2)]


def test_someone_on_call_without_notification_rules_counts_as_nobody() -> None:
    # a has no rule, b has one: a's days are gaps, b's are covered.
    s = sched(daily("a", "b", start=date(2026, 1, 1)))
    people = {"a": person("a"), "b": person("b", ("cell", 0))}
    gaps = coverage_gaps(
        [[ScheduleTarget("s")]], {"s": s}, people, utc(2026, 1, 1, 12), utc(2026, 1, 4, 12)
    )
    assert gaps == [
        Gap(utc(2026, 1, 1, 12), utc(2026, 1, 2, 9), 1),
        Gap(utc(2026, 1, 3, 9), utc(2026, 1, 4, 9), 1),
    ]
    # A clinician target unknown to the roster is nobody too.
    assert coverage_gaps(
        [[ClinicianTarget("ghost")]], {}, people, utc(2026, 1, 1), utc(2026, 1, 2)
    ) == [Gap(utc(2026, 1, 1), utc(2026, 1, 2), 1)]


def test_quiet_hours_are_no_gap() -> None:
    people = {"a": person("a", ("cell", 0), quiet=(time(0), time(23, 59)))}
    assert (
        coverage_gaps([[ClinicianTarget("a")]], {}, people, utc(2026, 1, 1), utc(2026, 1, 3)) == []
    )


def test_adjacent_gap_windows_are_merged() -> None:
    # a, b and c (none with rules) hand off daily: no cover at all, one gap, not three.
    people = {c: person(c) for c in "abc"}
    o = override("o1", utc(2026, 1, 2), utc(2026, 1, 2, 6), "d")  # d has no rule either
    s = sched(daily("a", "b", "c", start=date(2026, 1, 1)), overrides=(o,))
    gaps = coverage_gaps(
        [[ScheduleTarget("s")]], {"s": s}, people, utc(2026, 1, 1), utc(2026, 1, 5)
    )
    assert gaps == [Gap(utc(2026, 1, 1), utc(2026, 1, 5), 1)]


def test_gaps_tier_by_tier_over_two_schedules_in_one_tier() -> None:
    day = sched(daily("a", "b", start=date(2026, 1, 1)))
    night = Schedule("n", "UTC", (daily("c", start=date(2026, 1, 3), at=time(21)),))
    people = {"a": person("a", ("cell", 0)), "b": person("b"), "c": person("c", ("cell", 0))}
    tiers: list[list[Target]] = [[ScheduleTarget("s"), ScheduleTarget("n")], [ClinicianTarget("b")]]
    gaps = coverage_gaps(
        tiers, {"s": day, "n": night}, people, utc(2026, 1, 1, 12), utc(2026, 1, 4, 12)
    )
    assert gaps == [
        Gap(utc(2026, 1, 2, 9), utc(2026, 1, 3, 9), 1),  # b's day, c not yet on
        Gap(utc(2026, 1, 1, 12), utc(2026, 1, 4, 12), 2),
    ]


def test_an_empty_window_has_no_gap() -> None:
    t = utc(2026, 1, 1)
    assert coverage_gaps([[ClinicianTarget("x")]], {}, {}, t, t) == []
    assert coverage_gaps([[ClinicianTarget("x")]], {}, {}, t, t - timedelta(days=1)) == []


# --- SMS reply codes --------------------------------------------------------------------


def test_reply_code_is_the_number_then_a() -> None:
    assert reply_code(4) == "4a"
    assert parse_reply(reply_code(57)) == (57, "ack")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("4a", (4, "ack")),
        ("4A", (4, "ack")),
        (" 4A ", (4, "ack")),
        ("4 a", (4, "ack")),
        ("\t12a\n", (12, "ack")),
        ("4a.", (4, "ack")),
        ("4a!", (4, "ack")),
        ("04a", (4, "ack")),
        ("999a", (999, "ack")),
        ("0a", None),
        ("00a", None),
        ("1000a", None),
        ("4b", None),
        ("a4", None),
        ("4", None),
        ("a", None),
        ("ack", None),
        ("", None),
        ("   ", None),
        ("4a please", None),
        ("yes 4a", None),
        ("4aa", None),
        ("-4a", None),
    ],
)
def test_parse_reply(body: str, expected: tuple[int, str] | None) -> None:
    assert parse_reply(body) == expected


# --- addresses --------------------------------------------------------------------------


def test_check_timezone() -> None:
    assert check_timezone("America/New_York") == "America/New_York"
    assert check_timezone("UTC") == "UTC"
    for bad in ("", "localtime", "Mars/Olympus", "america/new_york", "EST5EDT ", "../etc/passwd"):
        with pytest.raises(ValueError, match="time zone"):
            check_timezone(bad)


def test_check_phone_takes_e164_only() -> None:
    assert check_phone("+12025550123") == "+12025550123"
    assert check_phone("+442079460958") == "+442079460958"
    for bad in (
        "2025550123",  # no country code
        "+1202",  # too short
        "+44 20 7946 0958",  # spaces: E.164 has none
        "+1-202-555-0123",
        "+1 (202) 555-0123",
        "+02025550123",  # no country code starts with 0
        "+1202555012345678",  # longer than 15 digits
        "",
        "+",
        "+12025550123\n",
        "tel:+12025550123",
    ):
        with pytest.raises(ValueError, match=r"E\.164"):
            check_phone(bad)


def test_check_phone_refuses_an_impossible_number_for_its_country() -> None:
    with pytest.raises(ValueError, match="possible"):
        check_phone("+1202555012")  # 9 digits after +1


def test_check_email() -> None:
    assert check_email("rivera@clinic.example") == "rivera@clinic.example"
    assert check_email("Rivera@Clinic.Example") == "Rivera@clinic.example"
    for bad in ("", "rivera", "rivera@", "@clinic.example", "a b@clinic.example", "a@b@c.example"):
        with pytest.raises(ValueError, match="e-mail"):
            check_email(bad)


def test_check_webhook() -> None:
    for ok in ("https://hooks.example/x", "http://127.0.0.1:8080/p?q=1", "https://h.example"):
        assert check_webhook(ok) == ok
    for bad in (
        "",
        "hooks.example/x",
        "ftp://hooks.example/x",
        "javascript:alert(1)",
        "https://",
        "https:///path",
        "https://h.example:99999/",
        "https://h.example:port/",
        "https://h.example/a b",
        "https://h.example/\n",
    ):
        with pytest.raises(ValueError, match="URL"):
            check_webhook(bad)


def test_check_address_checks_by_kind() -> None:
    assert check_address("sms", "+12025550123") == "+12025550123"
    assert check_address("email", "a@clinic.example") == "a@clinic.example"
    assert check_address("webhook", "https://h.example/") == "https://h.example/"
    with pytest.raises(ValueError, match=r"E\.164"):
        check_address("sms", "a@clinic.example")
    with pytest.raises(ValueError, match="e-mail"):
        check_address("email", "+12025550123")
    with pytest.raises(ValueError, match="URL"):
        check_address("webhook", "a@clinic.example")


def test_check_address_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        check_address("pager", "https://h.example/")


# --- naive datetimes ----------------------------------------------------------------------

NAIVE = datetime(2026, 1, 1, 12)
_S = sched(daily("a"))
_QUIET = person("a", ("cell", 0), quiet=(time(22), time(7)))
_PLAIN = person("b", ("cell", 0))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: oncall_at(_S, NAIVE), id="oncall_at"),
        pytest.param(lambda: handoffs(_S, NAIVE, utc(2026, 1, 2)), id="handoffs-start"),
        pytest.param(lambda: handoffs(_S, utc(2026, 1, 1), NAIVE), id="handoffs-end"),
        pytest.param(lambda: in_quiet_hours(_QUIET, NAIVE), id="in_quiet_hours"),
        pytest.param(lambda: in_quiet_hours(_PLAIN, NAIVE), id="in_quiet_hours-none-set"),
        pytest.param(lambda: reachable(_PLAIN, "critical", NAIVE), id="reachable-critical"),
        pytest.param(lambda: reachable(_QUIET, "high", NAIVE), id="reachable-high"),
        pytest.param(lambda: deliveries(["b"], {"b": _PLAIN}, "critical", NAIVE), id="deliveries"),
        pytest.param(lambda: deliveries([], {}, "high", NAIVE), id="deliveries-to-nobody"),
        pytest.param(
            lambda: resolve_targets([ClinicianTarget("b")], {}, NAIVE), id="resolve-clinician"
        ),
        pytest.param(
            lambda: resolve_targets([ScheduleTarget("s")], {"s": _S}, NAIVE),
            id="resolve-schedule",
        ),
        pytest.param(
            lambda: coverage_gaps([[ScheduleTarget("s")]], {"s": _S}, {}, NAIVE, utc(2026, 1, 2)),
            id="coverage_gaps-start",
        ),
        pytest.param(
            lambda: coverage_gaps([], {}, {}, utc(2026, 1, 1), NAIVE), id="coverage_gaps-end"
        ),
    ],
)
def test_every_rule_taking_an_instant_refuses_a_naive_one(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        call()
