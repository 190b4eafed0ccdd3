"""Every event type, as our relay puts it on Kafka, read by the official CloudEvents SDK
and validated against a CloudEvents 1.0 JSON Schema (tests/support/interop.py)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake.heartbeat import KEY as HEARTBEAT_KEY
from shared import events
from shared.events import (
    PAYLOADS,
    AlertChanged,
    AlertRaised,
    AppointmentChanged,
    AppointmentProposed,
    CheckinAssessment,
    CheckinFlagged,
    CheckinMissed,
    CheckinRecorded,
    DoseDeferred,
    IntakeReviewed,
    IntakeScreened,
    PatientDischarged,
    Payload,
    PipelineHeartbeat,
    Preferences,
    SafetySignal,
    SeriesWaitlisted,
    kafka_headers,
    new_event,
    without_binary_mode_headers,
)
from tests.support.interop import (
    SOURCES,
    check_message,
    producers,
    read_with_sdk,
    resolve_dataschema,
    validator,
)

NOW = datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
PID, SITE = "p-0042", "site-a"
APPOINTMENT = dict(
    appointment_id="a-1",
    series_id="s-1",
    patient_id=PID,
    site_id=SITE,
    kind="dosing",
    sequence=1,
    start=NOW + timedelta(days=2),
    end=NOW + timedelta(days=2, hours=2),
    resource="room-1",
    reason="induction",
)
ALERT = dict(
    alert_id="al-1",
    patient_id=PID,
    site_id=SITE,
    kind="suicide_risk",
    severity="critical",
    escalation_level=0,
    occurrences=1,
    reasons=("suicidal_ideation",),
    raised_at=NOW,
)

# One valid example of every payload model, its optional fields set where it has any.
EXAMPLES: list[Payload] = [
    IntakeScreened(
        intake_id="i-1",
        patient_id=PID,
        site_id=SITE,
        submitted_at=NOW,
        decision="eligible",
        reasons=(),
        phq9_total=20,
        phq9_severity="severe",
        phq9_item9_positive=False,
        suicide_risk="none",
        preferences=Preferences(weekdays=("mon", "tue"), earliest="08:00", timezone="UTC"),
    ),
    IntakeReviewed(
        intake_id="i-1",
        patient_id=PID,
        site_id=SITE,
        outcome="approved",
        reviewed_at=NOW,
        reasons=("suicide_risk_high",),
    ),
    CheckinRecorded(
        checkin_id="c-1",
        patient_id=PID,
        site_id=SITE,
        submitted_at=NOW,
        phq9_total=6,
        phq9_item9_positive=False,
        suicidal_ideation=False,
        assessment=CheckinAssessment(
            response=True,
            remission=False,
            worsening=False,
            worsening_reasons=(),
            baseline_total=20,
            lowest_total=6,
        ),
    ),
    CheckinFlagged(
        checkin_id="c-3",
        patient_id=PID,
        site_id=SITE,
        submitted_at=NOW,
        phq9_total=21,
        phq9_item9_positive=False,
        suicidal_ideation=False,
        assessment=CheckinAssessment(
            response=False,
            remission=False,
            worsening=True,
            worsening_reasons=("phq9_rise",),
            baseline_total=14,
            lowest_total=14,
        ),
    ),
    SafetySignal(
        signal_id="c-2", source="checkin", patient_id=PID, site_id=SITE, at=NOW, reasons=("x",)
    ),
    PipelineHeartbeat(beat_id="b-1", emitted_at=NOW, emitter="host:42"),
    PatientDischarged(patient_id=PID, site_id=SITE, discharged_at=NOW),
    AppointmentProposed(**APPOINTMENT, status="proposed", relaxed=("weekdays",)),
    AppointmentChanged(
        **APPOINTMENT, status="confirmed", previous_status="proposed", changed_at=NOW
    ),
    SeriesWaitlisted(
        patient_id=PID, site_id=SITE, purpose="induction", reason="no_capacity", waitlisted_at=NOW
    ),
    DoseDeferred(
        appointment_id="a-1",
        series_id="s-1",
        patient_id=PID,
        site_id=SITE,
        reasons=("systolic",),
        deferred_at=NOW,
        rebooked_appointment_id="a-2",
    ),
    CheckinMissed(
        patient_id=PID,
        site_id=SITE,
        due_at=NOW,
        deadline_at=NOW + timedelta(hours=1),
        missed_at=NOW + timedelta(hours=1),
        consecutive_misses=1,
    ),
    AlertRaised(**ALERT, status="open", pages_on_call=True),
    AlertChanged(
        **ALERT,
        status="acknowledged",
        change="acknowledged",
        previous_status="open",
        changed_at=NOW,
        by="Dr. A",
    ),
]


def as_relayed(payload: Payload) -> tuple[bytes, bytes, dict[str, bytes]]:
    """(key, value, headers) of the payload's event as the relay sends it: built as its
    producer builds it (its source, the patient as subject) with the relay's headers."""
    subject = HEARTBEAT_KEY if isinstance(payload, PipelineHeartbeat) else PID
    source = SOURCES[producers()[payload.topic]]
    event = new_event(payload, source=source, subject=subject, time=NOW)
    return event.key.encode(), event.to_bytes(), dict(kafka_headers())


