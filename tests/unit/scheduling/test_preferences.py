"""Patient preferences (docs/domain.md, "People and places"): read in their own zone
or the site's, they bind dosing sessions; integrations follow their dose in the
same time window. Honoured when possible, else relaxed in a fixed order and named
("Every appointment says what was relaxed")."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.grid import NO_FILTER, DayFilter, Slot
from services.scheduling.domain.model import (
    STANDARD,
    Busy,
    Kind,
    Preferences,
    SeriesPlan,
    SinglePlan,
    Weekday,
)
from services.scheduling.domain.slots import find_series, find_single, preference_levels
from tests.unit.scheduling.builders import (
    WEEK,
    doses_of,
    integrations_of,
    local,
    local_of,
    site,
    violations,
)

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


def test_weekdays_are_dropped_first_and_the_time_window_kept() -> None:
    """docs/domain.md ("People and places"): "drop the weekdays first and keep the
    time window"."""
    prefs = Preferences(weekdays=days("mon"), earliest=time(13))
    found = series(prefs)  # Mondays alone cannot hold 6 doses in 21 days
    assert found.relaxed == ("weekdays",)
    assert honoured(found, Preferences(earliest=time(13))) == []
    assert honoured(found, prefs) != []  # some dose is not on a Monday


def test_the_time_window_is_dropped_next_and_the_weekdays_kept() -> None:
    """docs/domain.md: "then drop the time window and keep the weekdays"."""
    prefs = Preferences(weekdays=days("mon", "tue", "wed", "thu"), earliest=time(16))
    found = series(prefs)  # a 3 h dose cannot start at 16:00 and end by 18:00
    assert found.relaxed == ("time_of_day",)
    assert honoured(found, Preferences(weekdays=prefs.weekdays)) == []


def test_both_are_relaxed_only_when_neither_alone_is_enough() -> None:
    """docs/domain.md: "only then drop both"."""
    found = series(Preferences(weekdays=days("mon"), earliest=time(16)))
    assert found.relaxed == ("weekdays", "time_of_day")
    assert found.sessions == series(Preferences()).sessions


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
        (Preferences(timezone="Asia/Tokyo"), [()]),
        (Preferences(earliest=time(9)), [(), ("time_of_day",)]),
        (Preferences(weekdays=days("mon")), [(), ("weekdays",)]),
        (
            Preferences(weekdays=days("mon"), latest=time(12)),
            [(), ("weekdays",), ("time_of_day",), ("weekdays", "time_of_day")],
        ),
    ],
    ids=["none", "zone_only", "time_only", "weekdays_only", "both"],
)
def test_levels_drop_weekdays_then_time_window_then_both_skipping_repeats(
    prefs: Preferences, relaxations: list[tuple[str, ...]]
) -> None:
    levels = preference_levels(prefs, SITE)
    assert [level.relaxed for level in levels] == relaxations
    assert (levels[-1].doses, levels[-1].integrations) == (NO_FILTER, NO_FILTER)


def test_integrations_keep_the_time_window_while_the_level_does_but_never_the_weekdays() -> None:
    prefs = Preferences(weekdays=days("mon"), earliest=time(9), latest=time(13))
    window = DayFilter.of(Preferences(earliest=time(9), latest=time(13)), SITE.timezone)
    assert [level.integrations for level in preference_levels(prefs, SITE)] == [
        window,  # all preferences: the doses' weekdays do not bind integrations
        window,  # weekdays dropped, time window kept
        NO_FILTER,  # time window dropped
        NO_FILTER,
    ]


DENVER = site(timezone="America/Denver")  # Mon-Fri 08:00-18:00, 2 rooms, 2 therapists
WINTER_SUNDAY = local(DENVER, 2027, 1, 10, 12)  # no DST change in the following weeks
TUE_THU_MORNINGS = Preferences(weekdays=days("tue", "thu"), earliest=time(9), latest=time(13))


def test_a_tue_thu_morning_patient_gets_tue_thu_doses_and_nothing_relaxed() -> None:
    """docs/domain.md ("People and places"): preferences apply to dosing sessions; each
    integration follows its dose 1-3 days later in the same time window. A Thursday
    dose's integration is on Friday, a day the patient did not name for doses."""
    found = find_series(DENVER, EMPTY, STANDARD, TUE_THU_MORNINGS, WINTER_SUNDAY)
    assert isinstance(found, SeriesPlan), found
    assert found.relaxed == ()
    assert (
        violations(
            found.sessions, site_=DENVER, calendar=EMPTY, now=WINTER_SUNDAY, prefs=TUE_THU_MORNINGS
        )
        == []
    )
    doses = [local_of(DENVER, d.start) for d in doses_of(found.sessions)]
    assert [(d.strftime("%a"), d.time()) for d in doses] == [("Tue", time(9)), ("Thu", time(9))] * 3
    assert [d.date() for d in doses] == [
        date(2027, 1, 12),
        date(2027, 1, 14),
        date(2027, 1, 19),
        date(2027, 1, 21),
        date(2027, 1, 26),
        date(2027, 1, 28),
    ]
    talks = [local_of(DENVER, s.start) for s in integrations_of(found.sessions)]
    assert [t.strftime("%a") for t in talks] == ["Wed", "Fri"] * 3
    assert all(
        time(9) <= t.time() and (t + timedelta(minutes=90)).time() <= time(13) for t in talks
    )


