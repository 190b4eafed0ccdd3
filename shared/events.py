"""The wire contract: CloudEvents 1.0 envelope (structured JSON) and every payload.

Every event on every topic is built and parsed here and nowhere else. Payloads are
frozen pydantic models that carry ids, scores, flags, decisions and times only:
never a patient's name, birth date, phone, e-mail or free-text notes. The AsyncAPI
document in ``docs/asyncapi.yaml`` is checked against these models by a test.

The models are strict (an unknown field is refused): producers build with them.
Consumers read with ``CloudEvent.from_bytes(raw, tolerant=True)`` and
``event.payload(tolerant=True)``, which ignore the fields and extension attributes
they do not know yet (docs/events.md, "Evolving an event").
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.logging import get_logger
from shared.validation import NoNul

CONTENT_TYPE = "application/cloudevents+json"

# --- identifiers (docs/events.md, "Identifiers: source and dataschema") -------------------
# ``source``: an absolute URI naming the emitting service, ``urn:interval:<service>``.
SOURCE_PREFIX = "urn:interval:"
# The major version of the event contract: a breaking change to one event is a new type
# (``<topic>.v2``, its own component), so this moves only if the whole contract does.
CONTRACT_VERSION = 1
# The AsyncAPI document's ``id`` (docs/asyncapi.yaml): the base of every ``dataschema``.
ASYNCAPI_ID = f"urn:interval:asyncapi:v{CONTRACT_VERSION}"


def service_source(service: str) -> str:
    """The ``source`` of every event ``service`` emits, e.g. ``urn:interval:intake``."""
    return SOURCE_PREFIX + service


# Kafka protocol binding: a header starting with this names a binary-mode attribute, and a
# reader that sees one (the CloudEvents SDK's ``from_kafka``) reads the message as binary
# mode. Our messages are structured mode, so they carry none (``kafka_headers``).
BINARY_MODE_HEADER_PREFIX = "ce_"


class Payload(BaseModel):
    """Base of every event payload; ``topic`` ties the model to its topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    topic: ClassVar[str]


# --- intake -----------------------------------------------------------------


class Preferences(BaseModel):
    """A patient's scheduling preferences (site time zone unless ``timezone`` is set)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    weekdays: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] | None = None
    earliest: str | None = Field(default=None, description="HH:MM")
    latest: str | None = Field(default=None, description="HH:MM")
    timezone: str | None = Field(default=None, description="IANA time zone")


class IntakeScreened(Payload):
    """An intake screen was scored and decided."""

    topic: ClassVar[str] = "intake.screened"
    intake_id: str
    patient_id: str
    site_id: str
    submitted_at: AwareDatetime
    decision: Literal["eligible", "needs_review", "ineligible"]
    reasons: tuple[str, ...]
    phq9_total: int = Field(ge=0, le=27)
    phq9_severity: Literal["none_minimal", "mild", "moderate", "moderately_severe", "severe"]
    phq9_item9_positive: bool
    suicide_risk: Literal["none", "low", "moderate", "high"]
    preferences: Preferences | None = None


class IntakeReviewed(Payload):
    """A clinician approved or declined a ``needs_review`` intake."""

    topic: ClassVar[str] = "intake.reviewed"
    intake_id: str
    patient_id: str
    site_id: str
    outcome: Literal["approved", "declined"]
    reviewed_at: AwareDatetime
    reasons: tuple[str, ...]
    preferences: Preferences | None = None


class CheckinAssessment(BaseModel):
    """The measurement-based-care verdict: one verdict that alerts and scheduling share."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    response: bool
    remission: bool
    worsening: bool
    worsening_reasons: tuple[str, ...]
    baseline_total: int
    lowest_total: int