def test_there_is_an_example_of_every_event_type() -> None:
    assert sorted(p.topic for p in EXAMPLES) == sorted(PAYLOADS)
    assert set(producers()) == set(PAYLOADS)


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: p.topic)
def test_every_event_type_reads_in_the_sdk_as_structured_mode_and_is_a_valid_cloudevent(
    payload: Payload,
) -> None:
    key, value, headers = as_relayed(payload)
    check_message(payload.topic, key, value, headers)
    event = read_with_sdk(key, value, headers)
    assert event.get_source().startswith("urn:interval:")
    assert event.get_time() == NOW
    assert PAYLOADS[payload.topic].model_validate(event.get_data()) == payload


FLAT = [
    p
    for p in EXAMPLES
    if isinstance(p, (CheckinMissed, PatientDischarged, SeriesWaitlisted, PipelineHeartbeat))
]
TIMES = dict(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1))
ZONES = [
    UTC,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    ZoneInfo("Europe/London"),  # zero offset in winter, not UTC
    ZoneInfo("America/New_York"),
]


def encoded_one_by_one(payloads: list[Payload], at: datetime, ids: list[str]) -> list[bytes]:
    out = []
    for payload, event_id in zip(payloads, ids, strict=True):
        subject = HEARTBEAT_KEY if isinstance(payload, PipelineHeartbeat) else PID
        source = SOURCES[producers()[payload.topic]]
        event = new_event(payload, source=source, subject=subject, time=at)
        out.append(event.model_copy(update={"id": event_id}).to_bytes())
    return out


def encoded_at_once(payloads: list[Payload], at: datetime, ids: list[str]) -> list[bytes]:
    model = type(payloads[0])
    subject = HEARTBEAT_KEY if model is PipelineHeartbeat else PID
    return events.new_events_bytes(
        model,
        [p.model_dump() for p in payloads],
        source=SOURCES[producers()[model.topic]],
        subjects=[subject] * len(payloads),
        time=at,
        event_ids=ids,
    )


@pytest.mark.parametrize("payload", FLAT, ids=lambda p: p.topic)
def test_events_encoded_at_once_are_the_bytes_of_new_event_for_every_flat_event_type(
    payload: Payload,
) -> None:
    """``new_events_bytes`` (the timers' burst) writes what ``new_event(...).to_bytes()``
    writes, given the same id; the events read as valid CloudEvents."""
    ids = events.uuid4_strings(1)
    (value,) = encoded_at_once([payload], NOW, ids)
    assert [value] == encoded_one_by_one([payload], NOW, ids)
    subject = HEARTBEAT_KEY if isinstance(payload, PipelineHeartbeat) else PID
    check_message(payload.topic, subject.encode(), value, dict(kafka_headers()))


