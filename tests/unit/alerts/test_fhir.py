"""Suicide-risk alerts as FHIR Flags (services/alerts/fhir.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.alerts import fhir
from services.alerts.rows import AlertRow
from tests.support.fhir import codes, valid

RAISED = datetime(2026, 11, 30, 14, tzinfo=UTC)


def alert(kind: str, status: str) -> AlertRow:
    resolved = RAISED + timedelta(hours=1) if status == "resolved" else None
    return AlertRow(
        alert_id=uuid.uuid4(), patient_id="p-1", site_id="s", kind=kind, severity="critical",
        status=status, reasons=[], raised_at=RAISED, first_seen_at=RAISED, last_seen_at=RAISED,
        occurrences=1, policy=None, inhibited_by=None, tiers_paged=1, last_escalated_at=None,
        repages=0, last_repaged_at=None, acknowledged_at=None, acknowledged_by=None,
        acknowledged_note=None, acknowledged_tier=None, resolved_at=resolved,
        resolved_by=None, resolved_note=None, next_check_at=None,
    )  # fmt: skip


@pytest.mark.parametrize("status", ["open", "acknowledged"])
def test_an_unresolved_suicide_risk_alert_is_an_active_flag(status: str) -> None:
    parsed = valid(fhir.flag(alert("suicide_risk", status)))
    assert parsed["resourceType"] == "Flag"
    assert parsed["status"] == "active"
    assert codes(parsed["category"][0])[0][1] == "safety"
    assert parsed["subject"] == {"reference": "Patient/p-1"}
    assert parsed["period"] == {"start": "2026-11-30T14:00:00Z"}


def test_a_resolved_one_is_inactive_from_its_resolution() -> None:
    parsed = valid(fhir.flag(alert("suicide_risk", "resolved")))
    assert parsed["status"] == "inactive"
    assert parsed["period"]["end"] == "2026-11-30T15:00:00Z"


@pytest.mark.parametrize("kind", ["missed_checkins", "worsening", "pipeline_stalled"])
def test_no_other_kind_of_alert_is_a_flag(kind: str) -> None:
    assert fhir.flag(alert(kind, "open")) is None
