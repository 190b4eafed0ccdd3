"""Maintenance windows (DOMAIN.md, "Maintenance") and day-of-dosing vitals limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scheduling.domain.maintenance import (
    DosingVitalsPolicy,
    MaintenancePolicy,
    after_induction_window,
    should_propose_for_worsening,
    vitals_defer,
    worsening_window,
)

LAST_DOSE = datetime(2026, 12, 10, 17, tzinfo=UTC)
NOW = datetime(2027, 2, 1, 9, 30, tzinfo=UTC)


def test_first_maintenance_is_due_4_weeks_after_the_last_induction_dose() -> None:
    not_before, not_after = after_induction_window(LAST_DOSE, MaintenancePolicy())
    assert not_before == LAST_DOSE + timedelta(days=28)
    assert not_after == not_before + timedelta(days=7)


def test_after_induction_window_follows_the_policy() -> None:
    policy = MaintenancePolicy(after_induction=timedelta(days=90))
    assert after_induction_window(LAST_DOSE, policy)[0] == LAST_DOSE + timedelta(days=90)


def test_a_worsening_patient_is_seen_within_7_days() -> None:
    assert worsening_window(NOW, MaintenancePolicy()) == (NOW, NOW + timedelta(days=7))
    shorter = MaintenancePolicy(worsening_within=timedelta(days=3))
    assert worsening_window(NOW, shorter) == (NOW, NOW + timedelta(days=3))


@pytest.mark.parametrize(("pending", "expected"), [(False, True), (True, False)])
def test_worsening_proposes_maintenance_only_when_none_is_pending(
    pending: bool, expected: bool
) -> None:
    assert should_propose_for_worsening(pending) is expected


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
