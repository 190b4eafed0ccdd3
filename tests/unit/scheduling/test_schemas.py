"""Answers built from rows (services/scheduling/schemas.py): a site schedule's entries in
``AppointmentOut``'s field order whatever the repository's columns, a site's protocol as
given and every number it resolves to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.scheduling.domain.model import RETREAT, STANDARD, protocol_numbers
from services.scheduling.rows import AppointmentRow, SiteRow
from services.scheduling.schemas import AppointmentOut, SiteIn, SiteOut, schedule_entry

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
ROW = AppointmentRow(
    appointment_id="a-1",
    patient_id="p-1",
    site_id="s-1",
    series_id="x-1",
    kind="dosing",
    sequence=1,
    status="proposed",
    start=START,
    end=START + timedelta(hours=2),
    resource="room-1",
    reason="induction",
    cause=None,
    replaces=None,
    relaxed=("weekdays",),
)


def test_a_schedule_entry_has_the_answers_fields_in_its_order() -> None:
    assert list(schedule_entry(ROW)) == list(AppointmentOut.model_fields)


def test_a_schedule_entry_is_what_the_validated_answer_holds() -> None:
    assert AppointmentOut.from_row(ROW).model_dump() == schedule_entry(ROW)


def _site_row(**changes: object) -> SiteRow:
    fields: dict[str, object] = {
        "site_id": "s-1",
        "name": "North",
        "timezone": "Europe/London",
        "hours": {"mon": ("08:00", "18:00")},
        "treatment_rooms": 2,
        "therapists": 3,
        "protocol": "retreat",
        "protocol_spec": "retreat",
        "protocol_numbers": protocol_numbers(RETREAT),
        "updated_at": START,
    }
    return SiteRow(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_site_answer_gives_the_protocol_as_given_and_its_numbers() -> None:
    out = SiteOut.from_row(_site_row())
    assert out.protocol == "retreat"
    assert out.protocol_numbers == protocol_numbers(RETREAT)
    assert out.hours == {"mon": ["08:00", "18:00"]}


def test_a_site_stored_before_per_site_protocols_answers_its_presets_numbers() -> None:
    out = SiteOut.from_row(
        _site_row(protocol="standard", protocol_spec=None, protocol_numbers=None)
    )
    assert out.protocol == "standard"
    assert out.protocol_numbers == protocol_numbers(STANDARD)


def test_a_site_body_becomes_the_site_to_store() -> None:
    body = SiteIn.model_validate(
        {
            "name": "North",
            "timezone": "Europe/London",
            "hours": {"mon": ["08:00", "18:00"]},
            "treatment_rooms": 2,
            "therapists": 3,
            "protocol": {"preset": "retreat", "doses": 5},
        }
    )
    site = body.new_site()
    assert site.protocol == "custom"
    assert site.protocol_spec == {"preset": "retreat", "doses": 5}
    assert site.protocol_numbers["doses"] == 5
    assert site.hours == {"mon": ("08:00", "18:00")}
    assert SiteIn.model_validate({**body.model_dump(), "protocol": "standard"}).new_site() == (
        type(site)(
            name="North",
            timezone="Europe/London",
            hours={"mon": ("08:00", "18:00")},
            treatment_rooms=2,
            therapists=3,
            protocol="standard",
            protocol_spec="standard",
            protocol_numbers=protocol_numbers(STANDARD),
        )
    )
