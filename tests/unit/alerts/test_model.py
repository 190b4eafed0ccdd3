"""The alerts vocabulary: one severity per kind, who pages, and on-call tier lookup."""

from __future__ import annotations

import pytest

from services.alerts.domain.model import (
    PAGING,
    RANK,
    SEVERITY_OF,
    Kind,
    OncallPolicy,
    Severity,
    Tier,
    pages,
)
from tests.unit.alerts.builders import recipient


def test_every_kind_has_the_severity_of_the_alert_policy_table() -> None:
    expected = {
        Kind.suicide_risk: Severity.critical,
        Kind.worsening: Severity.high,
        Kind.missed_checkins: Severity.high,
        Kind.dose_deferred: Severity.warning,
        Kind.no_show: Severity.warning,
        Kind.pipeline_stalled: Severity.critical,
    }
    assert expected == SEVERITY_OF


def test_severities_rank_warning_below_high_below_critical() -> None:
    assert set(RANK) == set(Severity)
    assert RANK[Severity.warning] < RANK[Severity.high] < RANK[Severity.critical]


@pytest.mark.parametrize(
    ("severity", "paged"),
    [(Severity.critical, True), (Severity.high, True), (Severity.warning, False)],
)
def test_critical_and_high_page_warnings_are_dashboard_only(
    severity: Severity, paged: bool
) -> None:
    assert pages(severity) is paged
    assert (severity in PAGING) is paged


POLICY = OncallPolicy(
    (
        Tier((recipient("Dr. On Call"), recipient("Nurse Lead")), 900),
        Tier((recipient("Medical Director"), recipient("Nurse Lead")), 600),
    )
)


@pytest.mark.parametrize(
    ("name", "tier"),
    [
        ("Dr. On Call", 0),
        ("dr. on call", 0),
        ("DR. ON CALL", 0),
        ("  Dr.   On\tCall  ", 0),
        ("Medical Director", 1),
        ("medical  director ", 1),
        # in two tiers: the first one wins
        ("Nurse Lead", 0),
        ("Someone Else", None),
        ("", None),
        ("Dr.", None),
    ],
)
def test_tier_of_matches_names_ignoring_case_and_spacing(name: str, tier: int | None) -> None:
    assert POLICY.tier_of(name) == tier


def test_an_empty_policy_has_nobody_on_call() -> None:
    policy = OncallPolicy()
    assert policy.empty
    assert policy.tiers == ()
    assert policy.tier_of("Dr. On Call") is None


def test_a_policy_with_tiers_is_not_empty() -> None:
    assert not POLICY.empty
