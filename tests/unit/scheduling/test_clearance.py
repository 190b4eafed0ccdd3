"""Who may be scheduled automatically (docs/domain.md, "Who is scheduled, and when")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scheduling.domain.clearance import (
    Standing,
    Withheld,
    cleared,
    discharge_applies,
    is_newer_intake,
    starts_new_course,
    waits,
    withheld,
)

T = datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("decision", "review", "expected"),
    [
        ("eligible", None, True),
        ("eligible", "declined", True),  # a review only applies to needs_review
        ("needs_review", None, False),
        ("needs_review", "approved", True),
        ("needs_review", "declined", False),
        ("ineligible", None, False),
        ("ineligible", "approved", False),  # never approved into eligibility
        (None, None, False),
    ],
)
def test_only_eligible_or_approved_needs_review_is_cleared(
    decision: str | None, review: str | None, expected: bool
) -> None:
    assert cleared(decision, review) is expected


def standing(**kw: object) -> Standing:
    base: dict[str, object] = {
        "decision": "eligible",
        "review": None,
        "discharged_at": None,
        "held": False,
    }
    base.update(kw)
    return Standing(**base)  # type: ignore[arg-type]


def test_a_cleared_patient_not_discharged_nor_held_may_be_scheduled() -> None:
    assert withheld(standing()) is None


def test_an_unknown_patient_gets_nothing() -> None:
    assert withheld(None) is Withheld.unknown_patient


@pytest.mark.parametrize("decision", ["ineligible", "needs_review"])
def test_a_patient_not_cleared_gets_nothing_even_when_also_held(decision: str) -> None:
    assert withheld(standing(decision=decision, held=True)) is Withheld.not_cleared


def test_a_discharged_patient_gets_nothing_new() -> None:
    assert withheld(standing(discharged_at=T)) is Withheld.discharged


def test_a_held_patient_waits_and_the_others_are_dropped() -> None:
    assert withheld(standing(held=True)) is Withheld.on_hold
    assert waits(Withheld.on_hold)
    assert not any(waits(r) for r in Withheld if r is not Withheld.on_hold)


def test_the_latest_intake_is_the_one_submitted_last_ties_broken_by_id() -> None:
    assert is_newer_intake(T, "b", None, None)
    assert is_newer_intake(T + timedelta(seconds=1), "a", T, "z")
    assert not is_newer_intake(T - timedelta(seconds=1), "z", T, "a")
    assert is_newer_intake(T, "b", T, "a")
    assert not is_newer_intake(T, "a", T, "b")
    assert is_newer_intake(T, "a", T, "a")  # the same intake again is not older


def test_a_new_course_starts_without_an_induction_or_after_a_discharge() -> None:
    assert starts_new_course(None, has_induction=False)
    assert not starts_new_course(None, has_induction=True)
    assert starts_new_course(T, has_induction=True)


def test_a_discharge_older_than_the_current_course_changes_nothing() -> None:
    assert discharge_applies(T, None)
    assert discharge_applies(T, T)
    assert discharge_applies(T + timedelta(days=1), T)
    assert not discharge_applies(T - timedelta(seconds=1), T)
