"""C-SSRS screener triage: every one of the 128 answer patterns, and named cases."""

from __future__ import annotations

import itertools

import pytest

from services.intake.domain.model import Cssrs, SuicideRisk
from services.intake.domain.scoring import triage_cssrs
from tests.unit.intake.builders import cssrs

ITEMS = (
    "wish_to_be_dead",
    "suicidal_thoughts",
    "method",
    "intent",
    "plan",
    "behavior_past_3_months",
    "behavior_ever",
)
LEVELS = [SuicideRisk.none, SuicideRisk.low, SuicideRisk.moderate, SuicideRisk.high]
ALL_PATTERNS = [
    dict(zip(ITEMS, bits, strict=True)) for bits in itertools.product((False, True), repeat=7)
]


def oracle(answers: dict[str, bool]) -> SuicideRisk:
    """docs/domain.md's table ("C-SSRS triage") read literally: collect every level that
    applies, take the top."""
    applies = [SuicideRisk.none]
    if answers["wish_to_be_dead"] or answers["suicidal_thoughts"]:  # 1-2 yes
        applies.append(SuicideRisk.low)
    if answers["method"]:  # 3 yes
        applies.append(SuicideRisk.moderate)
    if answers["behavior_ever"] and not answers["behavior_past_3_months"]:  # 6, > 3 months ago
        applies.append(SuicideRisk.moderate)
    if answers["intent"] or answers["plan"]:  # 4 or 5 yes
        applies.append(SuicideRisk.high)
    if answers["behavior_past_3_months"]:  # 6 in the past 3 months
        applies.append(SuicideRisk.high)
    return max(applies, key=LEVELS.index)


def test_the_pattern_table_covers_all_128_answer_combinations() -> None:
    assert len({tuple(p.values()) for p in ALL_PATTERNS}) == 2**7


@pytest.mark.parametrize(
    "answers", ALL_PATTERNS, ids=lambda a: "".join("1" if a[k] else "0" for k in ITEMS)
)
def test_every_answer_pattern_matches_the_domain_table(answers: dict[str, bool]) -> None:
    assert triage_cssrs(Cssrs(**answers)) is oracle(answers)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({}, SuicideRisk.none),
        ({"wish_to_be_dead": True}, SuicideRisk.low),
        ({"suicidal_thoughts": True}, SuicideRisk.low),
        ({"wish_to_be_dead": True, "suicidal_thoughts": True}, SuicideRisk.low),
        ({"method": True}, SuicideRisk.moderate),
        ({"suicidal_thoughts": True, "method": True}, SuicideRisk.moderate),
        ({"behavior_ever": True}, SuicideRisk.moderate),
        ({"intent": True}, SuicideRisk.high),
        ({"plan": True}, SuicideRisk.high),
        ({"behavior_past_3_months": True, "behavior_ever": True}, SuicideRisk.high),
    ],
    ids=[
        "no_yes_is_none",
        "wish_to_be_dead_only_is_low",
        "suicidal_thoughts_only_is_low",
        "items_1_and_2_are_low",
        "method_alone_is_moderate",
        "thoughts_with_method_is_moderate",
        "behaviour_only_longer_ago_than_3_months_is_moderate",
        "intent_is_high",
        "plan_is_high",
        "behaviour_in_past_3_months_is_high",
    ],
)
def test_named_triage_cases(answers: dict[str, bool], expected: SuicideRisk) -> None:
    assert triage_cssrs(cssrs(**answers)) is expected


@pytest.mark.parametrize(
    "answers",
    [
        {"wish_to_be_dead": True, "suicidal_thoughts": True, "method": True, "intent": True},
        {"method": True, "behavior_ever": True, "plan": True},
        {"wish_to_be_dead": True, "behavior_ever": True, "behavior_past_3_months": True},
    ],
)
def test_highest_level_wins_when_several_apply(answers: dict[str, bool]) -> None:
    assert triage_cssrs(cssrs(**answers)) is SuicideRisk.high


def test_moderate_beats_low_when_both_apply() -> None:
    answers = {"wish_to_be_dead": True, "suicidal_thoughts": True, "behavior_ever": True}
    assert triage_cssrs(cssrs(**answers)) is SuicideRisk.moderate


def test_behaviour_in_past_3_months_is_high_even_when_behavior_ever_is_left_false() -> None:
    assert triage_cssrs(cssrs(behavior_past_3_months=True)) is SuicideRisk.high


def test_behavior_ever_defaults_to_false() -> None:
    answers = dict.fromkeys(ITEMS[:6], False)
    assert Cssrs(**answers).behavior_ever is False
