"""The intake decision: TRD, age, severity, suicide risk, conditions, vitals, precedence."""

from __future__ import annotations

from datetime import date

import pytest

from services.intake.domain.eligibility import (
    REASON_ORDER,
    EligibilityPolicy,
    count_failed_trials,
    decide,
)
from services.intake.domain.model import (
    ABSOLUTE_CONTRAINDICATIONS,
    ALLOWED_CONDITIONS,
    RELATIVE_CONTRAINDICATIONS,
    AntidepressantTrial,
    Decision,
    Phq9Severity,
    SuicideRisk,
    TrialOutcome,
    Vitals,
)
from tests.unit.intake.builders import cssrs, eligible_screen, phq9_with_total, trial


def test_the_baseline_screen_is_eligible_with_no_reasons() -> None:
    verdict = decide(eligible_screen())
    assert verdict.decision is Decision.eligible
    assert verdict.reasons == ()
    assert (verdict.phq9_total, verdict.phq9_severity) == (20, Phq9Severity.severe)
    assert verdict.suicide_risk is SuicideRisk.none


def test_policy_defaults_are_domain_md_defaults() -> None:
    policy = EligibilityPolicy()
    assert (
        policy.min_age,
        policy.min_phq9_total,
        policy.min_failed_trials,
        policy.min_trial_weeks,
        policy.review_systolic,
        policy.review_diastolic,
        policy.review_heart_rate_above,
    ) == (18, 10, 2, 6, 160, 100, 110)
    assert policy.failed_outcomes == {TrialOutcome.no_response, TrialOutcome.partial_response}


# --- treatment-resistant depression ---------------------------------------------


@pytest.mark.parametrize(
    ("one_trial", "counts"),
    [
        (trial(weeks=5), False),
        (trial(weeks=5.9), False),
        (trial(weeks=6), True),
        (trial(weeks=6.0), True),
        (trial(weeks=52), True),
        (trial(TrialOutcome.no_response), True),
        (trial(TrialOutcome.partial_response), True),
        (trial(TrialOutcome.response), False),
        (trial(TrialOutcome.remission), False),
        (trial(TrialOutcome.intolerance), False),
        (trial(TrialOutcome.unknown), False),
        (trial(adequate=False), False),
        (trial(TrialOutcome.partial_response, weeks=6, adequate=False), False),
    ],
    ids=[
        "5_weeks_is_too_short",
        "5.9_weeks_is_too_short",
        "exactly_6_weeks_counts",
        "6.0_weeks_counts",
        "long_trial_counts",
        "no_response_counts",
        "partial_response_counts",
        "response_does_not_count",
        "remission_does_not_count",
        "intolerance_does_not_count",
        "unknown_does_not_count",
        "inadequate_trial_does_not_count",
        "inadequate_6_week_partial_response_does_not_count",
    ],
)
def test_a_trial_counts_as_failed_only_when_adequate_long_enough_and_not_responding(
    one_trial: AntidepressantTrial, counts: bool
) -> None:
    assert count_failed_trials([one_trial], EligibilityPolicy()) == int(counts)
    verdict = decide(eligible_screen(trials=(trial(), one_trial)))
    expected = () if counts else ("not_treatment_resistant",)
    assert verdict.reasons == expected
    assert verdict.decision is (Decision.eligible if counts else Decision.ineligible)


@pytest.mark.parametrize(
    ("trials", "decision"),
    [
        ((), Decision.ineligible),
        ((trial(),), Decision.ineligible),
        ((trial(), trial()), Decision.eligible),
        ((trial(), trial(), trial()), Decision.eligible),
        ((trial(), trial(TrialOutcome.intolerance), trial(weeks=4)), Decision.ineligible),
    ],
    ids=["no_trials", "exactly_one", "exactly_two", "three", "one_plus_two_that_do_not_count"],
)
def test_at_least_two_failed_trials_are_needed_for_treatment_resistance(
    trials: tuple[AntidepressantTrial, ...], decision: Decision
) -> None:
    verdict = decide(eligible_screen(trials=trials))
    assert verdict.decision is decision
    assert ("not_treatment_resistant" in verdict.reasons) is (decision is Decision.ineligible)


# --- age -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "submitted_on", "under_age"),
    [
        (date(2008, 11, 23), date(2026, 11, 22), True),
        (date(2008, 11, 23), date(2026, 11, 23), False),
        (date(2008, 2, 29), date(2026, 2, 28), True),
        (date(2008, 2, 29), date(2026, 3, 1), False),
        (date(2008, 2, 29), date(2028, 2, 28), False),
    ],
    ids=[
        "day_before_18th_birthday_is_ineligible",
        "on_18th_birthday_is_eligible",
        "feb_29_birthday_is_17_on_feb_28_of_non_leap_year",
        "feb_29_birthday_is_18_on_mar_1_of_non_leap_year",
        "feb_29_birthday_is_19_in_the_next_leap_year",
    ],
)
def test_under_18_on_the_submission_date_is_ineligible(
    birth_date: date, submitted_on: date, under_age: bool
) -> None:
    verdict = decide(eligible_screen(birth_date=birth_date, submitted_on=submitted_on))
    assert verdict.reasons == (("under_minimum_age",) if under_age else ())
    assert verdict.decision is (Decision.ineligible if under_age else Decision.eligible)


