"""The frozen values: sites, protocols (docs/domain.md defaults) and preferences."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, time, timedelta
from typing import Any

import pytest

from services.scheduling.domain.model import (
    PRESETS,
    RETREAT,
    STANDARD,
    WEEKDAYS,
    Preferences,
    Protocol,
    Site,
    protocol_from,
    protocol_numbers,
    shortest_span,
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
            ("weekdays", "time_of_day"),
        ),
    ],
)
def test_given_preferences_are_named_in_relaxation_order(
    prefs: Preferences, given: tuple[str, ...]
) -> None:
    assert prefs.given() == given


@pytest.mark.parametrize("zone", ["America/Denver", "UTC", "Asia/Kolkata"])
def test_preferences_take_a_known_time_zone(zone: str) -> None:
    assert Preferences(timezone=zone).timezone == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "EST+5 nonsense"])
def test_preferences_reject_an_unknown_time_zone(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Preferences(timezone=zone)


def test_preferred_times_are_wall_times() -> None:
    with pytest.raises(ValueError, match="wall times"):
        Preferences(earliest=time(9, tzinfo=UTC))


def test_preferences_reject_unknown_weekdays() -> None:
    with pytest.raises(ValueError, match="unknown weekdays"):
        Preferences(weekdays=frozenset({"funday"}))  # type: ignore[arg-type]


def test_retreat_allows_at_most_4_doses_in_any_7_days() -> None:
    """docs/domain.md ("Who is scheduled, and when"): "standard 2, retreat 4"."""
    assert RETREAT.max_doses_per_7_days == 4
    assert STANDARD.max_doses_per_7_days == 2


def test_retreat_numbers_fit_6_doses_in_12_days_at_least_24h_apart() -> None:
    # 4 daily doses, then the 5th 7 days after the 1st, the 6th a day later: 8 days.
    assert shortest_span(RETREAT) == timedelta(days=8)
    assert shortest_span(RETREAT) < RETREAT.window
    assert shortest_span(STANDARD) == timedelta(days=16)  # Mon, Wed, Mon, Wed, Mon, Wed


def test_presets_are_standard_and_retreat() -> None:
    assert dict(PRESETS) == {"standard": STANDARD, "retreat": RETREAT}
    with pytest.raises(TypeError):
        PRESETS["mine"] = STANDARD  # type: ignore[index]


def test_maintenance_interval_defaults_to_28_days() -> None:
    """docs/domain.md ("Maintenance"): "`maintenance_interval` (default 28 days)"."""
    assert STANDARD.maintenance_interval == RETREAT.maintenance_interval == timedelta(days=28)


@pytest.mark.parametrize("interval", [timedelta(0), timedelta(days=-1)])
def test_maintenance_interval_must_be_positive(interval: timedelta) -> None:
    with pytest.raises(ValueError, match="maintenance_interval"):
        Protocol(name="bad", maintenance_interval=interval)


def test_protocol_numbers_names_every_site_setting() -> None:
    assert protocol_numbers(STANDARD) == {
        "doses": 6,
        "min_gap_hours": 48,
        "max_doses_per_7_days": 2,
        "window_days": 21,
        "dosing_minutes": 180,
        "integration_minutes": 90,
        "integration_min_days": 1,
        "integration_max_days": 3,
        "maintenance_interval_days": 28,
    }
    assert protocol_numbers(RETREAT)["max_doses_per_7_days"] == 4
    assert all(type(v) is int for v in protocol_numbers(STANDARD).values())


@pytest.mark.parametrize("preset", [STANDARD, RETREAT])
def test_protocol_from_its_own_numbers_is_the_preset(preset: Protocol) -> None:
    assert protocol_from(preset, protocol_numbers(preset)) == preset
    assert protocol_from(preset, {}) == preset


def test_protocol_from_overrides_each_number_in_its_unit() -> None:
    custom = protocol_from(
        STANDARD,
        {
            "doses": 4,
            "min_gap_hours": 36.5,
            "max_doses_per_7_days": 3,
            "window_days": 14,
            "dosing_minutes": 150,
            "integration_minutes": 60,
            "integration_min_days": 2,
            "integration_max_days": 4,
            "maintenance_interval_days": 90,
        },
        name="clinic-own",
    )
    assert custom == Protocol(
        name="clinic-own",
        doses=4,
        min_gap=timedelta(hours=36, minutes=30),
        max_doses_per_7_days=3,
        window=timedelta(days=14),
        dosing_minutes=150,
        integration_minutes=60,
        integration_min_days=2,
        integration_max_days=4,
        maintenance_interval=timedelta(days=90),
    )
    assert protocol_numbers(custom)["min_gap_hours"] == 36.5


def test_protocol_from_keeps_the_base_scheduling_choices() -> None:
    custom = protocol_from(RETREAT, {"doses": 5})
    assert (custom.name, custom.slot_step_minutes, custom.min_lead) == (
        "retreat",
        RETREAT.slot_step_minutes,
        RETREAT.min_lead,
    )
    assert custom.min_gap == RETREAT.min_gap


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dose": 6}, "unknown protocol keys \\['dose'\\]"),
        ({"slot_step_minutes": 15}, "unknown protocol keys"),
        ({"doses": "6"}, "protocol.doses must be a number"),
        ({"doses": True}, "protocol.doses must be a number"),
        ({"doses": None}, "protocol.doses must be a number"),
        ({"doses": 4.5}, "protocol.doses must be a whole number"),
        ({"dosing_minutes": 180.0}, "protocol.dosing_minutes must be a whole number"),
        ({"doses": 0}, "doses and max_doses_per_7_days must be at least 1"),
        ({"max_doses_per_7_days": 0}, "at least 1"),
        ({"min_gap_hours": -1}, "min_gap and min_lead cannot be negative"),
        ({"min_gap_hours": float("nan")}, "protocol.min_gap_hours must be a finite"),
        ({"window_days": float("inf")}, "protocol.window_days must be a finite"),
        ({"window_days": 0}, "window must be positive"),
        ({"dosing_minutes": 0}, "session lengths must be positive"),
        ({"integration_minutes": 1441}, "protocol.integration_minutes must be at most 1440"),
        ({"integration_min_days": 0}, "integration days"),
        ({"integration_min_days": 4}, "integration days"),
        ({"maintenance_interval_days": 0}, "maintenance_interval must be positive"),
        ({"doses": 7}, "7 doses .* not within the 21 days, 0:00:00 window"),
        ({"window_days": 16}, "span at least 16 days"),
    ],
)
def test_protocol_from_refuses_unknown_keys_and_invalid_values(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        protocol_from(STANDARD, overrides)


def test_protocol_from_accepts_the_tightest_window_the_numbers_allow() -> None:
    # Standard's 6 doses span at least 16 days; the window is half-open.
    assert protocol_from(STANDARD, {"window_days": 16.01}).window > timedelta(days=16)
