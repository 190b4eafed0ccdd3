"""The alert policy table (docs/domain.md "Alert policy", "C-SSRS triage", "Item 9"): which
observation raises which signal, of which severity, with which reasons."""

from __future__ import annotations

import itertools

import pytest

from services.alerts.domain.model import Kind, Severity
from services.alerts.domain.policy import (
    Signal,
    from_appointment_change,
    from_checkin,
    from_deferral,
    from_misses,
    from_safety_signal,
    from_screen,
    starts_monitoring,
)
from tests.unit.alerts.builders import T0

# --- intake screen -------------------------------------------------------------------


def test_high_cssrs_at_intake_is_a_critical_suicide_risk() -> None:
    signals = from_screen(suicide_risk="high", phq9_item9_positive=False, at=T0)
    assert signals == [Signal(Kind.suicide_risk, ("cssrs_high",), T0)]
    assert signals[0].severity is Severity.critical


@pytest.mark.parametrize("cssrs", ["none", "low", "moderate", "high"])
def test_a_positive_item9_at_intake_is_a_suicide_risk_whatever_the_cssrs(cssrs: str) -> None:
    signals = from_screen(suicide_risk=cssrs, phq9_item9_positive=True, at=T0)
    assert len(signals) == 1
    assert signals[0].kind is Kind.suicide_risk
    assert signals[0].severity is Severity.critical
    assert "phq9_item9_positive" in signals[0].reasons
    assert signals[0].observed_at == T0


def test_high_cssrs_and_item9_at_intake_are_one_signal_with_both_reasons() -> None:
    signals = from_screen(suicide_risk="high", phq9_item9_positive=True, at=T0)
    assert signals == [Signal(Kind.suicide_risk, ("cssrs_high", "phq9_item9_positive"), T0)]


@pytest.mark.parametrize("cssrs", ["none", "low", "moderate"])
def test_moderate_low_or_no_cssrs_risk_without_item9_raises_nothing(cssrs: str) -> None:
    # Moderate risk is needs_review at intake, never a page.
    assert from_screen(suicide_risk=cssrs, phq9_item9_positive=False, at=T0) == []


# --- check-in ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ideation", "item9", "reasons"),
    [
        (True, False, ("suicidal_ideation",)),
        (False, True, ("phq9_item9_positive",)),
        (True, True, ("suicidal_ideation", "phq9_item9_positive")),
    ],
)
def test_suicidal_ideation_or_item9_in_a_checkin_is_one_critical_suicide_risk(
    ideation: bool, item9: bool, reasons: tuple[str, ...]
) -> None:
    signals = from_checkin(
        suicidal_ideation=ideation,
        phq9_item9_positive=item9,
        worsening=False,
        worsening_reasons=(),
        at=T0,
    )
    assert signals == [Signal(Kind.suicide_risk, reasons, T0)]
    assert signals[0].severity is Severity.critical


def test_worsening_checkin_is_a_high_worsening_signal_with_its_reasons() -> None:
    reasons = ("phq9_up_5_from_lowest", "relapse_after_remission")
    signals = from_checkin(
        suicidal_ideation=False,
        phq9_item9_positive=False,
        worsening=True,
        worsening_reasons=reasons,
        at=T0,
    )
    assert signals == [Signal(Kind.worsening, reasons, T0)]
    assert signals[0].severity is Severity.high


def test_worsening_without_reasons_gets_the_default_reason() -> None:
    signals = from_checkin(
        suicidal_ideation=False,
        phq9_item9_positive=False,
        worsening=True,
        worsening_reasons=(),
        at=T0,
    )
    assert signals == [Signal(Kind.worsening, ("worsening",), T0)]


