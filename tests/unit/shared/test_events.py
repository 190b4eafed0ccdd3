"""The wire contract: envelope shape, payload validation, no PHI fields, AsyncAPI in sync."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from shared import asyncapi
from shared.events import (
    ALL_TOPICS,
    PAYLOADS,
    CloudEvent,
    IntakeScreened,
    PatientDischarged,
    new_event,
)

PHI_FIELDS = {"name", "date_of_birth", "birth_date", "phone", "email", "note", "notes"}
NOW = datetime(2026, 11, 23, 14, 5, tzinfo=UTC)


def screened(**kw: object) -> IntakeScreened:
    base: dict[str, object] = dict(
        intake_id="i-1",
        patient_id="p-1",
        site_id="site-a",
        submitted_at=NOW,
        decision="eligible",
        reasons=(),
        phq9_total=20,
        phq9_severity="severe",
        phq9_item9_positive=False,
        suicide_risk="none",
    )
    base.update(kw)
    return IntakeScreened.model_validate(base)


def test_an_event_is_a_structured_cloudevent_keyed_by_patient() -> None:
    event = new_event(screened(), source="interval/intake", subject="p-1", time=NOW)
    wire = json.loads(event.to_bytes())
    assert wire["specversion"] == "1.0"
    assert wire["type"] == "intake.screened"
    assert wire["source"] == "interval/intake"
    assert wire["subject"] == "p-1"
    assert wire["datacontenttype"] == "application/json"
    assert wire["time"] == "2026-11-23T14:05:00Z"
    assert event.key == "p-1"
    assert CloudEvent.from_bytes(event.to_bytes()) == event
    assert CloudEvent.from_bytes(event.to_bytes()).payload() == screened()


def test_every_event_gets_a_unique_id() -> None:
    ids = {new_event(screened(), source="s", subject="p", time=NOW).id for _ in range(100)}
    assert len(ids) == 100


@pytest.mark.parametrize("topic", sorted(PAYLOADS))
def test_no_payload_has_a_phi_field(topic: str) -> None:
    def names(schema: dict[str, object]) -> set[str]:
        found: set[str] = set()
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                found |= set(value)
            if isinstance(value, dict):
                found |= names(value)
        return found

    assert not names(PAYLOADS[topic].model_json_schema()) & PHI_FIELDS


def test_payloads_are_frozen_and_refuse_unknown_fields() -> None:
    event = screened()
    with pytest.raises(ValidationError):
        event.decision = "ineligible"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        screened(name="Ada Example")


def test_a_payload_with_a_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError):
        PatientDischarged(patient_id="p", site_id="s", discharged_at=datetime(2026, 1, 1))


def test_every_topic_has_a_dead_letter_twin() -> None:
    for topic in PAYLOADS:
        assert f"{topic}.dlq" in ALL_TOPICS


def test_the_committed_asyncapi_document_matches_the_models() -> None:
    committed = yaml.safe_load(Path(asyncapi.DOC).read_text())
    assert committed == asyncapi.build(), "run `python -m shared.asyncapi` and commit the result"
    addresses = {c["address"] for c in committed["channels"].values()}
    assert addresses == set(ALL_TOPICS)


def test_a_real_event_validates_against_its_asyncapi_schema() -> None:
    doc = asyncapi.build()
    wire = json.loads(
        new_event(screened(reasons=("x",)), source="s", subject="p-1", time=NOW).to_bytes()
    )
    schema = {
        **doc["components"]["messages"]["IntakeScreened"]["payload"],
        "components": doc["components"],
    }
    jsonschema.validate(wire, schema)
    wire["data"]["phq9_total"] = 99
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wire, schema)
