"""The condition codes and enumerations are exactly docs/domain.md's ("Intake screen")."""

from __future__ import annotations

from enum import StrEnum

import pytest

from services.intake.domain.model import (
    ABSOLUTE_CONTRAINDICATIONS,
    ALLOWED_CONDITIONS,
    KNOWN_CONDITIONS,
    RELATIVE_CONTRAINDICATIONS,
    Decision,
    Phq9Severity,
    SuicideRisk,
    TrialOutcome,
    unknown_conditions,
)


def test_condition_codes_are_domain_md_codes_in_its_order() -> None:
    assert ABSOLUTE_CONTRAINDICATIONS == (
        "uncontrolled_hypertension",
        "recent_myocardial_infarction",
        "unstable_angina",
        "active_psychosis",
        "ketamine_allergy",
        "pregnancy",
    )
    assert RELATIVE_CONTRAINDICATIONS == (
        "bipolar_disorder",
        "substance_use_disorder",
        "history_of_psychosis",
        "cardiovascular_disease",
        "elevated_intracranial_pressure",
    )
    assert ALLOWED_CONDITIONS == ("controlled_hypertension",)


def test_known_conditions_is_the_disjoint_union_of_the_three_lists() -> None:
    lists = (ABSOLUTE_CONTRAINDICATIONS, RELATIVE_CONTRAINDICATIONS, ALLOWED_CONDITIONS)
    assert sum(len(codes) for codes in lists) == len(KNOWN_CONDITIONS) == 12
    assert frozenset().union(*lists) == KNOWN_CONDITIONS


@pytest.mark.parametrize(
    ("codes", "unknown"),
    [
        ((), ()),
        (("pregnancy", "controlled_hypertension"), ()),
        (("pregnancy", "flu", "cold", "flu"), ("flu", "cold")),
        (["PREGNANCY"], ("PREGNANCY",)),
    ],
)
def test_unknown_conditions_names_every_unknown_code_once(
    codes: tuple[str, ...], unknown: tuple[str, ...]
) -> None:
    assert unknown_conditions(codes) == unknown


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (Phq9Severity, ["none_minimal", "mild", "moderate", "moderately_severe", "severe"]),
        (SuicideRisk, ["none", "low", "moderate", "high"]),
        (Decision, ["eligible", "needs_review", "ineligible"]),
        (
            TrialOutcome,
            ["no_response", "partial_response", "response", "remission", "intolerance", "unknown"],
        ),
    ],
)
def test_enum_wire_values_match_the_contract(enum: type[StrEnum], values: list[str]) -> None:
    assert [member.value for member in enum] == values
