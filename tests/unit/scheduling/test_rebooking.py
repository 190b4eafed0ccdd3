"""Replacement windows and the end of the induction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.scheduling.domain.model import RETREAT, STANDARD
from services.scheduling.domain.rebooking import (
    induction_complete,
    rebook_window,
    retry_window,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_a_replacement_may_land_a_third_of_the_window_after_the_original_time() -> None:
    original = NOW + timedelta(days=10)
    assert rebook_window(original, NOW, STANDARD) == (NOW, original + timedelta(days=7))


def test_a_replacement_always_gets_at_least_a_week_to_fit() -> None:
    original = NOW - timedelta(days=3)  # a no-show recorded late
    assert rebook_window(original, NOW, RETREAT) == (NOW, NOW + timedelta(days=7))


def test_a_retry_starts_no_earlier_than_now_and_spans_a_week() -> None:
    assert retry_window(None, NOW) == (NOW, NOW + timedelta(days=7))
    assert retry_window(NOW - timedelta(days=2), NOW) == (NOW, NOW + timedelta(days=7))
    later = NOW + timedelta(days=20)
    assert retry_window(later, NOW) == (later, later + timedelta(days=7))


def test_the_induction_is_complete_only_when_every_dose_is() -> None:
    assert not induction_complete({1, 2, 3, 4, 5}, STANDARD)
    assert induction_complete({1, 2, 3, 4, 5, 6}, STANDARD)
    assert not induction_complete([1, 1, 2, 3, 4, 5], STANDARD)  # a repeat counts once


def test_an_induction_with_a_dose_ended_by_the_clinic_is_complete_once_the_rest_are() -> None:
    assert induction_complete({1, 2, 3, 5, 6}, STANDARD, ended_sequences={4})
    assert not induction_complete({1, 2, 3, 5}, STANDARD, ended_sequences={4})
    assert not induction_complete(set(), STANDARD, ended_sequences={1, 2, 3, 4, 5, 6})
