"""The wire contract: envelope shape, payload validation, no PHI fields, AsyncAPI in sync."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml
from pydantic import ValidationError
from structlog.testing import capture_logs

from shared import asyncapi
from shared.events import (
    ALL_TOPICS,
    ASYNCAPI_ID,
    CONTRACT_VERSION,
    ID_MAX_LENGTH,
    PAYLOADS,
    CheckinAssessment,
    CloudEvent,
    IntakeScreened,
    PatientDischarged,
    Preferences,
    dataschema,
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
    event = new_event(screened(), source="urn:interval:intake", subject="p-1", time=NOW)
    wire = json.loads(event.to_bytes())
    assert wire["specversion"] == "1.0"
    assert wire["type"] == "intake.screened"
    assert wire["source"] == "urn:interval:intake"
    assert wire["dataschema"] == "urn:interval:asyncapi:v1#/components/schemas/IntakeScreened"
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


def test_every_events_dataschema_resolves_to_its_component_in_the_asyncapi_document() -> None:
    """``dataschema`` is the document's ``id`` + a JSON pointer to the payload's component;
    the document's major version is the one in that ``id`` (docs/events.md, "Versions")."""
    committed = yaml.safe_load(Path(asyncapi.DOC).read_text())
    assert committed["id"] == ASYNCAPI_ID == f"urn:interval:asyncapi:v{CONTRACT_VERSION}"
    assert committed["info"]["version"].split(".")[0] == str(CONTRACT_VERSION)
    schemas = committed["components"]["schemas"]
    for model in PAYLOADS.values():
        uri = dataschema(model)  # what new_event sets
        base, _, pointer = uri.partition("#")
        assert base == committed["id"]
        assert pointer == f"/components/schemas/{model.__name__}"
        assert schemas[model.__name__]["title"] == model.__name__
        message = committed["components"]["messages"][model.__name__]
        assert message["payload"]["allOf"][1]["properties"]["dataschema"] == {"const": uri}


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


# --- the tolerant reader (docs/events.md, "Evolving an event") -----------------------------


def next_version(**extra: object) -> dict[str, object]:
    """An intake.screened on the wire, as a newer producer might send it: ``extra`` merged
    into the envelope, into ``data`` (key ``data``) and into ``data.preferences``."""
    wire: dict[str, Any] = json.loads(
        new_event(
            screened(preferences={"weekdays": ["mon"]}), source="s", subject="p-1", time=NOW
        ).to_bytes()
    )
    for key, value in extra.items():
        if key == "data":
            assert isinstance(value, dict)
            wire["data"].update({k: v for k, v in value.items() if k != "preferences"})
            wire["data"]["preferences"].update(value.get("preferences", {}))
        else:
            wire[key] = value
    return wire


def test_an_unknown_top_level_field_is_ignored_by_a_reader_and_refused_to_a_producer() -> None:
    raw = orjson.dumps(next_version(data={"cssrs_score_v2": 3}))
    with pytest.raises(ValidationError, match="extra_forbidden"):
        CloudEvent.from_bytes(raw).payload()
    read = CloudEvent.from_bytes(raw, tolerant=True).payload(tolerant=True)
    assert read == screened(preferences={"weekdays": ["mon"]})
    with pytest.raises(ValidationError):
        screened(cssrs_score_v2=3)


def test_an_unknown_nested_field_is_ignored_by_a_reader_and_refused_to_a_producer() -> None:
    raw = orjson.dumps(next_version(data={"preferences": {"modality_v2": "im"}}))
    with pytest.raises(ValidationError):
        CloudEvent.from_bytes(raw).payload()
    read = CloudEvent.from_bytes(raw, tolerant=True).payload(tolerant=True)
    assert isinstance(read, IntakeScreened)
    assert read.preferences == Preferences(weekdays=("mon",))
    with pytest.raises(ValidationError):
        Preferences.model_validate({"weekdays": ["mon"], "modality_v2": "im"})
    assessment = {
        "response": True,
        "remission": False,
        "worsening": False,
        "worsening_reasons": [],
        "baseline_total": 20,
        "lowest_total": 5,
    }
    with pytest.raises(ValidationError):
        CheckinAssessment.model_validate({**assessment, "trend_v2": "down"})