class CheckinRecorded(Payload):
    """A between-session check-in arrived (the free-text note stays in intake)."""

    topic: ClassVar[str] = "checkin.recorded"
    checkin_id: str
    patient_id: str
    site_id: str
    submitted_at: AwareDatetime
    phq9_total: int | None = Field(ge=0, le=27)
    phq9_item9_positive: bool
    suicidal_ideation: bool
    assessment: CheckinAssessment

    def flagged(self) -> bool:
        """Whether the check-in asks something of scheduling (a hold while at risk, or a
        maintenance session on worsening): then ``checkin.flagged`` carries it too."""
        return self.suicidal_ideation or self.phq9_item9_positive or self.assessment.worsening


class CheckinFlagged(CheckinRecorded):
    """The same check-in as its ``checkin.recorded``, published beside it (same
    statement, right after it) only when it asks something of scheduling: suicidal
    ideation, PHQ-9 item 9 positive, or a worsening verdict. Scheduling reads this topic
    instead of every check-in (about 3 in 100 are flagged), so it no longer fetches and
    drops the rest (docs/performance.md). The payload is ``checkin.recorded``'s, field for
    field; the event has its own ``id``."""

    topic: ClassVar[str] = "checkin.flagged"


class SafetySignal(Payload):
    """A suicide-risk signal on its own topic, so that nothing queues in front of it
    (docs/domain.md, "Safety signals first"): suicidal ideation or PHQ-9 item 9 > 0 in a
    check-in, high C-SSRS or item 9 > 0 at intake. Published beside the ordinary event of
    the same check-in or intake (same transaction, relayed first); the alerts service
    raises one alert occurrence per ``signal_id`` whichever of the two it sees first."""

    topic: ClassVar[str] = "safety.signal"
    signal_id: str = Field(description="the check-in's or the intake's id")
    source: Literal["checkin", "intake"]
    patient_id: str
    site_id: str
    at: AwareDatetime = Field(description="when the patient submitted it")
    reasons: tuple[str, ...] = Field(
        description="suicidal_ideation | phq9_item9_positive | cssrs_high", min_length=1
    )


class PipelineHeartbeat(Payload):
    """A synthetic beat through the safety lane (docs/architecture.md, "Pipeline
    watchdog"): written into intake's outbox with the safety priority every
    ``PIPELINE_HEARTBEAT_INTERVAL_S``, consumed by the safety lane's process, which
    records when it was emitted and seen. Never an alert, a page or a patient."""

    topic: ClassVar[str] = "pipeline.heartbeat"
    beat_id: str
    emitted_at: AwareDatetime = Field(description="the emitter's wall clock")
    emitter: str = Field(description="the process that wrote it (host:pid)", max_length=200)


class PatientDischarged(Payload):
    """Monitoring ends for the patient."""

    topic: ClassVar[str] = "patient.discharged"
    patient_id: str
    site_id: str
    discharged_at: AwareDatetime


# --- scheduling ----------------------------------------------------------------

AppointmentKind = Literal["dosing", "integration", "maintenance"]
AppointmentStatus = Literal["proposed", "confirmed", "cancelled", "completed", "no_show"]


class _Appointment(Payload):
    """The fields every appointment event carries (ids, kind, status, times, resource)."""

    appointment_id: str
    series_id: str
    patient_id: str
    site_id: str
    kind: AppointmentKind
    sequence: int = Field(ge=1)
    status: AppointmentStatus
    start: AwareDatetime
    end: AwareDatetime
    resource: str
    reason: str


class AppointmentProposed(_Appointment):
    """A session was proposed (part of an induction series, a maintenance, a rebooking)."""

    topic: ClassVar[str] = "appointment.proposed"
    relaxed: tuple[str, ...] = ()


class AppointmentChanged(_Appointment):
    """An appointment moved through its lifecycle (confirm, cancel, complete, no-show)."""

    topic: ClassVar[str] = "appointment.changed"
    previous_status: AppointmentStatus
    changed_at: AwareDatetime
    cause: str | None = Field(default=None, description="why, e.g. deferred_vitals")


class SeriesWaitlisted(Payload):
    """No series fits (or the site is not configured yet): the patient waits, visibly."""

    topic: ClassVar[str] = "series.waitlisted"
    patient_id: str
    site_id: str
    purpose: str = Field(description="induction | post_induction | worsening | rebooked")
    reason: str
    waitlisted_at: AwareDatetime


