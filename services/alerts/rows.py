"""The rows the alerts repository (services/alerts/repository/) returns: frozen values,
one type per table or query, and their domain views (``AlertRow.escalation()`` etc.);
and the errors it raises in place of the driver's (``NoOutbox``).
No asyncpg here: ``of`` takes any mapping of column names (an asyncpg Record, a dict)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from typing import Any, Protocol, Self, cast

from services.alerts.domain import rosters
from services.alerts.domain.dedup import OpenAlert
from services.alerts.domain.escalation import EscalationState, escalation_level
from services.alerts.domain.model import Kind, OncallPolicy, Recipient, Severity, Status, Tier
from services.alerts.domain.monitoring import Monitor

# An on-call policy as stored (jsonb): [{"recipients": [{"name", "webhook_url"}],
# "targets": [{"schedule_id"} | {"clinician_id"}], "escalate_after_s"}], tier 1 first
# (services/alerts/schemas.py OncallIn.to_json; stored before migration 0005: no targets).
TiersJson = list[dict[str, Any]]


class Columns(Protocol):
    """A row's columns by name: an asyncpg Record, a dict."""

    def keys(self) -> Iterable[str]: ...

    def __getitem__(self, key: str, /) -> Any: ...


class _Row:
    """``of``: the row from a mapping of its columns (extra columns are ignored)."""

    __slots__ = ()

    @classmethod
    def of(cls, m: Columns) -> Self:
        present = set(m.keys())
        names = _NAMES.get(cls)
        if names is None:  # looked up once per type: the timers build thousands a batch
            names = _NAMES[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        return cls(**{n: m[n] for n in names if n in present})


_NAMES: dict[type, tuple[str, ...]] = {}


class NoOutbox(Exception):
    """The schema has no outbox table: that service never ran against this database.
    ``repository.outbox_age`` raises it in place of the driver's error (the watchdog
    skips that outbox)."""


def policy_of(tiers: TiersJson | None) -> OncallPolicy:
    """The domain's view of stored tiers (none: nobody can be paged)."""
    if not tiers:
        return OncallPolicy()
    return OncallPolicy(
        tuple(
            Tier(
                recipients=tuple(
                    Recipient(name=r["name"], webhook_url=r["webhook_url"])
                    for r in t.get("recipients", ())
                ),
                escalate_after_s=int(t["escalate_after_s"]),
                targets=tuple(_target(x) for x in t.get("targets", ())),
            )
            for t in tiers
        )
    )


def _target(x: dict[str, str]) -> rosters.ScheduleTarget | rosters.ClinicianTarget:
    if "schedule_id" in x:
        return rosters.ScheduleTarget(x["schedule_id"])
    return rosters.ClinicianTarget(x["clinician_id"])


@dataclass(frozen=True, slots=True)
class OncallRow(_Row):
    site_id: str
    tiers: TiersJson
    version: int
    updated_at: datetime

    def policy(self) -> OncallPolicy:
        return policy_of(self.tiers)


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hhmm(value: str) -> time:
    return time(int(value[:2]), int(value[3:5]))


@dataclass(frozen=True, slots=True)
class ClinicianRow(_Row):
    clinician_id: str
    name: str
    timezone: str
    contact_methods: list[dict[str, str]]  # [{"id", "type", "address"}]
    notification_rules: list[dict[str, Any]]  # [{"contact_method", "after_s"}]
    quiet_hours: dict[str, str] | None  # {"start": "HH:MM", "end": "HH:MM"}
    version: int
    updated_at: datetime

    def clinician(self) -> rosters.Clinician:
        q = self.quiet_hours
        return rosters.Clinician(
            clinician_id=self.clinician_id,
            timezone=self.timezone,
            contact_methods=tuple(
                rosters.ContactMethod(m["id"], cast(rosters.Channel, m["type"]), m["address"])
                for m in self.contact_methods
            ),
            notification_rules=tuple(
                rosters.NotificationRule(r["contact_method"], int(r["after_s"]))
                for r in self.notification_rules
            ),
            quiet_hours=rosters.QuietHours(_hhmm(q["start"]), _hhmm(q["end"])) if q else None,
        )


@dataclass(frozen=True, slots=True)
class OverrideRow(_Row):
    override_id: uuid.UUID
    schedule_id: str
    starts_at: datetime
    ends_at: datetime
    clinician_id: str
    replaces: str | None

    def override(self) -> rosters.Override:
        return rosters.Override(
            override_id=str(self.override_id),
            start=self.starts_at,
            end=self.ends_at,
            clinician_id=self.clinician_id,
            replaces=self.replaces,
        )


@dataclass(frozen=True, slots=True)
class ScheduleRow(_Row):
    schedule_id: str
    name: str
    timezone: str
    # [{"participants", "shift", "handoff": "HH:MM", "handoff_weekday": "mon", "start"}]
    rotations: list[dict[str, Any]]
    version: int
    updated_at: datetime

    def schedule(self, overrides: Iterable[OverrideRow] = ()) -> rosters.Schedule:
        return rosters.Schedule(
            schedule_id=self.schedule_id,
            timezone=self.timezone,
            rotations=tuple(
                rosters.Rotation(
                    participants=tuple(r["participants"]),
                    shift=r["shift"],
                    handoff=_hhmm(r["handoff"]),
                    handoff_weekday=_WEEKDAYS.index(r["handoff_weekday"]),
                    start=date.fromisoformat(r["start"]),
                )
                for r in self.rotations
            ),
            overrides=tuple(o.override() for o in overrides),
        )


@dataclass(frozen=True, slots=True)
class PatientRow(_Row):
    """A patient's check-in monitoring (and the row each transaction locks first)."""

    patient_id: str
    site_id: str
    started_at: datetime | None
    discharged_at: datetime | None
    next_due_at: datetime | None
    deadline_at: datetime | None
    consecutive_misses: int
    total_misses: int
    last_checkin_at: datetime | None
    last_missed_at: datetime | None
    updated_at: datetime

    def monitor(self) -> Monitor:
        return Monitor(
            started_at=self.started_at,
            discharged_at=self.discharged_at,
            next_due_at=self.next_due_at,
            consecutive_misses=self.consecutive_misses,
            last_checkin_at=self.last_checkin_at,
        )


@dataclass(frozen=True, slots=True)
class AlertRow(_Row):
    alert_id: uuid.UUID
    patient_id: str
    site_id: str
    kind: str
    severity: str
    status: str
    reasons: list[str]
    raised_at: datetime
    first_seen_at: datetime
    last_seen_at: datetime
    occurrences: int
    policy: TiersJson | None  # the on-call tiers snapshotted at opening
    inhibited_by: uuid.UUID | None
    tiers_paged: int
    last_escalated_at: datetime | None
    repages: int
    last_repaged_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledged_note: bytes | None  # a Fernet token (services/alerts/alerting/notes.py)
    acknowledged_tier: int | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolved_note: bytes | None
    next_check_at: datetime | None
    # read by no caller: absent from an alert built by hand (a unit test's)
    source_event_id: str | None = None
    policy_version: int | None = None
    updated_at: datetime | None = None
    # whose on-call ``policy`` is: None for the alert's site, NETWORK_SITE for a critical
    # alert that opened while its site had nobody on call (services/alerts/domain/dedup.py)
    policy_site: str | None = None

    @property
    def held_by(self) -> str | None:
        """The alert holding back this one's pages, as the domain names alerts."""
        return str(self.inhibited_by) if self.inhibited_by else None

    def escalation(self) -> EscalationState:
        return EscalationState(
            severity=Severity(self.severity),
            status=Status(self.status),
            inhibited=self.inhibited_by is not None,
            tiers_paged=self.tiers_paged,
            last_escalated_at=self.last_escalated_at,
            acknowledged_at=self.acknowledged_at,
            acknowledged_tier=self.acknowledged_tier,
            repages=self.repages,
            last_repaged_at=self.last_repaged_at,
        )

    @property
    def escalation_level(self) -> int:
        return escalation_level(self.escalation())

    def open_alert(self) -> OpenAlert:
        return OpenAlert(
            alert_id=str(self.alert_id),
            kind=Kind(self.kind),
            severity=Severity(self.severity),
            status=Status(self.status),
            inhibited_by=self.held_by,
        )

    def oncall_policy(self) -> OncallPolicy:
        return policy_of(self.policy)


@dataclass(frozen=True, slots=True)
class PageRow(_Row):
    page_id: uuid.UUID
    alert_id: uuid.UUID
    idempotency_key: str
    tier: int  # 0-based
    round: int
    reason: str
    recipient_index: int
    recipient_name: str
    webhook_url: str | None
    body: bytes
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    cancelled_at: datetime | None
    last_error: str | None
    channel: str = "webhook"
    address: str | None = None
    clinician_id: str | None = None
    contact_method: str | None = None
    ack_token: str | None = None
    ack_used_at: datetime | None = None
    reply_code: int | None = None


@dataclass(frozen=True, slots=True)
class NewPage:
    """A page to insert (``repo.insert_pages``): due at ``due`` (its notification rule's
    delay after ``created_at``); a webhook page has ``webhook_url``, an SMS or e-mail one
    ``address``."""

    page_id: str
    alert_id: uuid.UUID
    idempotency_key: str
    tier: int  # 0-based
    round: int
    reason: str
    recipient_index: int
    recipient_name: str
    body: bytes
    created_at: datetime
    due: datetime
    channel: str = "webhook"
    webhook_url: str | None = None
    address: str | None = None
    clinician_id: str | None = None
    contact_method: str | None = None
    ack_token: str | None = None
    reply_code: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimedPage(_Row):
    """A page leased for one delivery attempt (``attempts`` already counts it)."""

    page_id: uuid.UUID
    alert_id: uuid.UUID
    webhook_url: str | None
    body: bytes
    attempts: int
    idempotency_key: str
    created_at: datetime
    tier: int  # 0-based
    channel: str = "webhook"
    address: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptRow(_Row):
    page_id: uuid.UUID
    attempt: int
    started_at: datetime
    duration_ms: float
    http_status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class CountRow(_Row):
    """Alerts of a site by status and severity."""

    site_id: str
    status: str
    severity: str
    n: int


@dataclass(frozen=True, slots=True)
class SiteMonitoringRow(_Row):
    site_id: str
    monitored: int
    missing_checkins: int


@dataclass(frozen=True, slots=True)
class AckTimesRow(_Row):
    site_id: str | None  # None: the whole network
    raised: int
    acknowledged: int
    p50_s: float | None
    p90_s: float | None


@dataclass(frozen=True, slots=True)
class LegacyNote(_Row):
    """A plaintext note written before migration 0002 (``legacy_notes``)."""

    alert_id: uuid.UUID
    step: str
    note: str