def test_an_unknown_extension_attribute_is_ignored_by_a_reader_and_refused_to_a_producer() -> None:
    raw = orjson.dumps(next_version(traceparent="00-0af7651916cd43dd-b7ad6b7169203331-01"))
    with pytest.raises(ValidationError):
        CloudEvent.from_bytes(raw)
    event = CloudEvent.from_bytes(raw, tolerant=True)
    assert event.model_extra in (None, {})
    assert b"traceparent" not in event.to_bytes()
    with pytest.raises(ValidationError):
        CloudEvent.model_validate({**json.loads(event.to_bytes()), "traceparent": "00-x"})


@pytest.mark.parametrize(
    ("field", "value"),
    [("phq9_total", None), ("phq9_total", 99), ("decision", "maybe"), ("submitted_at", "soon")],
)
def test_a_missing_or_wrong_field_is_still_refused_by_a_reader(field: str, value: object) -> None:
    wire = next_version(traceparent="00-x", data={"cssrs_score_v2": 3, "preferences": {"x": 1}})
    data = wire["data"]
    assert isinstance(data, dict)
    if value is None:
        del data[field]
    else:
        data[field] = value
    event = CloudEvent.from_bytes(orjson.dumps(wire), tolerant=True)
    with pytest.raises(ValidationError) as refused:
        event.payload(tolerant=True)
    # the fault named is the real one, not the unknown fields beside it
    assert [e["loc"] for e in refused.value.errors()] == [(field,)]


def test_a_reader_refuses_a_bad_envelope_beside_an_extension() -> None:
    wire = next_version(traceparent="00-x")
    del wire["subject"]
    with pytest.raises(ValidationError) as refused:
        CloudEvent.from_bytes(orjson.dumps(wire), tolerant=True)
    assert [e["loc"] for e in refused.value.errors()] == [("subject",)]


@pytest.mark.parametrize("attribute", ["id", "source", "type", "subject"])
def test_an_envelope_attribute_with_a_nul_character_is_refused(attribute: str) -> None:
    """No consumer's inbox (PostgreSQL text) could store it: refused as a bad envelope,
    so a consumer dead-letters it instead of retrying its INSERT for good."""
    wire = orjson.loads(
        new_event(screened(), source="urn:interval:intake", subject="p-1", time=NOW).to_bytes()
    )
    wire[attribute] = f"a\u0000{wire[attribute]}"
    for tolerant in (False, True):
        with pytest.raises(ValidationError) as refused:
            CloudEvent.from_bytes(orjson.dumps(wire), tolerant=tolerant)
        assert [e["loc"] for e in refused.value.errors()] == [(attribute,)]


def test_an_event_id_is_at_most_256_characters() -> None:
    """What the inbox's primary key can hold whatever the characters (4 bytes each at
    most); a longer one is refused as a bad envelope."""
    wire = orjson.loads(
        new_event(screened(), source="urn:interval:intake", subject="p-1", time=NOW).to_bytes()
    )
    wire["id"] = "\U0001f600" * ID_MAX_LENGTH  # 4 bytes each in UTF-8
    assert CloudEvent.from_bytes(orjson.dumps(wire), tolerant=True).id == wire["id"]
    wire["id"] += "x"
    with pytest.raises(ValidationError) as refused:
        CloudEvent.from_bytes(orjson.dumps(wire), tolerant=True)
    assert [e["loc"] for e in refused.value.errors()] == [("id",)]


def test_a_reader_logs_each_unknown_field_name_once_and_never_its_value() -> None:
    raw = orjson.dumps(
        next_version(
            onceext="secret-ext-value",
            data={"once_top": "secret-top-value", "preferences": {"once_nested": "secret-n"}},
        )
    )
    with capture_logs() as logs:
        for _ in range(3):
            CloudEvent.from_bytes(raw, tolerant=True).payload(tolerant=True)
    ignored = [e for e in logs if e["event"] == "event_unknown_field_ignored"]
    assert sorted(e["field"] for e in ignored) == [
        "data.once_top",
        "data.preferences.once_nested",
        "onceext",
    ]
    assert {e["event_type"] for e in ignored} == {"intake.screened"}
    assert "secret" not in repr(logs)