@settings(max_examples=300, deadline=None)
@given(
    stamps=st.lists(
        st.tuples(
            st.datetimes(
                min_value=datetime(1970, 1, 2),
                max_value=datetime(2200, 1, 1),
                timezones=st.sampled_from(ZONES),
            ),
            st.integers(min_value=1, max_value=10_000),
        ),
        min_size=1,
        max_size=5,
    ),
    at=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(ZONES),
    ),
)
def test_missed_check_ins_encoded_at_once_are_the_bytes_of_new_event_at_any_time_and_zone(
    stamps: list[tuple[datetime, int]], at: datetime
) -> None:
    """Datetimes (microseconds or none, UTC, offsets, zones at a zero offset that are not
    UTC) and counts written by orjson as pydantic writes them."""
    payloads: list[Payload] = [
        CheckinMissed(
            patient_id=f"p-{i}",
            site_id=SITE,
            due_at=when,
            deadline_at=when + timedelta(hours=2),
            missed_at=at,
            consecutive_misses=n,
        )
        for i, (when, n) in enumerate(stamps)
    ]
    ids = events.uuid4_strings(len(payloads))
    assert encoded_at_once(payloads, at, ids) == encoded_one_by_one(payloads, at, ids)


@pytest.mark.parametrize("payload", [p for p in EXAMPLES if p not in FLAT], ids=lambda p: p.topic)
def test_events_with_other_field_types_are_not_encoded_at_once(payload: Payload) -> None:
    """orjson is trusted to write str, int, bool and datetime as pydantic does, nothing
    else (a nested model, a tuple, a literal, an optional)."""
    with pytest.raises(TypeError, match="fields other than"):
        encoded_at_once([payload], NOW, events.uuid4_strings(1))


def test_a_payload_the_model_refuses_refuses_the_whole_batch() -> None:
    good = EXAMPLES[[p.topic for p in EXAMPLES].index("checkin.missed")].model_dump()
    bad = {**good, "consecutive_misses": 0}
    with pytest.raises(ValidationError):
        events.new_events_bytes(
            CheckinMissed,
            [good, bad],
            source="urn:interval:alerts",
            subjects=[PID, PID],
            time=NOW,
            event_ids=events.uuid4_strings(2),
        )


def test_event_ids_drawn_in_one_go_are_canonical_distinct_version_4_uuids() -> None:
    """The timers' burst takes its event ids from ``uuid4_strings``: each is what
    ``str(uuid.UUID(...))`` prints for a random RFC 4122 UUID, and none repeats."""
    ids = events.uuid4_strings(20_000)
    assert len(ids) == 20_000 == len(set(ids))
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
    assert events.uuid4_strings(0) == []
    # 122 random bits each: the fixed bits are the only ones every id shares
    assert len({text[14] for text in ids}) == 1
    assert {text[19] for text in ids} == set("89ab")
    assert len({text[0] for text in ids}) == 16


@pytest.mark.parametrize(
    ("source", "subject", "at"),
    [
        ("", PID, NOW),
        ("urn:interval:alerts", "", NOW),
        ("urn:interval:alerts", PID, NOW.replace(tzinfo=None)),
    ],
    ids=["no-source", "no-subject", "naive-time"],
)
def test_events_encoded_at_once_refuse_what_the_envelope_model_refuses(
    source: str, subject: str, at: datetime
) -> None:
    payload = EXAMPLES[[p.topic for p in EXAMPLES].index("checkin.missed")]
    with pytest.raises(ValidationError):
        new_event(payload, source=source, subject=subject, time=at)
    with pytest.raises(ValueError, match=r"source and a subject|timezone-aware"):
        events.new_events_bytes(
            CheckinMissed,
            [payload.model_dump()],
            source=source,
            subjects=[subject],
            time=at,
            event_ids=events.uuid4_strings(1),
        )