class DoseDeferred(Payload):
    """Pre-dose vitals were over the day-of-dosing limits: the dose was deferred."""

    topic: ClassVar[str] = "dose.deferred"
    appointment_id: str
    series_id: str
    patient_id: str
    site_id: str
    reasons: tuple[str, ...]
    deferred_at: AwareDatetime
    rebooked_appointment_id: str | None = None


# --- alerts ------------------------------------------------------------------


class CheckinMissed(Payload):
    """A monitored patient's expected check-in did not arrive by its due time + grace."""

    topic: ClassVar[str] = "checkin.missed"
    patient_id: str
    site_id: str
    due_at: AwareDatetime
    deadline_at: AwareDatetime
    missed_at: AwareDatetime
    consecutive_misses: int = Field(ge=1)


AlertKind = Literal[
    "suicide_risk", "worsening", "missed_checkins", "dose_deferred", "no_show", "pipeline_stalled"
]
AlertSeverity = Literal["critical", "high", "warning"]
AlertStatus = Literal["open", "acknowledged", "resolved"]


class _Alert(Payload):
    """The fields every alert event carries (ids, kind, severity, status, level, times)."""

    alert_id: str
    patient_id: str
    site_id: str
    kind: AlertKind
    severity: AlertSeverity
    status: AlertStatus
    escalation_level: int = Field(ge=0)
    occurrences: int = Field(ge=1)
    reasons: tuple[str, ...]
    raised_at: AwareDatetime
    inhibited_by: str | None = Field(
        default=None, description="the critical alert that holds back this one's pages"
    )


class AlertRaised(_Alert):
    """An alert opened (one open alert per patient and kind)."""

    topic: ClassVar[str] = "alert.raised"
    pages_on_call: bool = Field(description="false for warnings, held-back alerts, no on-call")


class AlertChanged(_Alert):
    """An alert moved: repeated, escalated, re-paged, acknowledged, resolved, held, released."""

    topic: ClassVar[str] = "alert.changed"
    change: Literal[
        "repeated", "escalated", "repaged", "acknowledged", "resolved", "inhibited", "released"
    ]
    previous_status: AlertStatus
    changed_at: AwareDatetime
    by: str | None = Field(default=None, description="the staff member who acted (no notes)")


PAYLOADS: dict[str, type[Payload]] = {
    m.topic: m
    for m in (
        IntakeScreened,
        IntakeReviewed,
        CheckinRecorded,
        CheckinFlagged,
        SafetySignal,
        PipelineHeartbeat,
        PatientDischarged,
        AppointmentProposed,
        AppointmentChanged,
        SeriesWaitlisted,
        DoseDeferred,
        CheckinMissed,
        AlertRaised,
        AlertChanged,
    )
}
TOPICS: tuple[str, ...] = tuple(PAYLOADS)


def dataschema(model: type[Payload]) -> str:
    """The absolute URI of the payload's schema: its component in the AsyncAPI document,
    ``urn:interval:asyncapi:v1#/components/schemas/<Model>``."""
    return f"{ASYNCAPI_ID}#/components/schemas/{model.__name__}"


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


ALL_TOPICS: tuple[str, ...] = tuple(t for topic in TOPICS for t in (topic, dlq_topic(topic)))


# --- envelope ---------------------------------------------------------------


# An envelope attribute a consumer stores (the id in its inbox, the subject as a key):
# PostgreSQL's text cannot hold a NUL character, so an attribute with one is refused
# here, where the event is dead-lettered as invalid, rather than by the inbox's INSERT,
# which a consumer retries as the database's fault, holding the partition for good. For
# the same reason the id is at most 256 characters (1,024 bytes): the inbox's primary
# key holds an entry of at most about 2,700.
_Attribute = Annotated[str, Field(min_length=1), NoNul]
ID_MAX_LENGTH = 256


