"""One unresolved alert per patient and kind; a critical suicide risk holds back the
patient's lower alerts and releases them when it resolves."""

from __future__ import annotations

import pytest

from services.alerts.domain.dedup import Admission, OpenAlert, admit, released_by
from services.alerts.domain.model import SEVERITY_OF, Kind, Severity, Status
from services.alerts.domain.policy import Signal
from tests.unit.alerts.builders import T0

UNRESOLVED = [Status.open, Status.acknowledged]
LOWER = [Kind.worsening, Kind.missed_checkins, Kind.dose_deferred, Kind.no_show]


def signal(kind: Kind) -> Signal:
    return Signal(kind, ("why",), T0)


def alert(
    alert_id: str, kind: Kind, status: Status = Status.open, inhibited_by: str | None = None
) -> OpenAlert:
    return OpenAlert(alert_id, kind, SEVERITY_OF[kind], status, inhibited_by)


# --- repeats -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
def test_a_first_signal_opens_an_alert(kind: Kind) -> None:
    assert admit(signal(kind), []) == Admission("open")


@pytest.mark.parametrize("status", UNRESOLVED)
@pytest.mark.parametrize("kind", list(Kind))
def test_a_signal_of_a_kind_already_unresolved_is_a_repeat_of_that_alert(
    kind: Kind, status: Status
) -> None:
    others = [alert(f"other-{k}", k) for k in Kind if k is not kind]
    existing = alert("a-1", kind, status)
    assert admit(signal(kind), [*others, existing]) == Admission("repeat", alert_id="a-1")


@pytest.mark.parametrize("kind", list(Kind))
def test_a_new_occurrence_after_resolve_opens_a_new_alert(kind: Kind) -> None:
    admission = admit(signal(kind), [alert("a-1", kind, Status.resolved)])
    assert admission.action == "open"
    assert admission.alert_id is None


def test_a_repeat_of_a_held_back_kind_stays_a_repeat_under_a_suicide_risk() -> None:
    alerts = [alert("sr", Kind.suicide_risk), alert("w", Kind.worsening, inhibited_by="sr")]
    assert admit(signal(Kind.worsening), alerts) == Admission("repeat", alert_id="w")


def test_a_suicide_risk_repeat_holds_back_nothing_new() -> None:
    alerts = [alert("sr", Kind.suicide_risk, Status.acknowledged), alert("w", Kind.worsening)]
    assert admit(signal(Kind.suicide_risk), alerts) == Admission("repeat", alert_id="sr")


# --- a new critical suicide risk holds back the lower alerts -------------------------


def test_a_new_suicide_risk_holds_back_every_unresolved_lower_alert() -> None:
    alerts = [
        alert("w", Kind.worsening),
        alert("m", Kind.missed_checkins, Status.acknowledged),
        alert("d", Kind.dose_deferred),
        alert("n", Kind.no_show, Status.acknowledged),
    ]
    admission = admit(signal(Kind.suicide_risk), alerts)
    assert admission.action == "open"
    assert admission.inhibited_by is None
    assert admission.inhibit == ("w", "m", "d", "n")


def test_a_new_suicide_risk_skips_resolved_and_already_held_back_alerts() -> None:
    alerts = [
        alert("w", Kind.worsening, Status.resolved),
        alert("m", Kind.missed_checkins, inhibited_by="old-sr"),
        alert("d", Kind.dose_deferred),
    ]
    assert admit(signal(Kind.suicide_risk), alerts) == Admission("open", inhibit=("d",))


def test_a_new_suicide_risk_after_a_resolved_one_holds_back_nothing_when_alone() -> None:
    alerts = [alert("sr-old", Kind.suicide_risk, Status.resolved)]
    assert admit(signal(Kind.suicide_risk), alerts) == Admission("open")


# --- a lower signal under an unresolved critical suicide risk ------------------------


@pytest.mark.parametrize("status", UNRESOLVED)
@pytest.mark.parametrize("kind", LOWER)
def test_a_lower_signal_under_an_unresolved_suicide_risk_opens_held_back(
    kind: Kind, status: Status
) -> None:
    alerts = [alert("sr", Kind.suicide_risk, status)]
    assert admit(signal(kind), alerts) == Admission("open", inhibited_by="sr")


@pytest.mark.parametrize("kind", LOWER)
def test_a_resolved_suicide_risk_holds_back_nothing(kind: Kind) -> None:
    alerts = [alert("sr", Kind.suicide_risk, Status.resolved)]
    assert admit(signal(kind), alerts) == Admission("open")


@pytest.mark.parametrize("kind", LOWER)
def test_other_lower_alerts_hold_back_nothing(kind: Kind) -> None:
    alerts = [alert(f"x-{k}", k) for k in LOWER if k is not kind]
    assert admit(signal(kind), alerts) == Admission("open")


def test_a_signal_is_never_held_back_by_a_non_critical_alert() -> None:
    # Only a *critical* suicide_risk suppresses (defensive: severity is checked too).
    odd = OpenAlert("sr", Kind.suicide_risk, Severity.high, Status.open)
    assert admit(signal(Kind.worsening), [odd]) == Admission("open")


# --- release -------------------------------------------------------------------------


def test_resolving_the_suicide_risk_releases_exactly_the_unresolved_alerts_it_held() -> None:
    alerts = [
        alert("sr", Kind.suicide_risk, Status.resolved),
        alert("w", Kind.worsening, inhibited_by="sr"),
        alert("m", Kind.missed_checkins, Status.acknowledged, inhibited_by="sr"),
        alert("d", Kind.dose_deferred, Status.resolved, inhibited_by="sr"),
        alert("n", Kind.no_show, inhibited_by="other-sr"),
        alert("x", Kind.no_show),
    ]
    assert released_by("sr", alerts) == ("w", "m")


def test_release_with_nothing_held_back_is_empty() -> None:
    assert released_by("sr", []) == ()
    assert released_by("sr", [alert("w", Kind.worsening)]) == ()


def test_admit_then_release_round_trip() -> None:
    # worsening opens; suicide risk opens and holds it back; a missed run opens held back;
    # resolving the suicide risk releases both.
    alerts: list[OpenAlert] = []
    assert admit(signal(Kind.worsening), alerts) == Admission("open")
    alerts.append(alert("w", Kind.worsening))

    sr = admit(signal(Kind.suicide_risk), alerts)
    assert sr == Admission("open", inhibit=("w",))
    alerts = [alert("w", Kind.worsening, inhibited_by="sr"), alert("sr", Kind.suicide_risk)]

    missed = admit(signal(Kind.missed_checkins), alerts)
    assert missed == Admission("open", inhibited_by="sr")
    alerts.append(alert("m", Kind.missed_checkins, inhibited_by="sr"))

    alerts = [
        a if a.alert_id != "sr" else alert("sr", Kind.suicide_risk, Status.resolved) for a in alerts
    ]
    assert released_by("sr", alerts) == ("w", "m")
    # after release, a new worsening occurrence is a repeat, not held back
    assert admit(signal(Kind.worsening), alerts) == Admission("repeat", alert_id="w")