def test_events_encoded_at_once_need_a_subject_and_an_id_each() -> None:
    payload = EXAMPLES[[p.topic for p in EXAMPLES].index("checkin.missed")].model_dump()
    with pytest.raises(ValueError, match="one subject and one event id per payload"):
        events.new_events_bytes(
            CheckinMissed,
            [payload, payload],
            source="urn:interval:alerts",
            subjects=[PID],
            time=NOW,
            event_ids=events.uuid4_strings(2),
        )


def test_a_ce_header_beside_a_structured_event_makes_the_sdk_read_binary_mode_and_fail() -> None:
    """What issue 17 saw: the relay used to add ``ce_id`` to structured-mode messages."""
    key, value, headers = as_relayed(EXAMPLES[0])
    with_ce_id = KafkaMessage(headers={**headers, "ce_id": b"x"}, key=key, value=value)
    with pytest.raises(CloudEventValidationError, match="source"):
        from_kafka(with_ce_id, JSONFormat())
    with pytest.raises(jsonschema.ValidationError, match="ce_id"):  # docs/asyncapi.yaml
        check_message(EXAMPLES[0].topic, key, value, {**headers, "ce_id": b"x"})
    with pytest.raises(AssertionError, match="binary-mode headers"):
        read_with_sdk(key, value, {**headers, "ce_id": b"x"})


def test_the_relay_and_the_dead_letters_send_no_ce_header() -> None:
    assert kafka_headers() == [("content-type", b"application/cloudevents+json")]
    old = {"content-type": b"application/cloudevents+json", "ce_id": b"1", "CE_Type": b"t"}
    assert without_binary_mode_headers({**old, "dlq.reason": b"rejected"}) == {
        "content-type": b"application/cloudevents+json",
        "dlq.reason": b"rejected",
    }


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("source", None),  # required
        ("id", ""),
        ("specversion", "0.3"),
        ("dataschema", "asyncapi.yaml#/components/schemas/IntakeScreened"),  # not absolute
        ("dataschema", "urn:interval:asyncapi:v1#bad fragment"),
        ("source", "urn:interval:in take"),
        ("time", "2026-11-23 14:05"),  # not RFC 3339
        ("time", "2026-11-23T14:05:00"),  # no offset
        ("subject", ""),
        ("traceParent", "00-x"),  # attribute names are lower-case letters and digits
        ("data_base64", "eyJ9"),  # beside data
    ],
)
def test_the_schema_refuses_what_the_spec_refuses(attribute: str, value: str | None) -> None:
    """Also proves the schema's formats are checked (their packages are installed)."""
    _, raw, _ = as_relayed(EXAMPLES[0])
    wire = json.loads(raw)
    assert validator().is_valid(wire)
    if value is None:
        del wire[attribute]
    else:
        wire[attribute] = value
    assert not validator().is_valid(wire)


def test_an_extension_attribute_and_an_event_without_dataschema_are_still_cloudevents() -> None:
    _, raw, _ = as_relayed(EXAMPLES[0])
    wire = json.loads(raw)
    wire["traceparent"] = "00-0af7651916cd43dd-b7ad6b7169203331-01"
    wire["sequence"] = 7
    del wire["dataschema"]  # as produced before it existed
    validator().validate(wire)


def test_every_service_source_is_an_absolute_uri_naming_the_service() -> None:
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    for service, source in SOURCES.items():
        assert source == f"urn:interval:{service}"
        assert checker.conforms(source, "uri")  # absolute, not just a reference


def test_every_dataschema_resolves_to_its_component_in_the_asyncapi_document() -> None:
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    for model in PAYLOADS.values():
        uri = events.dataschema(model)
        assert checker.conforms(uri, "uri")
        component = resolve_dataschema(uri)
        assert component["title"] == model.__name__
    with pytest.raises(AssertionError):
        resolve_dataschema("urn:interval:asyncapi:v1#/components/schemas/NoSuchEvent")
    with pytest.raises(AssertionError):
        resolve_dataschema("urn:interval:asyncapi:v2#/components/schemas/IntakeScreened")
