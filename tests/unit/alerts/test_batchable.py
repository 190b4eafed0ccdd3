"""Which routine events may share a consumer transaction with their partition's
neighbours (shared/processing.py Route.batch): only those whose handler then locks the
patient alone. Anything that raises an alert (and so may page, locking clinicians'
rows) or proposes a session (locking the site's calendar) goes alone: a batch must never
hold such a lock while it waits for a patient the safety lane holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.alerts import reactions as alerts
from services.scheduling import reactions as scheduling
from shared import events

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def checkin(
    *, ideation: bool = False, item9: bool = False, worsening: bool = False
) -> events.CheckinRecorded:
    return events.CheckinRecorded(
        checkin_id="c-1",
        patient_id="p-1",
        site_id="site-a",
        submitted_at=NOW,
        phq9_total=14 if worsening else 4,
        phq9_item9_positive=item9,
        suicidal_ideation=ideation,
        assessment=events.CheckinAssessment(
            response=not worsening,
            remission=not worsening,
            worsening=worsening,
            worsening_reasons=("rise_from_lowest",) if worsening else (),
            baseline_total=20,
            lowest_total=4,
        ),
    )


def screen(*, risk: str = "none", item9: bool = False) -> events.IntakeScreened:
    return events.IntakeScreened(
        intake_id="i-1",
        patient_id="p-1",
        site_id="site-a",
        submitted_at=NOW,
        decision="eligible",
        reasons=(),
        phq9_total=18,
        phq9_severity="moderately_severe",
        phq9_item9_positive=item9,
        suicide_risk=risk,
    )


def test_a_routine_checkin_shares_in_both_workers() -> None:
    assert alerts.quiet_checkin(checkin())
    assert scheduling.quiet_checkin(checkin())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ideation": True},
        {"item9": True},
        {"worsening": True},
        {"ideation": True, "worsening": True},
    ],
)
def test_a_checkin_that_signals_risk_or_worsens_goes_alone(kwargs: dict[str, bool]) -> None:
    assert not alerts.quiet_checkin(checkin(**kwargs))
    assert not scheduling.quiet_checkin(checkin(**kwargs))


@pytest.mark.parametrize(
    ("risk", "item9", "quiet"),
    [
        ("none", False, True),
        ("low", False, True),
        ("moderate", False, True),
        ("high", False, False),
        ("none", True, False),
    ],
)
def test_a_screen_shares_only_when_it_raises_nothing(risk: str, item9: bool, quiet: bool) -> None:
    assert alerts.quiet_screen(screen(risk=risk, item9=item9)) is quiet


def test_only_the_reactions_that_lock_the_patient_alone_may_share() -> None:
    alerts_batch = {r.payload.topic: r.batch is not None for r in alerts.REACTIONS}
    assert alerts_batch == {
        "intake.screened": True,
        "checkin.recorded": True,
        "appointment.changed": True,
        "dose.deferred": False,  # always raises an alert
        "patient.discharged": True,
    }
    assert not [r for r in alerts.SAFETY_REACTIONS if r.batch is not None]
    # scheduling's reactions may each lock a site's calendar: none shares; its calm
    # check-ins are ignored instead (Route.ignore), which needs no transaction at all
    assert not [r for r in scheduling.REACTIONS if r.batch is not None]
    ignoring = [r.payload.topic for r in scheduling.REACTIONS if r.ignore is not None]
    assert ignoring == ["checkin.flagged"]


@pytest.mark.parametrize(
    ("status", "quiet"),
    [("confirmed", True), ("completed", True), ("cancelled", True), ("no_show", False)],
)
def test_an_appointment_change_shares_unless_it_is_a_no_show(status: str, quiet: bool) -> None:
    change = events.AppointmentChanged(
        appointment_id="a-1",
        series_id="s-1",
        patient_id="p-1",
        site_id="site-a",
        kind="dosing",
        sequence=1,
        status=status,
        start=NOW,
        end=NOW,
        resource="room-1",
        reason="induction",
        previous_status="confirmed",
        changed_at=NOW,
    )
    assert alerts.quiet_appointment(change) is quiet
