"""find_single: one maintenance or rebooked dose in a window, with its integration."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

import pytest

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.model import (
    STANDARD,
    Busy,
    Kind,
    NoFit,
    Preferences,
    SinglePlan,
    Site,
)
from services.scheduling.domain.slots import find_single
from tests.unit.scheduling.builders import busy_all_day, local, local_day, site, violations

SITE = site()  # New York, Mon-Fri 08:00-18:00, 2 rooms, 2 therapists
NOW = local(SITE, 2026, 11, 22, 12)  # Sunday noon
EMPTY = Calendar()
NO_PREFS = Preferences()


def single(
    not_before: datetime,
    not_after: datetime,
    *,
    calendar: Calendar = EMPTY,
    kind: Kind = Kind.maintenance,
    prefs: Preferences = NO_PREFS,
    therapist: str | None = None,
    at: Site = SITE,
    mine: Sequence[tuple[datetime, datetime]] = (),
    doses: Sequence[datetime] = (),
) -> SinglePlan | NoFit:
    found = find_single(
        at,
        calendar,
        STANDARD,
        prefs,
        NOW,
        kind=kind,
        not_before=not_before,
        not_after=not_after,
        sequence=3,
        preferred_therapist=therapist,
        patient_busy=mine,
        patient_doses=doses,
    )
    if isinstance(found, SinglePlan):
        problems = violations(
            found.sessions, site_=at, calendar=calendar, now=NOW, patient_busy=mine, series=False
        )
        assert problems == []
    return found


WINDOW = (local(SITE, 2026, 12, 21), local(SITE, 2026, 12, 28))  # a Monday to a Monday


@pytest.mark.parametrize("kind", [Kind.maintenance, Kind.dosing])
def test_one_dose_at_the_earliest_slot_of_the_window_and_its_integration(kind: Kind) -> None:
    found = single(*WINDOW, kind=kind)
    assert isinstance(found, SinglePlan)
    assert (found.dose.kind, found.dose.sequence) == (kind, 3)
    assert found.dose.start == local(SITE, 2026, 12, 21, 8)
    assert (found.integration.kind, found.integration.sequence) == (Kind.integration, 3)
    assert found.integration.start == local(SITE, 2026, 12, 22, 8)
    assert found.relaxed == ()


def test_a_window_opening_now_still_keeps_the_24h_lead() -> None:
    found = single(NOW, NOW + timedelta(days=7))  # "within 7 days when a patient worsens"
    assert isinstance(found, SinglePlan)
    assert found.dose.start == NOW + timedelta(hours=24)


def test_not_after_is_inclusive() -> None:
    two_pm = local(SITE, 2026, 11, 23, 14)
    found = single(two_pm, two_pm)
    assert isinstance(found, SinglePlan)
    assert found.dose.start == two_pm


def test_a_window_without_a_grid_time_has_no_fit() -> None:
    found = single(local(SITE, 2026, 11, 23, 13, 31), local(SITE, 2026, 11, 23, 13, 59))
    assert found == NoFit("no_capacity_within_window")


def test_no_fit_when_every_room_is_booked_through_the_window() -> None:
    calendar = Calendar.from_busy(
        Busy(room, WINDOW[0], WINDOW[1] + timedelta(days=1)) for room in SITE.room_ids()
    )
    assert single(*WINDOW, calendar=calendar) == NoFit("no_capacity_within_window")


def test_the_preferred_therapist_is_kept_a_day_later_rather_than_switching() -> None:
    calendar = Calendar.from_busy([busy_all_day("therapist-2", SITE, date(2026, 12, 22))])
    found = single(*WINDOW, calendar=calendar, therapist="therapist-2")
    assert isinstance(found, SinglePlan)
    assert found.integration.resource == "therapist-2"
    assert local_day(SITE, found.integration.start) == date(2026, 12, 23)


def test_another_therapist_when_the_preferred_one_is_busy_all_3_days() -> None:
    days = [date(2026, 12, 22), date(2026, 12, 23), date(2026, 12, 24)]
    calendar = Calendar.from_busy(busy_all_day("therapist-2", SITE, d) for d in days)
    found = single(*WINDOW, calendar=calendar, therapist="therapist-2")
    assert isinstance(found, SinglePlan)
    assert found.integration.resource == "therapist-1"
    assert local_day(SITE, found.integration.start) == date(2026, 12, 22)


def test_a_therapist_the_site_does_not_have_is_ignored() -> None:
    found = single(*WINDOW, therapist="therapist-9")
    assert isinstance(found, SinglePlan)
    assert found.integration.resource == "therapist-1"


def test_the_patients_other_appointments_are_avoided() -> None:
    mine = [(local(SITE, 2026, 12, 21, 7), local(SITE, 2026, 12, 21, 12))]
    found = single(*WINDOW, mine=mine)
    assert isinstance(found, SinglePlan)
    assert found.dose.start == local(SITE, 2026, 12, 21, 12)


def test_a_rebooked_dose_keeps_the_gap_and_the_weekly_cap_with_the_other_doses() -> None:
    doses = [
        local(SITE, 2026, 11, 23, 12),
        local(SITE, 2026, 11, 30, 12),
        local(SITE, 2026, 12, 2, 12),
    ]
    found = single(
        local(SITE, 2026, 11, 24), local(SITE, 2026, 12, 6), kind=Kind.dosing, doses=doses
    )
    assert isinstance(found, SinglePlan)
    # >= 48 h after Nov 23 12:00, and no third dose within 7 days of Dec 2 12:00.
    assert found.dose.start == local(SITE, 2026, 11, 25, 12)


def test_an_impossible_weekday_is_dropped_first_and_the_time_window_kept() -> None:
    """docs/domain.md ("People and places"): drop the weekdays first, keep the window."""
    found = single(*WINDOW, prefs=Preferences(weekdays=frozenset({"sat"}), earliest=time(10)))
    assert isinstance(found, SinglePlan)
    assert found.relaxed == ("weekdays",)
    assert found.dose.start == local(SITE, 2026, 12, 21, 10)
    assert found.integration.start == local(SITE, 2026, 12, 22, 10)


def test_an_impossible_time_window_is_dropped_and_the_weekdays_kept() -> None:
    prefs = Preferences(weekdays=frozenset({"wed"}), earliest=time(17))
    found = single(*WINDOW, prefs=prefs)
    assert isinstance(found, SinglePlan)
    assert found.relaxed == ("time_of_day",)
    assert found.dose.start == local(SITE, 2026, 12, 23, 8)


def test_both_are_dropped_when_neither_alone_is_enough() -> None:
    found = single(*WINDOW, prefs=Preferences(weekdays=frozenset({"sat"}), earliest=time(17)))
    assert isinstance(found, SinglePlan)
    assert found.relaxed == ("weekdays", "time_of_day")
    assert found.dose.start == local(SITE, 2026, 12, 21, 8)


def test_each_level_is_searched_over_the_whole_window() -> None:
    # Friday is the window's only preferred day, four days after an unfiltered fit.
    found = single(*WINDOW, prefs=Preferences(weekdays=frozenset({"fri"}), earliest=time(15)))
    assert isinstance(found, SinglePlan)
    assert found.relaxed == ()
    assert found.dose.start == local(SITE, 2026, 12, 25, 15)


def test_time_of_day_is_honoured_inside_the_window() -> None:
    found = single(*WINDOW, prefs=Preferences(earliest=time(14)))
    assert isinstance(found, SinglePlan)
    assert found.dose.start == local(SITE, 2026, 12, 21, 14)
    assert found.relaxed == ()


def test_an_integration_is_not_a_dose() -> None:
    with pytest.raises(ValueError, match="not an integration"):
        single(*WINDOW, kind=Kind.integration)


def test_a_site_closed_every_day_says_so() -> None:
    assert single(*WINDOW, at=site(days=())) == NoFit("site_closed_every_day")
