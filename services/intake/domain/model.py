"""Frozen values of the intake domain: the screen a patient submits and its verdict.

Enumerations and condition codes are those of docs/domain.md ("Intake screen"); their
string values are wire values of the public interface (the intake service's OpenAPI
document and docs/asyncapi.yaml), so they must never be renamed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Phq9Severity(StrEnum):
    """PHQ-9 severity bands, in ascending order (the order is relied upon)."""

    none_minimal = "none_minimal"
    mild = "mild"
    moderate = "moderate"
    moderately_severe = "moderately_severe"
    severe = "severe"


class SuicideRisk(StrEnum):
    """C-SSRS screener triage levels, in ascending order (the order is relied upon)."""

    none = "none"
    low = "low"
    moderate = "moderate"
    high = "high"


class Decision(StrEnum):
    """Intake decisions, from best to worst: ``ineligible`` beats ``needs_review``."""

    eligible = "eligible"
    needs_review = "needs_review"
    ineligible = "ineligible"


class TrialOutcome(StrEnum):
    """Outcome of one antidepressant trial (docs/domain.md, "Treatment-resistant
    depression (TRD)")."""

    no_response = "no_response"
    partial_response = "partial_response"
    response = "response"
    remission = "remission"
    intolerance = "intolerance"
    unknown = "unknown"


class Reason(StrEnum):
    """Reasons an intake is not simply eligible, other than condition codes.

    Condition codes are reasons in their own right ("Each code is its own reason").
    """

    under_minimum_age = "under_minimum_age"
    severity_below_threshold = "severity_below_threshold"
    not_treatment_resistant = "not_treatment_resistant"
    suicide_risk_high = "suicide_risk_high"
    suicide_risk_moderate = "suicide_risk_moderate"
    phq9_item9_positive = "phq9_item9_positive"
    blood_pressure_high = "blood_pressure_high"
    heart_rate_high = "heart_rate_high"


# docs/domain.md, "Contraindications (condition codes)": absolute -> ineligible.
ABSOLUTE_CONTRAINDICATIONS: tuple[str, ...] = (
    "uncontrolled_hypertension",
    "recent_myocardial_infarction",
    "unstable_angina",
    "active_psychosis",
    "ketamine_allergy",
    "pregnancy",
)
# docs/domain.md, "Contraindications (condition codes)": relative -> needs_review.
RELATIVE_CONTRAINDICATIONS: tuple[str, ...] = (
    "bipolar_disorder",
    "substance_use_disorder",
    "history_of_psychosis",
    "cardiovascular_disease",
    "elevated_intracranial_pressure",
)
# docs/domain.md, "Contraindications (condition codes)": known and allowed, no review.
ALLOWED_CONDITIONS: tuple[str, ...] = ("controlled_hypertension",)
KNOWN_CONDITIONS: frozenset[str] = frozenset(
    ABSOLUTE_CONTRAINDICATIONS + RELATIVE_CONTRAINDICATIONS + ALLOWED_CONDITIONS
)


def unknown_conditions(codes: Iterable[str]) -> tuple[str, ...]:
    """The codes the product does not know (docs/domain.md, "Contraindications"),
    first-seen order, without repeats.

    Unknown codes are rejected (422), never ignored; the API can name them all.
    """
    return tuple(dict.fromkeys(code for code in codes if code not in KNOWN_CONDITIONS))


@dataclass(frozen=True)
class Cssrs:
    """C-SSRS screener answers (past month), items 1-6 (docs/domain.md, "C-SSRS triage").

    Item 6 (suicidal behaviour) is split into ``behavior_past_3_months`` and
    ``behavior_ever``; the first implies the second.
    """

    wish_to_be_dead: bool
    suicidal_thoughts: bool
    method: bool
    intent: bool
    plan: bool
    behavior_past_3_months: bool
    behavior_ever: bool = False


@dataclass(frozen=True)
class AntidepressantTrial:
    """One antidepressant trial of the current episode."""

    medication: str
    adequate: bool
    weeks: float
    outcome: TrialOutcome


@dataclass(frozen=True)
class Vitals:
    """Resting vitals at intake: blood pressure in mmHg, heart rate in beats/min."""

    systolic: int
    diastolic: int
    heart_rate: int


@dataclass(frozen=True)
class Screen:
    """An intake screen, stripped of identity: only what the rules need.

    ``submitted_on`` is the submission date (in the site's calendar) on which age
    is judged.
    """

    birth_date: date
    submitted_on: date
    phq9: tuple[int, ...]
    cssrs: Cssrs
    trials: tuple[AntidepressantTrial, ...]
    conditions: tuple[str, ...]
    vitals: Vitals


@dataclass(frozen=True)
class Verdict:
    """The decision on a screen with every applicable reason, in canonical order."""

    decision: Decision
    reasons: tuple[str, ...]
    phq9_total: int
    phq9_severity: Phq9Severity
    suicide_risk: SuicideRisk

    @property
    def phq9_item9_positive(self) -> bool:
        """Item 9 above 0; ``decide`` lists this reason exactly when that holds."""
        return Reason.phq9_item9_positive.value in self.reasons
