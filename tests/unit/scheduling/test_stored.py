"""Protocols and preferences as scheduling stores them (domain/model.py): a protocol by
name and numbers, preferences as an intake's JSON."""

from __future__ import annotations

from datetime import time, timedelta

from services.scheduling.domain.model import (
    RETREAT,
    STANDARD,
    Preferences,
    protocol_numbers,
    stored_protocol,
)


def test_a_preset_stored_by_name_alone_is_the_preset() -> None:
    assert stored_protocol("standard", None) is STANDARD
    assert stored_protocol("retreat", None) is RETREAT


def test_an_unknown_or_custom_name_starts_from_standard() -> None:
    assert stored_protocol("", None) is STANDARD
    custom = stored_protocol("custom", {"doses": 4})
    assert custom.name == "custom"
    assert custom.doses == 4
    assert custom.min_gap == STANDARD.min_gap


def test_stored_numbers_rebuild_the_protocol() -> None:
    numbers = protocol_numbers(RETREAT)
    assert protocol_numbers(stored_protocol("retreat", numbers)) == numbers
    assert stored_protocol("retreat", {"window_days": 30}).window == timedelta(days=30)


def test_stored_preferences() -> None:
    assert Preferences.stored(None) == Preferences()
    assert Preferences.stored({}) == Preferences()
    assert Preferences.stored(
        {"weekdays": ["mon", "wed"], "earliest": "09:00", "latest": "17:30", "timezone": "UTC"}
    ) == Preferences(
        weekdays=frozenset({"mon", "wed"}),
        earliest=time(9, 0),
        latest=time(17, 30),
        timezone="UTC",
    )
    assert Preferences.stored({"weekdays": [], "timezone": ""}) == Preferences()
