"""What a new alert does about paging (services/alerts/domain/dedup.py ``opening``), and
the names of the changes acknowledge and resolve announce (domain/lifecycle.py)."""

from __future__ import annotations

import pytest

from services.alerts.domain.dedup import Admission, Opening, opening
from services.alerts.domain.lifecycle import CHANGE_OF, Step, releases_held
from services.alerts.domain.model import Kind, Severity

PAGING = [Severity.critical, Severity.high]


@pytest.mark.parametrize("severity", PAGING)
def test_a_paging_alert_at_a_site_with_on_call_pages_now(severity: Severity) -> None:
    outcome = opening(severity, Admission("open"), oncall=True)
    assert outcome == Opening("page_now")
    assert outcome.pages_on_call


@pytest.mark.parametrize("oncall", [True, False])
@pytest.mark.parametrize("severity", PAGING)
def test_an_inhibited_alert_holds_its_pages_whoever_is_on_call(
    severity: Severity, oncall: bool
) -> None:
    outcome = opening(severity, Admission("open", inhibited_by="a-1"), oncall=oncall)
    assert outcome == Opening("inhibited")
    assert not outcome.pages_on_call


@pytest.mark.parametrize("severity", PAGING)
def test_a_paging_alert_with_nobody_on_call_says_so(severity: Severity) -> None:
    outcome = opening(severity, Admission("open"), oncall=False)
    assert outcome == Opening("nobody_on_call")
    assert not outcome.pages_on_call


@pytest.mark.parametrize("oncall", [True, False])
@pytest.mark.parametrize("inhibited_by", [None, "a-1"])
def test_a_warning_never_pages(oncall: bool, inhibited_by: str | None) -> None:
    outcome = opening(Severity.warning, Admission("open", inhibited_by=inhibited_by), oncall=oncall)
    assert outcome == Opening("silent")
    assert not outcome.pages_on_call


def test_each_step_announces_its_change_by_name() -> None:
    assert CHANGE_OF[Step.acknowledge] == "acknowledged"
    assert CHANGE_OF[Step.resolve] == "resolved"
    assert set(CHANGE_OF) == set(Step)


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("step", list(Step))
def test_only_resolving_a_suicide_risk_alert_releases_what_it_held(kind: Kind, step: Step) -> None:
    assert releases_held(step, kind) is (step is Step.resolve and kind is Kind.suicide_risk)