def test_preferences_in_the_sites_own_zone_named_explicitly_change_nothing() -> None:
    named = replace(TUE_THU_MORNINGS, timezone="America/Denver")
    assert find_series(DENVER, EMPTY, STANDARD, named, WINTER_SUNDAY) == find_series(
        DENVER, EMPTY, STANDARD, TUE_THU_MORNINGS, WINTER_SUNDAY
    )


def test_preferences_are_read_in_the_patients_zone_when_given() -> None:
    # 11:00-15:00 in New York is 09:00-13:00 in Denver (two hours behind all winter).
    eastern = Preferences(
        weekdays=days("tue", "thu"), earliest=time(11), latest=time(15), timezone="America/New_York"
    )
    found = find_series(DENVER, EMPTY, STANDARD, eastern, WINTER_SUNDAY)
    assert isinstance(found, SeriesPlan)
    assert found.relaxed == ()
    assert (
        violations(found.sessions, site_=DENVER, calendar=EMPTY, now=WINTER_SUNDAY, prefs=eastern)
        == []
    )
    assert found == find_series(DENVER, EMPTY, STANDARD, TUE_THU_MORNINGS, WINTER_SUNDAY)


def test_the_preferred_weekday_is_the_patients_local_one() -> None:
    # Wednesday 01:00-05:00 in Tokyo is Tuesday 09:00-13:00 in Denver (16 h behind).
    tokyo = Preferences(
        weekdays=days("wed", "fri"), earliest=time(1), latest=time(5), timezone="Asia/Tokyo"
    )
    found = find_series(DENVER, EMPTY, STANDARD, tokyo, WINTER_SUNDAY)
    assert isinstance(found, SeriesPlan)
    assert found.relaxed == ()
    assert (
        violations(found.sessions, site_=DENVER, calendar=EMPTY, now=WINTER_SUNDAY, prefs=tokyo)
        == []
    )
    doses = [local_of(DENVER, d.start) for d in doses_of(found.sessions)]
    assert {d.strftime("%a") for d in doses} == {"Tue", "Thu"}


def test_a_patients_window_follows_their_own_daylight_saving_change() -> None:
    """docs/domain.md: preferences read in the patient's zone, and DST never moves a
    session outside opening hours. New York springs forward on 14 March 2027,
    London on 28 March: in between, 09:00 in New York is 13:00 in London, not 14:00."""
    london = site(timezone="Europe/London", days=WEEK, opens=time(8), closes=time(20))
    mornings = Preferences(earliest=time(9), latest=time(13), timezone="America/New_York")
    now = local(london, 2027, 3, 7, 12)
    found = find_series(london, EMPTY, STANDARD, mornings, now)
    assert isinstance(found, SeriesPlan)
    assert found.relaxed == ()
    assert violations(found.sessions, site_=london, calendar=EMPTY, now=now, prefs=mornings) == []
    new_york = ZoneInfo("America/New_York")
    talks = integrations_of(found.sessions)
    assert {t.start.astimezone(new_york).time() for t in talks} == {time(9)}
    # 09:00 in New York: 14:00 in London before 14 March, 13:00 after it.
    assert [local_of(london, t.start).time() for t in talks] == [time(14)] * 2 + [time(13)] * 4


def test_a_single_dose_keeps_the_weekdays_but_its_integration_need_not() -> None:
    thursday = local(DENVER, 2027, 1, 14)
    found = find_single(
        DENVER,
        EMPTY,
        STANDARD,
        TUE_THU_MORNINGS,
        WINTER_SUNDAY,
        kind=Kind.maintenance,
        not_before=thursday,
        not_after=thursday + timedelta(days=1),
        sequence=1,
    )
    assert isinstance(found, SinglePlan)
    assert found.relaxed == ()
    assert local_of(DENVER, found.dose.start).strftime("%a %H:%M") == "Thu 09:00"
    assert local_of(DENVER, found.integration.start).strftime("%a %H:%M") == "Fri 09:00"


def test_a_window_in_another_zone_judges_each_session_by_its_own_end() -> None:
    # 09:00-12:00 in Chicago is 10:00-13:00 in New York: from 11:00 New York a 90-minute
    # session fits and a 180-minute one does not, whichever the filter saw first.
    chicago = Preferences(earliest=time(9), latest=time(12), timezone="America/Chicago")
    window = DayFilter.of(chicago, SITE.timezone)
    start = local(SITE, 2026, 11, 24, 11)
    short = Slot(start, start + timedelta(minutes=90), time(11), time(12, 30))
    long = Slot(start, start + timedelta(minutes=180), time(11), time(14))
    assert window.allows_slot(short)
    assert not window.allows_slot(long)
    assert window.allows_slot(short)
