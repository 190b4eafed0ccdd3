"""Patient preferences: honoured when possible, else relaxed and named (DOMAIN.md,
"People and places": "proposed as close as possible and says why")."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.model import STANDARD, Busy, Preferences, SeriesPlan, Weekday
from services.scheduling.domain.slots import find_series, preference_levels
from tests.unit.scheduling.builders import local, site, violations

SITE = site()  # New York, Mon-Fri 08:00-18:00, 2 rooms, 2 therapists
ONE_ROOM = site(rooms=1)
NOW = local(SITE, 2026, 11, 22, 12)  # Sunday noon
EMPTY = Calendar()


def days(*names: Weekday) -> frozenset[Weekday]:
    return frozenset(names)


def series(
    prefs: Preferences, calendar: Calendar = EMPTY, patience: timedelta = timedelta(days=14)
) -> SeriesPlan:
    at = ONE_ROOM if calendar is not EMPTY else SITE
    found = find_series(at, calendar, STANDARD, prefs, NOW, pref_patience=patience)
    assert isinstance(found, SeriesPlan), found
    assert violations(found.sessions, site_=at, calendar=calendar, now=NOW) == []
    return found


def honoured(found: SeriesPlan, prefs: Preferences) -> list[str]:
    return violations(found.sessions, site_=SITE, calendar=EMPTY, now=NOW, prefs=prefs)


@pytest.mark.parametrize(
    "prefs",
    [
        Preferences(earliest=time(13)),
        Preferences(latest=time(12)),
        Preferences(earliest=time(9), latest=time(15)),
        Preferences(weekdays=days("mon", "tue", "wed", "thu")),
        Preferences(weekdays=days("tue", "wed", "thu", "fri"), earliest=time(14)),
    ],
    ids=["afternoons", "mornings", "nine_to_three", "mon_to_thu", "tue_to_fri_after_two"],
)
def test_preferences_are_honoured_for_every_session_when_possible(prefs: Preferences) -> None:
    found = series(prefs)
    assert found.relaxed == ()
    assert honoured(found, prefs) == []


def test_only_mondays_cannot_give_two_doses_a_week_so_weekdays_are_relaxed() -> None:
    found = series(Preferences(weekdays=days("mon")))
    assert found.relaxed == ("weekdays",)
    assert found == SeriesPlan(
        series(Preferences()).sessions, ("weekdays",), series(Preferences()).first_start
    )


def test_time_of_day_is_relaxed_first_and_weekdays_still_honoured() -> None:
    prefs = Preferences(weekdays=days("mon", "tue", "wed", "thu"), earliest=time(16))
    found = series(prefs)  # a 3 h dose cannot start at 16:00 and end by 18:00
    assert found.relaxed == ("time_of_day",)
    assert honoured(found, Preferences(weekdays=prefs.weekdays)) == []


def test_both_are_relaxed_when_dropping_the_time_of_day_is_not_enough() -> None:
    found = series(Preferences(weekdays=days("mon"), earliest=time(16)))
    assert found.relaxed == ("time_of_day", "weekdays")


def test_an_empty_weekday_set_cannot_be_honoured() -> None:
    assert series(Preferences(weekdays=frozenset())).relaxed == ("weekdays",)


def test_relaxed_names_only_preferences_that_were_given() -> None:
    assert series(Preferences(earliest=time(17))).relaxed == ("time_of_day",)


def afternoons_booked(first: date, count: int) -> Calendar:
    spans = []
    for n in range(count):
        day = first + timedelta(days=n)
        spans.append(
            Busy(
                "room-1",
                local(ONE_ROOM, day.year, day.month, day.day, 13),
                local(ONE_ROOM, day.year, day.month, day.day, 18),
            )
        )
    return Calendar.from_busy(spans)


def test_a_preference_is_worth_a_later_start_within_the_patience() -> None:
    calendar = afternoons_booked(date(2026, 11, 23), 7)
    assert series(Preferences(), calendar).first_start == local(ONE_ROOM, 2026, 11, 24, 8)
    found = series(Preferences(earliest=time(13)), calendar)
    assert found.relaxed == ()
    assert found.first_start == local(ONE_ROOM, 2026, 11, 30, 13)


def test_a_preference_is_dropped_when_honouring_it_would_wait_beyond_the_patience() -> None:
    calendar = afternoons_booked(date(2026, 11, 23), 28)
    found = series(Preferences(earliest=time(13)), calendar)
    assert found.relaxed == ("time_of_day",)
    assert found.first_start == local(ONE_ROOM, 2026, 11, 24, 8)
    patient = series(Preferences(earliest=time(13)), calendar, patience=timedelta(days=30))
    assert patient.relaxed == ()
    assert patient.first_start == local(ONE_ROOM, 2026, 12, 21, 13)


@pytest.mark.parametrize(
    ("prefs", "relaxations"),
    [
        (Preferences(), [()]),
        (Preferences(earliest=time(9)), [(), ("time_of_day",)]),
        (Preferences(weekdays=days("mon")), [(), ("weekdays",)]),
        (
            Preferences(weekdays=days("mon"), latest=time(12)),
            [(), ("time_of_day",), ("time_of_day", "weekdays")],
        ),
    ],
)
def test_levels_drop_time_of_day_before_weekdays(
    prefs: Preferences, relaxations: list[tuple[str, ...]]
) -> None:
    assert [relaxed for _, relaxed in preference_levels(prefs)] == relaxations