@pytest.mark.parametrize(("ideation", "item9"), [(True, False), (False, True), (True, True)])
def test_suicide_risk_and_worsening_together_are_two_signals(ideation: bool, item9: bool) -> None:
    signals = from_checkin(
        suicidal_ideation=ideation,
        phq9_item9_positive=item9,
        worsening=True,
        worsening_reasons=("phq9_up_5_from_lowest",),
        at=T0,
    )
    assert [s.kind for s in signals] == [Kind.suicide_risk, Kind.worsening]
    assert [s.severity for s in signals] == [Severity.critical, Severity.high]
    assert signals[1].reasons == ("phq9_up_5_from_lowest",)
    assert all(s.observed_at == T0 for s in signals)


def test_a_quiet_checkin_raises_nothing() -> None:
    signals = from_checkin(
        suicidal_ideation=False,
        phq9_item9_positive=False,
        worsening=False,
        worsening_reasons=("ignored",),
        at=T0,
    )
    assert signals == []


# --- missed check-ins ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "consecutive"),
    list(itertools.product([1, 2, 3], range(0, 6))),
)
def test_misses_raise_missed_checkins_at_and_beyond_the_threshold(
    threshold: int, consecutive: int
) -> None:
    signals = from_misses(consecutive, threshold, T0)
    if consecutive < threshold:
        assert signals == []
    else:
        assert signals == [Signal(Kind.missed_checkins, (f"consecutive_misses_{consecutive}",), T0)]
        assert signals[0].severity is Severity.high


@pytest.mark.parametrize("threshold", [0, -1, -5])
@pytest.mark.parametrize("consecutive", [0, 1, 2, 10])
def test_a_threshold_below_one_raises_nothing(threshold: int, consecutive: int) -> None:
    assert from_misses(consecutive, threshold, T0) == []


# --- deferred doses and appointment changes ------------------------------------------


def test_a_deferred_dose_is_a_warning_with_its_reasons() -> None:
    signals = from_deferral(("blood_pressure_high",), T0)
    assert signals == [Signal(Kind.dose_deferred, ("blood_pressure_high",), T0)]
    assert signals[0].severity is Severity.warning


def test_a_deferred_dose_without_reasons_gets_the_default_reason() -> None:
    assert from_deferral((), T0) == [Signal(Kind.dose_deferred, ("deferred_vitals",), T0)]


APPOINTMENT_KINDS = ["dosing", "integration", "maintenance"]


@pytest.mark.parametrize("kind", APPOINTMENT_KINDS)
def test_a_no_show_of_any_kind_is_a_warning(kind: str) -> None:
    signals = from_appointment_change(status="no_show", kind=kind, at=T0)
    assert signals == [Signal(Kind.no_show, (f"no_show_{kind}",), T0)]
    assert signals[0].severity is Severity.warning


@pytest.mark.parametrize("status", ["proposed", "confirmed", "cancelled", "completed"])
@pytest.mark.parametrize("kind", APPOINTMENT_KINDS)
def test_other_appointment_changes_raise_nothing(status: str, kind: str) -> None:
    assert from_appointment_change(status=status, kind=kind, at=T0) == []


# --- what starts monitoring ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    list(
        itertools.product(
            ["proposed", "confirmed", "cancelled", "completed", "no_show"], APPOINTMENT_KINDS
        )
    ),
)
def test_only_a_completed_dosing_or_maintenance_session_starts_monitoring(
    status: str, kind: str
) -> None:
    expected = status == "completed" and kind in ("dosing", "maintenance")
    assert starts_monitoring(status=status, kind=kind) is expected


def test_a_safety_signal_is_the_same_critical_occurrence_its_checkin_would_raise() -> None:
    [lane] = from_safety_signal(("suicidal_ideation", "phq9_item9_positive"), T0)
    [ordinary, *_] = from_checkin(
        suicidal_ideation=True,
        phq9_item9_positive=True,
        worsening=False,
        worsening_reasons=(),
        at=T0,
    )
    assert lane == ordinary
    assert lane.kind is Kind.suicide_risk
    assert lane.severity is Severity.critical
    assert from_safety_signal((), T0) == []