class CloudEvent(BaseModel):
    """CloudEvents 1.0, structured mode; ``type`` is the topic, ``subject`` the patient,
    ``source`` the emitting service (``service_source``), ``dataschema`` the payload's
    AsyncAPI component (``dataschema``). ``dataschema`` is optional to a reader: events
    produced before it existed have none."""

    # our producers set no extension attribute; a reader ignores any (``tolerant=True``)
    model_config = ConfigDict(frozen=True, extra="forbid")
    specversion: Literal["1.0"] = "1.0"
    id: Annotated[_Attribute, Field(max_length=ID_MAX_LENGTH)]
    source: _Attribute = Field(
        description="the emitting service: urn:interval:intake | scheduling | alerts",
    )
    type: _Attribute
    subject: _Attribute
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = Field(
        default=None,
        min_length=1,
        description="the payload's component in docs/asyncapi.yaml (absent before it existed)",
        json_schema_extra={"format": "uri"},
    )
    data: dict[str, Any]

    @property
    def key(self) -> str:
        """The Kafka message key: the patient id, so one patient's events stay in order."""
        return self.subject

    def to_bytes(self) -> bytes:
        # an absent optional attribute is left out, never written as null
        absent = {"dataschema"} if self.dataschema is None else None
        return orjson.dumps(self.model_dump(mode="json", exclude=absent))

    @classmethod
    def from_bytes(cls, raw: bytes, *, tolerant: bool = False) -> CloudEvent:
        """The envelope; ``tolerant``: unknown extension attributes are left out (logged by
        name), every other fault still raises ValidationError."""
        if not tolerant:
            return cls.model_validate_json(raw)
        event, unknown = _ignoring_unknown(lambda extra: cls.model_validate_json(raw, extra=extra))
        _log_unknown(event.type, unknown)
        return event

    def payload(self, *, tolerant: bool = False) -> Payload:
        """The typed payload; raises KeyError for an unknown type, ValidationError if bad.

        ``tolerant``: unknown fields, nested ones too, are left out (logged by name); a
        missing required field or a wrong type still raises."""
        model = PAYLOADS[self.type]
        if not tolerant:
            return model.model_validate(self.data)
        payload, unknown = _ignoring_unknown(
            lambda extra: model.model_validate(self.data, extra=extra)
        )
        _log_unknown(self.type, (f"data.{f}" for f in unknown))
        return payload


def new_event(payload: Payload, *, source: str, subject: str, time: datetime) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=payload.topic,
        subject=subject,
        time=time,
        dataschema=dataschema(type(payload)),
        data=payload.model_dump(mode="json"),
    )


def uuid4_strings(n: int) -> list[str]:
    """``n`` random (version 4, RFC 4122) UUIDs as strings, from one read of the OS's
    random source: ``str(uuid.uuid4())`` reads it once per id and builds a ``UUID`` on the
    way, 3.3 us an id against 0.8 here (a burst of the timers is 100,000 event ids)."""
    raw = bytearray(os.urandom(16 * n))
    out: list[str] = []
    for i in range(0, 16 * n, 16):
        raw[i + 6] = (raw[i + 6] & 0x0F) | 0x40  # version 4
        raw[i + 8] = (raw[i + 8] & 0x3F) | 0x80  # the RFC 4122 variant
        h = raw[i : i + 16].hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


# the field types ``new_events_bytes`` writes with orjson exactly as pydantic would
_FLAT_FIELD_TYPES = (str, int, bool, datetime, AwareDatetime)
_P = TypeVar("_P", bound=Payload)


