"""The intake decision: eligible, needs review, or ineligible, with every reason.

Every rule and default: docs/domain.md ("Intake screen": "Item 9", "C-SSRS triage",
"Treatment-resistant depression (TRD)", "Age", "Contraindications (condition codes)",
"Vitals at intake", "The decision, and the order of its reasons").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.intake.domain.model import (
    ABSOLUTE_CONTRAINDICATIONS,
    RELATIVE_CONTRAINDICATIONS,
    AntidepressantTrial,
    Decision,
    Reason,
    Screen,
    SuicideRisk,
    TrialOutcome,
    Verdict,
    Vitals,
    unknown_conditions,
)
from services.intake.domain.scoring import age_on, score_phq9, triage_cssrs


@dataclass(frozen=True)
class EligibilityPolicy:
    """Thresholds of the intake decision, each with its default (docs/domain.md, "Intake screen").

    - ``min_age`` 18: under 18 at submission is ineligible.
    - ``min_phq9_total`` 10: a PHQ-9 below 10 (below "moderate") is ineligible.
    - ``min_failed_trials`` 2, ``min_trial_weeks`` 6, ``failed_outcomes``: TRD is
      the failure of at least 2 adequate trials of at least 6 weeks whose outcome
      was no or partial response.
    - ``review_systolic`` 160 / ``review_diastolic`` 100 (mmHg, inclusive) and
      ``review_heart_rate_above`` 110 (beats/min, exclusive): protocol choices
      that send the intake to review.
    """

    min_age: int = 18
    min_phq9_total: int = 10
    min_failed_trials: int = 2
    min_trial_weeks: float = 6
    failed_outcomes: frozenset[TrialOutcome] = frozenset(
        {TrialOutcome.no_response, TrialOutcome.partial_response}
    )
    review_systolic: int = 160
    review_diastolic: int = 100
    review_heart_rate_above: int = 110


# Reasons that make an intake ineligible; every other reason asks for review.
INELIGIBLE_REASONS: frozenset[str] = frozenset(
    (
        Reason.under_minimum_age.value,
        Reason.severity_below_threshold.value,
        Reason.not_treatment_resistant.value,
        *ABSOLUTE_CONTRAINDICATIONS,
    )
)

# The canonical order in which reasons are listed: ineligibility first, then
# review reasons; condition codes in the order of the model's tuples.
REASON_ORDER: tuple[str, ...] = (
    Reason.under_minimum_age.value,
    Reason.severity_below_threshold.value,
    Reason.not_treatment_resistant.value,
    *ABSOLUTE_CONTRAINDICATIONS,
    Reason.suicide_risk_high.value,
    Reason.suicide_risk_moderate.value,
    Reason.phq9_item9_positive.value,
    *RELATIVE_CONTRAINDICATIONS,
    Reason.blood_pressure_high.value,
    Reason.heart_rate_high.value,
)

_CONTRAINDICATIONS: frozenset[str] = frozenset(
    ABSOLUTE_CONTRAINDICATIONS + RELATIVE_CONTRAINDICATIONS
)


def count_failed_trials(
    trials: Iterable[AntidepressantTrial], policy: EligibilityPolicy = EligibilityPolicy()
) -> int:
    """Trials that count towards TRD (docs/domain.md, "Treatment-resistant depression (TRD)").

    A trial counts when it was ``adequate``, lasted at least ``min_trial_weeks``
    and its outcome is one of ``failed_outcomes`` (no or partial response).
    Intolerance, response, remission and unknown outcomes never count.
    """
    return sum(
        1
        for trial in trials
        if trial.adequate
        and trial.weeks >= policy.min_trial_weeks
        and trial.outcome in policy.failed_outcomes
    )


def _vitals_reasons(vitals: Vitals, policy: EligibilityPolicy) -> set[str]:
    """Blood pressure at or above either limit, heart rate above its limit."""
    found: set[str] = set()
    if vitals.systolic >= policy.review_systolic or vitals.diastolic >= policy.review_diastolic:
        found.add(Reason.blood_pressure_high.value)
    if vitals.heart_rate > policy.review_heart_rate_above:
        found.add(Reason.heart_rate_high.value)
    return found


def decide(screen: Screen, policy: EligibilityPolicy = EligibilityPolicy()) -> Verdict:
    """Decide an intake screen and list every applicable reason (docs/domain.md, "The
    decision, and the order of its reasons").

    Ineligible: under ``min_age`` on the submission date, PHQ-9 total below
    ``min_phq9_total``, fewer than ``min_failed_trials`` failed trials (not
    treatment resistant), any absolute contraindication.
    Needs review: C-SSRS high or moderate risk, PHQ-9 item 9 positive (whatever
    the total), any relative contraindication, blood pressure or heart rate over
    the limits. ``controlled_hypertension`` is known and allowed.

    ``ineligible`` beats ``needs_review`` beats ``eligible``. Reasons follow
    ``REASON_ORDER``, without repeats, whatever the order of the input.
    Raises ``ValueError`` for unknown condition codes (never ignored), a
    malformed PHQ-9, or a birth date after the submission date.
    """
    unknown = unknown_conditions(screen.conditions)
    if unknown:
        raise ValueError(f"unknown condition codes: {', '.join(unknown)}")
    score = score_phq9(screen.phq9)
    risk = triage_cssrs(screen.cssrs)

    found: set[str] = set()
    if age_on(screen.birth_date, screen.submitted_on) < policy.min_age:
        found.add(Reason.under_minimum_age.value)
    if score.total < policy.min_phq9_total:
        found.add(Reason.severity_below_threshold.value)
    if count_failed_trials(screen.trials, policy) < policy.min_failed_trials:
        found.add(Reason.not_treatment_resistant.value)
    found.update(code for code in screen.conditions if code in _CONTRAINDICATIONS)
    if risk is SuicideRisk.high:
        found.add(Reason.suicide_risk_high.value)
    elif risk is SuicideRisk.moderate:
        found.add(Reason.suicide_risk_moderate.value)
    if score.item9_positive:
        found.add(Reason.phq9_item9_positive.value)
    found |= _vitals_reasons(screen.vitals, policy)

    reasons = tuple(reason for reason in REASON_ORDER if reason in found)
    return Verdict(
        decision=decision_for(reasons),
        reasons=reasons,
        phq9_total=score.total,
        phq9_severity=score.severity,
        suicide_risk=risk,
    )


def decision_for(reasons: Iterable[str]) -> Decision:
    """Any ineligibility reason -> ineligible; else any reason -> needs review."""
    listed = set(reasons)
    if listed & INELIGIBLE_REASONS:
        return Decision.ineligible
    if listed:
        return Decision.needs_review
    return Decision.eligible
