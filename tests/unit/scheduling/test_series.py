"""find_series: the induction series rules of docs/domain.md on named calendars."""

from __future__ import annotations

import itertools
from datetime import date, time, timedelta

import pytest

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.model import (
    RETREAT,
    STANDARD,
    Busy,
    Kind,
    NoFit,
    Preferences,
    Protocol,
    SeriesPlan,
    Site,
)
from services.scheduling.domain.slots import find_series
from tests.unit.scheduling.builders import (
    WEEK,
    busy_all_day,
    doses_of,
    integrations_of,
    local,
    local_day,
    local_of,
    site,
    violations,
)

SITE = site()  # New York, Mon-Fri 08:00-18:00, 2 rooms, 2 therapists
NOW = local(SITE, 2026, 11, 22, 12)  # Sunday noon: the earliest start is Monday noon
EMPTY = Calendar()
NO_PREFS = Preferences()


def plan(
    calendar: Calendar = EMPTY,
    protocol: Protocol = STANDARD,
    *,
    at: Site = SITE,
    prefs: Preferences = NO_PREFS,
) -> SeriesPlan:
    found = find_series(at, calendar, protocol, prefs, NOW)
    assert isinstance(found, SeriesPlan), found
    assert violations(found.sessions, site_=at, calendar=calendar, now=NOW, protocol=protocol) == []
    return found


@pytest.mark.parametrize("protocol", [STANDARD, RETREAT, Protocol(name="four", doses=4)])
def test_series_has_one_dose_and_one_integration_per_protocol_dose(protocol: Protocol) -> None:
    at = site(days=WEEK)
    found = plan(protocol=protocol, at=at)
    assert len(doses_of(found.sessions)) == protocol.doses
    assert len(integrations_of(found.sessions)) == protocol.doses
    assert {s.kind for s in doses_of(found.sessions)} == {Kind.dosing}
    assert found.relaxed == ()


def test_each_dose_holds_one_room_for_180_minutes() -> None:
    for dose in doses_of(plan().sessions):
        assert dose.resource.startswith("room-")
        assert dose.end - dose.start == timedelta(minutes=180)


def test_empty_calendar_gives_the_earliest_slot_twice_a_week() -> None:
    found = plan()
    starts = [local_of(SITE, d.start) for d in doses_of(found.sessions)]
    assert [s.date() for s in starts] == [
        date(2026, 11, 23),  # Monday, the first day after the 24 h lead
        date(2026, 11, 25),  # Wednesday: 48 h later
        date(2026, 11, 30),  # Monday: the third dose waits 7 days after the first
        date(2026, 12, 2),
        date(2026, 12, 7),
        date(2026, 12, 9),
    ]
    assert {s.time() for s in starts} == {time(12)}  # now + 24 h is Monday noon
    assert found.first_start == found.sessions[0].start == NOW + timedelta(hours=24)


def test_integration_is_the_next_local_day_when_a_therapist_is_free() -> None:
    found = plan()
    for dose, integration in zip(
        doses_of(found.sessions), integrations_of(found.sessions), strict=True
    ):
        assert (local_day(SITE, integration.start) - local_day(SITE, dose.start)).days == 1


def test_integration_moves_to_the_third_day_when_therapists_are_busy_before() -> None:
    tuesday, wednesday = date(2026, 11, 24), date(2026, 11, 25)
    busy = [busy_all_day(t, SITE, d) for t in SITE.therapist_ids() for d in (tuesday, wednesday)]
    found = plan(Calendar.from_busy(busy))
    first_dose, first_integration = doses_of(found.sessions)[0], integrations_of(found.sessions)[0]
    assert local_day(SITE, first_dose.start) == date(2026, 11, 23)
    assert local_day(SITE, first_integration.start) == date(2026, 11, 26)


def test_dose_moves_when_no_therapist_is_free_on_any_of_the_3_days_after() -> None:
    days = [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]
    busy = [busy_all_day(t, SITE, d) for t in SITE.therapist_ids() for d in days]
    found = plan(Calendar.from_busy(busy))
    assert local_day(SITE, found.first_start) == date(2026, 11, 24)
    assert local_day(SITE, integrations_of(found.sessions)[0].start) == date(2026, 11, 27)


def test_integration_is_never_on_the_dosing_day_even_when_a_therapist_is_free_then() -> None:
    at = site(days=WEEK, therapists=1)
    found = plan(at=at)
    for dose, integration in zip(
        doses_of(found.sessions), integrations_of(found.sessions), strict=True
    ):
        assert local_day(at, integration.start) != local_day(at, dose.start)


def test_the_series_therapist_is_chosen_at_the_first_integration() -> None:
    tuesday = date(2026, 11, 24)
    found = plan(Calendar.from_busy([busy_all_day("therapist-1", SITE, tuesday)]))
    assert {s.resource for s in integrations_of(found.sessions)} == {"therapist-2"}


def test_another_therapist_only_when_the_series_therapist_is_busy_all_3_days() -> None:
    days = [date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 28)]  # after dose 2
    busy = [busy_all_day("therapist-1", SITE, d) for d in days]
    found = plan(Calendar.from_busy(busy))
    therapists = [s.resource for s in integrations_of(found.sessions)]
    assert therapists == ["therapist-1", "therapist-2"] + ["therapist-1"] * 4


