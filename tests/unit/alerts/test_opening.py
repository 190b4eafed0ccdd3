"""What a new alert does about paging (services/alerts/domain/dedup.py ``opening``), and
the names of the changes acknowledge and resolve announce (domain/lifecycle.py)."""

from __future__ import annotations

import pytest

from services.alerts.domain.dedup import Admission, Opening, falls_back_to_network, opening
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


@pytest.mark.parametrize(
    ("severity", "network_oncall"),
    [(Severity.critical, False), (Severity.high, False), (Severity.high, True)],
)
def test_a_paging_alert_with_nobody_on_call_says_so(
    severity: Severity, network_oncall: bool
) -> None:
    """A high alert waits for the site; a critical one does where the network has no ops
    on-call either (otherwise it pages that, below)."""
    outcome = opening(severity, Admission("open"), oncall=False, network_oncall=network_oncall)
    assert outcome == Opening("nobody_on_call")
    assert not outcome.pages_on_call


def test_a_critical_alert_with_nobody_on_call_pages_the_network_ops_on_call() -> None:
    outcome = opening(Severity.critical, Admission("open"), oncall=False, network_oncall=True)
    assert outcome == Opening("page_network")
    assert outcome.pages_on_call


@pytest.mark.parametrize("severity", PAGING)
def test_the_site_on_call_comes_before_the_network(severity: Severity) -> None:
    outcome = opening(severity, Admission("open"), oncall=True, network_oncall=True)
    assert outcome == Opening("page_now")


@pytest.mark.parametrize("severity", list(Severity))
def test_only_critical_alerts_fall_back_to_the_network(severity: Severity) -> None:
    assert falls_back_to_network(severity) is (severity is Severity.critical)


@pytest.mark.parametrize("network_oncall", [True, False])
def test_a_held_back_alert_pages_no_network_either(network_oncall: bool) -> None:
    inhibited = Admission("open", inhibited_by="a-1")
    outcome = opening(Severity.high, inhibited, oncall=False, network_oncall=network_oncall)
    assert outcome == Opening("inhibited")


@pytest.mark.parametrize("oncall", [True, False])
@pytest.mark.parametrize("inhibited_by", [None, "a-1"])
def test_a_warning_never_pages(oncall: bool, inhibited_by: str | None) -> None:
    admission = Admission("open", inhibited_by=inhibited_by)
    outcome = opening(Severity.warning, admission, oncall=oncall, network_oncall=True)
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