@functools.cache
def _flat_list(model: type[_P]) -> TypeAdapter[list[_P]]:
    refused = [
        name for name, f in model.model_fields.items() if f.annotation not in _FLAT_FIELD_TYPES
    ]
    if refused:
        raise TypeError(
            f"{model.__name__} has fields other than str, int, bool or datetime: {refused}"
        )
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def new_events_bytes(
    model: type[_P],
    payloads: Sequence[dict[str, Any]],
    *,
    source: str,
    subjects: Sequence[str],
    time: datetime,
    event_ids: Sequence[str],
) -> list[bytes]:
    """The bytes of ``new_event(model(**p), source=source, subject=s, time=time)`` with
    id ``i``, for each payload, subject and id (``uuid4_strings``), without a model per
    envelope: for a writer of thousands of events at once (the timers' burst of missed
    check-ins, services/alerts/timers.py). The payloads are validated by the model, as
    one list (in pydantic's core, 3 us each against 4 one by one, and a payload the model
    refuses raises ``ValidationError`` for the batch); the envelope's checks that could
    fail on our inputs are made here; orjson writes each event (its datetimes as pydantic
    does, "Z" for UTC): 9 -> 5.4 us an event with its payload. For models whose fields
    are all str, int, bool or datetime (``TypeError`` otherwise);
    tests/unit/shared/test_cloudevents_interop.py holds the bytes to ``new_event``'s."""
    adapter = _flat_list(model)
    if not (len(payloads) == len(subjects) == len(event_ids)):
        raise ValueError("one subject and one event id per payload")
    if not source or not all(subjects):
        raise ValueError("an event needs a source and a subject")
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError("an event's time must be timezone-aware")
    schema = dataschema(model)
    return [
        orjson.dumps(
            {
                "specversion": "1.0",
                "id": event_id,
                "source": source,
                "type": model.topic,
                "subject": subject,
                "time": time,
                "datacontenttype": "application/json",
                "dataschema": schema,
                "data": payload.__dict__,  # the fields, in order (frozen, no extras)
            },
            option=orjson.OPT_UTC_Z,
        )
        for payload, subject, event_id in zip(
            adapter.validate_python(payloads), subjects, event_ids, strict=True
        )
    ]


def kafka_headers() -> list[tuple[str, bytes]]:
    """The headers of an event's Kafka message: structured mode (the whole event is the
    value), so the content type and no ``ce_`` header (Kafka protocol binding)."""
    return [("content-type", CONTENT_TYPE.encode())]


def without_binary_mode_headers(headers: dict[str, bytes]) -> dict[str, bytes]:
    """``headers`` less any ``ce_`` one, for a message whose value is a structured-mode
    event: messages relayed before these headers were dropped still carry ``ce_id``."""
    return {k: v for k, v in headers.items() if not k.lower().startswith(BINARY_MODE_HEADER_PREFIX)}


# --- the tolerant reader ----------------------------------------------------------------------
# A newer producer may add an optional field or an extension attribute (docs/events.md): a
# consumer that does not know it yet applies the event without it. Its name is logged once
# per process and event type, never its value (values may be PHI-adjacent).

log = get_logger(__name__)

_M = TypeVar("_M", bound=BaseModel)
_LOGGED_UNKNOWN: set[tuple[str, str]] = set()
_LOGGED_UNKNOWN_MAX = 1000  # a producer sending ever new names cannot grow the set forever
_UNKNOWN = "extra_forbidden"  # pydantic's error type for a field the model does not have


def _ignoring_unknown(
    validate: Callable[[Literal["forbid", "ignore"]], _M],
) -> tuple[_M, tuple[str, ...]]:
    """``validate`` strictly (one pass for a known event); if unknown fields were refused,
    again ignoring them (raising the other faults, if any). Returns the model and the
    unknown fields' paths."""
    try:
        return validate("forbid"), ()
    except ValidationError as exc:
        errors = exc.errors()
        unknown = tuple(dict.fromkeys(_path(e["loc"]) for e in errors if e["type"] == _UNKNOWN))
        if not unknown:
            raise
    return validate("ignore"), unknown  # outside the except: its faults are its own


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join("*" if isinstance(p, int) else p for p in loc)[:100]


def _log_unknown(event_type: str, fields: Iterable[str]) -> None:
    for field in fields:
        seen = (event_type[:100], field)
        if seen in _LOGGED_UNKNOWN or len(_LOGGED_UNKNOWN) >= _LOGGED_UNKNOWN_MAX:
            continue
        _LOGGED_UNKNOWN.add(seen)
        log.info("event_unknown_field_ignored", event_type=seen[0], field=field)
