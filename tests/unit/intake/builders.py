"""Builders of intake values for the unit tests: an eligible screen, then overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from services.intake.domain.model import (
    AntidepressantTrial,
    Cssrs,
    Screen,
    TrialOutcome,
    Vitals,
)

SUBMITTED_ON = date(2026, 11, 23)
ADULT_BIRTH_DATE = date(1981, 4, 2)
# Total 20 (severe), item 9 answered 0.
SEVERE_PHQ9: tuple[int, ...] = (3, 3, 2, 3, 2, 3, 2, 2, 0)
NO_RISK = Cssrs(
    wish_to_be_dead=False,
    suicidal_thoughts=False,
    method=False,
    intent=False,
    plan=False,
    behavior_past_3_months=False,
    behavior_ever=False,
)
NORMAL_VITALS = Vitals(systolic=128, diastolic=82, heart_rate=74)


def trial(
    outcome: TrialOutcome = TrialOutcome.no_response,
    *,
    weeks: float = 8,
    adequate: bool = True,
    medication: str = "sertraline",
) -> AntidepressantTrial:
    return AntidepressantTrial(
        medication=medication, adequate=adequate, weeks=weeks, outcome=outcome
    )


TWO_FAILED_TRIALS: tuple[AntidepressantTrial, ...] = (
    trial(TrialOutcome.no_response, weeks=8, medication="sertraline"),
    trial(TrialOutcome.partial_response, weeks=10, medication="venlafaxine"),
)


def phq9_with_total(total: int, item9: int = 0) -> tuple[int, ...]:
    """Nine valid items summing to ``total`` with item 9 fixed at ``item9``."""
    rest = total - item9
    assert 0 <= rest <= 24, "the first eight items hold at most 24"
    items = [min(3, max(0, rest - 3 * i)) for i in range(8)]
    return (*items, item9)


def cssrs(**answers: bool) -> Cssrs:
    return replace(NO_RISK, **answers)


def eligible_screen(**overrides: Any) -> Screen:
    """A screen that is eligible with no reasons; keyword arguments replace fields."""
    base = Screen(
        birth_date=ADULT_BIRTH_DATE,
        submitted_on=SUBMITTED_ON,
        phq9=SEVERE_PHQ9,
        cssrs=NO_RISK,
        trials=TWO_FAILED_TRIALS,
        conditions=(),
        vitals=NORMAL_VITALS,
    )
    return replace(base, **overrides)