def test_the_series_therapist_is_kept_a_day_later_rather_than_switching() -> None:
    thursday = date(2026, 11, 26)  # the day after dose 2 (Wednesday)
    found = plan(Calendar.from_busy([busy_all_day("therapist-1", SITE, thursday)]))
    second = integrations_of(found.sessions)[1]
    assert second.resource == "therapist-1"
    assert local_day(SITE, second.start) == date(2026, 11, 27)


def test_a_full_calendar_pushes_the_start_later() -> None:
    at = site(rooms=1)
    first_week = [date(2026, 11, 23) + timedelta(days=n) for n in range(7)]
    found = plan(Calendar.from_busy(busy_all_day("room-1", at, d) for d in first_week), at=at)
    assert local_day(at, found.first_start) == date(2026, 11, 30)


def test_a_day_from_which_the_window_cannot_be_kept_fails_and_a_later_one_is_taken() -> None:
    at = site(days=WEEK, rooms=1)
    blocked = [date(2026, 12, 3) + timedelta(days=n) for n in range(15)]  # Dec 3 to Dec 17
    found = plan(Calendar.from_busy(busy_all_day("room-1", at, d) for d in blocked), at=at)
    # From Nov 23 only 4 doses fit before the block, and 21 days run out during it.
    assert local_day(at, found.first_start) == date(2026, 12, 18)


def test_the_series_avoids_the_patients_other_appointments() -> None:
    monday_noon = local(SITE, 2026, 11, 23, 12)
    mine = [(monday_noon, monday_noon + timedelta(hours=4))]
    found = find_series(SITE, EMPTY, STANDARD, NO_PREFS, NOW, patient_busy=mine)
    assert isinstance(found, SeriesPlan)
    assert violations(found.sessions, site_=SITE, calendar=EMPTY, now=NOW, patient_busy=mine) == []
    # Monday's only slots after the lead overlap it or end after closing: Tuesday 08:00.
    assert found.first_start == local(SITE, 2026, 11, 24, 8)


def test_a_second_series_on_the_booked_calendar_takes_other_resources() -> None:
    at = site(rooms=1, therapists=1)
    first = plan(at=at)
    booked = EMPTY.with_booked(first.sessions)
    second = plan(booked, at=at)
    for a in first.sessions:
        for b in second.sessions:
            assert a.resource != b.resource or b.end <= a.start or a.end <= b.start


def test_retreat_gives_6_doses_within_12_days_at_least_24h_apart() -> None:
    at = site(days=WEEK)
    starts = [d.start for d in doses_of(plan(protocol=RETREAT, at=at).sessions)]
    assert len(starts) == 6
    assert starts[-1] - starts[0] < timedelta(days=12)
    assert all(b - a >= timedelta(hours=24) for a, b in itertools.pairwise(starts))


def test_the_first_dose_starts_before_the_horizon_ends() -> None:
    at = site(rooms=1)
    busy = [Busy("room-1", NOW, NOW + timedelta(days=20))]
    calendar = Calendar.from_busy(busy)
    short = find_series(at, calendar, STANDARD, NO_PREFS, NOW, horizon=timedelta(days=20))
    assert short == NoFit("no_capacity_within_horizon")
    longer = find_series(at, calendar, STANDARD, NO_PREFS, NOW, horizon=timedelta(days=30))
    assert isinstance(longer, SeriesPlan)
    assert longer.first_start < NOW + timedelta(days=30)


def test_no_fit_when_the_only_room_is_booked_for_the_whole_horizon() -> None:
    at = site(rooms=1)
    calendar = Calendar.from_busy([Busy("room-1", NOW, NOW + timedelta(days=91))])
    assert find_series(at, calendar, STANDARD, NO_PREFS, NOW) == NoFit("no_capacity_within_horizon")


def test_no_fit_when_the_only_therapist_is_booked_for_the_whole_horizon() -> None:
    at = site(therapists=1)
    calendar = Calendar.from_busy([Busy("therapist-1", NOW, NOW + timedelta(days=120))])
    assert find_series(at, calendar, STANDARD, NO_PREFS, NOW) == NoFit("no_capacity_within_horizon")


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        (site(days=()), "site_closed_every_day"),
        (site(rooms=0), "no_treatment_rooms"),
        (site(therapists=0), "no_therapists"),
        (site(opens=time(9), closes=time(11, 30)), "hours_too_short"),
    ],
    ids=["closed_every_day", "no_rooms", "no_therapists", "hours_shorter_than_a_dose"],
)
def test_a_site_that_can_never_fit_a_series_says_why(at: Site, reason: str) -> None:
    assert find_series(at, EMPTY, STANDARD, NO_PREFS, NOW) == NoFit(reason)


def test_a_site_open_only_on_mondays_cannot_fit_an_integration_1_to_3_days_later() -> None:
    at = site(days=("mon",))
    assert find_series(at, EMPTY, STANDARD, NO_PREFS, NOW) == NoFit("no_capacity_within_horizon")
