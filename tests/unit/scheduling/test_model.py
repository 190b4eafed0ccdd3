"""The frozen values: sites, protocols (DOMAIN.md defaults) and preferences."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import time, timedelta
from typing import Any

import pytest

from services.scheduling.domain.model import (
    RETREAT,
    STANDARD,
    WEEKDAYS,
    Preferences,
    Protocol,
    Site,
    weekly_hours,
)
from tests.unit.scheduling.builders import site


def test_weekdays_are_monday_first() -> None:
    assert WEEKDAYS == ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_standard_protocol_has_domain_defaults() -> None:
    assert STANDARD.doses == 6
    assert STANDARD.min_gap == timedelta(hours=48)
    assert STANDARD.max_doses_per_7_days == 2
    assert STANDARD.window == timedelta(days=21)
    assert STANDARD.dosing_minutes == 180  # 40 min infusion + 2 h monitoring, rounded to 3 h
    assert STANDARD.integration_minutes == 90
    assert (STANDARD.integration_min_days, STANDARD.integration_max_days) == (1, 3)
    assert STANDARD.slot_step_minutes == 30
    assert STANDARD.min_lead == timedelta(hours=24)


def test_retreat_protocol_is_6_doses_in_12_days_24h_apart() -> None:
    assert (RETREAT.name, RETREAT.doses, RETREAT.window) == ("retreat", 6, timedelta(days=12))
    assert RETREAT.min_gap == timedelta(hours=24)


@pytest.mark.parametrize(
    "overrides",
    [
        {"doses": 0},
        {"max_doses_per_7_days": 0},
        {"dosing_minutes": 0},
        {"integration_minutes": -90},
        {"integration_min_days": 0},
        {"integration_min_days": 3, "integration_max_days": 2},
        {"slot_step_minutes": 0},
        {"window": timedelta(0)},
        {"min_gap": timedelta(hours=-1)},
        {"min_lead": timedelta(hours=-1)},
    ],
)
def test_protocol_rejects_impossible_settings(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        Protocol(name="bad", **overrides)


def test_site_hours_on_a_weekday_and_closed_days() -> None:
    s = site(days=("mon", "fri"), opens=time(9), closes=time(17))
    assert s.hours_on("mon") == (time(9), time(17))
    assert s.hours_on("tue") is None


def test_weekly_hours_lists_days_monday_first() -> None:
    hours = weekly_hours({"fri": (time(8), time(16)), "mon": (time(8), time(18))})
    assert hours == (("mon", time(8), time(18)), ("fri", time(8), time(16)))


def test_resource_ids_are_numbered_from_one() -> None:
    s = site(rooms=3, therapists=2)
    assert s.room_ids() == ("room-1", "room-2", "room-3")
    assert s.therapist_ids() == ("therapist-1", "therapist-2")


@pytest.mark.parametrize(
    ("timezone", "hours", "rooms"),
    [
        ("Mars/Olympus_Mons", (("mon", time(8), time(18)),), 1),
        ("UTC", (("mon", time(18), time(8)),), 1),
        ("UTC", (("mon", time(8), time(8)),), 1),
        ("UTC", (("mon", time(8), time(9)), ("mon", time(10), time(11))), 1),
        ("UTC", (("mon", time(8), time(18)),), -1),
    ],
    ids=["unknown_zone", "closes_before_opening", "closes_at_opening", "repeated_day", "rooms"],
)
def test_site_rejects_invalid_values(timezone: str, hours: Any, rooms: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        Site("s", timezone, hours, rooms, 1)


def test_values_are_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        STANDARD.doses = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("prefs", "given"),
    [
        (Preferences(), ()),
        (Preferences(weekdays=frozenset({"mon"})), ("weekdays",)),
        (Preferences(earliest=time(9)), ("time_of_day",)),
        (Preferences(latest=time(17)), ("time_of_day",)),
        (
            Preferences(weekdays=frozenset({"mon"}), earliest=time(9)),
            ("time_of_day", "weekdays"),
        ),
    ],
)
def test_given_preferences_are_named_in_relaxation_order(
    prefs: Preferences, given: tuple[str, ...]
) -> None:
    assert prefs.given() == given


def test_preferences_reject_unknown_weekdays() -> None:
    with pytest.raises(ValueError, match="unknown weekdays"):
        Preferences(weekdays=frozenset({"funday"}))  # type: ignore[arg-type]
