"""Maintenance windows (docs/domain.md, "Maintenance") and day-of-dosing vitals limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scheduling.domain.maintenance import (
    DosingVitalsPolicy,
    MaintenancePolicy,
    OnWorsening,
    maintenance_window,
    on_worsening,
    vitals_defer,
    worsening_window,
)

LAST_DOSE_END = datetime(2026, 12, 10, 17, tzinfo=UTC)
NOW = datetime(2027, 2, 1, 9, 30, tzinfo=UTC)
FOUR_WEEKS = timedelta(days=28)
POLICY = MaintenancePolicy()


def test_next_maintenance_is_due_one_interval_after_the_end_of_the_dose_it_follows() -> None:
    recorded = LAST_DOSE_END + timedelta(days=2)  # completion recorded two days late
    not_before, not_after = maintenance_window(LAST_DOSE_END, FOUR_WEEKS, recorded, POLICY)
    assert not_before == LAST_DOSE_END + FOUR_WEEKS  # from the dose, not the recording
    assert not_after == not_before + timedelta(days=7)


def test_maintenance_interval_is_the_protocols() -> None:
    quarterly = timedelta(days=90)
    start = LAST_DOSE_END - timedelta(hours=1)
    assert maintenance_window(LAST_DOSE_END, quarterly, start, POLICY)[0] == (
        LAST_DOSE_END + quarterly
    )


def test_a_due_date_already_past_is_placed_from_now() -> None:
    late = LAST_DOSE_END + timedelta(days=40)
    assert maintenance_window(LAST_DOSE_END, FOUR_WEEKS, late, POLICY) == (
        late,
        late + timedelta(days=7),
    )


def test_a_worsening_patient_is_seen_within_7_days() -> None:
    assert worsening_window(NOW, POLICY) == (NOW, NOW + timedelta(days=7))
    shorter = MaintenancePolicy(worsening_within=timedelta(days=3))
    assert worsening_window(NOW, shorter) == (NOW, NOW + timedelta(days=3))


@pytest.mark.parametrize(
    ("pending_in", "expected"),
    [
        (None, OnWorsening.propose),
        (timedelta(days=2), OnWorsening.keep),
        (timedelta(days=7), OnWorsening.keep),
        (timedelta(days=7, seconds=1), OnWorsening.move_forward),
        (timedelta(days=25), OnWorsening.move_forward),
    ],
    ids=["none_pending", "pending_in_2_days", "pending_exactly_at_7_days", "just_after", "weeks"],
)
def test_worsening_never_leaves_two_pending_and_moves_a_late_one_forward(
    pending_in: timedelta | None, expected: OnWorsening
) -> None:
    pending = None if pending_in is None else NOW + pending_in
    assert on_worsening(NOW, pending, POLICY) is expected


@pytest.mark.parametrize(
    ("dose_after_submission", "pending_in", "expected"),
    [
        (timedelta(hours=2), None, OnWorsening.answered),
        (timedelta(0), None, OnWorsening.answered),
        (timedelta(hours=2), timedelta(days=20), OnWorsening.answered),
        (-timedelta(seconds=1), None, OnWorsening.propose),
        (-timedelta(days=3), timedelta(days=20), OnWorsening.move_forward),
        (-timedelta(days=3), timedelta(days=2), OnWorsening.keep),
    ],
    ids=[
        "dose_since",
        "dose_at_submission",
        "dose_since_later_pending",
        "dose_just_before",
        "dose_before_late_pending",
        "dose_before_pending_in_time",
    ],
)
def test_a_worsening_handled_after_a_dose_that_followed_it_was_answered_by_that_dose(
    dose_after_submission: timedelta, pending_in: timedelta | None, expected: OnWorsening
) -> None:
    submitted = NOW - timedelta(days=1)
    pending = None if pending_in is None else NOW + pending_in
    got = on_worsening(
        NOW,
        pending,
        POLICY,
        submitted_at=submitted,
        last_dose_start=submitted + dose_after_submission,
    )
    assert got is expected


@pytest.mark.parametrize(
    ("systolic", "diastolic", "deferred"),
    [
        (159, 99, False),
        (160, 99, True),
        (159, 100, True),
        (160, 100, True),
        (120, 80, False),
        (200, 60, True),
        (110, 115, True),
    ],
    ids=[
        "159/99_just_below_both_doses",
        "160/99_systolic_at_limit_defers",
        "159/100_diastolic_at_limit_defers",
        "160/100_both_at_limit_defer",
        "120/80_normal_doses",
        "systolic_high_alone_defers",
        "diastolic_high_alone_defers",
    ],
)
def test_blood_pressure_at_or_above_either_limit_defers_the_dose(
    systolic: int, diastolic: int, deferred: bool
) -> None:
    assert vitals_defer(systolic, diastolic, DosingVitalsPolicy()) is deferred


def test_vitals_limits_are_configurable() -> None:
    policy = DosingVitalsPolicy(defer_systolic=150, defer_diastolic=95)
    assert vitals_defer(150, 80, policy)
    assert not vitals_defer(149, 94, policy)