# --- PHQ-9 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "decision", "reasons"),
    [
        (0, Decision.ineligible, ("severity_below_threshold",)),
        (9, Decision.ineligible, ("severity_below_threshold",)),
        (10, Decision.eligible, ()),
        (27, Decision.needs_review, ("phq9_item9_positive",)),
    ],
)
def test_phq9_total_below_10_is_ineligible(
    total: int, decision: Decision, reasons: tuple[str, ...]
) -> None:
    item9 = 3 if total == 27 else 0
    verdict = decide(eligible_screen(phq9=phq9_with_total(total, item9=item9)))
    assert (verdict.decision, verdict.reasons, verdict.phq9_total) == (decision, reasons, total)


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_item9_positive_needs_review_even_when_total_is_otherwise_eligible(item9: int) -> None:
    verdict = decide(eligible_screen(phq9=phq9_with_total(10, item9=item9)))
    assert verdict.decision is Decision.needs_review
    assert verdict.reasons == ("phq9_item9_positive",)
    assert verdict.phq9_item9_positive is True


def test_item9_positive_is_listed_even_when_total_is_low() -> None:
    verdict = decide(eligible_screen(phq9=phq9_with_total(1, item9=1)))
    assert verdict.decision is Decision.ineligible
    assert verdict.reasons == ("severity_below_threshold", "phq9_item9_positive")
    assert verdict.phq9_severity is Phq9Severity.none_minimal


def test_item9_zero_is_not_a_reason() -> None:
    verdict = decide(eligible_screen())
    assert verdict.phq9_item9_positive is False


def test_malformed_phq9_raises() -> None:
    with pytest.raises(ValueError, match="exactly 9 items"):
        decide(eligible_screen(phq9=(3, 3, 3)))


# --- C-SSRS ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "risk", "decision", "reasons"),
    [
        ({}, SuicideRisk.none, Decision.eligible, ()),
        ({"wish_to_be_dead": True}, SuicideRisk.low, Decision.eligible, ()),
        ({"method": True}, SuicideRisk.moderate, Decision.needs_review, ("suicide_risk_moderate",)),
        (
            {"behavior_ever": True},
            SuicideRisk.moderate,
            Decision.needs_review,
            ("suicide_risk_moderate",),
        ),
        ({"plan": True}, SuicideRisk.high, Decision.needs_review, ("suicide_risk_high",)),
        (
            {"method": True, "intent": True},
            SuicideRisk.high,
            Decision.needs_review,
            ("suicide_risk_high",),
        ),
    ],
    ids=[
        "none_is_eligible",
        "low_is_eligible",
        "moderate_needs_review",
        "old_behaviour_needs_review",
        "high_needs_review",
        "high_and_moderate_lists_only_high",
    ],
)
def test_suicide_risk_moderate_or_high_needs_review(
    answers: dict[str, bool], risk: SuicideRisk, decision: Decision, reasons: tuple[str, ...]
) -> None:
    verdict = decide(eligible_screen(cssrs=cssrs(**answers)))
    assert (verdict.suicide_risk, verdict.decision, verdict.reasons) == (risk, decision, reasons)


# --- conditions ------------------------------------------------------------------


@pytest.mark.parametrize("code", ABSOLUTE_CONTRAINDICATIONS)
def test_each_absolute_contraindication_alone_is_ineligible_with_its_code(code: str) -> None:
    verdict = decide(eligible_screen(conditions=(code,)))
    assert (verdict.decision, verdict.reasons) == (Decision.ineligible, (code,))


@pytest.mark.parametrize("code", RELATIVE_CONTRAINDICATIONS)
def test_each_relative_contraindication_alone_needs_review_with_its_code(code: str) -> None:
    verdict = decide(eligible_screen(conditions=(code,)))
    assert (verdict.decision, verdict.reasons) == (Decision.needs_review, (code,))


@pytest.mark.parametrize("code", ALLOWED_CONDITIONS)
def test_controlled_hypertension_is_allowed_without_review(code: str) -> None:
    verdict = decide(eligible_screen(conditions=(code,)))
    assert (verdict.decision, verdict.reasons) == (Decision.eligible, ())


@pytest.mark.parametrize(
    "conditions",
    [("hypertension",), ("pregnancy", "Pregnancy"), ("",), ("controlled_hypertension ",)],
)
def test_unknown_condition_codes_raise_instead_of_being_ignored(
    conditions: tuple[str, ...],
) -> None:
    with pytest.raises(ValueError, match="unknown condition codes"):
        decide(eligible_screen(conditions=conditions))


