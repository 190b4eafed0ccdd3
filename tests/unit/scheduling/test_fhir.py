"""Appointments as FHIR Appointments (services/scheduling/fhir.py): the status mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scheduling import fhir
from services.scheduling.domain.lifecycle import Status
from services.scheduling.rows import AppointmentRow
from tests.support.fhir import codes, valid

START = datetime(2026, 11, 30, 14, tzinfo=UTC)


def row(status: str, cause: str | None = None) -> AppointmentRow:
    return AppointmentRow(
        appointment_id="4f6c0a8e-0000-4000-8000-000000000001", patient_id="p-1", site_id="s",
        series_id="x", kind="dosing", sequence=2, status=status, start=START,
        end=START + timedelta(hours=3), resource="room-1", reason="induction", cause=cause,
        replaces=None, relaxed=(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("proposed", "proposed"),
        ("confirmed", "booked"),
        ("completed", "fulfilled"),
        ("cancelled", "cancelled"),
        ("no_show", "noshow"),
    ],
)
def test_our_lifecycle_maps_to_fhir_statuses(ours: str, theirs: str) -> None:
    appt = valid(fhir.appointment(row(ours)))
    assert appt["status"] == theirs
    assert appt["participant"][0]["actor"] == {"reference": "Patient/p-1"}
    assert appt["minutesDuration"] == 180
    assert (appt["start"], appt["end"]) == ("2026-11-30T14:00:00Z", "2026-11-30T17:00:00Z")


def test_every_status_of_our_lifecycle_has_a_fhir_status() -> None:
    assert set(fhir.STATUS) == {s.value for s in Status}
    assert set(fhir.STATUS.values()) <= set(fhir.FHIR_STATUSES)


def test_a_cancellations_cause_is_its_cancelation_reason() -> None:
    appt = valid(fhir.appointment(row("cancelled", cause="patient_request")))
    assert codes(appt["cancelationReason"]) == [(fhir.CAUSE_SYSTEM, "patient_request")]
    assert "cancelationReason" not in valid(fhir.appointment(row("confirmed")))
