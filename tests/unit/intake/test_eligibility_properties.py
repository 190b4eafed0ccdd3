"""Properties of ``decide`` over generated screens (hypothesis)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.domain.eligibility import INELIGIBLE_REASONS, REASON_ORDER, decide
from services.intake.domain.model import (
    KNOWN_CONDITIONS,
    AntidepressantTrial,
    Cssrs,
    Decision,
    Screen,
    TrialOutcome,
    Vitals,
)

FAST = settings(max_examples=200, deadline=None)
DECISION_RANK = [Decision.eligible, Decision.needs_review, Decision.ineligible]
SUBMITTED_ON = date(2026, 11, 23)

condition_codes = st.sampled_from(sorted(KNOWN_CONDITIONS))
trials = st.builds(
    AntidepressantTrial,
    medication=st.sampled_from(["sertraline", "venlafaxine", "bupropion", "escitalopram"]),
    adequate=st.booleans(),
    weeks=st.sampled_from([0, 4, 5, 5.9, 6, 6.5, 8, 12, 26]),
    outcome=st.sampled_from(list(TrialOutcome)),
)
screens = st.builds(
    Screen,
    birth_date=st.dates(min_value=date(1930, 1, 1), max_value=SUBMITTED_ON),
    submitted_on=st.just(SUBMITTED_ON),
    phq9=st.tuples(*[st.integers(min_value=0, max_value=3)] * 9),
    cssrs=st.builds(
        Cssrs,
        wish_to_be_dead=st.booleans(),
        suicidal_thoughts=st.booleans(),
        method=st.booleans(),
        intent=st.booleans(),
        plan=st.booleans(),
        behavior_past_3_months=st.booleans(),
        behavior_ever=st.booleans(),
    ),
    trials=st.lists(trials, max_size=4).map(tuple),
    conditions=st.lists(condition_codes, max_size=5).map(tuple),
    vitals=st.builds(
        Vitals,
        systolic=st.integers(min_value=90, max_value=200),
        diastolic=st.integers(min_value=50, max_value=120),
        heart_rate=st.integers(min_value=40, max_value=150),
    ),
)
failed_trials = st.builds(
    AntidepressantTrial,
    medication=st.just("nortriptyline"),
    adequate=st.just(True),
    weeks=st.floats(min_value=6, max_value=104),
    outcome=st.sampled_from([TrialOutcome.no_response, TrialOutcome.partial_response]),
)


def rank(decision: Decision) -> int:
    return DECISION_RANK.index(decision)


@FAST
@given(screens, condition_codes)
def test_adding_a_condition_never_makes_the_decision_better(screen: Screen, code: str) -> None:
    before = decide(screen)
    after = decide(replace(screen, conditions=(*screen.conditions, code)))
    assert rank(after.decision) >= rank(before.decision)
    assert set(before.reasons) <= set(after.reasons)


@FAST
@given(screens, failed_trials)
def test_adding_a_failed_trial_never_makes_the_decision_worse(
    screen: Screen, extra: AntidepressantTrial
) -> None:
    before = decide(screen)
    after = decide(replace(screen, trials=(*screen.trials, extra)))
    assert rank(after.decision) <= rank(before.decision)
    assert set(after.reasons) <= set(before.reasons)


@FAST
@given(screens)
def test_reasons_have_no_repeats_and_follow_the_canonical_order(screen: Screen) -> None:
    reasons = decide(screen).reasons
    assert len(reasons) == len(set(reasons))
    positions = [REASON_ORDER.index(reason) for reason in reasons]
    assert positions == sorted(positions)


@FAST
@given(screens)
def test_decision_follows_from_the_reasons(screen: Screen) -> None:
    verdict = decide(screen)
    if set(verdict.reasons) & INELIGIBLE_REASONS:
        assert verdict.decision is Decision.ineligible
    elif verdict.reasons:
        assert verdict.decision is Decision.needs_review
    else:
        assert verdict.decision is Decision.eligible


@FAST
@given(screens, st.randoms(use_true_random=False))
def test_decide_is_deterministic_and_ignores_input_order(
    screen: Screen, rnd: random.Random
) -> None:
    conditions = list(screen.conditions) * 2
    rnd.shuffle(conditions)
    shuffled_trials = list(screen.trials)
    rnd.shuffle(shuffled_trials)
    reordered = replace(screen, conditions=tuple(conditions), trials=tuple(shuffled_trials))
    assert decide(screen) == decide(screen) == decide(reordered)