def test_conditions_are_listed_in_canonical_order_without_repeats() -> None:
    given = ("pregnancy", "bipolar_disorder", "ketamine_allergy", "pregnancy", "bipolar_disorder")
    verdict = decide(eligible_screen(conditions=given))
    assert verdict.reasons == ("ketamine_allergy", "pregnancy", "bipolar_disorder")


# --- vitals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("systolic", "diastolic", "heart_rate", "reasons"),
    [
        (159, 99, 110, ()),
        (160, 99, 110, ("blood_pressure_high",)),
        (159, 100, 110, ("blood_pressure_high",)),
        (190, 120, 110, ("blood_pressure_high",)),
        (159, 99, 111, ("heart_rate_high",)),
        (160, 100, 111, ("blood_pressure_high", "heart_rate_high")),
    ],
    ids=[
        "159_over_99_and_hr_110_are_fine",
        "systolic_160_needs_review",
        "diastolic_100_needs_review",
        "both_high_is_one_reason",
        "hr_111_needs_review",
        "bp_and_hr_both_listed",
    ],
)
def test_blood_pressure_at_limits_and_heart_rate_above_limit_need_review(
    systolic: int, diastolic: int, heart_rate: int, reasons: tuple[str, ...]
) -> None:
    vitals = Vitals(systolic=systolic, diastolic=diastolic, heart_rate=heart_rate)
    verdict = decide(eligible_screen(vitals=vitals))
    assert verdict.reasons == reasons
    assert verdict.decision is (Decision.needs_review if reasons else Decision.eligible)


# --- precedence and order --------------------------------------------------------


def test_ineligible_beats_needs_review_and_every_reason_is_listed() -> None:
    screen = eligible_screen(conditions=("bipolar_disorder", "pregnancy"))
    verdict = decide(screen)
    assert verdict.decision is Decision.ineligible
    assert verdict.reasons == ("pregnancy", "bipolar_disorder")


def test_every_reason_at_once_comes_in_the_canonical_order() -> None:
    screen = eligible_screen(
        birth_date=date(2010, 1, 1),
        phq9=phq9_with_total(3, item9=2),
        cssrs=cssrs(method=True, plan=True, behavior_ever=True),
        trials=(trial(weeks=2), trial(TrialOutcome.response)),
        conditions=(
            *reversed(RELATIVE_CONTRAINDICATIONS),
            "controlled_hypertension",
            *reversed(ABSOLUTE_CONTRAINDICATIONS),
            "pregnancy",
            "bipolar_disorder",
        ),
        vitals=Vitals(systolic=170, diastolic=105, heart_rate=130),
    )
    verdict = decide(screen)
    assert verdict.decision is Decision.ineligible
    assert verdict.suicide_risk is SuicideRisk.high
    assert verdict.reasons == (
        "under_minimum_age",
        "severity_below_threshold",
        "not_treatment_resistant",
        "uncontrolled_hypertension",
        "recent_myocardial_infarction",
        "unstable_angina",
        "active_psychosis",
        "ketamine_allergy",
        "pregnancy",
        "suicide_risk_high",
        "phq9_item9_positive",
        "bipolar_disorder",
        "substance_use_disorder",
        "history_of_psychosis",
        "cardiovascular_disease",
        "elevated_intracranial_pressure",
        "blood_pressure_high",
        "heart_rate_high",
    )


def test_every_review_reason_at_once_needs_review_in_canonical_order() -> None:
    screen = eligible_screen(
        phq9=phq9_with_total(12, item9=1),
        cssrs=cssrs(method=True),
        conditions=("elevated_intracranial_pressure", "substance_use_disorder"),
        vitals=Vitals(systolic=120, diastolic=100, heart_rate=111),
    )
    verdict = decide(screen)
    assert verdict.decision is Decision.needs_review
    assert verdict.reasons == (
        "suicide_risk_moderate",
        "phq9_item9_positive",
        "substance_use_disorder",
        "elevated_intracranial_pressure",
        "blood_pressure_high",
        "heart_rate_high",
    )


def test_reason_order_lists_every_reason_once() -> None:
    assert len(REASON_ORDER) == len(set(REASON_ORDER)) == 19


# --- policy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "reasons"),
    [
        (EligibilityPolicy(min_age=50), ("under_minimum_age",)),
        (EligibilityPolicy(min_phq9_total=21), ("severity_below_threshold",)),
        (EligibilityPolicy(min_failed_trials=3), ("not_treatment_resistant",)),
        (EligibilityPolicy(min_trial_weeks=9), ("not_treatment_resistant",)),
        (EligibilityPolicy(review_systolic=128), ("blood_pressure_high",)),
        (EligibilityPolicy(review_diastolic=82), ("blood_pressure_high",)),
        (EligibilityPolicy(review_heart_rate_above=73), ("heart_rate_high",)),
    ],
)
def test_each_threshold_comes_from_the_policy(
    policy: EligibilityPolicy, reasons: tuple[str, ...]
) -> None:
    assert decide(eligible_screen(), policy).reasons == reasons
